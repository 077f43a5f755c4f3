//! The remote working directory and the paths the user types against it:
//! `cd docs`, then `get a.txt` fetches `docs/a.txt`. Every remote name a
//! command takes is resolved here into the root-relative path the wire
//! carries, the way a chrooted sftp server sees it: a leading `/` is the
//! served root, `.` and empty components vanish, and `..` steps up but
//! never above the root (`/..` is `/`). The protocol itself still refuses
//! `..`, `.` and absolute paths; the shell just never sends them.
//!
//! Pure string logic: nothing here asks the server whether a directory
//! exists (`cd` does that before it changes anything). Names keep every
//! other character as typed, so a name the server refuses (a backslash, a
//! control character, `.ftx-`) still reaches it and is refused there.

use std::cell::RefCell;
use std::rc::Rc;

/// The remote working directory as a root-relative path (`""` is the
/// root), shared by the executor and Tab completion.
pub type SharedCwd = Rc<RefCell<String>>;

/// The root-relative path `path` names when typed in the remote working
/// directory `cwd` (root-relative itself, `""` for the root). `""` is
/// the root; wildcard characters and backslash escapes pass through.
pub fn resolve(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !path.starts_with('/') {
        parts.extend(cwd.split('/').filter(|p| !p.is_empty()));
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

/// How the root-relative path `resolved` is shown to a user whose remote
/// working directory is `cwd`: relative to it when inside it (so at the
/// root every path shows as it always did), else from the root with a
/// leading `/`. The directory itself shows as `.`.
pub fn shown(cwd: &str, resolved: &str) -> String {
    if cwd.is_empty() {
        return if resolved.is_empty() {
            ".".to_owned()
        } else {
            resolved.to_owned()
        };
    }
    if resolved == cwd {
        return ".".to_owned();
    }
    match resolved.strip_prefix(cwd).and_then(|r| r.strip_prefix('/')) {
        Some(inside) => inside.to_owned(),
        None => absolute(resolved),
    }
}

/// The root-relative path `resolved` written from the root: `/docs/a`,
/// `/` for the root itself (what `pwd` prints).
pub fn absolute(resolved: &str) -> String {
    format!("/{resolved}")
}

/// Whether a typed path names a directory by position only (`.`, `..`,
/// `docs/..`, `/`), so it has no base name of its own: `get -r .` fetches
/// the contents of the working directory into the local target, as sftp
/// does, instead of a directory called `.`.
pub fn has_no_name(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/').rsplit('/').next(),
        Some("" | "." | "..")
    )
}

/// The parent and the last component of a root-relative path (`""` and
/// the path for a top-level name; `None` for the root, which has neither).
pub fn split_parent(resolved: &str) -> Option<(&str, &str)> {
    if resolved.is_empty() {
        return None;
    }
    Some(resolved.rsplit_once('/').unwrap_or(("", resolved)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_start_at_the_working_directory() {
        assert_eq!(resolve("", "a.txt"), "a.txt");
        assert_eq!(resolve("docs", "a.txt"), "docs/a.txt");
        assert_eq!(resolve("docs/sub", "x/y"), "docs/sub/x/y");
        assert_eq!(resolve("docs", ""), "docs");
        assert_eq!(resolve("docs", "."), "docs");
        assert_eq!(resolve("docs", "./a//b/"), "docs/a/b");
    }

    #[test]
    fn a_leading_slash_is_the_served_root() {
        assert_eq!(resolve("docs", "/"), "");
        assert_eq!(resolve("docs", "/a.txt"), "a.txt");
        assert_eq!(resolve("docs", "//etc//passwd"), "etc/passwd");
        assert_eq!(resolve("", "/"), "");
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(resolve("docs/sub", ".."), "docs");
        assert_eq!(resolve("docs/sub", "../.."), "");
        assert_eq!(resolve("docs", "../../../../etc/passwd"), "etc/passwd");
        assert_eq!(resolve("", ".."), "");
        assert_eq!(resolve("", "/.."), "");
        assert_eq!(resolve("", "a/../../x"), "x");
        assert_eq!(resolve("docs", "a/../b"), "docs/b");
    }

    #[test]
    fn other_characters_pass_through_for_the_server_to_judge() {
        assert_eq!(resolve("d", r"a\b"), r"d/a\b");
        assert_eq!(resolve("d", "*.log"), "d/*.log");
        assert_eq!(resolve("d", r"a\[1\]"), r"d/a\[1\]");
        assert_eq!(resolve("", "...").as_str(), "...");
        assert_eq!(resolve("", ".ftx-part-x"), ".ftx-part-x");
        assert_eq!(resolve("", "..\\x"), "..\\x");
    }

    #[test]
    fn paths_show_relative_to_the_working_directory() {
        assert_eq!(shown("", "a.txt"), "a.txt");
        assert_eq!(shown("", ""), ".");
        assert_eq!(shown("docs", "docs/a.txt"), "a.txt");
        assert_eq!(shown("docs", "docs"), ".");
        assert_eq!(shown("docs", "docsx/a"), "/docsx/a");
        assert_eq!(shown("docs", "a.txt"), "/a.txt");
        assert_eq!(shown("docs", ""), "/");
        assert_eq!(absolute(""), "/");
        assert_eq!(absolute("docs/sub"), "/docs/sub");
    }

    #[test]
    fn names_by_position_only() {
        for p in [".", "..", "/", "//", "docs/..", "docs/.", "./", "../"] {
            assert!(has_no_name(p), "{p}");
        }
        for p in ["docs", "a.txt", "docs/x", "...", ".hidden", "docs/"] {
            assert!(!has_no_name(p), "{p}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("a"), Some(("", "a")));
        assert_eq!(split_parent("a/b/c"), Some(("a/b", "c")));
        assert_eq!(split_parent(""), None);
    }
}
