//! File-tree helpers: deterministic data, byte-exact comparisons, tree
//! snapshots, and the part files an interrupted transfer leaves.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use ftx::proto::limits;

/// xorshift64*: deterministic test data with no extra crate.
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `len` deterministic random bytes for `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; len];
    XorShift::new(seed).fill(&mut v);
    v
}

/// Writes `len` deterministic random bytes for `seed` to `path`, streaming.
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut f = io::BufWriter::new(fs::File::create(path).expect("create random file"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write random file");
        left -= n as u64;
    }
    f.flush().expect("flush random file");
}

/// Panics unless `actual` exists and holds exactly the bytes of `expected`,
/// naming the first differing offset (never dumping megabytes).
#[track_caller]
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let e_len = fs::metadata(expected)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.display()))
        .len();
    let a_meta = fs::metadata(actual).unwrap_or_else(|e| {
        panic!(
            "{} should exist (copy of {}): {e}\n{}",
            actual.display(),
            expected.display(),
            tree(actual.parent().unwrap_or(Path::new("/")))
        )
    });
    assert_eq!(
        a_meta.len(),
        e_len,
        "{} has {} bytes, {} has {}",
        actual.display(),
        a_meta.len(),
        expected.display(),
        e_len
    );
    let mut a = io::BufReader::new(fs::File::open(actual).expect("open actual"));
    let mut e = io::BufReader::new(fs::File::open(expected).expect("open expected"));
    let (mut ab, mut eb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut e, &mut eb);
        let m = read_full(&mut a, &mut ab);
        assert_eq!(n, m, "short read comparing at offset {offset}");
        if n == 0 {
            return;
        }
        if eb[..n] != ab[..n] {
            let i = (0..n).find(|&i| eb[i] != ab[i]).unwrap_or(0);
            panic!(
                "{} differs from {} at byte {}",
                actual.display(),
                expected.display(),
                offset + i as u64
            );
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

/// Panics unless `path` holds exactly `want`.
#[track_caller]
pub fn assert_file_bytes(path: &Path, want: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
    assert!(
        got == want,
        "{} holds {} bytes ({:?}...), expected {} bytes ({:?}...)",
        path.display(),
        got.len(),
        String::from_utf8_lossy(&got[..got.len().min(40)]),
        want.len(),
        String::from_utf8_lossy(&want[..want.len().min(40)])
    );
}

/// One object of a directory snapshot (symlinks are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink and its target.
    Link(PathBuf),
    /// Anything else.
    Other,
}

/// A tree as [`snapshot`] gives it: `(path, Some(bytes))` for a file,
/// `(path, None)` for a directory.
pub fn tree_of(entries: &[(&str, Option<&[u8]>)]) -> BTreeMap<PathBuf, Node> {
    entries
        .iter()
        .map(|(path, bytes)| {
            let node = match bytes {
                Some(b) => Node::File(b.to_vec()),
                None => Node::Dir,
            };
            (PathBuf::from(path), node)
        })
        .collect()
}

/// Writes `entries` (as in [`tree_of`]) beneath `dir`.
pub fn make_tree(dir: &Path, entries: &[(&str, Option<&[u8]>)]) {
    for (path, bytes) in entries {
        let path = dir.join(path);
        match bytes {
            Some(b) => {
                fs::create_dir_all(path.parent().expect("a parent")).unwrap();
                fs::write(&path, b).unwrap();
            }
            None => fs::create_dir_all(&path).unwrap(),
        }
    }
}

/// Every object beneath `dir`, by relative path, contents included.
/// Meant for small sentinel trees.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, &[], true);
    out
}

/// Like [`snapshot`] but skipping the top-level entries named in `skip`.
pub fn snapshot_except(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, skip, true);
    out
}

fn walk(top: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>, skip: &[&str], contents: bool) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let path = entry.path();
        if dir == top && skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let rel = path.strip_prefix(top).unwrap_or(&path).to_path_buf();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            out.insert(rel, Node::Link(fs::read_link(&path).unwrap_or_default()));
        } else if ft.is_dir() {
            out.insert(rel, Node::Dir);
            walk(top, &path, out, skip, contents);
        } else if ft.is_file() {
            let bytes = if contents {
                fs::read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.insert(rel, Node::File(bytes));
        } else {
            out.insert(rel, Node::Other);
        }
    }
}

/// A readable listing of the tree beneath `dir` (relative paths and sizes).
pub fn tree(dir: &Path) -> String {
    let mut s = format!("tree of {}:\n", dir.display());
    let mut stack = vec![dir.to_path_buf()];
    let mut lines = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    lines.push(format!("  {rel}/"));
                    stack.push(path);
                }
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(&path).unwrap_or_default();
                    lines.push(format!("  {rel} -> {}", target.display()));
                }
                Ok(m) => lines.push(format!("  {rel} ({} bytes)", m.len())),
                Err(e) => lines.push(format!("  {rel} ({e})")),
            }
        }
    }
    lines.sort();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// The names directly inside `dir`, sorted (lossy UTF-8).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Panics if any name beneath `dir` starts with the reserved temp prefix.
#[track_caller]
pub fn assert_no_temp_files(dir: &Path) {
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all, &[], false);
    let temps: Vec<PathBuf> = all
        .into_keys()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(limits::RESERVED_PREFIX))
        })
        .collect();
    assert!(
        temps.is_empty(),
        "temporary files left behind: {temps:?}\n{}",
        tree(dir)
    );
}

/// The hidden part file that holds an interrupted transfer to `dir/name`
/// (`.ftx-part-NAME`, on whichever side receives).
pub fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}part-{name}", limits::RESERVED_PREFIX))
}

/// Writes `data` as a server's part file at `path`, as ftxd leaves an
/// interrupted upload: with the mark that makes it a part (a file under a
/// part's name without one is never resumed).
pub fn write_server_part(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap();
    let file = fs::File::open(path).unwrap();
    ftx::part_mark::set(&file, ftx::part_mark::AttemptId::new()).unwrap();
}

/// Size of `path`, 0 if it does not exist.
pub fn size_or_zero(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// True when some process holds the `flock` of the file at `path` (a
/// transfer in progress); false when it is free or does not exist.
pub fn is_locked(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; dropping `f` releases our lock.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc != 0
}

/// Waits (at most `timeout`) until nobody holds the part file at `path`:
/// after a client was killed, until the server has noticed and let go.
#[track_caller]
pub fn wait_unlocked(path: &Path, timeout: Duration, why: &dyn fmt::Display) {
    let deadline = Instant::now() + timeout;
    while is_locked(path) {
        assert!(
            Instant::now() < deadline,
            "{} still locked after {timeout:?}\n{why}",
            path.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}
