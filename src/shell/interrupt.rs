//! Ctrl-C and the shell: the flag a first SIGINT sets to cancel the
//! transfer under way (a second one leaves `ftx`), the guard that scopes
//! that flag to one command, and the guard that makes `ftx` ignore SIGINT
//! and SIGQUIT while a local `!COMMAND` owns the terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;

/// What a second Ctrl-C leaves behind, said as `ftx` ends: set by the
/// executor while a transfer runs (the part kept and the command that
/// continues it), `None` otherwise.
pub(super) type KeptNote = Arc<Mutex<Option<String>>>;

/// A flag that the first SIGINT sets; a second SIGINT while it is set
/// prints the [`KeptNote`], if any, and then takes the default action
/// (ends the process as Ctrl-C does). The signals are read by a thread of
/// their own, so this works while the command waits on a server that
/// stopped answering. `None` when the handler could not be installed.
pub(super) fn cancel_flag(note: KeptNote) -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new([SIGINT]).ok()?;
    let seen = Arc::clone(&flag);
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            for _ in signals.forever() {
                if !seen.swap(true, Ordering::SeqCst) {
                    continue;
                }
                let text = note.lock().ok().and_then(|n| n.clone());
                if let Some(text) = text {
                    let mut err = std::io::stderr().lock();
                    // On a terminal the line holds the echoed `^C`s and
                    // maybe the progress bar: replace it.
                    let clear = if err.is_terminal() { "\r\x1b[2K" } else { "" };
                    let _ = writeln!(err, "{clear}{text}");
                    let _ = err.flush();
                }
                let _ = signal_hook::low_level::emulate_default_handler(SIGINT);
                std::process::exit(130);
            }
        });
    spawned.is_ok().then_some(flag)
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
