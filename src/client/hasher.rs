//! BLAKE3 for downloads, on a second thread once a download is large.
//!
//! A download's bytes must be received, written and hashed; on one thread
//! the hash is a third of the work (BLAKE3 ~0.35 s per GiB here against
//! the socket and file copies). [`DownloadHasher`] hashes the first
//! [`INLINE_LIMIT`] bytes inline (a small file is not worth a thread),
//! then leaves the rest to a helper thread that reads the bytes back from
//! the file being written (they are still in the page cache) and hashes
//! them while the caller receives and writes the next ones.
//!
//! Reading back, rather than handing each chunk over in memory, keeps the
//! receiving thread's working set to its one input buffer: measured here,
//! copying every chunk into buffers for the helper cost the receiving
//! thread more (cache misses on its own copies) than the hash it saved.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::partial::PrefixHashing;

/// Bytes hashed on the caller's thread before the helper starts.
pub const INLINE_LIMIT: u64 = 4 << 20;

/// The helper is told how far the file is written at most this often.
const NOTIFY_STEP: u64 = 1 << 20;

/// Bytes the helper hashes between two looks at the stop flag.
const STEP: u64 = 1 << 20;

/// The helper's read size: small enough to stay in its core's cache
/// (1 GiB gets, alternated: ~0.95 s with 128 KiB reads, ~1.12 s with
/// 256 KiB).
const READ_LEN: usize = 128 << 10;

/// The digest state of one download.
pub struct DownloadHasher {
    /// Bytes of the file written (and given to `update`) so far.
    absorbed: u64,
    mode: Mode,
}

enum Mode {
    /// Hashing here; the file to hand over to a helper, if it could be
    /// shared.
    Inline(Box<blake3::Hasher>, Option<File>),
    Helper(Helper),
}

struct Helper {
    /// Written up to here, as last told to the helper.
    told: u64,
    written: Option<Sender<u64>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<blake3::Hasher>>>,
}

impl DownloadHasher {
    /// A hasher for bytes written to `file` from `absorbed` on, having
    /// absorbed `prefix` (a resumed download's bytes already held) or
    /// nothing.
    pub fn new(prefix: blake3::Hasher, absorbed: u64, file: &File) -> DownloadHasher {
        DownloadHasher {
            absorbed,
            mode: Mode::Inline(Box::new(prefix), file.try_clone().ok()),
        }
    }

    /// Absorbs the next bytes of the file, which the caller has just
    /// written to it at the end of what was absorbed so far.
    pub fn update(&mut self, data: &[u8]) {
        let from = self.absorbed;
        self.absorbed += data.len() as u64;
        if let Mode::Inline(h, file) = &mut self.mode {
            if self.absorbed <= INLINE_LIMIT || file.is_none() {
                h.update(data);
                return;
            }
            let file = file.take().expect("checked above");
            match Helper::spawn(h, file, from) {
                Some(helper) => self.mode = Mode::Helper(helper),
                // No thread to be had: go on inline.
                None => {
                    h.update(data);
                    return;
                }
            }
        }
        if let Mode::Helper(helper) = &mut self.mode {
            helper.written_up_to(self.absorbed, false);
        }
    }

    /// The digest of everything absorbed; an error if the helper could not
    /// read the file back.
    pub fn finalize(self) -> io::Result<[u8; 32]> {
        match self.mode {
            Mode::Inline(h, _) => Ok(*h.finalize().as_bytes()),
            Mode::Helper(mut helper) => {
                helper.written_up_to(self.absorbed, true);
                Ok(*helper.join()?.finalize().as_bytes())
            }
        }
    }
}

