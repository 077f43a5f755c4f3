//! The progress bar of one transfer: an `indicatif` bar on stderr, shown
//! only once a transfer lasts, and the [`Progress`] the client reports to
//! (which also carries the Ctrl-C flag it polls).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Progress;

use super::render::escape_for_terminal;

/// How often the progress bar may redraw, per second.
const PROGRESS_HZ: u8 = 10;
/// A transfer shorter than this shows no progress at all.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// The progress of one transfer as an `indicatif` bar on stderr: name,
/// bar, bytes, rate and ETA. The bar exists (hidden, so its rate estimate
/// sees every byte) from the start of the transfer and is drawn only once
/// the transfer has lasted [`PROGRESS_DELAY`], so quick ones leave no
/// trace. Also carries the Ctrl-C flag the client polls.
pub(crate) struct TransferBar {
    enabled: bool,
    coloured: bool,
    name: String,
    bar: Option<ProgressBar>,
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
            started: Instant::now(),
            shown: false,
            interrupt,
        }
    }

    fn style(&self) -> ProgressStyle {
        let template = if self.coloured {
            "{msg:.bold} [{bar:24.green/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{msg} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }
}

impl Progress for TransferBar {
    fn start(&mut self, total: u64, done: u64) {
        self.started = Instant::now();
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(self.style())
            .with_message(self.name.clone())
            .with_position(done);
        bar.reset_eta();
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.set_position(done);
        if !self.shown && self.started.elapsed() >= PROGRESS_DELAY {
            self.shown = true;
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(PROGRESS_HZ));
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
