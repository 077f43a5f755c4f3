//! Remote-name rules: which names a client may send and a server may act on.
//! Pure string logic, no file system access: the server still resolves the
//! checked name beneath its root with the kernel's help.

use std::fmt;

use super::limits::{MAX_COMPONENT_LEN, MAX_PATH_LEN, RESERVED_PREFIX};

/// Why a remote name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty where a file name is required.
    #[error("empty name")]
    Empty,
    /// The name starts with `/`.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// A component is empty (`a//b`, trailing `/`).
    #[error("empty path component")]
    EmptyComponent,
    /// A component is `.`.
    #[error("'.' components are not allowed")]
    Dot,
    /// A component is `..`.
    #[error("'..' components are not allowed")]
    DotDot,
    /// The name holds a NUL byte.
    #[error("NUL byte in name")]
    Nul,
    /// The name holds a control character.
    #[error("control character in name")]
    Control,
    /// The name holds an invisible formatting character (a direction
    /// override such as U+202E, a zero-width space, ...) or a line or
    /// paragraph separator: it would show as another name than it is.
    #[error("invisible or direction-changing character in name")]
    Invisible,
    /// The name holds a backslash.
    #[error("backslash in name")]
    Backslash,
    /// A component is longer than [`MAX_COMPONENT_LEN`] bytes.
    #[error("path component longer than 255 bytes")]
    ComponentTooLong,
    /// The whole name is longer than [`MAX_PATH_LEN`] bytes.
    #[error("path longer than 4096 bytes")]
    TooLong,
    /// A component starts with the prefix reserved for temporary files.
    #[error("names starting with '.ftx-' are reserved")]
    Reserved,
}

/// Unicode's formatting characters (general category Cf: direction
/// marks and overrides, zero-width characters, the byte-order mark,
/// interlinear and tag characters) and the line and paragraph separators:
/// characters that change how a name looks without looking like anything.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// A remote path that passed every rule: relative to the server root,
/// `/`-separated, no `.`/`..`/empty components, no NUL, control characters
/// or backslashes, components of at most 255 bytes, at most 4096 in all.
/// The empty path means the root itself (only meaningful for listing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemotePath(String);

impl RemotePath {
    /// Checks `name` against the rules; the empty string is the root.
    pub fn parse(name: &str) -> Result<RemotePath, NameError> {
        if name.is_empty() {
            return Ok(RemotePath(String::new()));
        }
        if name.len() > MAX_PATH_LEN {
            return Err(NameError::TooLong);
        }
        if name.starts_with('/') {
            return Err(NameError::Absolute);
        }
        for c in name.chars() {
            if c == '\0' {
                return Err(NameError::Nul);
            }
            if c.is_control() {
                return Err(NameError::Control);
            }
            if is_invisible(c) {
                return Err(NameError::Invisible);
            }
            if c == '\\' {
                return Err(NameError::Backslash);
            }
        }
        for comp in name.split('/') {
            match comp {
                "" => return Err(NameError::EmptyComponent),
                "." => return Err(NameError::Dot),
                ".." => return Err(NameError::DotDot),
                _ => {}
            }
            if comp.len() > MAX_COMPONENT_LEN {
                return Err(NameError::ComponentTooLong);
            }
            if comp.starts_with(RESERVED_PREFIX) {
                return Err(NameError::Reserved);
            }
        }
        Ok(RemotePath(name.to_owned()))
    }

