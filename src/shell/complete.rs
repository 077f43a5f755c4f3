//! Tab completion and synopsis hints, as plain logic with unit tests, plus
//! [`ShellHelper`], the thin `rustyline` adapter around it.
//!
//! The word under the cursor is found with the same tokenizer the parser
//! uses ([`words::cursor_word`]) and what is inserted is quoted with
//! [`words::quote_in`], in the style the user started the word in, so a
//! completed name always parses back to itself, wildcard characters
//! included: `a[1].txt` completes as `a\[1\].txt` or `'a[1].txt'`, which
//! name that one file and are no pattern. What
//! a position completes (command, local path, remote path) comes from the
//! command table in [`command::SPECS`]. Remote names come from a
//! [`RemoteNames`] provider that the client layer implements (a cache);
//! this module never talks to the network itself and never prints.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::command::{self, ArgKind, SPECS};
use super::render::Style;
use super::words::{self, Quote};

/// Lists a remote directory for completion. The client layer implements it,
/// typically over a cache so Tab never waits long on the network.
pub trait RemoteNames {
    /// The entries of remote directory `dir` as typed (`""` for the remote
    /// working directory, otherwise ending in `/`; `/` and `..` mean what
    /// they mean to every command) as `(name, is_dir)`; empty when it
    /// cannot be listed.
    fn list(&mut self, dir: &str) -> Vec<(String, bool)>;
}

/// Lists a local directory for completion: `dir` is `""` for the current
/// directory or a path ending in `/`. Unreadable directories and names that
/// are not UTF-8 (which cannot be typed back) give nothing.
pub fn list_local(dir: &str) -> Vec<(String, bool)> {
    let path = if dir.is_empty() { "." } else { dir };
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            // Follow symlinks so a link to a directory completes with `/`.
            let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            Some((name, is_dir))
        })
        .collect()
}

/// One completion candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What the list of alternatives shows (`name` or `dir/`).
    pub display: String,
    /// What replaces the word under the cursor, quoted when needed.
    pub replacement: String,
}

/// The result of completing a line: replace `start..cursor` with one of
/// the candidates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    /// Byte offset where the word being completed starts.
    pub start: usize,
    /// The candidates, sorted.
    pub candidates: Vec<Candidate>,
}

/// A directory lister: `(name, is_dir)` entries of a directory given as
/// `""` or a path ending in `/`.
pub type Lister<'a> = &'a mut dyn FnMut(&str) -> Vec<(String, bool)>;

/// Completes `line` at byte offset `pos`: command names for the first word,
/// then whatever the command's argument position names (local paths from
/// `local`, remote paths from `remote`, command names for `help`).
pub fn complete_line(line: &str, pos: usize, local: Lister<'_>, remote: Lister<'_>) -> Completion {
    let Some(before) = line.get(..pos) else {
        return Completion::default();
    };
    let word = words::cursor_word(before);
    let start = word.start;
    // Quote candidates the way the user started the word, so they share
    // its prefix (rustyline inserts the candidates' longest common prefix).
    let style = match before[start..].chars().next() {
        Some('\'') => Some(Quote::Single),
        Some('"') => Some(Quote::Double),
        _ => None,
    };
    let mut candidates = if word.index == 0 {
        complete_command(&word.text, " ")
    } else {
        match position_kind(&word.previous, &word.text) {
            Some(ArgKind::Command) => complete_command(&word.text, ""),
            Some(ArgKind::Local) => complete_path(&word.text, style, local),
            Some(ArgKind::Remote) => complete_path(&word.text, style, remote),
            Some(ArgKind::Value) | None => Vec::new(),
        }
    };
    candidates.sort_by(|a, b| a.replacement.cmp(&b.replacement));
    candidates.dedup();
    Completion { start, candidates }
}

