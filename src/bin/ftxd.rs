//! `ftxd`: flags -> validated config -> logger -> bind -> "listening on"
//! -> the event loop. The exit code is decided here only: 0 after a clean
//! shutdown, 1 with a one-line `error:` on failure, 2 for a bad flag.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ftx::server::{self, ServerArgs, ServerConfig, Shutdown};

fn main() -> ExitCode {
    let args = match ServerArgs::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, as every other failure; clap's first line already
            // starts with "error:".
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServerArgs) -> Result<(), String> {
    let config = ServerConfig::from_args(args).map_err(|e| e.to_string())?;
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(config.verbosity.filter()),
    )
    .init();
    let listener =
        server::bind(&config).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server: the line is informative.
    let _ = writeln!(out, "ftxd listening on {bound}").and_then(|()| out.flush());
    drop(out);
    server::run(listener, config, Shutdown::on_signals()).map_err(|e| e.to_string())
}
