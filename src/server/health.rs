//! Health checks for load balancers (`ftxd --health ADDR:PORT`): a second
//! listener on the event loop, plain TCP. Each connection gets one
//! HTTP/1.0 answer and is closed: `200 OK` (body `ok`) while the storage
//! answers, `503 Service Unavailable` with a one-line reason otherwise.
//! HAProxy's plain TCP check only sees that the port accepts, which a
//! node whose storage hangs still does; `option httpchk` reads this.
//!
//! "The storage answers": a [`Probe`] of the served root (open it by its
//! path, `fstatat` it, create, write and remove a hidden file; only the
//! first two with `--read-only`) runs on a disk helper every
//! [`PROBE_INTERVAL`], never on the loop, and the last one finished in
//! time and succeeded. A probe out longer than the storage timeout means
//! 503 at once, not a hung check; no second probe starts while one is
//! out (a hung storage holds one helper for it, not one a second).
//!
//! What it cannot see: a storage call made on the loop itself (opening
//! or creating a file, writing upload data, a rename, reading a
//! directory) that hangs freezes the loop, and this listener with it.
//! Then a check gets no answer at all, which a balancer also counts as a
//! failure: the node is taken out, but its open transfers wait.
//!
//! A check's request is read (any bytes, at most [`MAX_REQUEST`]) only to
//! be polite: the answer goes once a blank line, the end of the stream,
//! that many bytes, or [`REQUEST_WAIT`] came, whichever first.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::disk::{Disk, Job, Outcome};
use crate::partial::TEMP_TAG;
use crate::proto::limits::RESERVED_PREFIX;

/// The health listener's token in the loop.
pub(crate) const LISTENER: Token = Token(usize::MAX - 5);
/// The owner of the probes' disk jobs (no connection has it).
pub(crate) const PROBE_OWNER: Token = Token(usize::MAX - 6);
/// Health-check connections take the tokens from here on, one per slot
/// of [`MAX_CHECKS`]; far above any connection's slab key.
const FIRST_CHECK: usize = usize::MAX - 1024;
/// Checks answered at once at most; a newcomer beyond them is closed
/// unanswered (a balancer makes one every second or two).
const MAX_CHECKS: usize = 64;
/// How often the storage is probed while the health listener exists.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a check's request is waited for: a balancer sends it at
/// once, a bare TCP check sends nothing.
const REQUEST_WAIT: Duration = Duration::from_millis(100);
/// Bytes of a request read at most (the rest is not looked at).
const MAX_REQUEST: usize = 1024;
/// Bytes written into the probe file.
const PROBE_BYTES: &[u8] = b"ftxd health probe\n";

/// A look at the storage behind the root, for a disk helper.
#[derive(Debug)]
pub(crate) struct Probe {
    root: PathBuf,
    /// Create, write and remove a file too (not with `--read-only`).
    write: bool,
}

impl Probe {
    /// Runs the probe (blocking calls: on a disk helper). The root is
    /// opened by its path, not through the store's descriptor, so a file
    /// system unmounted or replaced under it is seen.
    pub(crate) fn run(&self) -> io::Result<()> {
        use rustix::fs::{openat, statat, unlinkat, AtFlags, Mode, OFlags};
        let dir = rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        statat(&dir, c".", AtFlags::empty())?;
        if !self.write {
            return Ok(());
        }
        let name = probe_name();
        let fd = openat(
            &dir,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let written = std::fs::File::from(fd).write_all(PROBE_BYTES);
        let removed = unlinkat(&dir, &name, AtFlags::empty());
        written?;
        Ok(removed?)
    }
}

/// A fresh name for the probe file: hidden (the reserved prefix, never a
/// client's name nor listed) and tagged as a temporary file, so the
/// sweep of abandoned files removes one a crash left behind; pid and
/// clock keep several ftxd on one root apart.
fn probe_name() -> CString {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        "{RESERVED_PREFIX}{TEMP_TAG}health-{}-{nanos:x}",
        std::process::id()
    );
    // ASCII letters, digits and dashes only.
    CString::new(name).unwrap_or_default()
}

/// One health check being answered.
struct Check {
    stream: TcpStream,
    opened: Instant,
    /// Request bytes read so far.
    read: usize,
    /// The last bytes read, to see the blank line that ends a request.
    tail: [u8; 4],
}

/// The health listener, its checks and the probes.
pub(crate) struct Health {
    listener: TcpListener,
    probe_root: PathBuf,
    write: bool,
    /// The storage timeout: a probe out longer means 503.
    limit: Duration,
    /// The probe out (its job number, and since when), if any.
    out: Option<(u64, Instant)>,
    /// The last probe that came back: when, if it succeeded; else why not.
    last: Option<Result<Instant, String>>,
    /// When the next probe starts (once none is out).
    next_probe: Instant,
    /// What the last answer said, to log changes only.
    was_ok: Option<bool>,
    checks: Slab<Check>,
}

