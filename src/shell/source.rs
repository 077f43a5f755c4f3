//! Where command lines come from, behind one small trait, [`LineSource`]:
//! a batch file or stdin for `-b` ([`BatchSource`]), stdin piped without
//! `-b` ([`PipedSource`]), or the terminal through `rustyline`
//! ([`InteractiveSource`], with completion, hints and history).
//!
//! Sources only produce lines. The batch rules (echo, `@`, `-`, comments,
//! stopping on failure) live in the runner and depend on nothing here but
//! [`LineSource::is_batch`], so they never rely on `rustyline`'s fallback
//! for non-terminals. Sources never print: the interactive source queues
//! its warnings (history that cannot be loaded or saved) for the runner to
//! report through [`LineSource::take_warnings`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use super::complete::{LineKind, RemoteNames, ShellHelper};
use super::render::Style;

/// How many lines the interactive history keeps.
pub const HISTORY_SIZE: usize = 1000;

/// One result of asking a source for a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its line ending.
    Text(String),
    /// No more input (end of file, Ctrl-D).
    Eof,
    /// The user pressed Ctrl-C: drop the line and prompt again.
    Interrupted,
}

/// A source of command lines.
pub trait LineSource {
    /// The next line; `prompt` is shown only by interactive sources.
    fn next_line(&mut self, prompt: &str) -> io::Result<Line>;
    /// The answer to a menu prompt asking for a file name: like
    /// [`LineSource::next_line`], but an interactive source completes
    /// names of the `kind` given instead of commands.
    fn next_name(&mut self, prompt: &str, _kind: LineKind) -> io::Result<Line> {
        self.next_line(prompt)
    }
    /// Whether the batch rules apply (stop on the first counted failure).
    fn is_batch(&self) -> bool;
    /// Whether each line is echoed as `ftx> LINE` (unless `@`): lines that
    /// no one sees typed, from a batch file or a pipe.
    fn echoes(&self) -> bool {
        self.is_batch()
    }
    /// Remembers a line the user typed (interactive sources only).
    fn add_history(&mut self, _line: &str) {}
    /// Warnings the source met since last asked (shown as `warning: ...`).
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Reads lines from a `BufRead`, counting them for error messages.
struct LineReader<R> {
    reader: R,
    line_no: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    fn new(reader: R) -> Self {
        LineReader {
            reader,
            line_no: 0,
            buf: Vec::new(),
        }
    }

    fn read(&mut self) -> io::Result<Line> {
        self.buf.clear();
        let n = loop {
            match self.reader.read_until(b'\n', &mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(Line::Eof);
        }
        self.line_no += 1;
        if self.buf.ends_with(b"\n") {
            self.buf.pop();
            if self.buf.ends_with(b"\r") {
                self.buf.pop();
            }
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Ok(Line::Text(text.to_string())),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {} is not valid UTF-8", self.line_no),
            )),
        }
    }
}

/// Standard input as a boxed `BufRead`.
fn stdin_reader() -> Box<dyn BufRead> {
    Box::new(io::stdin().lock())
}

/// Lines of a batch script (`ftx -b FILE`, or `-b -` for stdin): the batch
/// rules apply and no prompt is shown.
pub struct BatchSource<R> {
    lines: LineReader<R>,
}

impl<R: BufRead> BatchSource<R> {
    /// A batch source over any reader.
    pub fn new(reader: R) -> Self {
        BatchSource {
            lines: LineReader::new(reader),
        }
    }
}

impl BatchSource<Box<dyn BufRead>> {
    /// Opens the batch script named on the command line; `-` is stdin.
    pub fn open(path: &Path) -> io::Result<Self> {
        if path == Path::new("-") {
            return Ok(BatchSource::new(stdin_reader()));
        }
        let file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        Ok(BatchSource::new(Box::new(BufReader::new(file))))
    }
}

impl<R: BufRead> LineSource for BatchSource<R> {
    fn next_line(&mut self, _prompt: &str) -> io::Result<Line> {
        self.lines.read()
    }

    fn is_batch(&self) -> bool {
        true
    }
}

/// Lines piped to `ftx` without `-b`: run like the interactive shell (each
/// failure reported, the next line runs) but with no prompt and no
/// history, each line echoed as a batch's is.
pub struct PipedSource<R> {
    lines: LineReader<R>,
}

