//! Read buffers that start on a page boundary.
//!
//! The kernel copies a `read` from the page cache into the caller's buffer
//! with `rep movsb`, which on the AMD EPYC machine ftx is measured on runs
//! several times slower when the destination is not aligned; a `Vec<u8>`
//! big enough to come from `mmap` starts 16 bytes into its page. On a 1 GiB
//! put, `perf` counted 4x the samples in that copy for ftx's buffer as for
//! socat's (which is page-aligned); aligned, ftx's system time fell from
//! 0.8-1.4 s to 0.44-0.78 s (A/B, 7 puts each). Safe code: the buffer is a
//! `Vec` with a page to spare, used from its first aligned byte.

use std::ops::{Deref, DerefMut};

/// Alignment of an [`AlignedBuf`]'s first byte: a page, which is also a
/// multiple of every cache line.
pub const ALIGN: usize = 4096;

/// How far `ptr` is from the next multiple of [`ALIGN`] (0 if it is one).
fn pad_to_align(ptr: *const u8) -> usize {
    (ALIGN - (ptr as usize) % ALIGN) % ALIGN
}

/// `len` zeroed bytes whose first one is page-aligned.
#[derive(Debug, Default)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeroed bytes, the first at a multiple of [`ALIGN`].
    pub fn zeroed(len: usize) -> AlignedBuf {
        if len == 0 {
            return AlignedBuf::default();
        }
        let raw = vec![0u8; len + ALIGN - 1];
        let start = pad_to_align(raw.as_ptr());
        AlignedBuf { raw, start, len }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_page_and_have_their_length() {
        for len in [1, 13, 4096, 4097, 256 * 1024, 1 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0, "len {len}");
            assert!(b.iter().all(|&x| x == 0));
            b[len - 1] = 7;
            assert_eq!(b[len - 1], 7);
        }
        assert!(AlignedBuf::zeroed(0).is_empty());
    }

    #[test]
    fn pad_reaches_the_next_boundary() {
        assert_eq!(pad_to_align(ALIGN as *const u8), 0);
        assert_eq!(pad_to_align((ALIGN + 16) as *const u8), ALIGN - 16);
        assert_eq!(pad_to_align((2 * ALIGN - 1) as *const u8), 1);
    }
}
