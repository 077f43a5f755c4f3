//! Wildcards for `put` and `get` with many files: a matcher for `*`, `?`
//! and `[...]` that never backtracks more than one star (so a pattern like
//! `a*a*a*a*b` against a long name costs at most pattern x name steps,
//! never an exponential blow-up), and [`expand`], which walks a pattern
//! component by component through any directory lister: the local file
//! system for `put`, the server's listings for `get`.
//!
//! Patterns are written as `glob(3)` reads them: a backslash makes the
//! next character literal (`a\[1\].txt` is the name `a[1].txt`). The word
//! splitter ([`super::words`]) gives every word in this form, escaping the
//! wildcard characters that were quoted or escaped on the command line, so
//! only the ones the user left bare are wildcards; [`unescape`] gives the
//! name back for literal use and [`escape`] makes a name a pattern that
//! matches only itself.
//!
//! Pure logic: it reads nothing itself and prints nothing. Names the
//! lister returns are taken as given; callers that list the server check
//! them with [`check_server_name`] before using them as local paths.

/// Most names one pattern may expand to, so a huge directory cannot make
/// one command queue an unbounded amount of work by surprise.
pub const MAX_MATCHES: usize = 100_000;

/// Whether `c` means something to the matcher and so must be escaped with
/// a backslash to stand for itself: `*`, `?`, `[`, `]` and `\`.
pub fn is_special(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']' | '\\')
}

/// The pattern that matches exactly `name`: every [`is_special`]
/// character behind a backslash. [`unescape`] undoes it.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_special(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The name a pattern without wildcards stands for: each `\x` becomes `x`
/// (a backslash at the very end stays).
pub fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            c => out.push(c),
        }
    }
    out
}

/// Whether `pattern` contains a wildcard and so is a pattern, not a name:
/// a bare `*` or `?`, or a bare `[` that opens a class closed by a later
/// `]`. Characters behind a backslash are not wildcards.
pub fn has_wildcards(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '*' | '?' => return true,
            '[' if parse_class(&chars[i + 1..]).is_some() => return true,
            _ => i += 1,
        }
    }
    false
}

/// One element of a parsed pattern component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: any one character.
    Any,
    /// A character that must be there as is.
    Char(char),
    /// `[abc]`, `[a-z]`, `[!x]` / `[^x]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Char(x) => *x == c,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled pattern for one path component (no `/` inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// Whether the pattern starts with a literal `.`, which lets it match
    /// hidden names (as in a shell).
    dot: bool,
}

impl Pattern {
    /// Parses `text`; a `[` without its `]` is taken literally, and so is
    /// any character behind a backslash.
    pub fn new(text: &str) -> Pattern {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    // A trailing backslash stands for itself.
                    tokens.push(Token::Char(chars.get(i + 1).copied().unwrap_or('\\')));
                    i += 2;
                }
                '*' => {
                    // Runs of stars are one star.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                '[' => match parse_class(&chars[i + 1..]) {
                    Some((token, used)) => {
                        tokens.push(token);
                        i += 1 + used;
                    }
                    None => {
                        tokens.push(Token::Char('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
            }
        }
        Pattern {
            dot: text.starts_with('.'),
            tokens,
        }
    }

    /// Whether `name` matches the whole pattern. Names starting with `.`
    /// match only a pattern that starts with `.`.
    ///
    /// When a later token fails, only the most recent star is widened by
    /// one character: an earlier star can never help more than the latest
    /// one, so nothing else needs retrying. Worst case pattern x name steps.
    pub fn matches(&self, name: &str) -> bool {
        if name.starts_with('.') && !self.dot {
            return false;
        }
        let name: Vec<char> = name.chars().collect();
        let pat = &self.tokens;
        let (mut p, mut n) = (0, 0);
        // (token index of the last star, name index it currently covers up to)
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pat.get(p) {
                Some(Token::Star) => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(t) if t.matches(name[n]) => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        star = Some((sp, sn + 1));
                        p = sp + 1;
                        n = sn + 1;
                    }
                    None => return false,
                },
            }
        }
        pat[p..].iter().all(|t| *t == Token::Star)
    }
}

/// Parses a class after its `[`; returns the token and how many characters
/// it used, `]` included. `None` when there is no closing `]`. A
/// backslash makes the next character a plain member (`[\]a]`).
fn parse_class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    // One member at `i`: the character and how many characters it took.
    let member = |i: usize| -> Option<(char, usize)> {
        match *chars.get(i)? {
            '\\' => Some((*chars.get(i + 1)?, 2)),
            c => Some((c, 1)),
        }
    };
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        if chars.get(i) == Some(&']') && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let (lo, used) = member(i)?;
        i += used;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&h| h != ']') {
            let (hi, used) = member(i + 1)?;
            ranges.push((lo.min(hi), lo.max(hi)));
            i += 1 + used;
        } else {
            ranges.push((lo, lo));
        }
    }
}

