//! Formatting helpers for user-visible text that need no network: human
//! sizes, escaping of untrusted names before they reach a terminal, and the
//! colour [`Style`].
//!
//! Colour is decided once at start ([`Style::for_stdout`],
//! [`Style::for_stderr`]) and then passed around; nothing here reads the
//! environment or the terminal later, and nothing here writes anywhere:
//! these functions only build strings. Colour codes come from `colored`'s
//! colour table but are applied by us, so `colored`'s own global switches
//! never change what a `Style` produces.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use colored::Color;

/// Units for [`format_size_human`], each 1024 times the previous.
const SIZE_UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];

/// Formats a byte count for people: `512B`, `1.0K`, `12.3M`, `16.0E`
/// (binary units, one decimal).
pub fn format_size_human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Compare the value as it will be printed so 1023.97K shows as 1.0M.
    while (value * 10.0).round() / 10.0 >= 1024.0 && unit + 1 < SIZE_UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", SIZE_UNITS[unit])
}

/// Below this a transfer's rate is not shown: it measures the round trip
/// and the clock, not the throughput (as for a file of a few bytes).
pub const RATE_MIN_TIME: Duration = Duration::from_millis(10);

/// Units for [`format_rate`], each 1024 times the previous.
const RATE_UNITS: [&str; 5] = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"];

/// The rate of a transfer that moved `bytes` in `elapsed`, the one way
/// both the progress bar and the summary compute it: bytes over elapsed
/// time, in binary units chosen to fit (`512 B/s`, `3.4 KiB/s`,
/// `324.8 MiB/s`). `None` under [`RATE_MIN_TIME`].
pub fn format_rate(bytes: u64, elapsed: Duration) -> Option<String> {
    if elapsed < RATE_MIN_TIME {
        return None;
    }
    let mut value = bytes as f64 / elapsed.as_secs_f64();
    if value.round() < 1024.0 {
        return Some(format!("{value:.0} B/s"));
    }
    let mut unit = 0;
    // Compare the value as it will be printed: 1023.97 KiB/s is 1.0 MiB/s.
    while (value * 10.0).round() / 10.0 >= 1024.0 && unit + 1 < RATE_UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    Some(format!("{value:.1} {}", RATE_UNITS[unit]))
}