    /// Like [`RemotePath::parse`] but refuses the root: a file name is required.
    pub fn parse_file(name: &str) -> Result<RemotePath, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        RemotePath::parse(name)
    }

    /// The root of the served tree.
    pub fn root() -> RemotePath {
        RemotePath(String::new())
    }

    /// True for the root (the empty path).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last (none for the root).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.components().last()
    }

    /// The path without its last component (the root for a one-component path).
    pub fn parent(&self) -> RemotePath {
        match self.0.rfind('/') {
            Some(i) => RemotePath(self.0[..i].to_owned()),
            None => RemotePath(String::new()),
        }
    }

    /// This path with `name` appended; `name` must be a valid single component.
    pub fn join(&self, name: &str) -> Result<RemotePath, NameError> {
        if name.contains('/') {
            return Err(NameError::EmptyComponent);
        }
        if self.0.is_empty() {
            RemotePath::parse_file(name)
        } else {
            RemotePath::parse_file(&format!("{}/{}", self.0, name))
        }
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name stored for an upload whose name is taken: `stem_N.ext`
/// (the seed's rule). `n` starts at 1. A leading dot is part of the stem
/// (`.bashrc` -> `.bashrc_1`), and only the last extension moves
/// (`a.tar.gz` -> `a.tar_1.gz`), as Python's `os.path.splitext` does.
pub fn clash_name(name: &str, n: u64) -> String {
    let (stem, ext) = split_ext(name);
    format!("{stem}_{n}{ext}")
}

/// Splits a file name into stem and extension (with its dot) like Python's
/// `os.path.splitext`: leading dots never start an extension.
pub fn split_ext(name: &str) -> (&str, &str) {
    let lead = name.len() - name.trim_start_matches('.').len();
    match name[lead..].rfind('.') {
        Some(i) => name.split_at(lead + i),
        None => (name, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "a.txt",
            "dir/sub/file",
            "my file.txt",
            "ünïcødé",
            ".hidden",
            "..x",
            "a..b",
        ] {
            assert!(RemotePath::parse(ok).is_ok(), "{ok}");
        }
        assert!(RemotePath::parse("").unwrap().is_root());
    }

    #[test]
    fn refuses_hostile_names() {
        let cases: &[(&str, NameError)] = &[
            ("/etc/passwd", NameError::Absolute),
            ("..", NameError::DotDot),
            ("../x", NameError::DotDot),
            ("a/../../x", NameError::DotDot),
            ("a/..", NameError::DotDot),
            (".", NameError::Dot),
            ("./a", NameError::Dot),
            ("a//b", NameError::EmptyComponent),
            ("a/", NameError::EmptyComponent),
            ("a\0b", NameError::Nul),
            ("a\nb", NameError::Control),
            ("a\x1bb", NameError::Control),
            ("a\u{85}b", NameError::Control),
            ("evil\u{202E}txt.exe", NameError::Invisible),
            ("a\u{200B}b", NameError::Invisible),
            ("line\u{2028}sep", NameError::Invisible),
            ("\u{FEFF}bom", NameError::Invisible),
            ("tag\u{E0041}", NameError::Invisible),
            ("..\\x", NameError::Backslash),
            ("a\\b", NameError::Backslash),
            (".ftx-tmp-1", NameError::Reserved),
            ("d/.ftx-part-a", NameError::Reserved),
        ];
        for (name, want) in cases {
            assert_eq!(RemotePath::parse(name).as_ref(), Err(want), "{name:?}");
        }
        let long = "x".repeat(MAX_COMPONENT_LEN + 1);
        assert_eq!(RemotePath::parse(&long), Err(NameError::ComponentTooLong));
        let ok = "x".repeat(MAX_COMPONENT_LEN);
        assert!(RemotePath::parse(&ok).is_ok());
        let total = vec!["y".repeat(200); 21].join("/");
        assert_eq!(RemotePath::parse(&total), Err(NameError::TooLong));
        assert_eq!(RemotePath::parse_file(""), Err(NameError::Empty));
    }

    #[test]
    fn parent_name_join() {
        let p = RemotePath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.file_name(), Some("c.txt"));
        assert_eq!(p.parent().as_str(), "a/b");
        assert_eq!(RemotePath::parse("c").unwrap().parent(), RemotePath::root());
        assert_eq!(RemotePath::root().join("x").unwrap().as_str(), "x");
        assert_eq!(p.parent().join("d").unwrap().as_str(), "a/b/d");
        assert!(p.parent().join("..").is_err());
    }

    #[test]
    fn clash_names_follow_the_seed() {
        assert_eq!(clash_name("a.txt", 1), "a_1.txt");
        assert_eq!(clash_name("a", 2), "a_2");
        assert_eq!(clash_name("a.tar.gz", 1), "a.tar_1.gz");
        assert_eq!(clash_name(".bashrc", 1), ".bashrc_1");
        assert_eq!(clash_name("..x.y", 3), "..x_3.y");
    }
}