impl Health {
    /// The health listener (already bound), registered with `registry`;
    /// probes of `root` (writing unless `read_only`) start at once.
    pub(crate) fn new(
        listener: std::net::TcpListener,
        registry: &Registry,
        root: PathBuf,
        read_only: bool,
        limit: Duration,
        now: Instant,
    ) -> io::Result<Health> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Health {
            listener,
            probe_root: root,
            write: !read_only,
            limit,
            out: None,
            last: None,
            next_probe: now,
            was_ok: None,
            checks: Slab::new(),
        })
    }

    /// Whether `token` is one of the health checks'.
    pub(crate) fn owns(token: Token) -> bool {
        (FIRST_CHECK..FIRST_CHECK + MAX_CHECKS).contains(&token.0)
    }

    /// Accepts waiting checks; beyond [`MAX_CHECKS`] they are closed.
    pub(crate) fn accept_all(&mut self, registry: &Registry, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.add(stream, peer, registry, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the next turn
                    // tries again (the listener stays readable).
                    debug!("health: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn add(
        &mut self,
        mut stream: TcpStream,
        peer: std::net::SocketAddr,
        registry: &Registry,
        now: Instant,
    ) {
        if self.checks.len() >= MAX_CHECKS {
            // Answered at once rather than dropped: whoever holds many
            // slow checks open must not make the balancer's checks fail.
            // A few hundred bytes fit any socket's buffer.
            debug!("health: {peer}: many checks at once: answered without reading");
            // What came is read first, so the close is no reset.
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write(&http_reply(&self.status(now)));
            return;
        }
        let entry = self.checks.vacant_entry();
        let token = Token(FIRST_CHECK + entry.key());
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            debug!("health: {peer}: cannot register: {e}");
            return;
        }
        entry.insert(Check {
            stream,
            opened: now,
            read: 0,
            tail: [0; 4],
        });
        // Its request may be there already.
        self.ready(token, registry, now);
    }

    /// A check's socket is readable: reads what came; answers once the
    /// request is in (or the stream ended, or too much came).
    pub(crate) fn ready(&mut self, token: Token, registry: &Registry, now: Instant) {
        let key = token.0.wrapping_sub(FIRST_CHECK);
        let Some(check) = self.checks.get_mut(key) else {
            return;
        };
        if read_request(check) {
            self.answer(key, registry, now);
        }
    }

    /// Answers the checks whose request did not come within
    /// [`REQUEST_WAIT`], and starts a probe when one is due.
    pub(crate) fn tick(&mut self, disk: &mut Disk, registry: &Registry, now: Instant) {
        let late: Vec<usize> = self
            .checks
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.opened) >= REQUEST_WAIT)
            .map(|(key, _)| key)
            .collect();
        for key in late {
            self.answer(key, registry, now);
        }
        if self.out.is_none() && now >= self.next_probe {
            let probe = Probe {
                root: self.probe_root.clone(),
                write: self.write,
            };
            let job = disk.submit(PROBE_OWNER, Job::Probe(probe));
            self.out = Some((job, now));
        }
    }

    /// When [`Health::tick`] has something to do next.
    pub(crate) fn next_deadline(&self) -> Instant {
        let probe = match self.out {
            // The moment a probe out becomes late, the answer changes;
            // its outcome wakes the loop by itself.
            Some((_, since)) => since + self.limit + Duration::from_millis(1),
            None => self.next_probe,
        };
        self.checks
            .iter()
            .map(|(_, c)| c.opened + REQUEST_WAIT)
            .fold(probe, Instant::min)
    }

    /// A disk job of [`PROBE_OWNER`] came back.
    pub(crate) fn probe_done(&mut self, job: u64, outcome: Outcome, now: Instant) {
        if self.out.map(|(j, _)| j) != Some(job) {
            return;
        }
        self.out = None;
        self.next_probe = now + PROBE_INTERVAL;
        self.last = Some(match outcome {
            Outcome::Probed(Ok(())) => Ok(now),
            Outcome::Probed(Err(e)) => Err(format!("storage probe failed: {e}")),
            other => Err(format!("storage probe: unexpected outcome {other:?}")),
        });
        self.note(now);
    }

    /// The probe out passed the storage timeout (the disk forgot it): it
    /// stays out, and no other starts, until it comes back.
    pub(crate) fn probe_expired(&mut self, now: Instant) {
        self.note(now);
    }

    /// Logs a change of the answer.
    fn note(&mut self, now: Instant) {
        let status = self.status(now);
        let ok = status.is_ok();
        if self.was_ok == Some(ok) {
            return;
        }
        match &status {
            Ok(()) => info!("health: the storage answers"),
            Err(why) => warn!("health: answering 503: {why}"),
        }
        self.was_ok = Some(ok);
    }

    /// What a check is told now: `Ok` (200), or the reason for a 503.
    fn status(&self, now: Instant) -> Result<(), String> {
        status(
            self.out.map(|(_, since)| since),
            self.last.as_ref(),
            self.limit,
            now,
        )
    }

    /// Writes the answer to check `key` and closes it.
    fn answer(&mut self, key: usize, registry: &Registry, now: Instant) {
        let Some(mut check) = self.checks.try_remove(key) else {
            return;
        };
        let reply = http_reply(&self.status(now));
        // A few hundred bytes into an empty socket buffer: one write. A
        // check that cannot take them is not waited for.
        if let Err(e) = check.stream.write_all(&reply) {
            debug!("health: cannot answer: {e}");
        }
        let _ = registry.deregister(&mut check.stream);
        super::conn::linger_close(&mut check.stream);
    }

    /// Closes the checks still open (shutdown).
    pub(crate) fn close_all(&mut self, registry: &Registry) {
        for mut check in self.checks.drain() {
            let _ = registry.deregister(&mut check.stream);
        }
    }
}

