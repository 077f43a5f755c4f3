//! What both binaries do with their command line before anything else:
//! parse it into their derived `clap::Parser` type, with ftx's rule for
//! failures. Shared by `ftxd` and `ftx` through a `#[path]` module (this
//! directory has no `main.rs`, so cargo does not take it for a binary).

use std::process::ExitCode;

use clap::parser::ValueSource;

/// Parses the process's arguments into `T`, with what the command line
/// itself gave ([`Given`]: a config file must not undo a flag, nor a
/// flag's default undo the file). `--help` and `--version` print and exit
/// 0 inside; a bad command line prints one line (starting with `error:`,
/// see [`one_line`]) and gives exit code 2 for `main` to return.
pub fn parse<T: clap::Parser>() -> Result<(T, Given), ExitCode> {
    match try_parse_from::<T, _>(std::env::args_os()) {
        Ok(parsed) => Ok(parsed),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            Err(ExitCode::from(2))
        }
    }
}

/// clap's message about a bad command line as one line: its first
/// paragraph (the error and what it lists: the missing arguments, the
/// possible values), then the usage, so the line says what to type.
pub fn one_line(rendered: &str) -> String {
    let mut text = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        text = "error: bad arguments".to_owned();
    }
    if let Some(usage) = rendered.lines().find_map(|l| l.strip_prefix("Usage: ")) {
        text.push_str(&format!(" (usage: {})", usage.trim()));
    }
    text
}

/// [`parse`] of `args` (the program's name first), without printing.
pub fn try_parse_from<T, I>(args: I) -> Result<(T, Given), clap::Error>
where
    T: clap::Parser,
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = T::command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let given = Given::of(&matches);
    let parsed = T::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok((parsed, given))
}

/// The ids (field names) of the arguments typed on the command line, as
/// opposed to those that took their default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(Vec<String>);

impl Given {
    /// What `matches` says came from the command line, a subcommand's
    /// global flags included (`ftxd token list --config F`).
    fn of(matches: &clap::ArgMatches) -> Given {
        let mut ids = Vec::new();
        let mut m = Some(matches);
        while let Some(level) = m {
            ids.extend(
                level
                    .ids()
                    .filter(|id| level.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                    .map(|id| id.as_str().to_owned()),
            );
            m = level.subcommand().map(|(_, sub)| sub);
        }
        Given(ids)
    }

    /// Whether the argument with this id was typed.
    #[allow(dead_code)] // ftx has no config file for flags to override
    pub fn has(&self, id: &str) -> bool {
        self.0.iter().any(|g| g == id)
    }
}
