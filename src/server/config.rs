//! `ftxd`'s settings and the validated [`ServerConfig`] made from them.
//! The binary reads its config file ([`FileSettings`], TOML) and its
//! command line into [`Settings`], the flags over the file;
//! [`ServerConfig::new`] checks them once, and nothing else in the server
//! looks at flags. The parsers of sizes and durations live here too, for
//! the binary to use on its flags. Opens no sockets and reads no file but
//! the config file; the root is checked by the store when it is opened
//! ([`Store::open`](super::store::Store::open)).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::store::StoreConfig;
use crate::proto::limits::{DEFAULT_IDLE_TIMEOUT, DEFAULT_STALL_TIMEOUT, HANDSHAKE_TIMEOUT};

/// Default listening address (as the original server).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9999));
/// Default served directory.
pub const DEFAULT_ROOT: &str = ".";
/// Default connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default limit of connections from one address group (an IPv4 /24, an
/// IPv6 /64).
pub const DEFAULT_MAX_PER_IP: usize = 64;
/// Default limit of connections that have not finished their handshake.
pub const DEFAULT_MAX_STARTUPS: usize = 128;
/// Default age after which an interrupted upload is removed, as written
/// on the command line (see [`parse_duration`]).
pub const DEFAULT_PARTIAL_TTL: &str = "7d";
/// Longest idle or stall timeout accepted: a year (a larger one would
/// overflow the clock's arithmetic).
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;
/// Default limit on one storage call of the disk helpers (an fsync, a
/// flush, a prefix hash, a health probe): a distributed file system that
/// lost a node can hang a call for minutes; past this the transfer that
/// waits fails, not the node.
pub const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the operator asked for, as given: each value parsed but not yet
/// checked against the others or against the system. The binary fills it
/// from its flags; [`Settings::default`] holds every flag's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the key, certificate and tokens live (`None`: the per-user
    /// default).
    pub state_dir: Option<PathBuf>,
    /// Speak TLS (off with `--plain`).
    pub tls: bool,
    /// Require an access token (off with `--open`).
    pub require_token: bool,
    /// Address and port to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory to serve.
    pub root: PathBuf,
    /// Largest number of connections served at once.
    pub max_connections: usize,
    /// Largest number of connections from one IP address group.
    pub max_per_ip: usize,
    /// Largest number of connections still in their handshake.
    pub max_startups: usize,
    /// Seconds a connection may stay silent before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a running transfer may go without progress.
    pub stall_timeout_secs: u64,
    /// Seconds a storage call on a disk helper may take before the
    /// transfer waiting for it fails.
    pub storage_timeout_secs: u64,
    /// Where load balancers' health checks connect (`None`: no health
    /// listener).
    pub health: Option<SocketAddr>,
    /// Handshake deadline in milliseconds (0 counts as 1).
    pub handshake_timeout_ms: u64,
    /// Refuse uploads and every change to the served tree.
    pub read_only: bool,
    /// Largest upload accepted, in bytes (`None`: no limit).
    pub max_file_size: Option<u64>,
    /// fsync uploads (off with `--no-fsync`).
    pub fsync: bool,
    /// Age after which an interrupted upload's part file is removed.
    pub partial_ttl: Duration,
    /// Bind with `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// Load balancers whose connections open with a PROXY protocol v2
    /// header naming the client (`--proxy-protocol`).
    pub proxy_protocol: Vec<IpAddr>,
    /// Log level unless `RUST_LOG` says otherwise.
    pub verbosity: Verbosity,
}

impl Default for Settings {
    /// `ftxd` with no flags.
    fn default() -> Settings {
        Settings {
            state_dir: None,
            tls: true,
            require_token: true,
            listen: DEFAULT_LISTEN,
            root: PathBuf::from(DEFAULT_ROOT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_ip: DEFAULT_MAX_PER_IP,
            max_startups: DEFAULT_MAX_STARTUPS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT.as_secs(),
            stall_timeout_secs: DEFAULT_STALL_TIMEOUT.as_secs(),
            storage_timeout_secs: DEFAULT_STORAGE_TIMEOUT.as_secs(),
            health: None,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT.as_millis() as u64,
            read_only: false,
            max_file_size: None,
            fsync: true,
            partial_ttl: parse_duration(DEFAULT_PARTIAL_TTL).expect("the default is a duration"),
            reuse_port: false,
            proxy_protocol: Vec::new(),
            verbosity: Verbosity::Normal,
        }
    }
}

/// Who may connect and how: TLS, tokens, and where their state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// Key, certificate and token file; `None` only when neither TLS nor
    /// tokens are used.
    pub state_dir: Option<PathBuf>,
    /// Speak TLS (off with `--plain`).
    pub tls: bool,
    /// Require an access token (off with `--open`).
    pub require_token: bool,
}