/// Joins a directory (`""` or `.` for the top) and a name with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A directory lister for [`expand`]: the `(name, is_dir)` entries of a
/// directory (`""` for the top).
pub type Lister<'a, E> = dyn FnMut(&str) -> Result<Vec<(String, bool)>, E> + 'a;

/// One name a pattern expanded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The full path: the pattern's directories with the matched names.
    pub path: String,
    /// The last component alone.
    pub name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// Expands `pattern` (`/`-separated, wildcards in any component) through
/// `list`, which returns the `(name, is_dir)` entries of a directory (`""`
/// for the top, otherwise a path without a trailing `/`). Components
/// without wildcards are taken as the names they stand for ([`unescape`]),
/// except the last, which must exist. The result is sorted; an empty
/// result means no match.
pub fn expand<E>(pattern: &str, list: &mut Lister<'_, E>) -> Result<Vec<Match>, E> {
    let (root, rest) = match pattern.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", pattern),
    };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(Vec::new());
    };
    // The directories reached so far.
    let mut current = vec![root.to_owned()];
    for part in dirs {
        let mut next = Vec::new();
        if !has_wildcards(part) {
            let part = unescape(part);
            next = current.iter().map(|d| join(d, &part)).collect();
        } else {
            let pat = Pattern::new(part);
            for dir in &current {
                for (name, is_dir) in list(dir)? {
                    if is_dir && pat.matches(&name) && next.len() < MAX_MATCHES {
                        next.push(join(dir, &name));
                    }
                }
            }
        }
        current = next;
    }
    let pat = Pattern::new(last);
    let literal = (!has_wildcards(last)).then(|| unescape(last));
    let mut out = Vec::new();
    for dir in &current {
        for (name, is_dir) in list(dir)? {
            let hit = if let Some(literal) = &literal {
                name == *literal
            } else {
                pat.matches(&name)
            };
            if hit && out.len() < MAX_MATCHES {
                out.push(Match {
                    path: join(dir, &name),
                    name,
                    is_dir,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Checks a name the server sent (in a listing) before it becomes part of
/// a local path: the client does not trust the server to keep to its own
/// name rules. Refuses empty names, `.`, `..`, `/`, `\`, NUL and control
/// characters; the `Err` says why in plain words.
pub fn check_server_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty name")
    } else if name == "." || name == ".." {
        Err("'.' or '..' as a name")
    } else if name.contains(['/', '\\']) {
        Err("a slash in a name")
    } else if name.chars().any(char::is_control) {
        Err("a control character in a name")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    fn m(pat: &str, name: &str) -> bool {
        Pattern::new(pat).matches(name)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*.log", "a.log"));
        assert!(!m("*.log", ".log"));
        assert!(m("*", "anything"));
        assert!(m("*", ""));
        assert!(m("a*", "a"));
        assert!(m("a*b", "ab"));
        assert!(m("a*b", "axxb"));
        assert!(!m("a*b", "axxbc"));
        assert!(m("a*b*c", "abbbcbc"));
        assert!(m("?.txt", "é.txt"));
        assert!(!m("?.txt", "ab.txt"));
        assert!(m("**x", "abx"));
        assert!(m("日*", "日本語"));
    }

    #[test]
    fn classes() {
        assert!(m("[ab].txt", "a.txt"));
        assert!(!m("[ab].txt", "c.txt"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        // An unclosed bracket is a literal.
        assert!(m("[ab", "[ab"));
        assert!(!m("[ab", "a"));
    }

    #[test]
    fn hidden_names_need_a_dot_in_the_pattern() {
        assert!(!m("*", ".hidden"));
        assert!(!m("?hidden", ".hidden"));
        assert!(m(".*", ".hidden"));
        assert!(m(".h*", ".hidden"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let name = "a".repeat(20_000);
        let started = Instant::now();
        assert!(!m("a*a*a*a*a*a*a*a*a*b", &name));
        assert!(m("a*a*a*a*a*a*a*a*a*a", &name));
        let pat = format!("{}b", "*a".repeat(50));
        assert!(!m(&pat, &name));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn escaped_characters_are_literal() {
        assert!(m(r"a\[1\].txt", "a[1].txt"));
        assert!(!m(r"a\[1\].txt", "a1.txt"));
        assert!(m(r"\*", "*"));
        assert!(!m(r"\*", "x"));
        assert!(m(r"\?", "?"));
        assert!(!m(r"\?", "x"));
        assert!(m(r"a\\b", r"a\b"));
        // Mixed: the escaped part literal, the bare star a wildcard.
        assert!(m(r"a\[1\]*.txt", "a[1]-x.txt"));
        assert!(!m(r"a\[1\]*.txt", "a1-x.txt"));
        // Inside a class a backslash makes a plain member.
        assert!(m(r"[\]a]", "]"));
        assert!(m(r"[\]a]", "a"));
        assert!(m(r"[\*]", "*"));
        assert!(!m(r"[\*]", "x"));
        // A trailing backslash stands for itself.
        assert!(m("a\\", "a\\"));
    }

    #[test]
    fn escape_and_unescape_round_trip() {
        for name in [
            "plain.txt",
            "a[1].txt",
            "*",
            "?x?",
            r"back\slash",
            "[!x]]",
            "ünï*cødé",
            "",
        ] {
            let pat = escape(name);
            assert!(!has_wildcards(&pat), "{name:?} as {pat:?}");
            assert_eq!(unescape(&pat), name);
            assert!(name.is_empty() || m(&pat, name), "{name:?} as {pat:?}");
        }
        assert_eq!(escape("a[1]*?.txt"), r"a\[1\]\*\?.txt");
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(unescape(r"a\b\\c\"), r"ab\c\");
    }

    #[test]
    fn wildcard_detection() {
        assert!(!has_wildcards(r"\*.log"));
        assert!(!has_wildcards(r"a\?"));
        assert!(!has_wildcards(r"\[ab]"));
        assert!(!has_wildcards(r"a\\"));
        assert!(has_wildcards(r"\[ab]*"));
        assert!(has_wildcards(r"\\*"));
        assert!(has_wildcards(r"[\]]"));
        assert!(has_wildcards("*.log"));
        assert!(has_wildcards("a?"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("plain name.txt"));
        assert!(!has_wildcards("esc\x1b[2J"));
        assert!(!has_wildcards("a]b[c"));
    }

    fn lister(
        tree: &'static [(&'static str, &'static [(&'static str, bool)])],
    ) -> impl FnMut(&str) -> Result<Vec<(String, bool)>, String> {
        let map: HashMap<&str, &[(&str, bool)]> = tree.iter().copied().collect();
        move |dir: &str| match map.get(dir) {
            Some(es) => Ok(es.iter().map(|(n, d)| (n.to_string(), *d)).collect()),
            None => Err(format!("no dir {dir}")),
        }
    }

    const TREE: &[(&str, &[(&str, bool)])] = &[
        (
            "",
            &[
                ("logs", true),
                ("old", true),
                ("b.log", false),
                ("a.log", false),
                (".h.log", false),
            ],
        ),
        (
            "logs",
            &[("x.gz", false), ("y.gz", false), ("z.txt", false)],
        ),
        ("old", &[("w.gz", false), ("sub", true)]),
    ];

    fn paths(pattern: &str) -> Vec<String> {
        let mut list = lister(TREE);
        expand(pattern, &mut list)
            .unwrap()
            .into_iter()
            .map(|m| m.path)
            .collect()
    }

    #[test]
    fn expansion_walks_components() {
        assert_eq!(paths("*.log"), ["a.log", "b.log"]);
        assert_eq!(paths("logs/*.gz"), ["logs/x.gz", "logs/y.gz"]);
        assert_eq!(paths("*/*.gz"), ["logs/x.gz", "logs/y.gz", "old/w.gz"]);
        assert_eq!(paths("logs/z.txt"), ["logs/z.txt"]);
        assert_eq!(paths("logs/nope"), Vec::<String>::new());
        assert_eq!(paths("*.none"), Vec::<String>::new());
        assert_eq!(paths("o*/s*"), ["old/sub"]);
        let mut list = lister(TREE);
        let got = expand("o*/s*", &mut list).unwrap();
        assert!(got[0].is_dir && got[0].name == "sub");
        let mut list = lister(TREE);
        assert!(expand("missing/*.gz", &mut list).is_err());
    }

    #[test]
    fn escaped_components_are_names() {
        const ODD: &[(&str, &[(&str, bool)])] = &[
            (
                "",
                &[("a[1]", true), ("a1", true), ("*", false), ("x", false)],
            ),
            ("a[1]", &[("f?.txt", false), ("fa.txt", false)]),
            ("a1", &[("f?.txt", false)]),
        ];
        let paths = |pattern: &str| -> Vec<String> {
            let mut list = lister(ODD);
            expand(pattern, &mut list)
                .unwrap()
                .into_iter()
                .map(|m| m.path)
                .collect()
        };
        assert_eq!(paths(r"\*"), ["*"]);
        assert_eq!(paths("*"), ["*", "a1", "a[1]", "x"]);
        assert_eq!(paths(r"a\[1\]/f\?.txt"), ["a[1]/f?.txt"]);
        assert_eq!(paths(r"a\[1\]/f?.txt"), ["a[1]/f?.txt", "a[1]/fa.txt"]);
        assert_eq!(paths("a[1]/f?.txt"), ["a1/f?.txt"]);
        assert_eq!(paths(r"a\[1\]"), ["a[1]"]);
    }

    #[test]
    fn joins() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join(".", "a"), "a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("d", "a"), "d/a");
    }

    #[test]
    fn server_names_are_checked() {
        assert!(check_server_name("ok name é.txt").is_ok());
        for bad in [
            "", ".", "..", "a/b", "/etc", "a\\b", "a\nb", "\x1b[31m", "a\0",
        ] {
            assert!(check_server_name(bad).is_err(), "{bad:?}");
        }
    }
}