/// A transfer's duration: `7 ms` under a second, `1.23 s` under a
/// minute, then `2 min 05 s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 1.0 {
        // Never `0 ms`: something did take time.
        format!("{} ms", elapsed.as_millis().max(1))
    } else if secs < 60.0 {
        format!("{secs:.2} s")
    } else {
        let whole = elapsed.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// Whether `c` must not reach a terminal as is: C0 controls, DEL, C1
/// controls, and the Unicode line separators and bidi overrides that can
/// make a name display as something else.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Replaces control characters (C0 incl. ESC, DEL, C1) and bidi/line
/// separator characters with visible escapes (`\n`, `\t`, `\r`, `\x1b`,
/// `\u{9b}`), so a hostile file name cannot drive the terminal. Everything
/// else, backslashes included, is kept.
pub fn escape_for_terminal(text: &str) -> String {
    escape_except(text, |_| false)
}

/// Like [`escape_for_terminal`] but keeps tabs, for echoing lines the user
/// wrote (a batch line indented with a tab echoes as written).
pub fn escape_line_for_terminal(text: &str) -> String {
    escape_except(text, |c| c == '\t')
}

fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> String {
    if !text.chars().any(|c| is_dangerous(c) && !keep(c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_dangerous(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

/// A name ready for a message: escaped for the terminal and put in single
/// quotes, as in `error: get: 'a.txt' not found on server`.
pub fn quoted_name(name: &str) -> String {
    format!("'{}'", escape_for_terminal(name))
}

/// The start of a message about `name`: `CMD: 'NAME'`, or just `CMD`
/// when the name is empty (`ls` of the root), never `CMD: ''`.
pub fn subject(cmd: &str, name: &str) -> String {
    if name.is_empty() {
        cmd.to_owned()
    } else {
        format!("{cmd}: {}", quoted_name(name))
    }
}

/// Whether colour should be used for a stream: only on a terminal, and
/// never when `NO_COLOR` is set (to anything, as no-color.org says, but an
/// empty value counts as unset).
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Colours for user-visible output, on or off for one stream, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// A style that colours when `colour` is true.
    pub fn new(colour: bool) -> Style {
        Style { colour }
    }

    /// A style that never colours (tests, files, pipes).
    pub fn plain() -> Style {
        Style { colour: false }
    }

    /// The style for standard output: colour only on a terminal without `NO_COLOR`.
    pub fn for_stdout() -> Style {
        Style::new(colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
    }

    /// The style for standard error: colour only on a terminal without `NO_COLOR`.
    pub fn for_stderr() -> Style {
        Style::new(colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
    }

    /// Whether this style colours at all.
    pub fn is_coloured(&self) -> bool {
        self.colour
    }

    fn paint(&self, text: &str, color: Color, bold: bool) -> String {
        if !self.colour {
            return text.to_string();
        }
        let bold = if bold { "1;" } else { "" };
        format!("\x1b[{bold}{}m{text}\x1b[0m", color.to_fg_str())
    }

    /// The `error:` prefix of every failure line (bold red when coloured).
    pub fn error_prefix(&self) -> String {
        self.paint("error:", Color::Red, true)
    }

    /// The `warning:` prefix (bold yellow when coloured).
    pub fn warning_prefix(&self) -> String {
        self.paint("warning:", Color::Yellow, true)
    }

    /// A success message (green when coloured).
    pub fn success(&self, text: &str) -> String {
        self.paint(text, Color::Green, false)
    }

    /// A directory name in a listing (bold blue when coloured).
    pub fn dir(&self, text: &str) -> String {
        self.paint(text, Color::Blue, true)
    }

    /// The `ftx> ` prompt (bold green when coloured).
    pub fn prompt(&self, text: &str) -> String {
        self.paint(text, Color::Green, true)
    }

    /// Secondary text such as hints (dimmed when coloured).
    pub fn dim(&self, text: &str) -> String {
        if self.colour {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn rates_and_durations_fit_their_size() {
        let ms = Duration::from_millis;
        assert_eq!(format_rate(12, ms(9)), None);
        assert_eq!(format_rate(12, ms(10)).as_deref(), Some("1.2 KiB/s"));
        assert_eq!(format_rate(5, ms(10)).as_deref(), Some("500 B/s"));
        assert_eq!(format_rate(3500, ms(1000)).as_deref(), Some("3.4 KiB/s"));
        assert_eq!(format_rate(1 << 20, ms(1000)).as_deref(), Some("1.0 MiB/s"));
        assert_eq!(
            format_rate(1024 * 1024 - 1, ms(1000)).as_deref(),
            Some("1.0 MiB/s")
        );
        let big = (324.8 * 1024.0 * 1024.0 * 0.92) as u64;
        assert_eq!(format_rate(big, ms(920)).as_deref(), Some("324.8 MiB/s"));
        assert_eq!(format_rate(5 << 40, ms(1000)).as_deref(), Some("5.0 TiB/s"));
        assert_eq!(format_elapsed(Duration::ZERO), "1 ms");
        assert_eq!(format_elapsed(ms(7)), "7 ms");
        assert_eq!(format_elapsed(ms(999)), "999 ms");
        assert_eq!(format_elapsed(ms(1000)), "1.00 s");
        assert_eq!(format_elapsed(ms(92_000)), "1 min 32 s");
        assert_eq!(format_elapsed(ms(59_994)), "59.99 s");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(format_size_human(0), "0B");
        assert_eq!(format_size_human(1023), "1023B");
        assert_eq!(format_size_human(1024), "1.0K");
        assert_eq!(format_size_human(1536), "1.5K");
        assert_eq!(format_size_human(12_900_000), "12.3M");
        assert_eq!(format_size_human(1024 * 1024 - 1), "1.0M");
        assert_eq!(format_size_human(1 << 30), "1.0G");
        assert_eq!(format_size_human(5 << 40), "5.0T");
        assert_eq!(format_size_human(u64::MAX), "16.0E");
    }

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(escape_for_terminal("a.txt"), "a.txt");
        assert_eq!(escape_for_terminal("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_for_terminal("l1\nl2\r\t"), "l1\\nl2\\r\\t");
        assert_eq!(escape_for_terminal("\0\x7f"), "\\x00\\x7f");
        assert_eq!(escape_for_terminal("c1\u{9b}x"), "c1\\u{9b}x");
        assert_eq!(escape_for_terminal("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(escape_for_terminal(r"back\slash é 文"), r"back\slash é 文");
    }

    #[test]
    fn line_escape_keeps_tabs() {
        assert_eq!(escape_line_for_terminal("\tput a\x1b"), "\tput a\\x1b");
    }

    #[test]
    fn quoted_names_are_escaped() {
        assert_eq!(quoted_name("a\nb"), "'a\\nb'");
    }

    #[test]
    fn an_empty_name_is_left_out() {
        assert_eq!(subject("ls", "d\x1b"), "ls: 'd\\x1b'");
        assert_eq!(subject("ls", ""), "ls");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn plain_style_adds_nothing() {
        let s = Style::plain();
        assert_eq!(s.error_prefix(), "error:");
        assert_eq!(s.success("ok"), "ok");
        assert_eq!(s.dir("d/"), "d/");
        assert_eq!(s.dim("hint"), "hint");
        assert!(!s.is_coloured());
    }

    #[test]
    fn coloured_style_wraps_in_ansi() {
        let s = Style::new(true);
        assert_eq!(s.error_prefix(), "\x1b[1;31merror:\x1b[0m");
        assert_eq!(s.success("ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(s.dir("d/"), "\x1b[1;34md/\x1b[0m");
    }
}