impl AccessConfig {
    /// No TLS and no tokens (`--plain --open`).
    pub fn plain_open() -> AccessConfig {
        AccessConfig {
            state_dir: None,
            tls: false,
            require_token: false,
        }
    }
}

/// The state directory: `--state-dir`, else the per-user default.
pub fn resolve_state_dir(flag: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    flag.or_else(super::state::default_state_dir)
        .ok_or(ConfigError::NoStateDir)
}

/// `path` made absolute and free of symlinks as far as it exists (the
/// rest, not yet created, appended as written).
fn resolve_existing(path: &std::path::Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(cur) {
            let mut out = real;
            for c in rest.iter().rev() {
                out.push(c);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// How much `ftxd` logs when `RUST_LOG` is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors (`-q`).
    Quiet,
    /// A line per connection and transfer (default).
    Normal,
    /// Everything (`-v`).
    Verbose,
}

impl Verbosity {
    /// The `env_logger` filter for this level.
    pub fn filter(self) -> &'static str {
        match self {
            Verbosity::Quiet => "warn",
            Verbosity::Normal => "info",
            Verbosity::Verbose => "debug",
        }
    }
}

/// The validated settings of one `ftxd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The store's settings (the store checks the root when it opens).
    pub store: StoreConfig,
    /// Largest number of connections served at once (at least 1; the loop
    /// may lower it further to fit the open-file limit).
    pub max_connections: usize,
    /// Largest number of connections from one IP address group (at least 1).
    pub max_per_ip: usize,
    /// Largest number of connections still in their handshake (at least 1).
    pub max_startups: usize,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Silence after which a running transfer is ended.
    pub stall_timeout: Duration,
    /// Longest a storage call on a disk helper may take: past it the
    /// transfer waiting for it fails (the node goes on), and the health
    /// check says the storage does not answer.
    pub storage_timeout: Duration,
    /// Address of the health-check listener for load balancers (`None`:
    /// none).
    pub health: Option<SocketAddr>,
    /// Time a client has to complete the handshake (not a flag: fixed by
    /// the protocol; tests shorten it).
    pub handshake_timeout: Duration,
    /// Age after which an interrupted upload's part file is removed.
    pub partial_ttl: Duration,
    /// Log level unless `RUST_LOG` says otherwise.
    pub verbosity: Verbosity,
    /// TLS, tokens and the state directory.
    pub access: AccessConfig,
    /// Bind with `SO_REUSEPORT`, sharing the port with other processes.
    pub reuse_port: bool,
    /// Load balancers that send a PROXY protocol v2 header first: only
    /// their connections are read for one, and the address it names is
    /// the client's (for the per-address limits, the token back-off and
    /// the log).
    pub proxy_protocol: Vec<IpAddr>,
}

/// Why the settings do not make a usable configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A numeric flag is out of range.
    #[error("{flag} {reason}")]
    Range {
        /// The flag.
        flag: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// The state directory cannot be used.
    #[error("state directory '{}' {reason}", dir.display())]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// No state directory was given and there is no default one.
    #[error("no --state-dir given and neither $XDG_STATE_HOME nor $HOME is set")]
    NoStateDir,
    /// The config file cannot be read or does not make settings.
    #[error("config file '{}': {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when the text is at fault.
        reason: String,
    },
}

