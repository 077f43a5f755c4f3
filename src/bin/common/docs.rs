//! The documents both binaries make of their own clap definitions: shell
//! completions (`ftx completions bash`, `ftxd completions zsh`) and the
//! manual page (the hidden `manpage` subcommand, which the packaging
//! script runs). Generated, never written by hand, so they cannot drift
//! from the flags. Shared by `ftxd` and `ftx` through a `#[path]` module.

use std::io::{self, Write};

use clap_complete::Shell;

/// Writes the completion script of `cmd` for `shell` to `out`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let name = cmd.get_name().to_owned();
    // clap_complete panics on a broken writer (a closed pipe): render to
    // memory first and let the write fail as an error.
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut text);
    out.write_all(&text)
}

/// One extra section of a manual page: its title and its paragraphs,
/// each a term (may be empty) and its text.
pub struct ManSection<'a> {
    /// The heading (`FILES`).
    pub title: &'a str,
    /// Term and text pairs; an empty term makes a plain paragraph.
    pub items: Vec<(String, String)>,
}

/// Writes the manual page of `cmd` in `section` (`"1"`, `"8"`): clap's
/// NAME, SYNOPSIS, DESCRIPTION, OPTIONS and the visible subcommands, then
/// `extra` (what the flags cannot say: files, signals, exit status), then
/// VERSION.
pub fn manpage(
    cmd: clap::Command,
    section: &str,
    extra: &[ManSection],
    out: &mut dyn Write,
) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(section)
        .source(format!("ftx {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    for s in extra {
        page.extend_from_slice(roff_section(s).as_bytes());
    }
    man.render_version_section(&mut page)?;
    out.write_all(&page)
}

/// `s` as roff: `.SH`, then a `.TP` with a bold term per item, or a `.PP`
/// for an item without one. Text lines are filled as prose, but for a line
/// that starts with `-` (an option and what it does), which starts a line
/// of its own.
fn roff_section(s: &ManSection) -> String {
    let mut out = format!(".SH {}\n", roff_escape(s.title));
    for (term, text) in &s.items {
        if term.is_empty() {
            out.push_str(".PP\n");
        } else {
            out.push_str(&format!(".TP\n\\fB{}\\fR\n", roff_escape(term)));
        }
        for line in text.lines() {
            if line.starts_with('-') {
                out.push_str(".br\n");
            }
            out.push_str(&roff_escape(line));
            out.push('\n');
        }
    }
    out
}

/// `text` safe as a roff text line: backslashes and dashes escaped, and a
/// leading `.` or `'` (which would start a request) made literal.
fn roff_escape(text: &str) -> String {
    let body = text.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with('.') || body.starts_with('\'') {
        format!("\\&{body}")
    } else {
        body
    }
}

/// The `.SH` headings of a rendered manual page, in order (for tests).
#[cfg(test)]
pub fn section_heads(page: &str) -> Vec<&str> {
    page.lines().filter(|l| l.starts_with(".SH ")).collect()
}

/// Panics unless the completion scripts of `cmd` for bash, zsh and fish
/// each name every one of `words` (for tests).
#[cfg(test)]
pub fn assert_completions_name(cmd: &clap::Command, words: &[&str]) {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut out = Vec::new();
        completions(cmd.clone(), shell, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for word in words {
            assert!(text.contains(word), "{shell}: {word} missing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_lines_cannot_become_requests() {
        assert_eq!(roff_escape(".SH x"), "\\&.SH x");
        assert_eq!(roff_escape("'x"), "\\&'x");
        assert_eq!(roff_escape("a\\b --c"), "a\\eb \\-\\-c");
        let s = roff_section(&ManSection {
            title: "FILES",
            items: vec![
                ("/etc/ftxd.toml".into(), "the config\n.x".into()),
                (String::new(), "plain\n-f  force".into()),
            ],
        });
        assert_eq!(
            s,
            ".SH FILES\n.TP\n\\fB/etc/ftxd.toml\\fR\nthe config\n\\&.x\n.PP\nplain\n.br\n\\-f  force\n"
        );
    }

    #[test]
    fn a_closed_writer_is_an_error_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let cmd = clap::Command::new("x").arg(clap::Arg::new("a").long("a"));
        assert!(completions(cmd, Shell::Bash, &mut Closed).is_err());
    }
}