impl<R: BufRead> PipedSource<R> {
    /// A piped source over any reader.
    pub fn new(reader: R) -> Self {
        PipedSource {
            lines: LineReader::new(reader),
        }
    }
}

impl PipedSource<Box<dyn BufRead>> {
    /// A piped source over standard input.
    pub fn stdin() -> Self {
        PipedSource::new(stdin_reader())
    }
}

impl<R: BufRead> LineSource for PipedSource<R> {
    fn next_line(&mut self, _prompt: &str) -> io::Result<Line> {
        self.lines.read()
    }

    fn is_batch(&self) -> bool {
        false
    }

    fn echoes(&self) -> bool {
        true
    }
}

/// Where the history file lives: `$XDG_DATA_HOME/ftx/history`, or
/// `$HOME/.local/share/ftx/history`; `None` without a usable base. Relative
/// values are ignored, as the XDG spec asks.
pub fn history_path(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let base =
        absolute(xdg_data_home).or_else(|| absolute(home).map(|h| h.join(".local/share")))?;
    Some(base.join("ftx").join("history"))
}

/// The terminal, through `rustyline`: line editing, Tab completion, hints,
/// a coloured prompt on a terminal, and history kept across runs.
pub struct InteractiveSource {
    editor: Editor<ShellHelper, FileHistory>,
    history: Option<PathBuf>,
    warnings: Vec<String>,
    save_failed: bool,
}

impl InteractiveSource {
    /// Sets up the editor with the history from the default place
    /// ([`history_path`] from the environment). `style` decides whether the
    /// prompt and hints are coloured.
    pub fn new(style: Style) -> io::Result<Self> {
        let history = history_path(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"));
        Self::with_history(style, history)
    }

    /// Like [`InteractiveSource::new`] with an explicit history file (`None`: no history file).
    pub fn with_history(style: Style, history: Option<PathBuf>) -> io::Result<Self> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)
            .and_then(|b| b.history_ignore_dups(true))
            .map_err(readline_to_io)?
            .history_ignore_space(true)
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .color_mode(if style.is_coloured() {
                ColorMode::Enabled
            } else {
                ColorMode::Disabled
            })
            .build();
        let mut editor = Editor::with_config(config).map_err(readline_to_io)?;
        editor.set_helper(Some(ShellHelper::new(style)));
        let mut source = InteractiveSource {
            editor,
            history,
            warnings: Vec::new(),
            save_failed: false,
        };
        source.load_history();
        Ok(source)
    }

    /// Installs the provider of remote names for Tab completion.
    pub fn set_remote_names(&mut self, names: Box<dyn RemoteNames>) {
        if let Some(helper) = self.editor.helper_mut() {
            helper.set_remote_names(names);
        }
    }

    /// The history file in use, if any.
    pub fn history_file(&self) -> Option<&Path> {
        self.history.as_deref()
    }

    fn load_history(&mut self) {
        let Some(path) = self.history.clone() else {
            return;
        };
        match self.editor.load_history(&path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.warnings.push(format!(
                "cannot read history from '{}': {e}",
                path.display()
            )),
        }
    }

    /// Appends the new history entries to the file, creating its directory.
    /// A failure is a warning, given once.
    fn save_history(&mut self) {
        let Some(path) = self.history.clone() else {
            return;
        };
        let result = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).map_err(ReadlineError::Io),
            None => Ok(()),
        }
        .and_then(|()| self.editor.append_history(&path));
        if let Err(e) = result {
            if !self.save_failed {
                self.save_failed = true;
                self.warnings
                    .push(format!("cannot save history to '{}': {e}", path.display()));
            }
        }
    }
}