/// The config file (`ftxd --config FILE`, TOML): each key is a flag's
/// long name without its dashes (`max-file-size = "10G"`, `read-only =
/// true`), and a key left out keeps the flag's default. Unknown keys are
/// errors, so a typo never passes silently. Paths must be absolute: a
/// service's working directory is nobody's choice.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--plain`.
    pub plain: Option<bool>,
    /// `--open`.
    pub open: Option<bool>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--max-per-ip`.
    pub max_per_ip: Option<usize>,
    /// `--max-startups`.
    pub max_startups: Option<usize>,
    /// `--idle-timeout`: seconds, or a string with a suffix (`"5m"`).
    pub idle_timeout: Option<Amount>,
    /// `--stall-timeout`: seconds, or a string with a suffix (`"2m"`).
    pub stall_timeout: Option<Amount>,
    /// `--storage-timeout`: seconds, or a string with a suffix (`"30s"`).
    pub storage_timeout: Option<Amount>,
    /// `--health`: the health-check listener's address.
    pub health: Option<SocketAddr>,
    /// `--read-only`.
    pub read_only: Option<bool>,
    /// `--max-file-size`: bytes, or a string with a suffix (`"10M"`).
    pub max_file_size: Option<Amount>,
    /// `--no-fsync`.
    pub no_fsync: Option<bool>,
    /// `--partial-ttl`: seconds, or a string with a suffix (`"7d"`).
    pub partial_ttl: Option<Amount>,
    /// `--reuse-port`.
    pub reuse_port: Option<bool>,
    /// `--proxy-protocol`: the balancers' addresses.
    pub proxy_protocol: Option<Vec<IpAddr>>,
    /// `--verbose`.
    pub verbose: Option<bool>,
    /// `--quiet`.
    pub quiet: Option<bool>,
}

/// A size or a duration in the config file: a plain number, or the text a
/// flag would take (`"10M"`, `"12h"`), so the file reads like the command
/// line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// Bytes or seconds.
    Number(u64),
    /// As on the command line.
    Text(String),
}

impl Amount {
    /// The value through `parse`, the flag's own parser.
    fn parse<T>(&self, parse: fn(&str) -> Result<T, String>) -> Result<T, String> {
        match self {
            Amount::Number(n) => parse(&n.to_string()),
            Amount::Text(t) => parse(t),
        }
    }
}

impl FileSettings {
    /// Reads and parses the config file at `path`.
    pub fn read(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        FileSettings::parse(&text).map_err(|reason| ConfigError::File {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the text of a config file; the error is one line that says
    /// where (`line 3: unknown field ...`).
    pub fn parse(text: &str) -> Result<FileSettings, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let line = 1 + text[..span.start.min(text.len())].matches('\n').count();
                    format!("line {line}: {message}")
                }
                None => message,
            }
        })
    }

    /// `base` with every value the file gives put in its place. Sizes and
    /// durations go through the flags' parsers; `verbose` and `quiet`
    /// both on is refused as it is on the command line.
    pub fn apply(&self, base: Settings) -> Result<Settings, String> {
        let mut s = base;
        for (key, path) in [("state-dir", &self.state_dir), ("root", &self.root)] {
            if let Some(p) = path {
                if !p.is_absolute() {
                    return Err(format!("{key} '{}' must be an absolute path", p.display()));
                }
            }
        }
        let set = |dst: &mut bool, v: Option<bool>, on_means: bool| {
            if let Some(v) = v {
                *dst = v == on_means;
            }
        };
        if self.state_dir.is_some() {
            s.state_dir.clone_from(&self.state_dir);
        }
        set(&mut s.tls, self.plain, false);
        set(&mut s.require_token, self.open, false);
        s.listen = self.listen.unwrap_or(s.listen);
        if let Some(root) = &self.root {
            s.root.clone_from(root);
        }
        s.max_connections = self.max_connections.unwrap_or(s.max_connections);
        s.max_per_ip = self.max_per_ip.unwrap_or(s.max_per_ip);
        s.max_startups = self.max_startups.unwrap_or(s.max_startups);
        if let Some(t) = &self.idle_timeout {
            s.idle_timeout_secs = t
                .parse(parse_seconds)
                .map_err(|e| format!("idle-timeout: {e}"))?;
        }
        if let Some(t) = &self.stall_timeout {
            s.stall_timeout_secs = t
                .parse(parse_seconds)
                .map_err(|e| format!("stall-timeout: {e}"))?;
        }
        if let Some(t) = &self.storage_timeout {
            s.storage_timeout_secs = t
                .parse(parse_seconds)
                .map_err(|e| format!("storage-timeout: {e}"))?;
        }
        if self.health.is_some() {
            s.health = self.health;
        }
        set(&mut s.read_only, self.read_only, true);
        if let Some(size) = &self.max_file_size {
            s.max_file_size = Some(
                size.parse(parse_size)
                    .map_err(|e| format!("max-file-size: {e}"))?,
            );
        }
        set(&mut s.fsync, self.no_fsync, false);
        if let Some(ttl) = &self.partial_ttl {
            s.partial_ttl = ttl
                .parse(parse_duration)
                .map_err(|e| format!("partial-ttl: {e}"))?;
        }
        set(&mut s.reuse_port, self.reuse_port, true);
        if let Some(balancers) = &self.proxy_protocol {
            s.proxy_protocol.clone_from(balancers);
        }
        match (self.verbose.unwrap_or(false), self.quiet.unwrap_or(false)) {
            (true, true) => return Err("verbose and quiet cannot both be true".to_owned()),
            (true, false) => s.verbosity = Verbosity::Verbose,
            (false, true) => s.verbosity = Verbosity::Quiet,
            (false, false) => {}
        }
        Ok(s)
    }

    /// [`FileSettings::read`] then [`FileSettings::apply`] to the
    /// defaults: the settings of `ftxd --config PATH` with no other flag.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        FileSettings::read(path)?
            .apply(Settings::default())
            .map_err(|reason| ConfigError::File {
                path: path.to_path_buf(),
                reason,
            })
    }
}

/// `value` in `1..=MAX_TIMEOUT_SECS`, else the range error for `flag`.
fn timeout(flag: &'static str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 || value > MAX_TIMEOUT_SECS {
        return Err(ConfigError::Range {
            flag,
            reason: "must be between 1 second and a year (31536000)",
        });
    }
    Ok(Duration::from_secs(value))
}

/// `value`, unless it is 0: then the range error for `flag`.
fn at_least_one(flag: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Range {
            flag,
            reason: "must be at least 1",
        });
    }
    Ok(value)
}

impl ServerConfig {
    /// Checks the settings and builds the configuration. The limits are
    /// checked in a fixed order (the first wrong one is reported), then
    /// the state directory. The root is not looked at: the store checks
    /// it when it is opened.
    pub fn new(s: Settings) -> Result<ServerConfig, ConfigError> {
        let max_connections = at_least_one("--max-connections", s.max_connections)?;
        let idle_timeout = timeout("--idle-timeout", s.idle_timeout_secs)?;
        let max_startups = at_least_one("--max-startups", s.max_startups)?;
        let max_per_ip = at_least_one("--max-per-ip", s.max_per_ip)?;
        let stall_timeout = timeout("--stall-timeout", s.stall_timeout_secs)?;
        let storage_timeout = timeout("--storage-timeout", s.storage_timeout_secs)?;
        let access = if !s.tls && !s.require_token {
            AccessConfig::plain_open()
        } else {
            let dir = resolve_state_dir(s.state_dir)?;
            let real_root = resolve_existing(&s.root);
            if resolve_existing(&dir).starts_with(&real_root) {
                // Clients could read the key and overwrite the tokens.
                return Err(ConfigError::StateDir {
                    dir,
                    reason:
                        "is inside the served root (--root); give one outside it with --state-dir",
                });
            }
            AccessConfig {
                state_dir: Some(dir),
                tls: s.tls,
                require_token: s.require_token,
            }
        };
        Ok(ServerConfig {
            listen: s.listen,
            store: StoreConfig {
                root: s.root,
                read_only: s.read_only,
                max_file_size: s.max_file_size,
                fsync: s.fsync,
            },
            max_connections,
            max_per_ip,
            max_startups,
            idle_timeout,
            stall_timeout,
            storage_timeout,
            health: s.health,
            handshake_timeout: Duration::from_millis(s.handshake_timeout_ms.max(1)),
            partial_ttl: s.partial_ttl,
            verbosity: s.verbosity,
            access,
            reuse_port: s.reuse_port,
            proxy_protocol: s.proxy_protocol,
        })
    }
}

/// Parses a duration: plain seconds or digits with a suffix `s`, `m`,
/// `h` or `d` (`7d`, `12h`, `30m`, `90s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(digits_end);
    let bad = || format!("'{s}' is not a duration (examples: 7d, 12h, 30m, 90s)");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let unit = match suffix.to_ascii_lowercase().as_str() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit)
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' must be between 1 second and a few billion years"))
}

