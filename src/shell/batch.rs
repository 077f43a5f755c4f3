//! The command loop: reads lines from a [`LineSource`], applies the batch
//! rules (echo, `#`, `-` and `@`, stop at the first failure), parses and
//! hands each [`Command`] to an [`Execute`]r, and reports failures as
//! `error: ...` lines.
//!
//! Batch rules (only when [`LineSource::is_batch`]): the first failing
//! command stops the run, unless its line starts with `-`, in which case
//! the failure is reported but counts as a success. A batch and piped
//! input ([`LineSource::echoes`]) echo each line on `out` as
//! `ftx> LINE`, as written (any `-` included), unless it starts with `@`,
//! as sftp does when its input is not a terminal. Everywhere: blank lines
//! and `#` comments are skipped, any run of `@`/`-` prefixes is stripped
//! before parsing, every failure
//! is printed and counted, `exit`/`quit`/`bye`/`3` and end of input end the
//! loop, and Ctrl-C just prompts again. The menu's `1`/`2` without a name
//! ask for it here, from the same source, so the executor never reads
//! input. This module never touches the network and never chooses the exit
//! code: it returns an [`Outcome`] and the binary decides.

use std::io::{self, Write};

use super::command::{self, Command};
use super::complete::LineKind;
use super::glob;
use super::render::{escape_for_terminal, escape_line_for_terminal, Style};
use super::source::{Line, LineSource};

/// The shell prompt.
pub const PROMPT: &str = "ftx> ";
/// What `1` without a file name asks (as the original menu did).
pub const UPLOAD_PROMPT: &str = "Enter full filename to upload: ";
/// What `2` without a file name asks (as the original menu did).
pub const DOWNLOAD_PROMPT: &str = "Enter full filename to download: ";

/// What the loop should do after a command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Leave the shell (`exit`, `quit`, `bye`, `3`).
    Exit,
}

/// Runs commands; the shell's executor implements it over the network
/// client, tests implement it with fakes.
pub trait Execute {
    /// Runs one command. `Err` holds the message printed after `error: `
    /// (one line, names already escaped). Never receives
    /// [`Command::PromptPut`] or [`Command::PromptGet`]: the loop asks for
    /// the name and passes a `Put`/`Get`.
    fn execute(&mut self, cmd: Command) -> Result<Flow, String>;
}

/// How a run went; the binary turns it into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Commands that failed and counted (failures on `-` lines do not).
    pub failures: usize,
    /// The run stopped before the end of input because of a failure (batch
    /// mode, or a source that could not be read).
    pub stopped_early: bool,
}

impl Outcome {
    /// Whether every command succeeded: exit status 0.
    pub fn success(&self) -> bool {
        self.failures == 0
    }
}

/// The batch prefixes of a line and the command after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixed<'a> {
    /// `@`: do not echo this line in batch mode.
    pub quiet: bool,
    /// `-`: a failure of this line is reported but does not count.
    pub ignore_failure: bool,
    /// The command text after the prefixes.
    pub command: &'a str,
}

/// Splits the `@` and `-` prefixes (any run of them, as sftp reads
/// `-@-lpwd`) off a line, after leading whitespace.
pub fn split_prefixes(line: &str) -> Prefixed<'_> {
    let mut rest = line.trim_start();
    let mut quiet = false;
    let mut ignore_failure = false;
    loop {
        if rest.starts_with('@') {
            quiet = true;
        } else if rest.starts_with('-') {
            ignore_failure = true;
        } else {
            break;
        }
        rest = &rest[1..];
    }
    Prefixed {
        quiet,
        ignore_failure,
        command: rest,
    }
}

