//! Ctrl-C and the shell: the flag a first SIGINT sets to cancel the
//! transfer under way (a second one leaves `ftx`), the guard that scopes
//! that flag to one command, and the guard that makes `ftx` ignore SIGINT
//! and SIGQUIT while a local `!COMMAND` owns the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag that the first SIGINT sets; a second SIGINT while it is set
/// takes the default action (ends the process). `None` when the handlers
/// could not be installed.
pub(super) fn cancel_flag() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    // Order matters: the default action must see the flag as it was
    // before this signal set it.
    let sigint = signal_hook::consts::SIGINT;
    let armed = signal_hook::flag::register_conditional_default(sigint, Arc::clone(&flag))
        .and_then(|_| signal_hook::flag::register(sigint, Arc::clone(&flag)));
    armed.is_ok().then_some(flag)
}

/// Clears the Ctrl-C flag when a command starts and when it ends, so a
/// Ctrl-C counts for the command it was pressed during only.
pub(super) struct CtrlC(Option<Arc<AtomicBool>>);

impl CtrlC {
    pub(super) fn arm(flag: Option<Arc<AtomicBool>>) -> CtrlC {
        if let Some(f) = &flag {
            f.store(false, Ordering::Relaxed);
        }
        CtrlC(flag)
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            f.store(false, Ordering::Relaxed);
        }
    }
}

/// SIGINT and SIGQUIT ignored by ftx while a local command runs (the
/// terminal sends them to both); the previous handlers come back on drop.
pub(super) use crate::sys::IgnoreInterrupts;
