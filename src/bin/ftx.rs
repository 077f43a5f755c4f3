//! `ftx`: flags -> connect -> line source -> shell -> exit code. The exit
//! code is decided here only: 0 when every command succeeded, 1 when one
//! failed or ftx could not start, 2 for a bad flag.

use std::process::ExitCode;

use ftx::shell::app::{self, ClientArgs};

fn main() -> ExitCode {
    let args = match ftx::cli::parse_args::<ClientArgs>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let level = if args.verbose { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match app::run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
