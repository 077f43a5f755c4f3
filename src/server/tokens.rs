//! Access tokens: the token file in the state directory (`ftxd token
//! add/list/revoke`), the check of a client's `Hello.token` against it, and
//! the per-address slow-down of failed attempts. Tokens come from the
//! system's CSPRNG (ring's `SystemRandom`) and only their SHA-256 is
//! stored; the clear token is shown once, when it is made. Never prints.
//!
//! File format (`tokens`, mode 0600), one token a line:
//! `NAME rw|ro SHA256-HEX`; `#` lines are comments. The file is replaced
//! atomically on every change, and a running `ftxd` re-reads it when it
//! changes, so `ftxd token revoke` takes effect at the next connection.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use super::state::{write_atomic, StateError};

/// Name of the token file in the state directory.
pub const TOKENS_FILE: &str = "tokens";
/// Prefix of every token, so one is recognisable in a config or a leak scan.
pub const TOKEN_PREFIX: &str = "ftx_";
/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Longest token name.
const MAX_NAME: usize = 64;
/// Name of the token made on first start.
pub const FIRST_TOKEN_NAME: &str = "default";

/// Failed attempts an address may make before it is slowed down.
pub const FREE_FAILURES: u32 = 5;
/// First refusal period once an address is slowed down; it doubles with
/// every further failure.
pub const FIRST_PENALTY: Duration = Duration::from_secs(1);
/// Longest refusal period.
pub const MAX_PENALTY: Duration = Duration::from_secs(300);
/// An address's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Addresses remembered at most (the oldest are dropped first), so a flood
/// of addresses cannot grow the table without bound.
const MAX_TRACKED: usize = 10_000;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    ReadWrite,
    /// List and download only.
    ReadOnly,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "rw",
            Access::ReadOnly => "ro",
        }
    }

    fn parse(s: &str) -> Option<Access> {
        match s {
            "rw" => Some(Access::ReadWrite),
            "ro" => Some(Access::ReadOnly),
            _ => None,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadWrite => "read-write",
            Access::ReadOnly => "read-only",
        })
    }
}

/// One stored token: its name, access and hash (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The operator's name for it.
    pub name: String,
    /// What it allows.
    pub access: Access,
    hash: [u8; 32],
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] StateError),
    /// A line of the file is not `NAME rw|ro HEX`.
    #[error("'{}' line {line} is not 'NAME rw|ro HASH'", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The name is empty, too long or has characters other than letters,
    /// digits, `.`, `_` and `-`.
    #[error("invalid token name '{0}' (1-{MAX_NAME} letters, digits, '.', '_' or '-')")]
    BadName(String),
    /// `add` with a name already in use.
    #[error("a token named '{0}' already exists")]
    Exists(String),
    /// `revoke` of a name not in the file.
    #[error("no token named '{0}'")]
    NoSuchToken(String),
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
}

/// The token file of one state directory.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    entries: Vec<TokenEntry>,
    /// Modification time, length and inode of the file when it was read, to notice
    /// changes made by `ftxd token` while the server runs.
    stamp: Option<(SystemTime, u64, u64)>,
}

impl TokenStore {
    /// Reads the token file of `state_dir` (none yet: no tokens).
    pub fn open(state_dir: &Path) -> Result<TokenStore, TokenError> {
        let mut store = TokenStore {
            path: state_dir.join(TOKENS_FILE),
            entries: Vec::new(),
            stamp: None,
        };
        store.reload()?;
        Ok(store)
    }

    /// The tokens, in the order they were added.
    pub fn list(&self) -> &[TokenEntry] {
        &self.entries
    }

