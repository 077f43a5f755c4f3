//! `ftx`: flags -> connect -> line source -> shell -> exit code; or
//! `ftx completions SHELL`. The exit code is decided here only: 0 when
//! every command succeeded, 1 when one failed or ftx could not start, 2
//! for a bad flag.

mod args;
#[path = "../common/command_line.rs"]
mod command_line;
#[path = "../common/docs.rs"]
mod docs;

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use ftx::shell::app;

use args::{ClientArgs, ClientCommand};

fn main() -> ExitCode {
    let (mut args, _given) = match command_line::parse::<ClientArgs>() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let result = match args.command.take() {
        Some(ClientCommand::Completions { shell }) => {
            docs::completions(ClientArgs::command(), shell, &mut std::io::stdout())
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        Some(ClientCommand::Manpage) => manpage(&mut std::io::stdout())
            .map(|()| true)
            .map_err(|e| e.to_string()),
        None => {
            let level = if args.verbose { "debug" } else { "warn" };
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
                .init();
            app::run(args.settings())
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `ftx manpage`: ftx(1), from the flags, with the shell's commands from
/// the table `help COMMAND` reads.
fn manpage(out: &mut dyn Write) -> std::io::Result<()> {
    let item = |term: &str, text: &str| (term.to_owned(), text.to_owned());
    let commands = ftx::shell::command::SPECS
        .iter()
        .map(|spec| {
            let mut term = spec.synopsis();
            if let Some(many) = spec.many_synopsis() {
                term = format!("{term}, {many}");
            }
            if !spec.aliases.is_empty() {
                term = format!("{term} (also {})", spec.aliases.join(", "));
            }
            let mut text = spec.help.to_owned();
            for flag in spec.flags {
                text.push_str(&format!("\n-{}  {}", flag.letter, flag.help));
            }
            (term, text)
        })
        .collect();
    let extra = [
        docs::ManSection {
            title: "COMMANDS",
            items: commands,
        },
        docs::ManSection {
            title: "FILES",
            items: vec![
                item(
                    "$XDG_DATA_HOME/ftx/known_hosts",
                    "The certificates trusted on first use (default ~/.local/share/ftx).",
                ),
                item(
                    "$XDG_DATA_HOME/ftx/tokens",
                    "Tokens remembered with --save-token (mode 0600).",
                ),
                item(
                    "$XDG_DATA_HOME/ftx/history",
                    "The interactive shell's history.",
                ),
            ],
        },
        docs::ManSection {
            title: "ENVIRONMENT",
            items: vec![
                item(
                    "FTX_TOKEN",
                    "The access token, when neither --token-file nor a saved token gives it.",
                ),
                item("NO_COLOR", "No colours, even on a terminal."),
                item("RUST_LOG", "Log filter for -v's protocol details."),
            ],
        },
        docs::ManSection {
            title: "EXIT STATUS",
            items: vec![
                item("0", "Every command succeeded."),
                item("1", "A command failed, or ftx could not start."),
                item("2", "A bad command line."),
            ],
        },
        docs::ManSection {
            title: "SEE ALSO",
            items: vec![item("", "ftxd(8), sftp(1)")],
        },
    ];
    docs::manpage(ClientArgs::command(), "1", &extra, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_page_has_its_sections_and_the_shell_commands() {
        let mut page = Vec::new();
        manpage(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(".TH ftx 1 "), "{page}");
        assert_eq!(
            docs::section_heads(&page),
            [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH OPTIONS",
                ".SH SUBCOMMANDS",
                ".SH COMMANDS",
                ".SH FILES",
                ".SH ENVIRONMENT",
                ".SH EXIT STATUS",
                ".SH SEE ALSO",
                ".SH VERSION",
            ]
        );
        for command in [
            "put [\\-fprRucv] LOCAL [REMOTE]",
            "reget REMOTE [LOCAL]",
            "chmod MODE",
        ] {
            assert!(page.contains(command), "{command} missing");
        }
        assert!(page.contains("\\-\\-token\\-file"));
    }

    #[test]
    fn completions_name_the_flags_and_the_subcommand() {
        docs::assert_completions_name(
            &ClientArgs::command(),
            &["completions", "token-file", "accept-new", "batch"],
        );
    }
}