/// Whether a line is skipped without a trace: blank or a `#` comment.
fn is_skipped(text: &str) -> bool {
    let t = text.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// [`run_with_style`] with a plain `error:` prefix.
pub fn run(
    source: &mut dyn LineSource,
    exec: &mut dyn Execute,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    run_with_style(source, exec, out, err, Style::plain())
}

/// Runs the command loop until `exit` or end of input (or, in batch mode,
/// the first counted failure). `style` colours the `error:` prefix on `err`.
/// Write errors on `out`/`err` are ignored so a closed pipe ends quietly.
pub fn run_with_style(
    source: &mut dyn LineSource,
    exec: &mut dyn Execute,
    out: &mut dyn Write,
    err: &mut dyn Write,
    style: Style,
) -> Outcome {
    let mut outcome = Outcome::default();
    let batch = source.is_batch();
    let report = |err: &mut dyn Write, prefix: &str, msg: &str| {
        // Messages may carry text from the server: escape it here, once for
        // every path (escaping is idempotent on already escaped text).
        let _ = writeln!(err, "{prefix} {}", escape_for_terminal(msg));
        let _ = err.flush();
    };
    loop {
        let next = source.next_line(PROMPT);
        for w in source.take_warnings() {
            report(err, &style.warning_prefix(), &w);
        }
        let text = match next {
            Ok(Line::Text(text)) => text,
            Ok(Line::Eof) => break,
            Ok(Line::Interrupted) => continue,
            Err(e) => {
                report(
                    err,
                    &style.error_prefix(),
                    &format!("cannot read commands: {e}"),
                );
                outcome.failures += 1;
                outcome.stopped_early = true;
                break;
            }
        };
        if is_skipped(&text) {
            continue;
        }
        if !batch {
            source.add_history(&text);
            for w in source.take_warnings() {
                report(err, &style.warning_prefix(), &w);
            }
        }
        let line = split_prefixes(&text);
        if source.echoes() && !line.quiet {
            let _ = writeln!(out, "{PROMPT}{}", escape_line_for_terminal(&text));
            let _ = out.flush();
        }
        if is_skipped(line.command) {
            continue;
        }
        let result = match command::parse(line.command) {
            Ok(None) => continue,
            // The answer is a name as typed, never a pattern: sources are
            // carried in pattern form, so its wildcards are escaped.
            Ok(Some(Command::PromptPut)) => {
                ask_name(source, UPLOAD_PROMPT, "1", LineKind::LocalName).map(|name| {
                    name.map(|local| Command::Put {
                        force: false,
                        recursive: false,
                        preserve: false,
                        update: Default::default(),
                        local: vec![glob::escape(&local)],
                        remote: None,
                    })
                })
            }
            Ok(Some(Command::PromptGet)) => {
                ask_name(source, DOWNLOAD_PROMPT, "2", LineKind::RemoteName).map(|name| {
                    name.map(|remote| Command::Get {
                        force: false,
                        recursive: false,
                        preserve: false,
                        update: Default::default(),
                        remote: vec![glob::escape(&remote)],
                        local: None,
                    })
                })
            }
            Ok(Some(cmd)) => Ok(Some(cmd)),
            Err(e) => Err(e.to_string()),
        }
        .and_then(|cmd| match cmd {
            Some(cmd) => exec.execute(cmd),
            // The name prompt was cancelled with Ctrl-C.
            None => Ok(Flow::Continue),
        });
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            Err(msg) => {
                report(err, &style.error_prefix(), &msg);
                if !line.ignore_failure {
                    outcome.failures += 1;
                    if batch {
                        outcome.stopped_early = true;
                        break;
                    }
                }
            }
        }
    }
    outcome
}

