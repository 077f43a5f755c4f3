//! A pseudo-terminal driver for the interactive-shell tests: runs the real
//! `ftx` as the session leader of a fresh pty (so Ctrl-C typed into it is a
//! real SIGINT from the terminal driver), types keys, and waits for text
//! on the screen with a deadline. Written on `libc::openpty` instead of a
//! crate: it is forty lines and `libc` is already a dependency.
//!
//! Output is kept twice: raw (to look for colour codes) and with escape
//! sequences stripped (to look for words the way a person reads them).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{ftx_bin, signal, wait_timeout};

/// How long [`Pty::expect`] waits unless told otherwise.
pub const EXPECT_TIMEOUT: Duration = Duration::from_secs(20);

/// `ftx` running in a pseudo-terminal; killed by PID on drop if still alive.
pub struct Pty {
    master: File,
    child: Option<Child>,
    pid: u32,
    raw: Vec<u8>,
    /// How much of the stripped text [`Pty::expect`] has consumed.
    pos: usize,
    eof: bool,
}

impl Pty {
    /// Starts `ftx ARGS` in `cwd` on a new 200x50 pty with `TERM=xterm`,
    /// no `RUST_LOG`, and the given extra environment (`NO_COLOR` is
    /// removed unless listed there).
    pub fn spawn(args: &[&str], cwd: &Path, env: &[(&str, &Path)]) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: SCREEN_COLS as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; null name and termios
        // pointers are allowed; the winsize pointer is valid for the call.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here only.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        let mut cmd = Command::new(ftx_bin());
        let (extra, access_env) = super::ftx_access(args.first().copied().unwrap_or(""));
        cmd.args(args)
            .args(&extra)
            .envs(access_env)
            .current_dir(cwd)
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .stdin(dup(&slave))
            .stdout(dup(&slave))
            .stderr(dup(&slave));
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn ftx in a pty");
        drop(slave);
        Pty {
            pid: child.id(),
            master: File::from(master),
            child: Some(child),
            raw: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    /// Types `keys` (bytes as a terminal would send them).
    pub fn send(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("write to the pty");
        self.master.flush().ok();
    }

    /// Reads what is there, waiting at most `wait`. False at end of output.
    fn pump(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return true;
        }
        let mut buf = [0u8; 65536];
        match self.master.read(&mut buf) {
            // EIO: every slave descriptor is closed, the program is gone.
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                let chunk = &buf[..n];
                // Answer a cursor-position query as a terminal would.
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    self.send("\x1b[1;1R");
                }
                self.raw.extend_from_slice(chunk);
                true
            }
        }
    }

    /// Everything shown so far with escape sequences removed.
    pub fn text(&self) -> String {
        strip_escapes(&String::from_utf8_lossy(&self.raw))
    }

    /// What the screen shows now, as far as a small emulator of the
    /// cursor moves and erasures that ftx and its libraries use can tell:
    /// text written over earlier text replaces it, cleared lines are
    /// empty. For checking that something (a progress bar) was erased.
    pub fn screen(&self) -> String {
        render_screen(&String::from_utf8_lossy(&self.raw))
    }

    /// Everything shown so far, escape sequences included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Waits until `needle` appears after what earlier calls consumed, and
    /// consumes up to its end. Panics with the screen text after `timeout`.
    #[track_caller]
    pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.take_until(needle) {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || !self.pump((deadline - now).min(Duration::from_millis(200))) {
                // Take what may have arrived with the end.
                if let Some(found) = self.take_until(needle) {
                    return found;
                }
                if now >= deadline || self.eof {
                    panic!(
                        "waited for {needle:?}; the terminal showed, since the last match:\n{}",
                        self.text().get(self.pos..).unwrap_or("")
                    );
                }
            }
        }
    }

    /// Consumes the text up to the end of `needle` if it is there.
    fn take_until(&mut self, needle: &str) -> Option<String> {
        let text = self.text();
        let rest = text.get(self.pos..).unwrap_or("");
        let i = rest.find(needle)?;
        let found = rest[..i + needle.len()].to_owned();
        self.pos += i + needle.len();
        Some(found)
    }

    /// [`Pty::expect_within`] with [`EXPECT_TIMEOUT`].
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, EXPECT_TIMEOUT)
    }

    /// Waits for the program to end (reading its last output meanwhile).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        while !self.eof && Instant::now() < deadline {
            self.pump(Duration::from_millis(100));
        }
        let mut child = self.child.take().expect("child still there");
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_timeout(&mut child, left.max(Duration::from_millis(100))) {
            Some(status) => status,
            None => {
                signal(self.pid, libc::SIGKILL);
                let _ = child.wait();
                panic!("ftx did not exit; the terminal showed:\n{}", self.text());
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(self.pid, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

/// Removes CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL`) and two-byte
/// escape sequences, and carriage returns, leaving the words.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Columns of the pty [`Pty::spawn`] makes.
const SCREEN_COLS: usize = 200;

/// The screen `s` leaves (see [`Pty::screen`]): lines with trailing blanks
/// removed. Handles printable text, CR, LF, BS, CSI cursor moves (A B C D G
/// H), erasures (K J) and skips every other sequence.
pub fn render_screen(s: &str) -> String {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        while lines.len() <= row {
            lines.push(Vec::new());
        }
        match c {
            '\r' => col = 0,
            '\n' => row += 1,
            '\x08' => col = col.saturating_sub(1),
            '\x07' => {}
            '\x1b' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut fin = ' ';
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            fin = c;
                            break;
                        }
                        params.push(c);
                    }
                    let nums: Vec<usize> = params
                        .trim_start_matches('?')
                        .split(';')
                        .map(|p| p.parse().unwrap_or(0))
                        .collect();
                    let n = nums.first().copied().unwrap_or(0);
                    let line = &mut lines[row];
                    match fin {
                        'A' => row = row.saturating_sub(n.max(1)),
                        'B' => row += n.max(1),
                        'C' => col += n.max(1),
                        'D' => col = col.saturating_sub(n.max(1)),
                        'G' => col = n.saturating_sub(1),
                        'H' => {
                            row = n.saturating_sub(1);
                            col = nums.get(1).copied().unwrap_or(1).saturating_sub(1);
                        }
                        'K' => match n {
                            0 => line.truncate(col),
                            1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                            _ => line.clear(),
                        },
                        'J' => match n {
                            0 => {
                                line.truncate(col);
                                lines.truncate(row + 1);
                            }
                            _ => lines.iter_mut().for_each(Vec::clear),
                        },
                        _ => {}
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() => {}
            c => {
                // Past the last column the terminal wraps to the next line.
                if col >= SCREEN_COLS {
                    row += 1;
                    col = 0;
                    while lines.len() <= row {
                        lines.push(Vec::new());
                    }
                }
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .iter()
        .map(|l| l.iter().collect::<String>().trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
