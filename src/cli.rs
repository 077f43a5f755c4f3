//! What both binaries do with their command line before anything else:
//! clap parsing with ftx's rule for failures (one `error:` line, exit 2),
//! the [`Args`] trait their flag types implement, and small helpers for
//! building their `clap::Command`s. Prints only clap's own output; owns no
//! other policy.
//!
//! The commands are built with clap's builder API, not its derive macros
//! (from when the binaries were linked statically, which kept cargo from
//! building proc-macro crates; moving to derive is open work).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// A command line's flags as a plain type: the `clap::Command` that
/// describes them and the reading of its matches into the type. ftx's own
/// small trait instead of `clap::Parser`, which is meant to be derived
/// (by hand it takes three traits and an update method nothing uses).
pub trait Args: Sized {
    /// The command: names, flags, help texts, defaults and conflicts.
    fn command() -> Command;

    /// Reads matches of [`Args::command`] (and only those) into `Self`.
    /// Everything the command checks (values, defaults, required
    /// arguments, conflicts) is already checked, so this cannot fail.
    fn from_matches(matches: &ArgMatches) -> Self;

    /// Parses `args` (the program name first). `--help`, `--version` and
    /// bad flags come back as the `clap::Error` clap made for them.
    fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        Ok(Self::from_matches(&matches))
    }
}

/// Parses the process's arguments into `T`. `--help` and `--version`
/// print and exit 0 inside; a bad flag prints clap's first line (which
/// starts with `error:`) and gives exit code 2 for `main` to return.
pub fn parse_args<T: Args>() -> Result<T, ExitCode> {
    match T::try_parse_from(std::env::args_os()) {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            Err(ExitCode::from(2))
        }
    }
}

/// A `--long` switch, off unless given; read it with `get_flag(id)`.
pub fn switch(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(long)
        .action(ArgAction::SetTrue)
        .help(help)
}

/// A `--long VALUE` option taking one value, shown as `<VALUE>` in help.
/// The caller adds the value parser (and a default, if any).
pub fn option(
    id: &'static str,
    long: &'static str,
    value: &'static str,
    help: &'static str,
) -> Arg {
    Arg::new(id)
        .long(long)
        .value_name(value)
        .action(ArgAction::Set)
        .help(help)
}

/// The value of an argument that has a default or is required: clap
/// fills it in or refuses the command line before matches exist, so a
/// missing one is a mistake in the `Command`, not in the user's input.
pub fn value<T: Clone + Send + Sync + 'static>(matches: &ArgMatches, id: &str) -> T {
    matches
        .get_one::<T>(id)
        .cloned()
        .expect("the Command gives this argument a default or requires it")
}