/// Asks for the file name of a bare `1`/`2` from the same source, taking the
/// answer as typed (trimmed, not split into words, as the original menu
/// did); Tab completes names of `kind` there. `Ok(None)` when cancelled
/// with Ctrl-C. An empty answer on a terminal asks again; from a batch or
/// a pipe, where the next line is the next command, it fails.
fn ask_name(
    source: &mut dyn LineSource,
    prompt: &str,
    command: &str,
    kind: LineKind,
) -> Result<Option<String>, String> {
    let no_name = || format!("{command}: no file name given");
    let typed = !source.echoes();
    loop {
        match source.next_name(prompt, kind) {
            Ok(Line::Text(answer)) => {
                let name = answer.trim();
                if name.is_empty() && typed {
                    continue;
                }
                return if name.is_empty() {
                    Err(no_name())
                } else {
                    Ok(Some(name.to_string()))
                };
            }
            Ok(Line::Eof) => return Err(no_name()),
            Ok(Line::Interrupted) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{command}: cannot read the file name: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::source::{BatchSource, PipedSource};
    use std::collections::VecDeque;

    /// Records commands; fails those whose debug text contains "fail".
    #[derive(Default)]
    struct Fake {
        ran: Vec<Command>,
    }

    impl Execute for Fake {
        fn execute(&mut self, cmd: Command) -> Result<Flow, String> {
            let text = format!("{cmd:?}");
            self.ran.push(cmd.clone());
            if cmd == Command::Exit {
                Ok(Flow::Exit)
            } else if text.contains("fail") {
                Err(format!("boom: {text}"))
            } else {
                Ok(Flow::Continue)
            }
        }
    }

    struct Run {
        outcome: Outcome,
        out: String,
        err: String,
        ran: Vec<Command>,
    }

    fn go(source: &mut dyn LineSource) -> Run {
        let mut fake = Fake::default();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let outcome = run(source, &mut fake, &mut out, &mut err);
        Run {
            outcome,
            out: String::from_utf8(out).expect("utf8"),
            err: String::from_utf8(err).expect("utf8"),
            ran: fake.ran,
        }
    }

    fn batch(script: &str) -> Run {
        go(&mut BatchSource::new(script.as_bytes()))
    }

    fn piped(script: &str) -> Run {
        go(&mut PipedSource::new(script.as_bytes()))
    }

    fn rm(path: &str) -> Command {
        Command::Rm {
            paths: vec![path.into()],
        }
    }

    #[test]
    fn prefixes_split_in_any_order_and_number() {
        let p = |l| {
            let x = split_prefixes(l);
            (x.quiet, x.ignore_failure, x.command)
        };
        assert_eq!(p("ls"), (false, false, "ls"));
        assert_eq!(p("-rm a"), (false, true, "rm a"));
        assert_eq!(p("@ls"), (true, false, "ls"));
        assert_eq!(p("-@ls"), (true, true, "ls"));
        assert_eq!(p("@-ls"), (true, true, "ls"));
        assert_eq!(p("  @- ls"), (true, true, " ls"));
        // Any run of them, as sftp reads it.
        assert_eq!(p("--ls"), (false, true, "ls"));
        assert_eq!(p("@@ls"), (true, false, "ls"));
        assert_eq!(p("-@-lpwd"), (true, true, "lpwd"));
    }

    #[test]
    fn batch_echoes_lines_as_written() {
        let r = batch("rm a\n-rm b\n  rm c\n");
        assert_eq!(r.out, "ftx> rm a\nftx> -rm b\nftx>   rm c\n");
        assert_eq!(r.ran, [rm("a"), rm("b"), rm("c")]);
        assert_eq!(r.outcome, Outcome::default());
        assert!(r.outcome.success());
        assert_eq!(r.err, "");
    }

    #[test]
    fn at_lines_are_not_echoed() {
        let r = batch("@rm a\n-@rm b\n@-rm c\nrm d\n");
        assert_eq!(r.out, "ftx> rm d\n");
        assert_eq!(r.ran, [rm("a"), rm("b"), rm("c"), rm("d")]);
    }

    #[test]
    fn blank_lines_and_comments_are_skipped_silently() {
        let r = batch("\n   \n# a comment\n  # indented\nrm a\n\t\n");
        assert_eq!(r.out, "ftx> rm a\n");
        assert_eq!(r.ran, [rm("a")]);
        assert!(r.outcome.success());
    }

    #[test]
    fn first_failure_stops_the_batch() {
        let r = batch("rm a\nrm fail\nrm c\n");
        assert_eq!(r.ran, [rm("a"), rm("fail")]);
        assert_eq!(r.out, "ftx> rm a\nftx> rm fail\n");
        assert_eq!(r.err, "error: boom: Rm { paths: [\"fail\"] }\n");
        assert_eq!(
            r.outcome,
            Outcome {
                failures: 1,
                stopped_early: true
            }
        );
        assert!(!r.outcome.success());
    }

    #[test]
    fn dash_lines_may_fail_and_count_as_success() {
        let r = batch("-rm fail\n@-rm fail2\nrm c\n");
        assert_eq!(r.ran, [rm("fail"), rm("fail2"), rm("c")]);
        assert_eq!(r.err.lines().count(), 2);
        assert!(r.err.lines().all(|l| l.starts_with("error: boom")));
        assert_eq!(r.outcome, Outcome::default());
    }

    #[test]
    fn unknown_commands_and_bad_arguments_fail_the_batch() {
        let r = batch("foo\nrm a\n");
        assert!(r.ran.is_empty());
        assert_eq!(r.out, "ftx> foo\n");
        assert_eq!(r.err, "error: unknown command 'foo' (try 'help')\n");
        assert!(r.outcome.stopped_early && !r.outcome.success());

        let r = batch("put\n");
        assert_eq!(r.err, "error: put: missing LOCAL file name\n");
        assert_eq!(r.outcome.failures, 1);

        let r = batch("-ls -x\nrm 'a\nrm b\n");
        assert_eq!(
            r.err,
            "error: ls: unknown option '-x'\nerror: unterminated single quote\n"
        );
        assert!(r.ran.is_empty());
        assert_eq!(r.outcome.failures, 1);
    }

    #[test]
    fn exit_ends_the_batch_successfully() {
        for word in ["exit", "quit", "bye", "3"] {
            let r = batch(&format!("rm a\n{word}\nrm b\n"));
            assert_eq!(r.ran, [rm("a"), Command::Exit], "{word}");
            assert!(r.outcome.success());
            assert!(!r.outcome.stopped_early);
        }
    }

    #[test]
    fn piped_commands_go_on_after_failures_and_echo_as_sftp() {
        let r = piped("rm fail\nfoo\nrm c\n-rm fail\n@rm c\n");
        assert_eq!(r.out, "ftx> rm fail\nftx> foo\nftx> rm c\nftx> -rm fail\n");
        assert_eq!(r.ran, [rm("fail"), rm("c"), rm("fail"), rm("c")]);
        assert_eq!(r.err.lines().count(), 3);
        assert_eq!(
            r.outcome,
            Outcome {
                failures: 2,
                stopped_early: false
            }
        );
        assert!(!r.outcome.success());
    }

    #[test]
    fn menu_without_a_name_asks_from_the_same_source() {
        // The answer is taken literally: its wildcards are escaped for the
        // pattern form sources travel in.
        let r = batch("1\nmy file[1].txt\n2\n  b*.txt  \n3\n");
        assert_eq!(
            r.ran,
            [
                Command::Put {
                    force: false,
                    recursive: false,
                    preserve: false,
                    update: Default::default(),
                    local: vec!["my file\\[1\\].txt".into()],
                    remote: None
                },
                Command::Get {
                    force: false,
                    recursive: false,
                    preserve: false,
                    update: Default::default(),
                    remote: vec!["b\\*.txt".into()],
                    local: None
                },
                Command::Exit
            ]
        );
        // The answers are not echoed as commands.
        assert_eq!(r.out, "ftx> 1\nftx> 2\nftx> 3\n");

        let r = batch("1\n\nrm a\n");
        assert_eq!(r.err, "error: 1: no file name given\n");
        assert!(r.outcome.stopped_early);

        let r = piped("2");
        assert_eq!(r.err, "error: 2: no file name given\n");
        assert_eq!(r.outcome.failures, 1);
    }

    /// A scripted interactive source with history and warnings.
    struct Scripted {
        lines: VecDeque<io::Result<Line>>,
        prompts: Vec<String>,
        history: Vec<String>,
        warnings: Vec<String>,
    }

    impl Scripted {
        fn new(lines: Vec<io::Result<Line>>) -> Self {
            Scripted {
                lines: lines.into(),
                prompts: Vec::new(),
                history: Vec::new(),
                warnings: Vec::new(),
            }
        }
    }

    impl LineSource for Scripted {
        fn next_line(&mut self, prompt: &str) -> io::Result<Line> {
            self.prompts.push(prompt.to_string());
            self.lines.pop_front().unwrap_or(Ok(Line::Eof))
        }
        fn is_batch(&self) -> bool {
            false
        }
        fn add_history(&mut self, line: &str) {
            self.history.push(line.to_string());
            if line.contains("warn") {
                self.warnings.push("history is full".into());
            }
        }
        fn take_warnings(&mut self) -> Vec<String> {
            std::mem::take(&mut self.warnings)
        }
    }

    fn text(s: &str) -> io::Result<Line> {
        Ok(Line::Text(s.to_string()))
    }

    #[test]
    fn interactive_reprompts_after_ctrl_c_and_records_history() {
        let mut src = Scripted::new(vec![
            text("rm a"),
            Ok(Line::Interrupted),
            text(""),
            text("# note"),
            text("rm fail"),
            text("2"),
            text("  "),
            text("x.bin"),
            text("1"),
            Ok(Line::Interrupted),
            text("bye"),
            text("rm never"),
        ]);
        let r = go(&mut src);
        assert_eq!(
            r.ran,
            [
                rm("a"),
                rm("fail"),
                Command::Get {
                    force: false,
                    recursive: false,
                    preserve: false,
                    update: Default::default(),
                    remote: vec!["x.bin".into()],
                    local: None
                },
                Command::Exit
            ]
        );
        assert_eq!(r.out, "");
        assert_eq!(r.outcome.failures, 1);
        // Commands enter history; blank lines, comments and name answers do not.
        assert_eq!(src.history, ["rm a", "rm fail", "2", "1", "bye"]);
        assert_eq!(
            src.prompts,
            [
                PROMPT,
                PROMPT,
                PROMPT,
                PROMPT,
                PROMPT,
                PROMPT,
                // An empty answer asks again.
                DOWNLOAD_PROMPT,
                DOWNLOAD_PROMPT,
                PROMPT,
                UPLOAD_PROMPT,
                PROMPT
            ]
        );
    }

    #[test]
    fn batch_lines_never_enter_history() {
        struct BatchScripted(Scripted);
        impl LineSource for BatchScripted {
            fn next_line(&mut self, prompt: &str) -> io::Result<Line> {
                self.0.next_line(prompt)
            }
            fn is_batch(&self) -> bool {
                true
            }
            fn add_history(&mut self, line: &str) {
                self.0.add_history(line)
            }
        }
        let mut src = BatchScripted(Scripted::new(vec![text("rm a"), text("ls")]));
        let r = go(&mut src);
        assert_eq!(r.ran.len(), 2);
        assert!(src.0.history.is_empty());
    }

    #[test]
    fn eof_ends_the_loop_and_read_errors_fail() {
        let r = go(&mut Scripted::new(vec![text("rm a")]));
        assert_eq!(r.ran, [rm("a")]);
        assert!(r.outcome.success());

        let r = go(&mut Scripted::new(vec![
            text("rm a"),
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "line 2 is not valid UTF-8",
            )),
            text("rm b"),
        ]));
        assert_eq!(r.ran, [rm("a")]);
        assert_eq!(
            r.err,
            "error: cannot read commands: line 2 is not valid UTF-8\n"
        );
        assert_eq!(
            r.outcome,
            Outcome {
                failures: 1,
                stopped_early: true
            }
        );
    }

    #[test]
    fn source_warnings_are_printed_not_fatal() {
        let r = go(&mut Scripted::new(vec![text("rm warn"), text("rm b")]));
        assert_eq!(r.err, "warning: history is full\n");
        assert_eq!(r.ran.len(), 2);
        assert!(r.outcome.success());
    }

    #[test]
    fn echo_makes_control_characters_visible() {
        let r = batch("-rm a\x1b[2J\n");
        assert_eq!(r.out, "ftx> -rm a\\x1b[2J\n");
    }

    #[test]
    fn coloured_error_prefix() {
        let mut fake = Fake::default();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut src = BatchSource::new(&b"nope\n"[..]);
        run_with_style(&mut src, &mut fake, &mut out, &mut err, Style::new(true));
        let err = String::from_utf8(err).expect("utf8");
        assert!(
            err.starts_with("\x1b[1;31merror:\x1b[0m unknown command"),
            "{err:?}"
        );
    }
}
