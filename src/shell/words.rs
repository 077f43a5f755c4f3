//! Shell-like splitting of a command line into words, and the inverse,
//! [`quote`].
//!
//! This is the one tokenizer of the shell: the command parser and Tab
//! completion both use it, so a name that completion inserts always parses
//! back to the same name. Rules: unquoted whitespace separates words;
//! `'...'` is literal; inside `"..."` only `\"` and `\\` are escapes (any
//! other backslash stays); outside quotes a backslash makes the next
//! character literal (`my\ file.txt`). Adjacent pieces join into one word
//! (`a"b c"d` is `ab cd`). There is no expansion of any kind (`~`, `$`, globs)
//! and no comment syntax: comment lines are the line runner's business.
//! What it does keep is which characters were quoted: each word also comes
//! as a glob pattern ([`Word::pattern`]) in which a quoted or escaped `*`,
//! `?`, `[`, `]` or `\` is escaped for the matcher, so `'a[1]'*.txt`
//! matches names that start with `a[1]`, as in any shell.
//! This module must not know about commands, files or the terminal.

use super::glob;

/// The kind of quote a word is (or was left) open in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `'...'`: everything literal up to the next `'`.
    Single,
    /// `"..."`: `\"` and `\\` are escapes, everything else literal.
    Double,
}

/// One word of a line: its unescaped text, the same as a glob pattern,
/// and where it sits in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word with quotes removed and escapes resolved.
    pub text: String,
    /// The word as a pattern for [`glob`]: `text` with a backslash before
    /// each wildcard character (`*`, `?`, `[`, `]`, `\`) that was inside
    /// quotes or behind a backslash, so only bare ones are wildcards.
    /// Equal to `text` when no such character was quoted.
    pub pattern: String,
    /// Byte offset of the word's first character (a quote, if it starts with one).
    pub start: usize,
    /// Byte offset just past the word's last character.
    pub end: usize,
}

/// The result of lenient tokenizing: every word, the last one possibly
/// unfinished (what completion needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The words in order; the last one may be partial (see the flags).
    pub words: Vec<Word>,
    /// The line ended inside an unterminated quote of this kind.
    pub open_quote: Option<Quote>,
    /// The line ended with a backslash that escapes nothing.
    pub dangling_escape: bool,
}

impl Tokens {
    /// The words' texts, consuming the tokens.
    pub fn into_texts(self) -> Vec<String> {
        self.words.into_iter().map(|w| w.text).collect()
    }
}

/// Why a line cannot be split into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    /// A quote was opened and never closed.
    #[error("unterminated {} quote", match .0 { Quote::Single => "single", Quote::Double => "double" })]
    UnterminatedQuote(Quote),
    /// The line ends with a backslash that escapes nothing.
    #[error("backslash at end of line escapes nothing")]
    DanglingBackslash,
}

/// Splits `line` into words, never failing: an unterminated quote or a
/// trailing backslash is reported in the flags and the partial last word is
/// kept, which is what completion wants.
pub fn tokenize(line: &str) -> Tokens {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut quote: Option<Quote> = None;
    let mut dangling_escape = false;
    let mut chars = line.char_indices().peekable();

    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        match quote {
            Some(Quote::Single) => {
                let word = current.get_or_insert_with(|| Word::empty(i));
                if c == '\'' {
                    quote = None;
                } else {
                    word.push_quoted(c);
                }
                word.end = end;
            }
            Some(Quote::Double) => {
                let word = current.get_or_insert_with(|| Word::empty(i));
                match c {
                    '"' => quote = None,
                    '\\' => match chars.peek() {
                        Some(&(j, next)) if next == '"' || next == '\\' => {
                            chars.next();
                            word.push_quoted(next);
                            word.end = j + next.len_utf8();
                            continue;
                        }
                        _ => word.push_quoted(c),
                    },
                    _ => word.push_quoted(c),
                }
                word.end = end;
            }
            None => {
                if c.is_whitespace() {
                    if let Some(word) = current.take() {
                        words.push(word);
                    }
                    continue;
                }
                let word = current.get_or_insert_with(|| Word::empty(i));
                word.end = end;
                match c {
                    '\'' => quote = Some(Quote::Single),
                    '"' => quote = Some(Quote::Double),
                    '\\' => match chars.next() {
                        Some((j, next)) => {
                            word.push_quoted(next);
                            word.end = j + next.len_utf8();
                        }
                        None => dangling_escape = true,
                    },
                    _ => word.push_bare(c),
                }
            }
        }
    }
    if let Some(word) = current {
        words.push(word);
    }
    Tokens {
        words,
        open_quote: quote,
        dangling_escape,
    }
}

