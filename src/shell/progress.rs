//! The progress bar of one transfer: an `indicatif` bar on stderr, shown
//! only once a transfer lasts, and the [`Progress`] the client reports to
//! (which also carries the Ctrl-C flag it polls).
//!
//! The bar's rate is the summary's: the bytes this transfer moved over the
//! time since it began, on the bar's clock ([`TransferBar::elapsed`]),
//! formatted by [`format_rate`]; its ETA follows from that rate. A moving
//! estimate would show another number than the summary printed a moment
//! later.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

use crate::client::Progress;

use super::render::{escape_for_terminal, format_rate};

/// How often the progress bar may redraw, per second.
const PROGRESS_HZ: u8 = 10;
/// A transfer shorter than this shows no progress at all.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// The progress of one transfer as an `indicatif` bar on stderr: name,
/// percentage, bar, bytes, rate and ETA. The bar exists (hidden) from the
/// start of the transfer and is drawn only once the transfer has lasted
/// [`PROGRESS_DELAY`], so quick ones leave no trace; it is cleared when
/// the transfer ends, however it ends. Also carries the Ctrl-C flag the
/// client polls.
pub(crate) struct TransferBar {
    enabled: bool,
    coloured: bool,
    name: String,
    bar: Option<ProgressBar>,
    /// When the transfer began (the bar is made just before the client is
    /// asked): the clock of the bar's rate and of the summary's.
    clock: Instant,
    /// When the data began to flow, for [`PROGRESS_DELAY`].
    started: Instant,
    shown: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl TransferBar {
    pub(crate) fn new(
        enabled: bool,
        coloured: bool,
        name: &str,
        interrupt: Option<Arc<AtomicBool>>,
    ) -> TransferBar {
        TransferBar {
            enabled,
            coloured,
            name: escape_for_terminal(name),
            bar: None,
            clock: Instant::now(),
            started: Instant::now(),
            shown: false,
            interrupt,
        }
    }

    /// Time since the transfer began: what the summary divides by.
    pub(crate) fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The bar's look; `from` is where the transfer started (a resume's
    /// offset), so the rate counts only the bytes moved now.
    fn style(&self, from: u64) -> ProgressStyle {
        let template = if self.coloured {
            "{msg:.bold} {percent:>3}% [{bar:24.green/blue}] {bytes}/{total_bytes} {rate} ETA {left}"
        } else {
            "{msg} {percent:>3}% [{bar:24}] {bytes}/{total_bytes} {rate} ETA {left}"
        };
        let clock = self.clock;
        let moved = move |state: &ProgressState| state.pos().saturating_sub(from);
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                move |state: &ProgressState, w: &mut dyn fmt::Write| {
                    let rate = format_rate(moved(state), clock.elapsed());
                    let _ = w.write_str(rate.as_deref().unwrap_or("-"));
                },
            )
            .with_key(
                "left",
                move |state: &ProgressState, w: &mut dyn fmt::Write| {
                    let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                    let _ = w.write_str(&eta(moved(state), left, clock.elapsed()));
                },
            )
            .progress_chars("=> ")
    }
}

/// Columns the bar leaves free at the right of the terminal: room for the
/// `^C` the terminal echoes when Ctrl-C cancels the transfer (and a
/// second one, after which ftx replaces the line with what it kept). `indicatif`
/// pads its line to the full width and leaves the cursor at its end; an
/// echo there would wrap to a new line, and clearing the bar would then
/// clear that line and leave the bar on screen.
const ECHO_ROOM: u16 = 5;

/// Standard error as `indicatif` draws on it, [`ECHO_ROOM`] columns
/// narrower than the terminal.
#[derive(Debug)]
struct NarrowStderr;

impl NarrowStderr {
    fn size() -> (u16, u16) {
        match rustix::termios::tcgetwinsize(std::io::stderr()) {
            Ok(ws) if ws.ws_col > 0 && ws.ws_row > 0 => (ws.ws_col, ws.ws_row),
            _ => (80, 24),
        }
    }

    fn write(text: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(text.as_bytes())
    }
}

impl TermLike for NarrowStderr {
    fn width(&self) -> u16 {
        Self::size().0.saturating_sub(ECHO_ROOM).max(1)
    }

    fn height(&self) -> u16 {
        Self::size().1
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => Self::write(&format!("\x1b[{n}A")),
        }
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => Self::write(&format!("\x1b[{n}B")),
        }
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => Self::write(&format!("\x1b[{n}C")),
        }
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => Self::write(&format!("\x1b[{n}D")),
        }
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        Self::write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        Self::write(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Self::write("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The time left at the average rate so far: `42s`, `3m05s`, `1h02m`;
/// `-` before anything moved.
fn eta(moved: u64, left: u64, elapsed: Duration) -> String {
    if left == 0 {
        return "0s".to_owned();
    }
    if moved == 0 {
        return "-".to_owned();
    }
    let secs = (left as f64 * elapsed.as_secs_f64() / moved as f64).ceil() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

impl Progress for TransferBar {
    fn start(&mut self, total: u64, done: u64) {
        self.started = Instant::now();
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(self.style(done))
            .with_message(self.name.clone())
            .with_position(done);
        // A restarted transfer starts again: the old bar goes, cleared.
        if let Some(old) = self.bar.replace(bar) {
            old.finish_and_clear();
        }
        self.shown = false;
    }

    fn advance(&mut self, done: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.set_position(done);
        if !self.shown && self.started.elapsed() >= PROGRESS_DELAY {
            self.shown = true;
            let stderr = Box::new(NarrowStderr);
            bar.set_draw_target(ProgressDrawTarget::term_like_with_hz(stderr, PROGRESS_HZ));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_the_average_rate() {
        let s = Duration::from_secs;
        assert_eq!(eta(0, 10, s(1)), "-");
        assert_eq!(eta(10, 0, s(1)), "0s");
        assert_eq!(eta(10, 10, s(1)), "1s");
        assert_eq!(eta(1, 185, s(1)), "3m05s");
        assert_eq!(eta(1, 3720, s(1)), "1h02m");
    }
}