impl Helper {
    /// Starts a thread that goes on from `state`, reading `file` from
    /// `from`; `None` if no thread can be started.
    fn spawn(state: &blake3::Hasher, file: File, from: u64) -> Option<Helper> {
        let (tx, rx) = mpsc::channel::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let mut hashing = PrefixHashing::resume(state.clone(), from, from).reading(READ_LEN);
        let thread = std::thread::Builder::new()
            .name("ftx-hash".into())
            .spawn(move || {
                for end in rx {
                    hashing.extend_to(end);
                    while !hashing.step(&file, STEP)? {
                        if stopped.load(Ordering::Relaxed) {
                            return Err(io::ErrorKind::Interrupted.into());
                        }
                    }
                }
                Ok(hashing.finish())
            })
            .ok()?;
        Some(Helper {
            told: from,
            written: Some(tx),
            stop,
            thread: Some(thread),
        })
    }

    /// The file is written up to `end`: tell the helper, at most every
    /// [`NOTIFY_STEP`] bytes unless `now`.
    fn written_up_to(&mut self, end: u64, now: bool) {
        if end > self.told && (now || end - self.told >= NOTIFY_STEP) {
            if let Some(tx) = &self.written {
                // A helper that stopped on an error reports it at join.
                let _ = tx.send(end);
            }
            self.told = end;
        }
    }

    fn join(&mut self) -> io::Result<blake3::Hasher> {
        self.written = None;
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the hashing thread failed")))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // An abandoned download: stop the helper and wait for it.
        self.stop.store(true, Ordering::Relaxed);
        self.written = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 4093) as u8).collect()
    }

    /// An empty file in a directory of its own (removed on drop).
    fn scratch() -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("part"))
            .unwrap();
        (dir, file)
    }

    /// Writes `data` from `from` on in chunks of `chunk` bytes, as a
    /// download does, and returns the digest.
    fn digest(data: &[u8], from: usize, chunk: usize) -> [u8; 32] {
        let (_dir, mut file) = scratch();
        file.write_all(&data[..from]).unwrap();
        let mut prefix = blake3::Hasher::new();
        prefix.update(&data[..from]);
        let mut h = DownloadHasher::new(prefix, from as u64, &file);
        for c in data[from..].chunks(chunk) {
            file.write_all(c).unwrap();
            h.update(c);
        }
        h.finalize().unwrap()
    }

    #[test]
    fn the_digest_is_blake3_of_the_whole_file_inline_or_on_the_helper() {
        let limit = INLINE_LIMIT as usize;
        let data = pattern(limit * 2 + 12_345);
        for len in [0, 1, limit - 1, limit, limit + 1, data.len()] {
            let want = *blake3::hash(&data[..len]).as_bytes();
            for chunk in [1 << 18, 65_537, 1000] {
                let got = digest(&data[..len], 0, chunk);
                assert_eq!(got, want, "len {len} chunk {chunk}");
            }
            // Resumed: the prefix counts toward the inline limit.
            let from = len / 3;
            let got = digest(&data[..len], from, 1 << 18);
            assert_eq!(got, want, "len {len} from {from}");
        }
    }

    #[test]
    fn the_helper_hashes_what_the_file_holds() {
        // The helper reads the file back: bytes that differ from what
        // the caller passed show in the digest (and a short file is an
        // error), so the digest is of the stored bytes.
        let data = pattern(INLINE_LIMIT as usize + (3 << 20));
        let (_dir, mut file) = scratch();
        let mut h = DownloadHasher::new(blake3::Hasher::new(), 0, &file);
        let mut stored = data.clone();
        for (i, c) in data.chunks(1 << 18).enumerate() {
            let mut c = c.to_vec();
            if i == 20 {
                c[5] ^= 1;
                stored[20 * (1 << 18) + 5] ^= 1;
            }
            file.write_all(&c).unwrap();
            h.update(&data[i * (1 << 18)..][..c.len()]);
        }
        assert!(matches!(h.mode, Mode::Helper(_)));
        assert_eq!(h.finalize().unwrap(), *blake3::hash(&stored).as_bytes());

        // The file ends before what the caller claims it wrote.
        file.set_len(INLINE_LIMIT + 100).unwrap();
        let mut h = DownloadHasher::new(blake3::Hasher::new(), 0, &file);
        for c in data.chunks(1 << 18) {
            h.update(c);
        }
        let e = h.finalize().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