/// Splits `line` into words strictly: an unterminated quote or a trailing
/// backslash is an error. This is what the command parser uses.
pub fn split(line: &str) -> Result<Vec<Word>, WordsError> {
    let tokens = tokenize(line);
    if let Some(q) = tokens.open_quote {
        return Err(WordsError::UnterminatedQuote(q));
    }
    if tokens.dangling_escape {
        return Err(WordsError::DanglingBackslash);
    }
    Ok(tokens.words)
}

impl Word {
    fn empty(start: usize) -> Word {
        Word {
            text: String::new(),
            pattern: String::new(),
            start,
            end: start,
        }
    }

    /// A character outside quotes and not escaped: a wildcard if it is one.
    fn push_bare(&mut self, c: char) {
        self.text.push(c);
        self.pattern.push(c);
    }

    /// A character inside quotes or behind a backslash: always itself.
    fn push_quoted(&mut self, c: char) {
        self.text.push(c);
        if glob::is_special(c) {
            self.pattern.push('\\');
        }
        self.pattern.push(c);
    }
}

/// The word under the cursor for completion, from the line up to the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorWord {
    /// Index of the word among the line's words (0 is the command name).
    pub index: usize,
    /// The partial word's unescaped text (empty when the cursor follows whitespace).
    pub text: String,
    /// Byte offset where the word starts; a completion replaces `start..cursor`.
    pub start: usize,
    /// The quote the partial word is still open in, if any.
    pub open_quote: Option<Quote>,
    /// The words before this one, unescaped.
    pub previous: Vec<String>,
}

/// Finds the word the cursor is in (or about to start) in `before_cursor`,
/// which is the line up to the cursor.
pub fn cursor_word(before_cursor: &str) -> CursorWord {
    let tokens = tokenize(before_cursor);
    let mut words = tokens.words;
    let in_word = words.last().is_some_and(|w| w.end == before_cursor.len());
    let (text, start, open_quote) = match words.pop() {
        Some(w) if in_word => (w.text, w.start, tokens.open_quote),
        Some(w) => {
            words.push(w);
            (String::new(), before_cursor.len(), None)
        }
        None => (String::new(), before_cursor.len(), None),
    };
    CursorWord {
        index: words.len(),
        text,
        start,
        open_quote,
        previous: words.into_iter().map(|w| w.text).collect(),
    }
}

/// Characters that never need quoting in a word.
fn is_plain(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '-' | '_' | '.' | '/' | ':' | ',' | '+' | '=' | '%' | '^' | '@'
        )
}

/// Quotes `word` for insertion into a command line so that [`split`] gives
/// it back unchanged: plain names stay as they are, others are put in
/// single quotes, or in double quotes (escaping `"` and `\`) when they
/// contain a single quote. The empty word becomes `''`.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        return word.to_string();
    }
    if !word.contains('\'') {
        return format!("'{word}'");
    }
    quote_in(word, Some(Quote::Double))
}