/// The answer at `now`, from when the probe out (if any) started, the
/// last probe that came back (when it succeeded, or why it failed) and
/// the storage timeout `limit`.
fn status(
    out_since: Option<Instant>,
    last: Option<&Result<Instant, String>>,
    limit: Duration,
    now: Instant,
) -> Result<(), String> {
    if out_since.is_some_and(|since| now.saturating_duration_since(since) > limit) {
        return Err(format!(
            "the storage did not answer within {} s",
            limit.as_secs()
        ));
    }
    match last {
        None => Err("no storage probe has finished yet".to_owned()),
        Some(Err(why)) => Err(why.clone()),
        // No probe even started since (the helpers could not take one).
        Some(Ok(at)) if now.saturating_duration_since(*at) > limit + 2 * PROBE_INTERVAL => {
            Err(format!(
                "no storage probe succeeded for {} s",
                now.saturating_duration_since(*at).as_secs()
            ))
        }
        Some(Ok(_)) => Ok(()),
    }
}

/// Reads what a check sent; true when it is time to answer: a blank
/// line ended the request, the stream ended or failed, or
/// [`MAX_REQUEST`] bytes came.
fn read_request(check: &mut Check) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match check.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                check.read += n;
                for &b in &buf[..n] {
                    check.tail = [check.tail[1], check.tail[2], check.tail[3], b];
                }
                if check.tail == *b"\r\n\r\n"
                    || check.tail[2..] == *b"\n\n"
                    || check.read >= MAX_REQUEST
                {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// The HTTP/1.0 answer for `status`.
fn http_reply(status: &Result<(), String>) -> Vec<u8> {
    let (line, body) = match status {
        Ok(()) => ("200 OK", "ok\n".to_owned()),
        Err(why) => (
            "503 Service Unavailable",
            format!("{}\n", why.replace(['\r', '\n'], " ")),
        ),
    };
    format!(
        "HTTP/1.0 {line}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_http_with_a_one_line_reason() {
        let ok = String::from_utf8(http_reply(&Ok(()))).unwrap();
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
        assert!(ok.contains("Content-Length: 3\r\n"), "{ok}");
        let bad = String::from_utf8(http_reply(&Err("a\nb".to_owned()))).unwrap();
        assert!(bad.starts_with("HTTP/1.0 503 Service Unavailable\r\n"));
        assert!(bad.ends_with("\r\n\r\na b\n"), "{bad}");
    }

    #[test]
    fn the_answer_follows_the_probes() {
        let t0 = Instant::now();
        let limit = Duration::from_secs(2);
        let at = |ms| t0 + Duration::from_millis(ms);
        let ok: Result<Instant, String> = Ok(t0);
        // Nothing finished yet: not healthy (a balancer's rise count waits).
        assert!(status(Some(t0), None, limit, at(10)).is_err());
        assert_eq!(status(None, Some(&ok), limit, at(10)), Ok(()));
        // A probe out, within the limit: the last success stands.
        assert_eq!(status(Some(at(1000)), Some(&ok), limit, at(2500)), Ok(()));
        // Past it: 503 at once, whatever came before.
        assert_eq!(
            status(Some(at(1000)), Some(&ok), limit, at(3100)),
            Err("the storage did not answer within 2 s".to_owned())
        );
        let failed = Err("storage probe failed: boom".to_owned());
        assert_eq!(
            status(None, Some(&failed), limit, at(10)),
            Err("storage probe failed: boom".to_owned())
        );
        // A success too old (no probe since) is no longer trusted.
        assert!(status(None, Some(&ok), limit, at(4100)).is_err());
    }

    #[test]
    fn a_probe_writes_and_removes_a_hidden_file() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Probe {
            root: dir.path().to_path_buf(),
            write: true,
        };
        probe.run().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let name = probe_name().into_string().unwrap();
        assert!(name.starts_with(".ftx-tmp-health-"), "{name}");
        // A root gone (unmounted, removed) fails the probe.
        let gone = Probe {
            root: dir.path().join("missing"),
            write: false,
        };
        assert_eq!(gone.run().unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_read_only_probe_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        // Not a directory: even the read-only probe fails.
        let probe = Probe {
            root: file,
            write: false,
        };
        assert!(probe.run().is_err());
        let probe = Probe {
            root: dir.path().to_path_buf(),
            write: false,
        };
        probe.run().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