    /// Makes a new token named `name`, stores its hash and returns the
    /// token itself: the only time it exists in clear.
    pub fn add(&mut self, name: &str, access: Access) -> Result<String, TokenError> {
        check_name(name)?;
        // Under the lock from reading to writing: an `add` and a `revoke`
        // at once must not undo each other.
        let _lock = self.lock()?;
        self.reload()?;
        if self.entries.iter().any(|e| e.name == name) {
            return Err(TokenError::Exists(name.to_owned()));
        }
        let mut raw = [0u8; TOKEN_BYTES];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| TokenError::Random)?;
        let token = format!("{TOKEN_PREFIX}{}", hex(&raw));
        self.entries.push(TokenEntry {
            name: name.to_owned(),
            access,
            hash: hash(token.as_bytes()),
        });
        self.save()?;
        Ok(token)
    }

    /// Removes the token named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), TokenError> {
        let _lock = self.lock()?;
        self.reload()?;
        let before = self.entries.len();
        self.entries.retain(|e| e.name != name);
        if self.entries.len() == before {
            return Err(TokenError::NoSuchToken(name.to_owned()));
        }
        self.save()
    }

    /// The entry whose token is `token`, if any. Every stored hash is
    /// compared in full, whatever matches, so the time taken says nothing
    /// about how close a guess was.
    pub fn check(&self, token: &[u8]) -> Option<&TokenEntry> {
        let h = hash(token);
        let mut found = None;
        for e in &self.entries {
            if constant_time_eq(&e.hash, &h) {
                found = Some(e);
            }
        }
        found
    }

    /// Re-reads the file if it changed since it was read (a cheap `stat`
    /// otherwise). On a read error the old list stays in force.
    pub fn refresh(&mut self) -> Result<(), TokenError> {
        if stamp(&self.path) != self.stamp {
            self.reload()?;
        }
        Ok(())
    }

    fn reload(&mut self) -> Result<(), TokenError> {
        let stamp_before = stamp(&self.path);
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(TokenError::File(StateError::Io {
                    path: self.path.clone(),
                    source,
                }))
            }
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let corrupt = || TokenError::Corrupt {
                path: self.path.clone(),
                line: i + 1,
            };
            let mut parts = line.split_whitespace();
            let (Some(name), Some(access), Some(h), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt());
            };
            let access = Access::parse(access).ok_or_else(corrupt)?;
            let hash = unhex32(h).ok_or_else(corrupt)?;
            entries.push(TokenEntry {
                name: name.to_owned(),
                access,
                hash,
            });
        }
        self.entries = entries;
        self.stamp = stamp_before;
        Ok(())
    }

    /// The lock that guards changes to the token file.
    fn lock(&self) -> Result<crate::state_file::Lock, TokenError> {
        if let Some(dir) = self.path.parent() {
            super::state::create_state_dir(dir)?;
        }
        crate::state_file::lock(&self.path).map_err(|source| {
            TokenError::File(StateError::Io {
                path: self.path.clone(),
                source,
            })
        })
    }

    fn save(&mut self) -> Result<(), TokenError> {
        let mut text = String::from("# ftxd access tokens: NAME rw|ro SHA-256 of the token\n");
        for e in &self.entries {
            text.push_str(&format!(
                "{} {} {}\n",
                e.name,
                e.access.as_str(),
                hex(&e.hash)
            ));
        }
        if let Some(dir) = self.path.parent() {
            super::state::create_state_dir(dir)?;
        }
        write_atomic(&self.path, text.as_bytes(), 0o600)?;
        self.stamp = stamp(&self.path);
        Ok(())
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    // The inode too: every save is a rename of a new file.
    Some((m.modified().ok()?, m.len(), m.ino()))
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.to_owned()))
    }
}

/// What identifies a token without keeping it: its SHA-256, as the token
/// file stores it.
pub fn token_id(token: &[u8]) -> [u8; 32] {
    hash(token)
}

