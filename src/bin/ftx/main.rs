//! `ftx`: flags -> connect -> line source -> shell -> exit code. The exit
//! code is decided here only: 0 when every command succeeded, 1 when one
//! failed or ftx could not start, 2 for a bad flag.

mod args;
#[path = "../common/command_line.rs"]
mod command_line;

use std::process::ExitCode;

use ftx::shell::app;

use args::ClientArgs;

fn main() -> ExitCode {
    let args = match command_line::parse::<ClientArgs>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let level = if args.verbose { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match app::run(args.settings()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
