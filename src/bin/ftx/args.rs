//! `ftx`'s command line, declared with clap's derive, and its reading
//! into the library's plain [`Settings`]. Each field's doc comment is its
//! help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;
use ftx::shell::app::Settings;

/// `ftx [HOST[:PORT]] [-b FILE] [-q] [-v] ...`, as typed.
#[derive(Debug, Parser)]
#[command(
    name = "ftx",
    version,
    about = "ftx: a shell for fast, verified file transfers with an ftxd server",
    long_about = None,
    after_help = "Without HOST it asks for the server's address and port.\n\
                  Type 'help' at the ftx> prompt for the commands."
)]
pub struct ClientArgs {
    /// Instead of connecting: print a completion script
    #[command(subcommand)]
    pub command: Option<ClientCommand>,

    // Which server, where the commands come from and how much is printed.
    /// Server as HOST or HOST:PORT (default port 9999; an IPv6 address with
    /// a port goes in brackets)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// Run commands from FILE ('-' for standard input) and exit
    #[arg(short, long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// Print only errors and command results (no connection line, no
    /// transfer summaries)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log protocol details to stderr
    #[arg(short, long)]
    pub verbose: bool,

    // TLS and the server's certificate (both pins are meaningless without
    // TLS, so they conflict with --plain), and the access token.
    /// No TLS (for an ftxd started with --plain, on a trusted network)
    #[arg(long)]
    pub plain: bool,
    /// Trust an unknown server's certificate without asking and remember it
    #[arg(long, conflicts_with = "plain")]
    pub accept_new: bool,
    /// Accept only the server certificate with this fingerprint
    /// (SHA256:...)
    #[arg(long, value_name = "FP", conflicts_with = "plain")]
    pub fingerprint: Option<String>,
    /// Read the access token from FILE (else $FTX_TOKEN, a saved token, or
    /// a prompt)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Remember the access token for this server (in the ftx data
    /// directory, mode 0600)
    #[arg(long)]
    pub save_token: bool,
}

/// What `ftx` does instead of connecting.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Print the shell completion script for ftx (bash, zsh or fish)
    Completions {
        /// The shell
        shell: Shell,
    },
    /// Print ftx's manual page (roff), for packaging
    #[command(hide = true)]
    Manpage,
}

