//! ftxd's log lines on stderr. On a terminal or in a file they are
//! env_logger's (time, level, module; colour on a terminal only). When
//! stderr is the systemd journal (`JOURNAL_STREAM` names it), the journal
//! adds the time and the unit itself, so a line is only the message after
//! a `<N>` syslog priority prefix, which journald turns into the entry's
//! priority (`journalctl -p warning` works). Either way one event is one
//! line: a control character in a message (a client's file name may hold
//! a newline) is escaped, so no one can forge a log line.

use std::io::Write;
use std::os::fd::AsFd;

use ftx::server::config::Verbosity;

/// Installs the logger: `RUST_LOG` if set, else the level of `verbosity`.
pub fn init(verbosity: Verbosity) {
    let mut builder = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(verbosity.filter()),
    );
    if journal_has(&std::io::stderr()) {
        builder.format(|buf, record| {
            writeln!(
                buf,
                "<{}>{}",
                syslog_priority(record.level()),
                one_line(&record.args().to_string())
            )
        });
    } else {
        builder.format(|buf, record| {
            let style = buf.default_level_style(record.level());
            writeln!(
                buf,
                "[{} {style}{:<5}{style:#} {}] {}",
                buf.timestamp(),
                record.level(),
                record.target(),
                one_line(&record.args().to_string())
            )
        });
    }
    builder.init();
}

/// Whether `stream` is the journal connection systemd gave this process:
/// `JOURNAL_STREAM` is `DEVICE:INODE` of it, and must match the stream's
/// own (a child of a service inherits the variable with other streams).
pub fn journal_has(stream: &impl AsFd) -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(stream) else {
        return false;
    };
    // Both are u64 here, an unsigned long on some other targets.
    #[allow(clippy::unnecessary_cast)]
    let id = (stat.st_dev as u64, stat.st_ino as u64);
    value.to_str().and_then(parse_journal_stream) == Some(id)
}

/// `DEVICE:INODE` as systemd writes it (decimal).
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The syslog priority of a level, as sd-daemon(3) prefixes take it.
fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), so it is
/// one line and writes no terminal escapes.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("put 'a' stored"), "put 'a' stored");
        assert_eq!(one_line("put 'a\nb' x"), "put 'a\\nb' x");
        assert_eq!(one_line("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(one_line("tab\there é"), "tab\\there é");
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(syslog_priority(log::Level::Error), 3);
        assert_eq!(syslog_priority(log::Level::Warn), 4);
        assert_eq!(syslog_priority(log::Level::Info), 6);
        assert_eq!(syslog_priority(log::Level::Debug), 7);
    }

    #[test]
    fn journal_stream_values() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8:"), None);
        assert_eq!(parse_journal_stream("x:1"), None);
        assert_eq!(parse_journal_stream("812345"), None);
    }
}
