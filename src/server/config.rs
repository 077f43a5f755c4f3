//! `ftxd`'s command line and the validated [`ServerConfig`] made from it.
//! Raw flags are parsed by `clap` and checked once here; nothing else in
//! the server looks at flags. Opens no sockets and touches no files beyond
//! checking that the root is a directory.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::store::StoreConfig;
use crate::proto::limits::{DEFAULT_IDLE_TIMEOUT, DEFAULT_STALL_TIMEOUT, HANDSHAKE_TIMEOUT};

/// Default listening address (as the original server).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9999";
/// Default connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default limit of connections from one IP address.
pub const DEFAULT_MAX_PER_IP: usize = 64;

/// `ftxd` command-line flags, as typed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ftxd",
    version,
    about = "ftx file-transfer server: one thread, many clients"
)]
pub struct ServerArgs {
    /// Manage access tokens instead of serving.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Where the key, certificate and tokens live (default: $XDG_STATE_HOME/ftxd or ~/.local/state/ftxd; never inside the root)
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// No TLS: bytes cross the network in clear (trusted networks, benchmarks)
    #[arg(long)]
    pub plain: bool,
    /// No access token needed: anyone who can connect may read and write
    #[arg(long)]
    pub open: bool,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Directory to serve.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// Largest number of connections served at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Largest number of connections from one IP address; the next one is
    /// told "too many connections from your address" and closed.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PER_IP)]
    pub max_per_ip: usize,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
    /// Seconds a running upload or download may go without data or
    /// acknowledgments before it is ended with a timeout error.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STALL_TIMEOUT.as_secs())]
    pub stall_timeout: u64,
    /// Handshake deadline in milliseconds (the protocol says 10 s; tests
    /// shorten it).
    #[arg(long, value_name = "MS", hide = true, default_value_t = HANDSHAKE_TIMEOUT.as_millis() as u64)]
    pub handshake_timeout_ms: u64,
    /// Refuse uploads and every change to the served tree.
    #[arg(long)]
    pub read_only: bool,
    /// Largest upload accepted (bytes; suffixes K, M, G, T are binary).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Do not fsync uploads (faster, not durable across a power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Interrupted uploads older than this are removed (e.g. 7d, 12h, 30m, 90s)
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub partial_ttl: Duration,
    /// Let several ftxd processes listen on the same address and port
    /// (SO_REUSEPORT): the kernel spreads new connections among them, so
    /// more than one core serves clients. Give each the same --root.
    #[arg(long)]
    pub reuse_port: bool,
    /// More log output (debug).
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Less log output (warnings and errors only).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `ftxd` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ServerCommand {
    /// Manage access tokens (stored hashed in the state directory).
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `ftxd token ...`
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Make a new token and print it (shown only this once).
    Add {
        /// A name for the token (letters, digits, '.', '_', '-').
        name: String,
        /// The token may list and download but change nothing.
        #[arg(long)]
        read_only: bool,
    },
    /// List the tokens' names and access (never the tokens).
    List,
    /// Remove a token: clients using it are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
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
    flag.or_else(super::tls::default_state_dir)
        .ok_or(ConfigError::StateDir {
            dir: None,
            reason: "no --state-dir given and neither $XDG_STATE_HOME nor $HOME is set",
        })
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
    /// The store's settings (root checked to be a directory).
    pub store: StoreConfig,
    /// Largest number of connections served at once (at least 1; the loop
    /// may lower it further to fit the open-file limit).
    pub max_connections: usize,
    /// Largest number of connections from one IP address (at least 1).
    pub max_per_ip: usize,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Silence after which a running transfer is ended.
    pub stall_timeout: Duration,
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
}

/// Why the flags do not make a usable configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The root does not exist or is not a directory.
    Root {
        /// The root as given.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A numeric flag is out of range.
    Range {
        /// The flag.
        flag: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// The state directory cannot be used.
    StateDir {
        /// The directory, when there is one.
        dir: Option<PathBuf>,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Root { root, reason } => write!(f, "root '{}' {reason}", root.display()),
            ConfigError::Range { flag, reason } => write!(f, "{flag} {reason}"),
            ConfigError::StateDir {
                dir: Some(d),
                reason,
            } => {
                write!(f, "state directory '{}' {reason}", d.display())
            }
            ConfigError::StateDir { dir: None, reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Checks the flags and builds the configuration.
    pub fn from_args(args: ServerArgs) -> Result<ServerConfig, ConfigError> {
        if args.max_connections == 0 {
            return Err(ConfigError::Range {
                flag: "--max-connections",
                reason: "must be at least 1",
            });
        }
        if args.idle_timeout == 0 {
            return Err(ConfigError::Range {
                flag: "--idle-timeout",
                reason: "must be at least 1 second",
            });
        }
        if args.max_per_ip == 0 {
            return Err(ConfigError::Range {
                flag: "--max-per-ip",
                reason: "must be at least 1",
            });
        }
        if args.stall_timeout == 0 {
            return Err(ConfigError::Range {
                flag: "--stall-timeout",
                reason: "must be at least 1 second",
            });
        }
        match std::fs::metadata(&args.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ConfigError::Root {
                    root: args.root,
                    reason: "is not a directory".to_owned(),
                })
            }
            Err(e) => {
                let reason = match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_owned(),
                    _ => format!("cannot be opened: {e}"),
                };
                return Err(ConfigError::Root {
                    root: args.root,
                    reason,
                });
            }
        }
        let access = if args.plain && args.open {
            AccessConfig::plain_open()
        } else {
            let dir = resolve_state_dir(args.state_dir)?;
            let real_root = resolve_existing(&args.root);
            if resolve_existing(&dir).starts_with(&real_root) {
                // Clients could read the key and overwrite the tokens.
                return Err(ConfigError::StateDir {
                    dir: Some(dir),
                    reason: "is inside the served root; choose one outside it",
                });
            }
            AccessConfig {
                state_dir: Some(dir),
                tls: !args.plain,
                require_token: !args.open,
            }
        };
        let verbosity = if args.verbose {
            Verbosity::Verbose
        } else if args.quiet {
            Verbosity::Quiet
        } else {
            Verbosity::Normal
        };
        Ok(ServerConfig {
            listen: args.listen,
            store: StoreConfig {
                root: args.root,
                read_only: args.read_only,
                max_file_size: args.max_file_size,
                fsync: !args.no_fsync,
            },
            max_connections: args.max_connections,
            max_per_ip: args.max_per_ip,
            idle_timeout: Duration::from_secs(args.idle_timeout),
            stall_timeout: Duration::from_secs(args.stall_timeout),
            handshake_timeout: Duration::from_millis(args.handshake_timeout_ms.max(1)),
            partial_ttl: args.partial_ttl,
            verbosity,
            access,
            reuse_port: args.reuse_port,
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

    fn args(extra: &[&str]) -> Result<ServerArgs, clap::Error> {
        ServerArgs::try_parse_from(std::iter::once("ftxd").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults() {
        let a = args(&[]).unwrap();
        let c = ServerConfig::from_args(a).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(c.store.root, PathBuf::from("."));
        assert!(!c.store.read_only);
        assert!(c.store.fsync);
        assert_eq!(c.store.max_file_size, None);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.verbosity, Verbosity::Normal);
        assert!(!c.reuse_port);
    }

    #[test]
    fn every_flag() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let a = args(&[
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            "--max-connections",
            "10",
            "--idle-timeout",
            "5",
            "--read-only",
            "--max-file-size",
            "10M",
            "--no-fsync",
            "--reuse-port",
            "-q",
        ])
        .unwrap();
        let c = ServerConfig::from_args(a).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.store.root, dir.path());
        assert!(c.store.read_only);
        assert!(!c.store.fsync);
        assert_eq!(c.store.max_file_size, Some(10 << 20));
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.verbosity, Verbosity::Quiet);
        assert!(c.reuse_port);
        let v = ServerConfig::from_args(args(&["-v"]).unwrap()).unwrap();
        assert_eq!(v.verbosity, Verbosity::Verbose);
    }

    #[test]
    fn bad_flags_are_clap_errors() {
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--max-connections", "-1"]).is_err());
        assert!(args(&["--max-file-size", "12X"]).is_err());
        assert!(args(&["-v", "-q"]).is_err());
        assert_eq!(
            args(&["--help"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
        assert_eq!(
            args(&["--version"]).unwrap_err().kind(),
            clap::error::ErrorKind::DisplayVersion
        );
    }

    #[test]
    fn values_are_validated() {
        let e = ServerConfig::from_args(args(&["--max-connections", "0"]).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "--max-connections must be at least 1");
        let e = ServerConfig::from_args(args(&["--idle-timeout", "0"]).unwrap()).unwrap_err();
        assert!(matches!(e, ConfigError::Range { .. }));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = ServerConfig::from_args(args(&["--root", file.to_str().unwrap()]).unwrap())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("root '{}' is not a directory", file.display())
        );
        let missing = dir.path().join("missing");
        let e = ServerConfig::from_args(args(&["--root", missing.to_str().unwrap()]).unwrap())
            .unwrap_err();
        assert!(e.to_string().ends_with("does not exist"), "{e}");
    }

    #[test]
    fn access_flags_and_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let r = root.to_str().unwrap();
        let state = dir.path().join("state");
        let st = state.to_str().unwrap();
        let c = ServerConfig::from_args(args(&["--root", r, "--state-dir", st]).unwrap()).unwrap();
        assert!(c.access.tls && c.access.require_token);
        assert_eq!(c.access.state_dir.as_deref(), Some(state.as_path()));
        let c =
            ServerConfig::from_args(args(&["--root", r, "--plain", "--open"]).unwrap()).unwrap();
        assert_eq!(c.access, AccessConfig::plain_open());
        let c = ServerConfig::from_args(args(&["--root", r, "--open", "--state-dir", st]).unwrap())
            .unwrap();
        assert!(c.access.tls && !c.access.require_token);
        // Inside the root, even through a path that does not exist yet.
        let inside = root.join("a/b/state");
        let e = ServerConfig::from_args(
            args(&["--root", r, "--state-dir", inside.to_str().unwrap()]).unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("inside the served root"), "{e}");
        let e =
            ServerConfig::from_args(args(&["--root", r, "--state-dir", r]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("inside the served root"), "{e}");
    }

    #[test]
    fn token_subcommands_parse() {
        let a = args(&["token", "add", "bob", "--read-only", "--state-dir", "/s"]).unwrap();
        assert_eq!(a.state_dir, Some(PathBuf::from("/s")));
        assert!(matches!(
            a.command,
            Some(ServerCommand::Token(TokenCommand::Add { ref name, read_only: true })) if name == "bob"
        ));
        assert!(matches!(
            args(&["token", "list"]).unwrap().command,
            Some(ServerCommand::Token(TokenCommand::List))
        ));
        assert!(args(&["token", "revoke"]).is_err());
        assert!(args(&["token", "frob"]).is_err());
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
