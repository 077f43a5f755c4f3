//! The BLAKE3 state of a file's prefix, hashed a step at a time with
//! positioned reads: what a resumed transfer compares on both sides before
//! it sends only the missing bytes (`reput`, a resumed `get`).

use std::fs::File;
use std::io;

use crate::aligned::AlignedBuf;

/// Read size while hashing a prefix.
const HASH_BUF: usize = 256 * 1024;

/// The BLAKE3 state after the first `len` bytes of `file`, read from the
/// start with positioned reads (the file position does not move).
/// Fails with `UnexpectedEof` if the file is shorter.
pub fn prefix_hasher(file: &File, len: u64) -> io::Result<blake3::Hasher> {
    let mut hashing = PrefixHashing::new(len);
    while !hashing.step(file, u64::MAX)? {}
    Ok(hashing.finish())
}

/// Hashing the first `len` bytes of a file a step at a time, with
/// positioned reads (the file position does not move): a server on one
/// thread hashes a large prefix between other work, and ftx's download
/// hasher follows a file as it is written ([`PrefixHashing::extend_to`]).
#[derive(Debug)]
pub struct PrefixHashing {
    hasher: blake3::Hasher,
    pos: u64,
    len: u64,
    /// Bytes a read asks for at most.
    read_len: usize,
    /// Read buffer, made at the first step, grown if the prefix grows, and
    /// kept for the next steps; page-aligned, as the kernel fills those
    /// faster.
    buf: AlignedBuf,
}

impl PrefixHashing {
    /// Nothing hashed yet of a prefix of `len` bytes.
    pub fn new(len: u64) -> PrefixHashing {
        PrefixHashing::resume(blake3::Hasher::new(), 0, len)
    }

    /// Goes on from `hasher`, which has absorbed the file's first `pos`
    /// bytes, up to `len`.
    pub fn resume(hasher: blake3::Hasher, pos: u64, len: u64) -> PrefixHashing {
        PrefixHashing {
            hasher,
            pos,
            len: len.max(pos),
            read_len: HASH_BUF,
            buf: AlignedBuf::default(),
        }
    }

    /// Reads of at most `n` bytes (256 KiB by default).
    pub fn reading(mut self, n: usize) -> PrefixHashing {
        self.read_len = n.max(1);
        self
    }

    /// The prefix now ends at `len` (a file still being written).
    pub fn extend_to(&mut self, len: u64) {
        self.len = self.len.max(len);
    }

    /// Hashes about `max` more bytes (whole reads).
    /// `Ok(true)` once the whole prefix is hashed; `UnexpectedEof` if the
    /// file is shorter.
    pub fn step(&mut self, file: &File, max: u64) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        // As big as a read may be, no bigger than what is left: a prefix
        // extended since the last step may need a bigger buffer.
        let fits = self.read_len.min((self.len - self.pos) as usize);
        if self.buf.len() < fits {
            self.buf = AlignedBuf::zeroed(fits);
        }
        let stop = self.pos.saturating_add(max).min(self.len);
        while self.pos < stop {
            let want = self.buf.len().min((self.len - self.pos) as usize);
            let n = match file.read_at(&mut self.buf[..want], self.pos) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.hasher.update(&self.buf[..n]);
            self.pos += n as u64;
        }
        Ok(self.pos == self.len)
    }

    /// The BLAKE3 state after the prefix (call once `step` said done).
    pub fn finish(self) -> blake3::Hasher {
        self.hasher
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A prefix that grows after the first step (ftx's download hasher
    /// follows a file being written) is hashed whole, in full-size reads.
    #[test]
    fn a_growing_prefix_is_hashed_whole_in_full_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 + i / 4099) as u8).collect();
        fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut h = PrefixHashing::new(10).reading(64 << 10);
        assert!(h.step(&file, u64::MAX).unwrap());
        h.extend_to(data.len() as u64);
        assert!(h.step(&file, u64::MAX).unwrap());
        assert_eq!(h.buf.len(), 64 << 10);
        assert_eq!(h.finish().finalize(), blake3::hash(&data));
    }
}