fn hash(token: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Equality without an early exit: every byte is looked at.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Why a client is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token was sent.
    #[error("this server requires an access token")]
    Missing,
    /// The token is not (or no longer) in the file.
    #[error("access token not accepted")]
    Wrong,
    /// This address failed too often; it is refused for a while, whatever
    /// it sends.
    #[error("too many failed attempts from your address; try again in {} s", .0.as_secs().max(1))]
    SlowDown(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    refused_until: Option<Instant>,
}

/// The door: checks tokens (unless open) and slows down addresses that
/// keep failing. One per server; the event loop is one thread, so no lock.
#[derive(Debug)]
pub struct Gate {
    /// `None`: `--open`, no token needed.
    tokens: Option<TokenStore>,
    failures: HashMap<IpAddr, Failures>,
    /// The last re-read of the token file failed (said once, not at every
    /// try: a node cut off from a shared state directory tries each second).
    unreadable: bool,
}

impl Gate {
    /// A gate that lets everyone in with `open_access`.
    pub fn open() -> Gate {
        Gate {
            tokens: None,
            failures: HashMap::new(),
            unreadable: false,
        }
    }

    /// A gate that checks tokens against `store`.
    pub fn with_tokens(store: TokenStore) -> Gate {
        Gate {
            tokens: Some(store),
            failures: HashMap::new(),
            unreadable: false,
        }
    }

    /// Whether a token is needed at all.
    pub fn requires_token(&self) -> bool {
        self.tokens.is_some()
    }

    /// Decides whether `ip`, presenting `token`, may come in, and with what
    /// access. A refused attempt counts against the address; an address
    /// that failed too often is slowed down for wrong tokens only: a valid
    /// token always comes in (guessing one is hopeless, and a user who
    /// mistyped must not be locked out by the retries).
    pub fn admit(
        &mut self,
        ip: IpAddr,
        token: &[u8],
        now: Instant,
    ) -> Result<(String, Access), Refusal> {
        let Some(store) = self.tokens.as_mut() else {
            return Ok((String::new(), Access::ReadWrite));
        };
        if let Err(e) = store.refresh() {
            // Keep the list in force; the operator sees the problem in the log.
            log::warn!("cannot re-read the token file: {e}");
        }
        if let Some(e) = store.check(token).filter(|_| !token.is_empty()) {
            let ok = (e.name.clone(), e.access);
            self.failures.remove(&ip);
            return Ok(ok);
        }
        if let Some(f) = self.failures.get(&ip) {
            if let Some(until) = f.refused_until.filter(|&u| u > now) {
                return Err(Refusal::SlowDown(until - now));
            }
        }
        if token.is_empty() {
            // A client learning whether a token is needed (it asks its
            // user next): no guess was made, so nothing counts against
            // the address.
            return Err(Refusal::Missing);
        }
        self.record_failure(ip, now);
        Err(Refusal::Wrong)
    }

    /// Re-reads the token file if it changed; true when it did (so the
    /// loop checks that every open session's token is still valid).
    pub fn refresh(&mut self) -> bool {
        let Some(store) = self.tokens.as_mut() else {
            return false;
        };
        let before = store.stamp;
        match store.refresh() {
            Err(e) if !self.unreadable => {
                log::warn!(
                    "cannot re-read the token file (the tokens read last stay in force): {e}"
                );
                self.unreadable = true;
            }
            Err(_) => {}
            Ok(()) if self.unreadable => {
                log::info!("the token file can be read again");
                self.unreadable = false;
            }
            Ok(()) => {}
        }
        store.stamp != before
    }

    /// True when the token whose [`token_id`] is `id` is still valid (always
    /// on an open gate).
    pub fn is_valid(&self, id: &[u8; 32]) -> bool {
        self.tokens
            .as_ref()
            .is_none_or(|store| store.entries.iter().any(|e| constant_time_eq(&e.hash, id)))
    }

    /// Failed attempts recorded for `ip` (for the log line).
    pub fn failures(&self, ip: IpAddr) -> u32 {
        self.failures.get(&ip).map_or(0, |f| f.count)
    }

    fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.failures
                .retain(|_, f| now.saturating_duration_since(f.last) < FORGET_AFTER);
            if self.failures.len() >= MAX_TRACKED {
                if let Some(oldest) = self.failures.iter().min_by_key(|(_, f)| f.last) {
                    let oldest = *oldest.0;
                    self.failures.remove(&oldest);
                }
            }
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            refused_until: None,
        });
        if now.saturating_duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count > FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES - 1).min(16);
            let penalty = (FIRST_PENALTY * 2u32.pow(doublings)).min(MAX_PENALTY);
            f.refused_until = Some(now + penalty);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn ip() -> IpAddr {
        IpAddr::from([192, 0, 2, 1])
    }

    #[test]
    fn add_check_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = TokenStore::open(dir.path()).unwrap();
        let rw = s.add("alice", Access::ReadWrite).unwrap();
        let ro = s.add("bob", Access::ReadOnly).unwrap();
        assert!(rw.starts_with(TOKEN_PREFIX) && rw.len() == 4 + 64, "{rw}");
        assert_ne!(rw, ro);
        assert_eq!(s.check(rw.as_bytes()).unwrap().access, Access::ReadWrite);
        assert_eq!(s.check(ro.as_bytes()).unwrap().name, "bob");
        assert!(s.check(b"ftx_nope").is_none());
        assert!(s.check(b"").is_none());
        let text = fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!text.contains(&rw[4..]), "token stored in clear");
        let mode = fs::metadata(dir.path().join(TOKENS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            s.add("alice", Access::ReadOnly),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            s.add("a b", Access::ReadOnly),
            Err(TokenError::BadName(_))
        ));
        s.revoke("alice").unwrap();
        assert!(matches!(s.revoke("alice"), Err(TokenError::NoSuchToken(_))));
        let again = TokenStore::open(dir.path()).unwrap();
        assert_eq!(again.list().len(), 1);
        assert!(again.check(rw.as_bytes()).is_none());
        assert!(again.check(ro.as_bytes()).is_some());
    }

    #[test]
    fn a_running_gate_sees_a_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = TokenStore::open(dir.path()).unwrap();
        let t = admin.add("x", Access::ReadWrite).unwrap();
        let mut gate = Gate::with_tokens(TokenStore::open(dir.path()).unwrap());
        let now = Instant::now();
        assert!(gate.admit(ip(), t.as_bytes(), now).is_ok());
        // Same length file, so the stamp must also see the mtime or content.
        admin.revoke("x").unwrap();
        admin.add("y", Access::ReadWrite).unwrap();
        assert_eq!(gate.admit(ip(), t.as_bytes(), now), Err(Refusal::Wrong));
    }

    #[test]
    fn corrupt_lines_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOKENS_FILE), "# c\nname rw nothex\n").unwrap();
        let e = TokenStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn failures_slow_an_address_down_then_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = TokenStore::open(dir.path()).unwrap();
        let t = admin.add("x", Access::ReadOnly).unwrap();
        let mut gate = Gate::with_tokens(TokenStore::open(dir.path()).unwrap());
        let now = Instant::now();
        assert_eq!(gate.admit(ip(), b"", now), Err(Refusal::Missing));
        for _ in 1..FREE_FAILURES {
            assert_eq!(gate.admit(ip(), b"bad", now), Err(Refusal::Wrong));
        }
        // Still free: the right token works and clears the record.
        assert_eq!(
            gate.admit(ip(), t.as_bytes(), now),
            Ok(("x".into(), Access::ReadOnly))
        );
        for _ in 0..=FREE_FAILURES {
            let _ = gate.admit(ip(), b"bad", now);
        }
        // Now wrong tokens are refused without a check for a while...
        assert!(matches!(
            gate.admit(ip(), b"bad", now),
            Err(Refusal::SlowDown(_))
        ));
        // ...but the right one still comes in (and clears the record)...
        assert_eq!(
            gate.admit(ip(), t.as_bytes(), now),
            Ok(("x".into(), Access::ReadOnly))
        );
        for _ in 0..=FREE_FAILURES {
            let _ = gate.admit(ip(), b"bad", now);
        }
        // ...other addresses are not affected...
        let other = IpAddr::from([192, 0, 2, 2]);
        assert_eq!(gate.admit(other, b"bad", now), Err(Refusal::Wrong));
        // ...and the penalty grows, then passes.
        let later = now + FIRST_PENALTY;
        assert_eq!(gate.admit(ip(), b"bad", later), Err(Refusal::Wrong));
        match gate.admit(ip(), b"bad", later) {
            Err(Refusal::SlowDown(d)) => assert_eq!(d, FIRST_PENALTY * 2),
            other => panic!("{other:?}"),
        }
        let much_later = later + MAX_PENALTY;
        assert_eq!(gate.admit(ip(), b"bad", much_later), Err(Refusal::Wrong));
    }

    /// Asking without a token (to learn that one is needed) is no failed
    /// attempt: any number of them never slows the address down.
    #[test]
    fn a_missing_token_is_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = TokenStore::open(dir.path()).unwrap();
        let t = admin.add("x", Access::ReadWrite).unwrap();
        let mut gate = Gate::with_tokens(TokenStore::open(dir.path()).unwrap());
        let now = Instant::now();
        for _ in 0..3 * FREE_FAILURES {
            assert_eq!(gate.admit(ip(), b"", now), Err(Refusal::Missing));
        }
        assert_eq!(gate.failures(ip()), 0);
        for _ in 0..FREE_FAILURES {
            assert_eq!(gate.admit(ip(), b"bad", now), Err(Refusal::Wrong));
        }
        assert_eq!(gate.failures(ip()), FREE_FAILURES);
        assert_eq!(
            gate.admit(ip(), t.as_bytes(), now),
            Ok(("x".into(), Access::ReadWrite))
        );
    }

    /// `token add` and `token revoke` run at once by several processes:
    /// every addition stays and every revocation holds.
    #[test]
    fn concurrent_adds_and_revokes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = TokenStore::open(dir.path()).unwrap();
        for i in 0..8 {
            first.add(&format!("old{i}"), Access::ReadWrite).unwrap();
        }
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut s = TokenStore::open(&dir).unwrap();
                    s.add(&format!("new{i}"), Access::ReadOnly).unwrap();
                    let mut s = TokenStore::open(&dir).unwrap();
                    s.revoke(&format!("old{i}")).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = TokenStore::open(dir.path()).unwrap();
        let mut names: Vec<&str> = s.list().iter().map(|e| e.name.as_str()).collect();
        names.sort();
        let want: Vec<String> = (0..8).map(|i| format!("new{i}")).collect();
        assert_eq!(names, want);
    }

    #[test]
    fn an_open_gate_lets_everyone_in() {
        let mut gate = Gate::open();
        assert!(!gate.requires_token());
        assert_eq!(
            gate.admit(ip(), b"", Instant::now()),
            Ok((String::new(), Access::ReadWrite))
        );
    }

    #[test]
    fn hashes_compare_in_full() {
        let a = hash(b"a");
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        assert_eq!(unhex32(&hex(&a)), Some(a));
    }

    #[test]
    fn error_messages() {
        let cases: [(Box<dyn std::error::Error>, &str); 9] = [
            (
                Box::new(TokenError::File(StateError::Bad {
                    path: PathBuf::from("/s/key"),
                    reason: "garbled".into(),
                })),
                "'/s/key': garbled",
            ),
            (
                Box::new(TokenError::Corrupt {
                    path: PathBuf::from("/s/tokens"),
                    line: 3,
                }),
                "'/s/tokens' line 3 is not 'NAME rw|ro HASH'",
            ),
            (
                Box::new(TokenError::BadName("a b".into())),
                "invalid token name 'a b' (1-64 letters, digits, '.', '_' or '-')",
            ),
            (
                Box::new(TokenError::Exists("bob".into())),
                "a token named 'bob' already exists",
            ),
            (
                Box::new(TokenError::NoSuchToken("bob".into())),
                "no token named 'bob'",
            ),
            (
                Box::new(TokenError::Random),
                "the system's random source failed",
            ),
            (
                Box::new(Refusal::Missing),
                "this server requires an access token",
            ),
            (Box::new(Refusal::Wrong), "access token not accepted"),
            (
                Box::new(Refusal::SlowDown(Duration::from_millis(10))),
                "too many failed attempts from your address; try again in 1 s",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        assert_eq!(
            Refusal::SlowDown(Duration::from_secs(42)).to_string(),
            "too many failed attempts from your address; try again in 42 s"
        );
    }
}