impl ClientArgs {
    /// What the shell needs from the flags (`--verbose` only sets the
    /// binary's log level).
    pub fn settings(self) -> Settings {
        Settings {
            server: self.server,
            batch: self.batch,
            quiet: self.quiet,
            plain: self.plain,
            accept_new: self.accept_new,
            fingerprint: self.fingerprint,
            token_file: self.token_file,
            save_token: self.save_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(extra: &[&str]) -> Result<ClientArgs, clap::Error> {
        ClientArgs::try_parse_from(std::iter::once("ftx").chain(extra.iter().copied()))
    }

    fn kind(extra: &[&str]) -> clap::error::ErrorKind {
        args(extra).unwrap_err().kind()
    }

    /// The on/off flags in field order, to check that each switch sets
    /// its own field and no other.
    fn switches(a: &ClientArgs) -> [bool; 5] {
        [a.quiet, a.verbose, a.plain, a.accept_new, a.save_token]
    }

    #[test]
    fn command_is_well_formed() {
        ClientArgs::command().debug_assert();
    }

    #[test]
    fn no_flags_are_the_default_settings() {
        assert_eq!(args(&[]).unwrap().settings(), Settings::default());
    }

    #[test]
    fn every_flag_reaches_the_settings() {
        let s = args(&[
            "h:1",
            "-b",
            "f",
            "-q",
            "--accept-new",
            "--fingerprint",
            "SHA256:x",
            "--token-file",
            "t",
            "--save-token",
        ])
        .unwrap()
        .settings();
        assert_eq!(
            s,
            Settings {
                server: Some("h:1".into()),
                batch: Some(PathBuf::from("f")),
                quiet: true,
                plain: false,
                accept_new: true,
                fingerprint: Some("SHA256:x".into()),
                token_file: Some(PathBuf::from("t")),
                save_token: true,
            }
        );
        assert!(args(&["--plain"]).unwrap().settings().plain);
    }

    #[test]
    fn absent_flags_take_their_defaults() {
        let a = args(&[]).unwrap();
        assert_eq!(a.server, None);
        assert_eq!(a.batch, None);
        assert_eq!(a.fingerprint, None);
        assert_eq!(a.token_file, None);
        assert_eq!(switches(&a), [false; 5]);
    }

    #[test]
    fn every_value_flag_reaches_its_field() {
        let a = args(&[
            "host:7",
            "-b",
            "cmds",
            "--fingerprint",
            "SHA256:x",
            "--token-file",
            "tok",
        ])
        .unwrap();
        assert_eq!(a.server.as_deref(), Some("host:7"));
        assert_eq!(a.batch, Some(PathBuf::from("cmds")));
        assert_eq!(a.fingerprint.as_deref(), Some("SHA256:x"));
        assert_eq!(a.token_file, Some(PathBuf::from("tok")));
        assert_eq!(switches(&a), [false; 5]);
        // Long form, `=` form, and the server after the flags.
        let a = args(&["--batch", "-", "--token-file=t2", "[::1]:9"]).unwrap();
        assert_eq!(a.batch, Some(PathBuf::from("-")));
        assert_eq!(a.token_file, Some(PathBuf::from("t2")));
        assert_eq!(a.server.as_deref(), Some("[::1]:9"));
    }

    #[test]
    fn each_switch_sets_only_its_field() {
        let cases = [
            ("--quiet", 0),
            ("-q", 0),
            ("--verbose", 1),
            ("-v", 1),
            ("--plain", 2),
            ("--accept-new", 3),
            ("--save-token", 4),
        ];
        for (flag, field) in cases {
            let mut want = [false; 5];
            want[field] = true;
            assert_eq!(switches(&args(&[flag]).unwrap()), want, "{flag}");
        }
        let a = args(&["-q", "--accept-new", "--save-token"]).unwrap();
        assert_eq!(switches(&a), [true, false, false, true, true]);
        let a = args(&["-v", "--plain", "--save-token"]).unwrap();
        assert_eq!(switches(&a), [false, true, true, false, true]);
    }

    #[test]
    fn conflicts_are_refused() {
        use clap::error::ErrorKind::ArgumentConflict;
        assert_eq!(kind(&["-q", "-v"]), ArgumentConflict);
        assert_eq!(kind(&["-v", "-q"]), ArgumentConflict);
        assert_eq!(kind(&["--plain", "--accept-new"]), ArgumentConflict);
        assert_eq!(kind(&["--accept-new", "--plain"]), ArgumentConflict);
        assert_eq!(kind(&["--plain", "--fingerprint", "X"]), ArgumentConflict);
        let e = args(&["--plain", "--fingerprint", "X"]).unwrap_err();
        assert_eq!(
            e.render().to_string().lines().next(),
            Some("error: the argument '--plain' cannot be used with '--fingerprint <FP>'")
        );
        // Pins go together; they only conflict with --plain.
        let a = args(&["--accept-new", "--fingerprint", "X"]).unwrap();
        assert!(a.accept_new && a.fingerprint.is_some());
    }

    #[test]
    fn completions_is_a_command_and_not_a_server() {
        let a = args(&["completions", "zsh"]).unwrap();
        assert!(matches!(
            a.command,
            Some(ClientCommand::Completions { shell: Shell::Zsh })
        ));
        assert_eq!(a.server, None);
        use clap::error::ErrorKind::*;
        assert_eq!(kind(&["completions"]), MissingRequiredArgument);
        assert_eq!(kind(&["completions", "cmd.exe"]), InvalidValue);
        // A near miss is named as one ("did you mean 'completions'?").
        assert_eq!(kind(&["host", "completion"]), InvalidSubcommand);
        let a = args(&["host", "-q"]).unwrap();
        assert!(a.command.is_none() && a.server.as_deref() == Some("host"));
    }

    #[test]
    fn bad_lines_are_refused() {
        use clap::error::ErrorKind::*;
        assert_eq!(kind(&["a", "b"]), UnknownArgument);
        assert_eq!(kind(&["-b"]), InvalidValue);
        assert_eq!(kind(&["--fingerprint"]), InvalidValue);
        assert_eq!(kind(&["--bogus"]), UnknownArgument);
        assert_eq!(kind(&["--plain=yes"]), TooManyValues);
    }

    #[test]
    fn help_and_version() {
        let help = ClientArgs::command().render_help().to_string();
        for text in [
            "Usage: ftx [OPTIONS] [SERVER]",
            "[SERVER]  Server as HOST or HOST:PORT",
            "-b, --batch <FILE>",
            "-q, --quiet",
            "-v, --verbose",
            "--plain",
            "--accept-new",
            "--fingerprint <FP>",
            "--token-file <FILE>",
            "--save-token",
            "\n\nWithout HOST it asks for the server's address and port.\n\
             Type 'help' at the ftx> prompt for the commands.\n",
        ] {
            assert!(help.contains(text), "{text:?} missing from:\n{help}");
        }
        let e = args(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            e.render().to_string(),
            format!("ftx {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(kind(&["-h"]), clap::error::ErrorKind::DisplayHelp);
    }
}
