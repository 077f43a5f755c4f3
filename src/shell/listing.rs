//! What `ls` prints, as pure functions: its options ([`LsOptions`]), the
//! order of entries (`-t`, `-S`, `-r`) and each line's format. By default
//! a line is the size in bytes then the name, directories with a trailing
//! `/`; `-1` prints names only; `-l` prints the permission bits as `ls -l`
//! does (`-rw-r--r--`, or `-?????????` when the server sends no modes),
//! the size (`-h`: human), the modification time in UTC with its zone,
//! then the name, always last. The executor lists and walks; this module
//! never talks to the server and never prints.

use crate::proto::message::{Entry, EntryKind};

use super::render::{escape_for_terminal, format_size_human, Style};

/// How each entry is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Size in bytes, then the name (ftx's `ls`).
    #[default]
    Sizes,
    /// `-1`: the name alone.
    Names,
    /// `-l`: mode, size, time, name.
    Long,
}

/// The order of the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// By name, byte by byte.
    #[default]
    Name,
    /// `-t`: newest first.
    Time,
    /// `-S`: largest first.
    Size,
}

/// `ls`'s options. As in sftp, a later `-1`/`-l` overrides an earlier one,
/// and so does a later `-t`/`-S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LsOptions {
    /// `-1` or `-l`.
    pub view: View,
    /// `-a`: names starting with `.` too.
    pub all: bool,
    /// `-t` or `-S`.
    pub sort: Sort,
    /// `-r`: the order reversed.
    pub reverse: bool,
    /// `-R`: directories listed beneath, each after a `DIR:` line.
    pub recursive: bool,
    /// `-h`: sizes as `1.5K` in a long listing.
    pub human: bool,
}

impl LsOptions {
    /// The options the letters give, in the order typed.
    pub fn from_letters(letters: impl IntoIterator<Item = char>) -> LsOptions {
        let mut o = LsOptions::default();
        for c in letters {
            match c {
                '1' => o.view = View::Names,
                'l' => o.view = View::Long,
                'a' => o.all = true,
                't' => o.sort = Sort::Time,
                'S' => o.sort = Sort::Size,
                'r' => o.reverse = true,
                'R' => o.recursive = true,
                'h' => o.human = true,
                _ => {}
            }
        }
        o
    }
}

/// One line of a listing: the entry and the name to show for it (its
/// name in a directory listing, the path as matched for `ls PATTERN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What the server listed.
    pub entry: Entry,
    /// What the line shows as its name.
    pub shown: String,
}

/// Puts `rows` in the order the options ask for; ties go by name.
pub fn sort_rows(rows: &mut [Row], opts: &LsOptions) {
    rows.sort_by(|a, b| {
        let by_name = a.shown.cmp(&b.shown);
        let primary = match opts.sort {
            Sort::Name => std::cmp::Ordering::Equal,
            Sort::Time => b.entry.mtime.cmp(&a.entry.mtime),
            Sort::Size => b.entry.size.cmp(&a.entry.size),
        };
        primary.then(by_name)
    });
    if opts.reverse {
        rows.reverse();
    }
}

/// The line for one row (without its newline). Names are escaped for the
/// terminal; a directory's ends in `/` and is painted by `style`.
pub fn format_row(row: &Row, opts: &LsOptions, style: &Style) -> String {
    let e = &row.entry;
    let mut name = escape_for_terminal(&row.shown);
    if e.kind == EntryKind::Dir {
        name.push('/');
        name = style.dir(&name);
    }
    match opts.view {
        View::Names => name,
        View::Sizes => format!("{:>12} {name}", e.size),
        View::Long => {
            let size = if opts.human {
                format!("{:>7}", format_size_human(e.size))
            } else {
                format!("{:>12}", e.size)
            };
            format!(
                "{} {size} {} {name}",
                mode_string(e.kind, e.mode),
                format_mtime(e.mtime)
            )
        }
    }
}