/// Parses a number of seconds: plain digits, or digits with a unit as
/// [`parse_duration`] takes them (`90s`, `5m`, `2h`, `1d`); 0 is left for
/// the setting's own range check to refuse.
pub fn parse_seconds(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_duration(s).map(|d| d.as_secs())
}

/// Parses a byte count: plain digits or digits with a binary suffix
/// `K`, `M`, `G`, `T` (optionally followed by `iB` or `B`, any case).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "'{s}' is not a size (examples: 1000, 64K, 10M, 2G)"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("'{s}': unknown size suffix (use K, M, G or T)")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root that exists, and a state directory outside it.
    fn settings_in(dir: &tempfile::TempDir) -> Settings {
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        Settings {
            root,
            state_dir: Some(dir.path().join("state")),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::default();
        assert_eq!(s.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(s.partial_ttl, Duration::from_secs(7 * 86_400));
        let dir = tempfile::tempdir().unwrap();
        let c = ServerConfig::new(settings_in(&dir)).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(c.store.root, dir.path().join("root"));
        assert!(!c.store.read_only);
        assert!(c.store.fsync);
        assert_eq!(c.store.max_file_size, None);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.max_per_ip, 64);
        assert_eq!(c.max_startups, 128);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.stall_timeout, Duration::from_secs(60));
        assert_eq!(c.storage_timeout, Duration::from_secs(60));
        assert_eq!(c.health, None);
        assert_eq!(c.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.partial_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.verbosity, Verbosity::Normal);
        assert!(c.access.tls && c.access.require_token);
        assert!(!c.reuse_port);
    }

    #[test]
    fn every_setting_reaches_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let c = ServerConfig::new(Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections: 10,
            max_per_ip: 11,
            max_startups: 12,
            idle_timeout_secs: 5,
            stall_timeout_secs: 6,
            storage_timeout_secs: 7,
            health: Some("127.0.0.1:8".parse().unwrap()),
            handshake_timeout_ms: 0,
            read_only: true,
            max_file_size: Some(10 << 20),
            fsync: false,
            partial_ttl: Duration::from_secs(90),
            reuse_port: true,
            verbosity: Verbosity::Quiet,
            ..settings_in(&dir)
        })
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert!(c.store.read_only);
        assert!(!c.store.fsync);
        assert_eq!(c.store.max_file_size, Some(10 << 20));
        assert_eq!(
            (c.max_connections, c.max_per_ip, c.max_startups),
            (10, 11, 12)
        );
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.stall_timeout, Duration::from_secs(6));
        assert_eq!(c.storage_timeout, Duration::from_secs(7));
        assert_eq!(c.health, Some("127.0.0.1:8".parse().unwrap()));
        // A zero handshake deadline would close every connection at once.
        assert_eq!(c.handshake_timeout, Duration::from_millis(1));
        assert_eq!(c.partial_ttl, Duration::from_secs(90));
        assert_eq!(c.verbosity, Verbosity::Quiet);
        assert!(c.reuse_port);
    }

    #[test]
    fn values_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let check = |s: Settings| ServerConfig::new(s).unwrap_err();
        let e = check(Settings {
            max_connections: 0,
            ..settings_in(&dir)
        });
        assert_eq!(e.to_string(), "--max-connections must be at least 1");
        let e = check(Settings {
            idle_timeout_secs: 0,
            ..settings_in(&dir)
        });
        assert!(matches!(e, ConfigError::Range { .. }));
        // Durations past a year would overflow the clock at the first
        // connection: refused here instead.
        let e = check(Settings {
            idle_timeout_secs: u64::MAX,
            ..settings_in(&dir)
        });
        assert_eq!(
            e.to_string(),
            "--idle-timeout must be between 1 second and a year (31536000)"
        );
        let e = check(Settings {
            stall_timeout_secs: MAX_TIMEOUT_SECS + 1,
            ..settings_in(&dir)
        });
        assert!(e.to_string().starts_with("--stall-timeout "), "{e}");
        // A storage call given no time at all would fail every transfer.
        let e = check(Settings {
            storage_timeout_secs: 0,
            ..settings_in(&dir)
        });
        assert_eq!(
            e.to_string(),
            "--storage-timeout must be between 1 second and a year (31536000)"
        );
        let e = check(Settings {
            max_startups: 0,
            ..settings_in(&dir)
        });
        assert_eq!(e.to_string(), "--max-startups must be at least 1");
        let e = check(Settings {
            max_per_ip: 0,
            ..settings_in(&dir)
        });
        assert_eq!(e.to_string(), "--max-per-ip must be at least 1");
        // The first wrong limit is the one reported.
        let e = check(Settings {
            max_connections: 0,
            max_per_ip: 0,
            ..settings_in(&dir)
        });
        assert_eq!(e.to_string(), "--max-connections must be at least 1");
        // The largest timeout is accepted.
        let c = ServerConfig::new(Settings {
            idle_timeout_secs: MAX_TIMEOUT_SECS,
            ..settings_in(&dir)
        })
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_secs(MAX_TIMEOUT_SECS));
    }

    #[test]
    fn the_root_is_left_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        for root in [file, dir.path().join("missing")] {
            let c = ServerConfig::new(Settings {
                root: root.clone(),
                ..settings_in(&dir)
            })
            .unwrap();
            assert_eq!(c.store.root, root);
        }
    }

    #[test]
    fn access_settings_and_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let base = settings_in(&dir);
        let root = base.root.clone();
        let state = dir.path().join("state");
        let c = ServerConfig::new(base.clone()).unwrap();
        assert!(c.access.tls && c.access.require_token);
        assert_eq!(c.access.state_dir.as_deref(), Some(state.as_path()));
        let c = ServerConfig::new(Settings {
            tls: false,
            require_token: false,
            ..base.clone()
        })
        .unwrap();
        assert_eq!(c.access, AccessConfig::plain_open());
        let c = ServerConfig::new(Settings {
            require_token: false,
            ..base.clone()
        })
        .unwrap();
        assert!(c.access.tls && !c.access.require_token);
        // Inside the root, even through a path that does not exist yet.
        for inside in [root.join("a/b/state"), root.clone()] {
            let e = ServerConfig::new(Settings {
                state_dir: Some(inside.clone()),
                ..base.clone()
            })
            .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "state directory '{}' is inside the served root (--root); give one outside it with --state-dir",
                    inside.display()
                )
            );
        }
        assert_eq!(
            ConfigError::NoStateDir.to_string(),
            "no --state-dir given and neither $XDG_STATE_HOME nor $HOME is set"
        );
    }

    #[test]
    fn a_config_file_sets_every_setting() {
        let text = r#"
            # Every key, each away from its default.
            state-dir = "/var/lib/ftxd"
            plain = true
            open = true
            listen = "127.0.0.1:7"
            root = "/srv/ftx"
            max-connections = 11
            max-per-ip = 12
            max-startups = 13
            idle-timeout = 14
            stall-timeout = 15
            storage-timeout = "2m"
            health = "127.0.0.1:9998"
            read-only = true
            max-file-size = "16K"
            no-fsync = true
            partial-ttl = "17m"
            reuse-port = true
            proxy-protocol = ["10.0.0.5", "2001:db8::5"]
            quiet = true
        "#;
        let s = FileSettings::parse(text)
            .unwrap()
            .apply(Settings::default())
            .unwrap();
        assert_eq!(
            s,
            Settings {
                state_dir: Some(PathBuf::from("/var/lib/ftxd")),
                tls: false,
                require_token: false,
                listen: "127.0.0.1:7".parse().unwrap(),
                root: PathBuf::from("/srv/ftx"),
                max_connections: 11,
                max_per_ip: 12,
                max_startups: 13,
                idle_timeout_secs: 14,
                stall_timeout_secs: 15,
                storage_timeout_secs: 120,
                health: Some("127.0.0.1:9998".parse().unwrap()),
                handshake_timeout_ms: 10_000,
                read_only: true,
                max_file_size: Some(16 << 10),
                fsync: false,
                partial_ttl: Duration::from_secs(17 * 60),
                reuse_port: true,
                proxy_protocol: vec!["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
                verbosity: Verbosity::Quiet,
            }
        );
    }

    #[test]
    fn timeouts_take_a_unit_in_the_file_and_on_the_command_line() {
        let apply = |text: &str| {
            FileSettings::parse(text)
                .unwrap()
                .apply(Settings::default())
        };
        let s = apply("idle-timeout = \"5m\"\nstall-timeout = \"90s\"\n").unwrap();
        assert_eq!((s.idle_timeout_secs, s.stall_timeout_secs), (300, 90));
        let s = apply("idle-timeout = 20\n").unwrap();
        assert_eq!(s.idle_timeout_secs, 20);
        let s = apply("storage-timeout = \"30s\"\n").unwrap();
        assert_eq!(s.storage_timeout_secs, 30);
        let s = apply("storage-timeout = 45\n").unwrap();
        assert_eq!(s.storage_timeout_secs, 45);
        let bad = apply("storage-timeout = \"later\"\n").unwrap_err();
        assert!(
            bad.starts_with("storage-timeout: 'later' is not a duration"),
            "{bad}"
        );
        assert!(FileSettings::parse("health = \"nowhere\"").is_err());
        let bad = apply("idle-timeout = \"soon\"\n").unwrap_err();
        assert!(
            bad.contains("idle-timeout: 'soon' is not a duration"),
            "{bad}"
        );
        assert_eq!(parse_seconds("2h"), Ok(7200));
        assert_eq!(parse_seconds("0"), Ok(0));
        assert!(parse_seconds("-1").is_err());
    }

    #[test]
    fn an_empty_file_changes_nothing_and_false_keeps_defaults() {
        let apply = |text: &str| {
            FileSettings::parse(text)
                .unwrap()
                .apply(Settings::default())
        };
        assert_eq!(apply(""), Ok(Settings::default()));
        let off = "plain = false\nopen = false\nread-only = false\nno-fsync = false\n\
                   reuse-port = false\nverbose = false\nquiet = false\n";
        assert_eq!(apply(off), Ok(Settings::default()));
        // Numbers stand for bytes and seconds, as on the command line.
        let s = apply("max-file-size = 1000\npartial-ttl = 90\nverbose = true").unwrap();
        assert_eq!(s.max_file_size, Some(1000));
        assert_eq!(s.partial_ttl, Duration::from_secs(90));
        assert_eq!(s.verbosity, Verbosity::Verbose);
    }

    #[test]
    fn config_file_errors_say_where_and_what() {
        let parse = |text: &str| FileSettings::parse(text).unwrap_err();
        let e = parse("root = \"/srv\"\nmax-conections = 3\n");
        assert!(
            e.starts_with("line 2: unknown field `max-conections`, expected one of"),
            "{e}"
        );
        let e = parse("\n\nmax-connections = \"many\"");
        assert!(e.starts_with("line 3: invalid type"), "{e}");
        assert!(parse("listen = \"nowhere\"").starts_with("line 1: "));
        assert!(parse("max-connections = -1").starts_with("line 1: "));
        assert!(parse("root = ").starts_with("line 1: "));
        let apply = |text: &str| {
            FileSettings::parse(text)
                .unwrap()
                .apply(Settings::default())
                .unwrap_err()
        };
        assert_eq!(
            apply("max-file-size = \"12X\""),
            "max-file-size: '12X': unknown size suffix (use K, M, G or T)"
        );
        assert_eq!(
            apply("partial-ttl = \"soon\""),
            "partial-ttl: 'soon' is not a duration (examples: 7d, 12h, 30m, 90s)"
        );
        assert_eq!(
            apply("root = \"srv\""),
            "root 'srv' must be an absolute path"
        );
        assert_eq!(
            apply("state-dir = \"./state\""),
            "state-dir './state' must be an absolute path"
        );
        assert_eq!(
            apply("verbose = true\nquiet = true"),
            "verbose and quiet cannot both be true"
        );
    }

    #[test]
    fn config_file_load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ftxd.toml");
        let e = FileSettings::load(&path).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("config file '{}': ", path.display())),
            "{e}"
        );
        std::fs::write(&path, "max-per-ip = 0\nidle-timeout = 9\n").unwrap();
        let s = FileSettings::load(&path).unwrap();
        assert_eq!((s.max_per_ip, s.idle_timeout_secs), (0, 9));
        // The file's values are checked as the flags' are, naming the flag.
        assert_eq!(
            ServerConfig::new(s).unwrap_err().to_string(),
            "--max-per-ip must be at least 1"
        );
        std::fs::write(&path, "partial-ttl = \"1w\"\n").unwrap();
        assert_eq!(
            FileSettings::load(&path).unwrap_err().to_string(),
            format!(
                "config file '{}': partial-ttl: '1w' is not a duration (examples: 7d, 12h, 30m, 90s)",
                path.display()
            )
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("3M"), Ok(3 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("7B"), Ok(7));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184G").is_err());
    }

    #[test]
    fn partial_ttl_durations() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90S"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