/// Completes the answer to a menu's name prompt (`Enter full filename to
/// upload:`), which is one name as typed, not shell words: the whole line
/// up to `pos` (after leading blanks) is the path, and candidates go in
/// unquoted, with no space after a file (the answer is taken as is).
pub fn complete_name(line: &str, pos: usize, list: Lister<'_>) -> Completion {
    let Some(before) = line.get(..pos) else {
        return Completion::default();
    };
    let start = before.len() - before.trim_start().len();
    let typed = &before[start..];
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => typed.split_at(i + 1),
        None => ("", typed),
    };
    let show_hidden = prefix.starts_with('.');
    let mut candidates: Vec<Candidate> = list(dir)
        .into_iter()
        .filter(|(name, _)| name != "." && name != "..")
        .filter(|(name, _)| !name.chars().any(char::is_control))
        .filter(|(name, _)| name.starts_with(prefix) && (show_hidden || !name.starts_with('.')))
        .map(|(name, is_dir)| {
            let slash = if is_dir { "/" } else { "" };
            Candidate {
                display: format!("{name}{slash}"),
                replacement: format!("{dir}{name}{slash}"),
            }
        })
        .collect();
    candidates.sort_by(|a, b| a.replacement.cmp(&b.replacement));
    Completion { start, candidates }
}

/// What a line being typed is, for completion and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineKind {
    /// A command line.
    #[default]
    Command,
    /// The answer to the menu's upload prompt: a local file name.
    LocalName,
    /// The answer to the menu's download prompt: a remote file name.
    RemoteName,
}

/// What the word being typed names, given the words before it.
fn position_kind(previous: &[String], current: &str) -> Option<ArgKind> {
    let spec = command::spec(previous.first()?)?;
    let mut options_done = false;
    let mut index = 0;
    for w in &previous[1..] {
        if options_done || w == "-" || !w.starts_with('-') {
            index += 1;
        } else if w == "--" {
            options_done = true;
        }
    }
    if !options_done && current.starts_with('-') && current != "-" {
        return None;
    }
    spec.arg_kind(index)
}

fn complete_command(prefix: &str, suffix: &str) -> Vec<Candidate> {
    SPECS
        .iter()
        .flat_map(|s| std::iter::once(&s.name).chain(s.aliases))
        .filter(|name| name.starts_with(prefix))
        .map(|name| Candidate {
            display: name.to_string(),
            replacement: format!("{name}{suffix}"),
        })
        .collect()
}

fn complete_path(typed: &str, style: Option<Quote>, list: Lister<'_>) -> Vec<Candidate> {
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => typed.split_at(i + 1),
        None => ("", typed),
    };
    let show_hidden = prefix.starts_with('.');
    let mut out: Vec<Candidate> = list(dir)
        .into_iter()
        .filter(|(name, _)| name != "." && name != "..")
        // A name with control characters is not a valid remote name, and
        // inserting it would send them raw to the terminal.
        .filter(|(name, _)| !name.chars().any(char::is_control))
        .filter(|(name, _)| name.starts_with(prefix) && (show_hidden || !name.starts_with('.')))
        .map(|(name, is_dir)| {
            let slash = if is_dir { "/" } else { "" };
            Candidate {
                display: format!("{name}{slash}"),
                replacement: words::quote_in(&format!("{dir}{name}{slash}"), style),
            }
        })
        .collect();
    // A unique file is finished: move on to the next word, as shells do.
    if let [only] = out.as_mut_slice() {
        if !only.display.ends_with('/') {
            only.replacement.push(' ');
        }
    }
    out
}

/// The hint for `line` with the cursor at `pos`: the argument synopsis of a
/// command when the line is exactly its name followed by one space
/// (`put ` hints `[-f] LOCAL [REMOTE]`).
pub fn hint(line: &str, pos: usize) -> Option<String> {
    if pos != line.len() {
        return None;
    }
    let name = line.trim_start().strip_suffix(' ')?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let synopsis = command::spec(name)?.args_synopsis();
    (!synopsis.is_empty()).then_some(synopsis)
}

/// The `rustyline` helper: completion, hints and prompt colour, delegating
/// to the functions above.
pub struct ShellHelper {
    remote: RefCell<Option<Box<dyn RemoteNames>>>,
    style: Style,
    /// What the line being read is (a command, or a menu prompt's name).
    kind: Cell<LineKind>,
}

impl ShellHelper {
    /// A helper without remote names yet; `style` decides prompt and hint colour.
    pub fn new(style: Style) -> ShellHelper {
        ShellHelper {
            remote: RefCell::new(None),
            style,
            kind: Cell::new(LineKind::Command),
        }
    }

