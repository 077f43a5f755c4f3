//! What both binaries do with their command line before anything else:
//! parse it into their derived `clap::Parser` type, with ftx's rule for
//! failures. Shared by `ftxd` and `ftx` through a `#[path]` module (this
//! directory has no `main.rs`, so cargo does not take it for a binary).

use std::process::ExitCode;

/// Parses the process's arguments into `T`. `--help` and `--version`
/// print and exit 0 inside; a bad command line prints clap's first line
/// (which starts with `error:`) and gives exit code 2 for `main` to return.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            Err(ExitCode::from(2))
        }
    }
}
