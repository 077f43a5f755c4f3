//! The shutdown handle: lets a signal (SIGINT/SIGTERM) or a test stop the
//! event loop. Holds only a flag and the loop's waker; no I/O of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A clonable request to stop `ftxd`: the loop stops accepting, closes
/// every connection and returns.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Shared with the signal handlers of [`Shutdown::on_signals`].
    requested: Arc<AtomicBool>,
    signals: bool,
    waker: Mutex<Option<Arc<mio::Waker>>>,
}

impl Shutdown {
    /// A handle stopped only by [`Shutdown::trigger`] (tests, embedding).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A handle that SIGINT and SIGTERM trigger too (the `ftxd` binary).
    /// From now on they only ask for the stop, even before the loop runs
    /// (while the key is made, say): their default action would end ftxd
    /// at once, and a service manager's stop during the start would not
    /// be the clean exit it is later. The loop, once it runs, sees the
    /// request at its start and hears later signals itself.
    pub fn on_signals() -> Shutdown {
        let inner = Inner {
            signals: true,
            ..Inner::default()
        };
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // Failing leaves the default action: ftxd still stops.
            let _ = signal_hook::flag::register(signal, Arc::clone(&inner.requested));
        }
        Shutdown {
            inner: Arc::new(inner),
        }
    }

    /// Asks the loop to stop; safe from any thread, at any time.
    pub fn trigger(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        if let Some(waker) = self.lock().as_ref() {
            // A failed wake only delays the stop to the next wake-up.
            let _ = waker.wake();
        }
    }

    /// True once a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// True if the loop should listen for SIGINT/SIGTERM.
    pub(crate) fn wants_signals(&self) -> bool {
        self.inner.signals
    }

    /// Called by the loop once its waker exists. The loop checks
    /// [`Shutdown::is_requested`] after this, so a trigger that raced ahead
    /// of the waker is not lost.
    pub(crate) fn install_waker(&self, waker: Arc<mio::Waker>) {
        *self.lock() = Some(waker);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<mio::Waker>>> {
        self.inner
            .waker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