    /// What the next lines read are, until told otherwise.
    pub fn set_line_kind(&self, kind: LineKind) {
        self.kind.set(kind);
    }

    /// Installs the provider of remote names (once connected).
    pub fn set_remote_names(&mut self, names: Box<dyn RemoteNames>) {
        self.remote = RefCell::new(Some(names));
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let mut remote = self.remote.borrow_mut();
        let mut remote_list = |dir: &str| match remote.as_mut() {
            Some(names) => names.list(dir),
            None => Vec::new(),
        };
        let completion = match self.kind.get() {
            LineKind::Command => complete_line(line, pos, &mut list_local, &mut remote_list),
            LineKind::LocalName => complete_name(line, pos, &mut list_local),
            LineKind::RemoteName => complete_name(line, pos, &mut remote_list),
        };
        let pairs = completion
            .candidates
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((completion.start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        // A name at a menu prompt is no command: no synopsis.
        if self.kind.get() != LineKind::Command {
            return None;
        }
        hint(line, pos)
    }
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.style.is_coloured() {
            Cow::Owned(self.style.prompt(prompt))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.style.is_coloured() {
            Cow::Owned(self.style.dim(hint))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::super::glob;
    use super::*;

    /// A fake file tree: directory (`""` or `a/b/`) -> entries.
    fn tree(entries: &[(&str, &[(&str, bool)])]) -> impl FnMut(&str) -> Vec<(String, bool)> {
        let entries: Vec<(String, Vec<(String, bool)>)> = entries
            .iter()
            .map(|(d, es)| {
                (
                    d.to_string(),
                    es.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
                )
            })
            .collect();
        move |dir: &str| {
            entries
                .iter()
                .find(|(d, _)| d == dir)
                .map(|(_, es)| es.clone())
                .unwrap_or_default()
        }
    }

    fn local_tree() -> impl FnMut(&str) -> Vec<(String, bool)> {
        tree(&[
            (
                "",
                &[
                    ("local.txt", false),
                    ("lib", true),
                    ("my file.txt", false),
                    ("my dir", true),
                    (".hidden", false),
                ],
            ),
            ("lib/", &[("a.rs", false), ("b.rs", false)]),
            ("my dir/", &[("inner.txt", false)]),
        ])
    }

    fn remote_tree() -> impl FnMut(&str) -> Vec<(String, bool)> {
        tree(&[
            (
                "",
                &[("remote.bin", false), ("it's.txt", false), ("docs", true)],
            ),
            ("docs/", &[("guide.md", false), ("gone.md", false)]),
        ])
    }

    #[test]
    fn a_menu_prompt_completes_one_name_unquoted() {
        let names = |line: &str, list: &mut dyn FnMut(&str) -> Vec<(String, bool)>| {
            let c = complete_name(line, line.len(), list);
            let r: Vec<String> = c.candidates.into_iter().map(|c| c.replacement).collect();
            (c.start, r)
        };
        let mut local = local_tree();
        assert_eq!(
            names("my", &mut local),
            (0, vec!["my dir/".into(), "my file.txt".into()])
        );
        assert_eq!(names("my f", &mut local), (0, vec!["my file.txt".into()]));
        assert_eq!(names("  lib/a", &mut local), (2, vec!["lib/a.rs".into()]));
        assert_eq!(names(".h", &mut local), (0, vec![".hidden".into()]));
        let mut remote = remote_tree();
        assert_eq!(names("it", &mut remote), (0, vec!["it's.txt".into()]));
        assert_eq!(
            names("docs/g", &mut remote).1,
            ["docs/gone.md", "docs/guide.md"]
        );
    }

    fn run(line: &str) -> (usize, Vec<String>) {
        let mut local = local_tree();
        let mut remote = remote_tree();
        let c = complete_line(line, line.len(), &mut local, &mut remote);
        (
            c.start,
            c.candidates.into_iter().map(|c| c.replacement).collect(),
        )
    }

    #[test]
    fn first_word_completes_command_names() {
        assert_eq!(
            run("re"),
            (0, vec!["reget ".into(), "rename ".into(), "reput ".into()])
        );
        assert_eq!(run("  qu"), (2, vec!["quit ".into()]));
        assert_eq!(run("xyz").1, Vec::<String>::new());
        let all = run("").1;
        assert!(all.contains(&"bye ".to_string()) && all.contains(&"lpwd ".to_string()));
    }

    #[test]
    fn local_positions_complete_local_paths() {
        assert_eq!(run("put l").1, ["lib/", "local.txt"]);
        assert_eq!(run("lls li").1, ["lib/"]);
        assert_eq!(run("lcd lib/").1, ["lib/a.rs", "lib/b.rs"]);
        assert_eq!(run("1 loc").1, ["local.txt "]);
        assert_eq!(run("get remote.bin lo").1, ["local.txt "]);
    }

    #[test]
    fn remote_positions_complete_remote_names() {
        assert_eq!(run("get rem"), (4, vec!["remote.bin ".into()]));
        assert_eq!(run("put local.txt d").1, ["docs/"]);
        assert_eq!(run("rm docs/g").1, ["docs/gone.md", "docs/guide.md"]);
        assert_eq!(run("ls -l d").1, ["docs/"]);
        assert_eq!(run("rename remote.bin d").1, ["docs/"]);
        assert_eq!(run("2 r").1, ["remote.bin "]);
        assert_eq!(run("reget d").1, ["docs/"]);
        assert_eq!(run("cd d").1, ["docs/"]);
        assert_eq!(run("rmdir d").1, ["docs/"]);
        assert_eq!(run("mkdir -p docs/g").1, ["docs/gone.md", "docs/guide.md"]);
        assert_eq!(run("mkdir docs/").1.len(), 2);
    }

    #[test]
    fn options_are_skipped_when_counting_positions() {
        assert_eq!(run("put -f l").1, ["lib/", "local.txt"]);
        assert_eq!(run("get -f remote.bin lo").1, ["local.txt "]);
        // The option being typed is not completed as a path.
        assert!(run("ls -").1.is_empty());
        // After `--` a dash word is a name.
        assert_eq!(run("put -- l").1, ["lib/", "local.txt"]);
    }

    #[test]
    fn help_completes_command_names_and_no_more_arguments_than_the_spec() {
        assert_eq!(run("help ren").1, ["rename"]);
        assert!(run("lpwd ").1.is_empty());
        assert!(run("rename a b ").1.is_empty());
        // rm takes many names: each is remote.
        assert_eq!(run("rm a d").1, ["docs/"]);
        assert!(run("nosuch ").1.is_empty());
    }

    #[test]
    fn names_that_need_it_are_quoted() {
        // Unquoted words complete with backslashes, so candidates keep the
        // typed prefix and rustyline can extend it.
        assert_eq!(run("put my").1, [r"my\ dir/", r"my\ file.txt"]);
        assert_eq!(run("get it").1, [r"it\'s.txt "]);
        // An open quote or an escape is part of the word that gets replaced,
        // and the quote style the user chose is kept.
        assert_eq!(run("put \"my f"), (4, vec!["\"my file.txt\" ".into()]));
        assert_eq!(run("put 'my f"), (4, vec!["'my file.txt' ".into()]));
        assert_eq!(run("get 'it"), (4, vec![r#""it's.txt" "#.into()]));
        assert_eq!(run(r"put my\ d"), (4, vec![r"my\ dir/".into()]));
        // Completing inside a quoted directory.
        assert_eq!(
            run("put 'my dir/'"),
            (4, vec!["'my dir/inner.txt' ".into()])
        );
        // Every replacement parses back to the name it stands for.
        for line in [
            "put my", "put 'my", "put \"my", "get it", "get 'it", "get \"it",
        ] {
            for r in run(line).1 {
                let words = words::split(r.trim_end()).expect("splits");
                assert_eq!(words.len(), 1, "{r}");
                assert!(
                    ["my dir/", "my file.txt", "it's.txt"].contains(&words[0].text.as_str()),
                    "{r}"
                );
            }
        }
    }

    #[test]
    fn wildcard_characters_in_names_are_inserted_literal() {
        let names: &[(&str, bool)] = &[
            ("a[1].txt", false),
            ("a1.txt", false),
            ("*", false),
            ("what?", false),
            ("[x]", true),
        ];
        let complete = |line: &str| -> Vec<String> {
            let mut local = tree(&[("", names), ("[x]/", &[("in*.txt", false)])]);
            let mut remote = tree(&[("", names), ("[x]/", &[("in*.txt", false)])]);
            let c = complete_line(line, line.len(), &mut local, &mut remote);
            c.candidates.into_iter().map(|c| c.replacement).collect()
        };
        // Escaped when typed bare, quoted when the user opened a quote.
        assert_eq!(complete("get a["), [r"a\[1\].txt "]);
        assert_eq!(complete(r"get a\["), [r"a\[1\].txt "]);
        assert_eq!(complete("get 'a["), ["'a[1].txt' "]);
        assert_eq!(complete("get \"a["), ["\"a[1].txt\" "]);
        assert_eq!(complete("put wh"), [r"what\? "]);
        assert_eq!(complete(r"put \*"), [r"\* "]);
        assert_eq!(complete(r"get \[x\]/"), [r"\[x\]/in\*.txt "]);
        // Each parses back to a pattern that matches that name only.
        for (line, name) in [
            ("get a[", "a[1].txt"),
            ("get 'a[", "a[1].txt"),
            ("get \"a[", "a[1].txt"),
            ("put wh", "what?"),
            (r"put \*", "*"),
            ("get [x]/", "[x]/in*.txt"),
            ("get '[x]/", "[x]/in*.txt"),
        ] {
            let got = complete(line);
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            let words = words::split(got[0].trim_end()).expect("splits");
            assert_eq!(words[0].text, name, "{line}");
            assert_eq!(words[0].pattern, glob::escape(name), "{line}");
            assert!(!glob::has_wildcards(&words[0].pattern), "{line}");
        }
    }

    #[test]
    fn hidden_names_only_when_asked() {
        assert!(!run("put ").1.iter().any(|c| c.starts_with('.')));
        assert_eq!(run("put .").1, [".hidden "]);
    }

    #[test]
    fn cursor_in_the_middle_completes_up_to_the_cursor() {
        let mut local = local_tree();
        let mut remote = remote_tree();
        let c = complete_line("get rem xyz", 7, &mut local, &mut remote);
        assert_eq!(c.start, 4);
        assert_eq!(c.candidates[0].replacement, "remote.bin ");
        // Not a char boundary: nothing, no panic.
        let c = complete_line("get é", 5, &mut local, &mut remote);
        assert!(c.candidates.is_empty());
        let c = complete_line("get", 99, &mut local, &mut remote);
        assert!(c.candidates.is_empty());
    }

    #[test]
    fn displays_are_bare_names() {
        let mut local = local_tree();
        let mut remote = remote_tree();
        let c = complete_line("lcd lib/", 8, &mut local, &mut remote);
        let displays: Vec<_> = c.candidates.iter().map(|c| c.display.as_str()).collect();
        assert_eq!(displays, ["a.rs", "b.rs"]);
    }

    #[test]
    fn hints_show_the_synopsis_after_a_command_name() {
        assert_eq!(
            hint("put ", 4).as_deref(),
            Some("[-fprRucv] LOCAL [REMOTE]")
        );
        assert_eq!(hint("ls ", 3).as_deref(), Some("[-1ahlRrSt] [PATH]"));
        assert_eq!(hint("cd ", 3).as_deref(), Some("[DIR]"));
        assert_eq!(hint("bye ", 4), None);
        assert_eq!(hint("put", 3), None);
        assert_eq!(hint("put a", 5), None);
        assert_eq!(hint("put  ", 5), None);
        assert_eq!(hint("nope ", 5), None);
        assert_eq!(hint("put ", 2), None);
    }

    #[test]
    fn local_listing_reads_a_real_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f one"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let base = format!("{}/", dir.path().display());
        let mut found = list_local(&base);
        found.sort();
        assert_eq!(
            found,
            [("f one".to_string(), false), ("sub".to_string(), true)]
        );
        assert!(list_local(&format!("{base}missing/")).is_empty());

        let line = format!("put {base}f");
        let c = complete_line(&line, line.len(), &mut list_local, &mut |_: &str| {
            Vec::new()
        });
        assert_eq!(c.candidates.len(), 1);
        let words = words::split(&c.candidates[0].replacement).expect("splits");
        assert_eq!(words[0].text, format!("{base}f one"));
    }
}