fn readline_to_io(e: ReadlineError) -> io::Error {
    match e {
        ReadlineError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl LineSource for InteractiveSource {
    fn next_line(&mut self, prompt: &str) -> io::Result<Line> {
        match self.editor.readline(prompt) {
            Ok(line) => Ok(Line::Text(line)),
            Err(ReadlineError::Eof) => Ok(Line::Eof),
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(e) => Err(readline_to_io(e)),
        }
    }

    fn next_name(&mut self, prompt: &str, kind: LineKind) -> io::Result<Line> {
        let set = |editor: &Self, kind| {
            if let Some(helper) = editor.editor.helper() {
                helper.set_line_kind(kind);
            }
        };
        set(self, kind);
        let line = self.next_line(prompt);
        set(self, LineKind::Command);
        line
    }

    fn is_batch(&self) -> bool {
        false
    }

    fn add_history(&mut self, line: &str) {
        // Saved line by line so a killed session loses nothing and
        // concurrent sessions append instead of overwriting each other.
        if matches!(self.editor.add_history_entry(line), Ok(true)) {
            self.save_history();
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::History as _;

    fn lines(source: &mut dyn LineSource) -> Vec<Line> {
        let mut out = Vec::new();
        loop {
            let line = source.next_line("ftx> ").expect("reads");
            let done = line == Line::Eof;
            out.push(line);
            if done {
                return out;
            }
        }
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    #[test]
    fn batch_source_strips_line_endings() {
        let mut src = BatchSource::new(&b"put a\r\n\nls\n# c\nlast"[..]);
        assert!(src.is_batch());
        assert_eq!(
            lines(&mut src),
            [
                text("put a"),
                text(""),
                text("ls"),
                text("# c"),
                text("last"),
                Line::Eof
            ]
        );
        // Eof is sticky.
        assert_eq!(src.next_line("").expect("reads"), Line::Eof);
    }

    #[test]
    fn piped_source_is_not_batch() {
        let mut src = PipedSource::new(&b"ls\n"[..]);
        assert!(!src.is_batch());
        assert_eq!(lines(&mut src), [text("ls"), Line::Eof]);
        src.add_history("ls");
        assert!(src.take_warnings().is_empty());
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_line() {
        let mut src = BatchSource::new(&b"ls\nput \xff\n"[..]);
        assert_eq!(src.next_line("").expect("reads"), text("ls"));
        let err = src.next_line("").expect_err("invalid");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "line 2 is not valid UTF-8");
    }

    #[test]
    fn batch_files_open_or_fail_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cmds.txt");
        std::fs::write(&path, "ls\n").expect("write");
        let mut src = BatchSource::open(&path).expect("opens");
        assert_eq!(src.next_line("").expect("reads"), text("ls"));
        let missing = BatchSource::open(&dir.path().join("nope"))
            .err()
            .expect("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(BatchSource::open(dir.path()).is_err());
    }

    #[test]
    fn history_path_follows_xdg() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            history_path(os("/x/data"), os("/home/u")),
            Some(PathBuf::from("/x/data/ftx/history"))
        );
        assert_eq!(
            history_path(None, os("/home/u")),
            Some(PathBuf::from("/home/u/.local/share/ftx/history"))
        );
        assert_eq!(
            history_path(os("relative"), os("/home/u")),
            Some(PathBuf::from("/home/u/.local/share/ftx/history"))
        );
        assert_eq!(
            history_path(os(""), os("/home/u")),
            Some(PathBuf::from("/home/u/.local/share/ftx/history"))
        );
        assert_eq!(history_path(None, None), None);
    }

    #[test]
    fn interactive_history_is_saved_and_failures_are_warnings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deep/ftx/history");
        let mut src =
            InteractiveSource::with_history(Style::plain(), Some(path.clone())).expect("editor");
        assert!(!src.is_batch());
        src.add_history("put a.txt");
        src.add_history("ls -l");
        assert!(src.take_warnings().is_empty());
        let saved = std::fs::read_to_string(&path).expect("history written");
        assert!(
            saved.contains("put a.txt") && saved.contains("ls -l"),
            "{saved}"
        );

        // Loaded again by the next session.
        let src2 =
            InteractiveSource::with_history(Style::plain(), Some(path.clone())).expect("editor");
        assert_eq!(src2.editor.history().len(), 2);

        // A history path under a regular file cannot be created: one warning.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "x").expect("write");
        let mut src3 =
            InteractiveSource::with_history(Style::plain(), Some(blocked.join("sub/history")))
                .expect("editor");
        let on_load = src3.take_warnings();
        assert_eq!(on_load.len(), 1, "{on_load:?}");
        assert!(
            on_load[0].starts_with("cannot read history from"),
            "{on_load:?}"
        );
        src3.add_history("a");
        src3.add_history("b");
        let warnings = src3.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("cannot save history to"),
            "{warnings:?}"
        );
    }
}