/// `drwxr-xr-x`, `-rw-r--r--`, `lrwxrwxrwx` as `ls -l` writes them, with
/// set-user-ID, set-group-ID and sticky bits as `s`/`S` and `t`/`T`;
/// `-?????????` (the kind known, the bits not) when the server sent none.
/// A kind other than file, directory or link shows as `?`.
pub fn mode_string(kind: EntryKind, mode: Option<u16>) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    });
    let Some(m) = mode else {
        s.push_str("?????????");
        return s;
    };
    // (read, write, execute bits; the special bit shown in the x column)
    let triples = [
        (0o400, 0o200, 0o100, 0o4000, 's'),
        (0o040, 0o020, 0o010, 0o2000, 's'),
        (0o004, 0o002, 0o001, 0o1000, 't'),
    ];
    for (r, w, x, special, letter) in triples {
        s.push(if m & r != 0 { 'r' } else { '-' });
        s.push(if m & w != 0 { 'w' } else { '-' });
        s.push(match (m & x != 0, m & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM UTC`, from Unix seconds. UTC, and saying so: a small
/// machine may have no time-zone database, and a time without its zone
/// is a guess.
pub fn format_mtime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind, size: u64, mtime: i64, mode: Option<u16>) -> Row {
        Row {
            entry: Entry {
                name: name.to_owned(),
                kind,
                size,
                mtime,
                mode,
            },
            shown: name.to_owned(),
        }
    }

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.shown.as_str()).collect()
    }

    fn rows() -> Vec<Row> {
        vec![
            entry("b.txt", EntryKind::File, 10, 300, Some(0o644)),
            entry("a.txt", EntryKind::File, 30, 100, Some(0o600)),
            entry("dir", EntryKind::Dir, 0, 200, Some(0o755)),
            entry("c.txt", EntryKind::File, 30, 300, None),
        ]
    }

    #[test]
    fn letters_combine_and_the_last_view_or_order_wins() {
        let o = LsOptions::from_letters("laht".chars());
        assert_eq!(o.view, View::Long);
        assert!(o.all && o.human && !o.reverse && !o.recursive);
        assert_eq!(o.sort, Sort::Time);
        assert_eq!(LsOptions::from_letters("l1".chars()).view, View::Names);
        assert_eq!(LsOptions::from_letters("1l".chars()).view, View::Long);
        assert_eq!(LsOptions::from_letters("tS".chars()).sort, Sort::Size);
        assert_eq!(LsOptions::from_letters("St".chars()).sort, Sort::Time);
        assert_eq!(LsOptions::from_letters([]), LsOptions::default());
        let o = LsOptions::from_letters("rR".chars());
        assert!(o.reverse && o.recursive);
    }

    #[test]
    fn orders() {
        let sorted = |letters: &str| {
            let mut r = rows();
            sort_rows(&mut r, &LsOptions::from_letters(letters.chars()));
            names(&r).into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(sorted(""), ["a.txt", "b.txt", "c.txt", "dir"]);
        assert_eq!(sorted("r"), ["dir", "c.txt", "b.txt", "a.txt"]);
        // Newest first; equal times by name.
        assert_eq!(sorted("t"), ["b.txt", "c.txt", "dir", "a.txt"]);
        assert_eq!(sorted("tr"), ["a.txt", "dir", "c.txt", "b.txt"]);
        // Largest first; equal sizes by name.
        assert_eq!(sorted("S"), ["a.txt", "c.txt", "b.txt", "dir"]);
        assert_eq!(sorted("Sr"), ["dir", "b.txt", "c.txt", "a.txt"]);
    }

    #[test]
    fn line_formats() {
        let r = rows();
        let plain = Style::plain();
        let o = |letters: &str| LsOptions::from_letters(letters.chars());
        assert_eq!(format_row(&r[0], &o(""), &plain), "          10 b.txt");
        assert_eq!(format_row(&r[2], &o(""), &plain), "           0 dir/");
        assert_eq!(format_row(&r[0], &o("1"), &plain), "b.txt");
        assert_eq!(format_row(&r[2], &o("1"), &plain), "dir/");
        assert_eq!(
            format_row(&r[0], &o("l"), &plain),
            "-rw-r--r--           10 1970-01-01 00:05 UTC b.txt"
        );
        assert_eq!(
            format_row(&r[2], &o("l"), &plain),
            "drwxr-xr-x            0 1970-01-01 00:03 UTC dir/"
        );
        assert_eq!(
            format_row(&r[3], &o("l"), &plain),
            "-?????????           30 1970-01-01 00:05 UTC c.txt"
        );
        let big = entry("big", EntryKind::File, 1536, 0, Some(0o644));
        assert_eq!(
            format_row(&big, &o("lh"), &plain),
            "-rw-r--r--    1.5K 1970-01-01 00:00 UTC big"
        );
        // -h alone changes nothing: human sizes are for -l, as in sftp.
        assert_eq!(format_row(&big, &o("h"), &plain), "        1536 big");
        let odd = entry("a\x1b[2Jb", EntryKind::File, 1, 0, None);
        assert!(!format_row(&odd, &o(""), &plain).contains('\x1b'));
    }

    #[test]
    fn modes_as_ls_writes_them() {
        assert_eq!(mode_string(EntryKind::File, Some(0o644)), "-rw-r--r--");
        assert_eq!(mode_string(EntryKind::Dir, Some(0o755)), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::Symlink, Some(0o777)), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::File, Some(0)), "----------");
        assert_eq!(mode_string(EntryKind::File, Some(0o4755)), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::File, Some(0o2644)), "-rw-r-Sr--");
        assert_eq!(mode_string(EntryKind::Dir, Some(0o1777)), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Dir, Some(0o1776)), "drwxrwxrwT");
        assert_eq!(mode_string(EntryKind::Other, Some(0o600)), "?rw-------");
        assert_eq!(mode_string(EntryKind::File, None), "-?????????");
        assert_eq!(mode_string(EntryKind::Dir, None), "d?????????");
    }

    #[test]
    fn mtime_is_formatted_in_utc_and_says_so() {
        assert_eq!(format_mtime(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_mtime(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(format_mtime(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_mtime(-60), "1969-12-31 23:59 UTC");
    }
}