/// Escapes `word` with backslashes instead of quotes (`my\ file.txt`), as
/// shells complete an unquoted word, so that [`split`] gives it back
/// unchanged. The empty word becomes `''`.
pub fn escape(word: &str) -> String {
    if word.is_empty() {
        return "''".to_string();
    }
    let mut out = String::with_capacity(word.len() + 4);
    for c in word.chars() {
        if !is_plain(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Quotes `word` in the style the user started it in: backslash escapes
/// for an unquoted word (`None`), `'...'` or `"..."` otherwise, so that
/// completion candidates share a prefix with what was typed. Round-trips
/// through [`split`] like [`quote`].
pub fn quote_in(word: &str, style: Option<Quote>) -> String {
    match style {
        None => escape(word),
        Some(Quote::Single) if !word.contains('\'') => format!("'{word}'"),
        Some(Quote::Single) => quote(word),
        Some(Quote::Double) => {
            let mut out = String::with_capacity(word.len() + 4);
            out.push('"');
            for c in word.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line)
            .expect("test line should split")
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn whitespace_splits_and_collapses() {
        assert_eq!(texts("  put  a.txt\tb.txt  "), ["put", "a.txt", "b.txt"]);
        assert!(texts("").is_empty());
        assert!(texts("   \t ").is_empty());
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(texts(r#"put 'my "file\ x'"#), ["put", r#"my "file\ x"#]);
        assert_eq!(texts("''"), [""]);
    }

    #[test]
    fn double_quotes_escape_only_quote_and_backslash() {
        assert_eq!(texts(r#""a \"b\" \\ \n c""#), [r#"a "b" \ \n c"#]);
        assert_eq!(texts(r#""it's""#), ["it's"]);
        assert_eq!(texts(r#""""#), [""]);
    }

    #[test]
    fn backslash_escapes_outside_quotes() {
        assert_eq!(texts(r"put my\ file.txt"), ["put", "my file.txt"]);
        assert_eq!(texts(r"a\\b \'x\' \#"), [r"a\b", "'x'", "#"]);
    }

    #[test]
    fn adjacent_pieces_join() {
        assert_eq!(texts(r#"a"b c"d'e f'g\ h"#), ["ab cde fg h"]);
    }

    #[test]
    fn spans_cover_the_raw_word() {
        let line = r#"get "my file" x\ y é"#;
        let words = split(line).expect("splits");
        let spans: Vec<&str> = words.iter().map(|w| &line[w.start..w.end]).collect();
        assert_eq!(spans, ["get", r#""my file""#, r"x\ y", "é"]);
    }

    #[test]
    fn unterminated_quotes_are_errors_for_the_parser() {
        assert_eq!(
            split("put 'abc"),
            Err(WordsError::UnterminatedQuote(Quote::Single))
        );
        assert_eq!(
            split(r#"put "abc\""#),
            Err(WordsError::UnterminatedQuote(Quote::Double))
        );
        assert_eq!(split(r"put abc\"), Err(WordsError::DanglingBackslash));
        assert_eq!(
            WordsError::UnterminatedQuote(Quote::Double).to_string(),
            "unterminated double quote"
        );
    }

    #[test]
    fn tokenize_keeps_the_partial_word() {
        let t = tokenize(r#"put "my fi"#);
        assert_eq!(t.open_quote, Some(Quote::Double));
        assert_eq!(t.words.len(), 2);
        assert_eq!(t.words[1].text, "my fi");
        assert_eq!(t.words[1].start, 4);
        let t = tokenize(r"put my\");
        assert!(t.dangling_escape);
        assert_eq!(t.words[1].text, "my");
    }

    fn patterns(line: &str) -> Vec<String> {
        split(line)
            .expect("test line should split")
            .into_iter()
            .map(|w| w.pattern)
            .collect()
    }

    #[test]
    fn quoted_wildcards_are_escaped_in_the_pattern() {
        // Bare wildcards stay wildcards.
        assert_eq!(patterns("*.log a?[bc]"), ["*.log", "a?[bc]"]);
        // Quoted or escaped ones are escaped for the matcher.
        assert_eq!(patterns("'a[1].txt'"), [r"a\[1\].txt"]);
        assert_eq!(patterns(r#""report[1].txt""#), [r"report\[1\].txt"]);
        assert_eq!(patterns(r"\* \? \[x\]"), [r"\*", r"\?", r"\[x\]"]);
        // A word mixing both keeps each part as it was written.
        assert_eq!(patterns("'a[1]'*.txt"), [r"a\[1\]*.txt"]);
        assert_eq!(patterns(r#"x"*"?"#), [r"x\*?"]);
        // Backslashes in the text are always literal.
        assert_eq!(patterns(r"a\\b 'c\d' "), [r"a\\b", r"c\\d"]);
        assert_eq!(texts(r"a\\b 'c\d'"), [r"a\b", r"c\d"]);
        // Nothing to escape: the pattern is the text.
        assert_eq!(patterns("'my file.txt' plain"), ["my file.txt", "plain"]);
        // The text never changes.
        assert_eq!(texts("'a[1]'*.txt \\*"), ["a[1]*.txt", "*"]);
    }

    #[test]
    fn quoted_names_round_trip_as_patterns() {
        // Whatever quote() or quote_in() makes of a name, its pattern
        // matches that name only: completion inserts names this way.
        for name in ["a[1].txt", "*", "what?", r"back\slash", "[!x]", "日[本]"] {
            let forms = [
                quote(name),
                quote_in(name, None),
                quote_in(name, Some(Quote::Single)),
                quote_in(name, Some(Quote::Double)),
            ];
            for q in forms {
                let words = split(&q).expect("splits");
                assert_eq!(words[0].pattern, glob::escape(name), "{name:?} as {q:?}");
                assert!(!glob::has_wildcards(&words[0].pattern), "{q:?}");
            }
        }
    }

    #[test]
    fn cursor_word_finds_the_word_being_typed() {
        let w = cursor_word("put my\\ fi");
        assert_eq!((w.index, w.text.as_str(), w.start), (1, "my fi", 4));
        assert_eq!(w.previous, ["put"]);

        let w = cursor_word("put a.txt ");
        assert_eq!((w.index, w.text.as_str(), w.start), (2, "", 10));

        let w = cursor_word("");
        assert_eq!((w.index, w.text.as_str(), w.start), (0, "", 0));

        let w = cursor_word("pu");
        assert_eq!((w.index, w.text.as_str(), w.start), (0, "pu", 0));

        let w = cursor_word("get 'a b");
        assert_eq!(w.open_quote, Some(Quote::Single));
        assert_eq!((w.index, w.text.as_str(), w.start), (1, "a b", 4));

        // An escaped trailing space belongs to the word.
        let w = cursor_word(r"get a\ ");
        assert_eq!((w.index, w.text.as_str()), (1, "a "));
        // A closed empty quote is a word under the cursor.
        let w = cursor_word("get ''");
        assert_eq!((w.index, w.text.as_str(), w.start), (1, "", 4));
    }

    #[test]
    fn quote_leaves_plain_names_alone() {
        assert_eq!(quote("a.txt"), "a.txt");
        assert_eq!(quote("dir/sub-1_x.tar.gz"), "dir/sub-1_x.tar.gz");
        assert_eq!(quote("été"), "été");
    }

    #[test]
    fn quote_quotes_awkward_names() {
        assert_eq!(quote("my file"), "'my file'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("#x"), "'#x'");
        assert_eq!(quote("it's"), r#""it's""#);
        assert_eq!(quote(r#"it's "a" \ b"#), r#""it's \"a\" \\ b""#);
    }

    #[test]
    fn quote_in_follows_the_typed_style() {
        assert_eq!(quote_in("my file", None), r"my\ file");
        assert_eq!(quote_in("a.txt", None), "a.txt");
        assert_eq!(quote_in("it's #1", None), r"it\'s\ \#1");
        assert_eq!(quote_in("my file", Some(Quote::Single)), "'my file'");
        assert_eq!(quote_in("it's", Some(Quote::Single)), r#""it's""#);
        assert_eq!(quote_in(r#"a "b""#, Some(Quote::Double)), r#""a \"b\"""#);
        assert_eq!(escape(""), "''");
    }

    #[test]
    fn quote_round_trips_awkward_names() {
        let names = [
            "plain",
            "my file.txt",
            "  lead and trail  ",
            "it's",
            r#"say "hi""#,
            r#"both ' and ""#,
            r"back\slash",
            r"trailing\",
            r"\\double\\",
            "#hash",
            "semi;colon&amp|pipe",
            "$HOME ~ * ? [x]",
            "tab\there",
            "new\nline",
            "ünïcødé 文件 🦀",
            "'",
            "\"",
            "\\",
            "",
            "-dash",
        ];
        for name in names {
            let quoted = quote(name);
            let words = split(&quoted).unwrap_or_else(|e| panic!("{quoted:?}: {e}"));
            assert_eq!(words.len(), 1, "{name:?} quoted as {quoted:?}");
            assert_eq!(words[0].text, name, "quoted as {quoted:?}");
            assert_eq!((words[0].start, words[0].end), (0, quoted.len()));
            // And inside a full command line.
            let line = format!("put {quoted} x");
            let words = split(&line).expect("splits");
            assert_eq!(words[1].text, name);
            // Every completion style round-trips too.
            for style in [None, Some(Quote::Single), Some(Quote::Double)] {
                let q = quote_in(name, style);
                let words = split(&q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
                assert_eq!(words.len(), 1, "{name:?} as {q:?}");
                assert_eq!(words[0].text, name, "as {q:?}");
            }
        }
    }
}
