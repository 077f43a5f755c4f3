//! `ftxd`'s command line and the validated [`ServerConfig`] made from it.
//! Raw flags are parsed by `clap` and checked once here; nothing else in
//! the server looks at flags. Opens no sockets and touches no files beyond
//! checking that the root is a directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use super::store::StoreConfig;
use crate::cli::{option, switch, value, Args};
use crate::proto::limits::{DEFAULT_IDLE_TIMEOUT, DEFAULT_STALL_TIMEOUT, HANDSHAKE_TIMEOUT};

/// Default listening address (as the original server).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9999";
/// Default connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default limit of connections from one address group (an IPv4 /24, an
/// IPv6 /64).
pub const DEFAULT_MAX_PER_IP: usize = 64;
/// Default limit of connections that have not finished their handshake.
pub const DEFAULT_MAX_STARTUPS: usize = 128;
/// Longest idle or stall timeout accepted: a year (a larger one would
/// overflow the clock's arithmetic).
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// `ftxd` command-line flags, as typed. [`Args::command`] describes them
/// (the help texts repeat the first line of each field's documentation).
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// Manage access tokens instead of serving.
    pub command: Option<ServerCommand>,
    /// Where the key, certificate and tokens live (default: $XDG_STATE_HOME/ftxd or ~/.local/state/ftxd; never inside the root)
    pub state_dir: Option<PathBuf>,
    /// No TLS: bytes cross the network in clear (trusted networks, benchmarks)
    pub plain: bool,
    /// No access token needed: anyone who can connect may read and write
    pub open: bool,
    /// Address and port to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory to serve.
    pub root: PathBuf,
    /// Largest number of connections served at once.
    pub max_connections: usize,
    /// Largest number of connections from one IP address; the next one is
    /// told "too many connections from your address" and closed.
    pub max_per_ip: usize,
    /// Largest number of connections still in their handshake; past it
    /// the oldest of them is dropped to make room.
    pub max_startups: usize,
    /// Seconds a connection may stay silent before it is closed.
    pub idle_timeout: u64,
    /// Seconds a running upload or download may go without data or
    /// acknowledgments before it is ended with a timeout error.
    pub stall_timeout: u64,
    /// Handshake deadline in milliseconds (the protocol says 10 s; tests
    /// shorten it).
    pub handshake_timeout_ms: u64,
    /// Refuse uploads and every change to the served tree.
    pub read_only: bool,
    /// Largest upload accepted (bytes; suffixes K, M, G, T are binary).
    pub max_file_size: Option<u64>,
    /// Do not fsync uploads (faster, not durable across a power loss).
    pub no_fsync: bool,
    /// Interrupted uploads older than this are removed (e.g. 7d, 12h, 30m, 90s)
    pub partial_ttl: Duration,
    /// Let several ftxd processes listen on the same address and port
    /// (SO_REUSEPORT): the kernel spreads new connections among them, so
    /// more than one core serves clients. Give each the same --root.
    pub reuse_port: bool,
    /// More log output (debug).
    pub verbose: bool,
    /// Less log output (warnings and errors only).
    pub quiet: bool,
}

/// `ftxd` subcommands.
#[derive(Debug, Clone)]
pub enum ServerCommand {
    /// Manage access tokens (stored hashed in the state directory).
    Token(TokenCommand),
}

/// `ftxd token ...`
#[derive(Debug, Clone)]
pub enum TokenCommand {
    /// Make a new token and print it (shown only this once).
    Add {
        /// A name for the token (letters, digits, '.', '_', '-').
        name: String,
        /// The token may list and download but change nothing.
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

/// The ids of `ftxd`'s arguments (the field names), shared by the
/// `Command` and the reading of its matches so the two cannot drift apart.
mod id {
    pub const STATE_DIR: &str = "state_dir";
    pub const PLAIN: &str = "plain";
    pub const OPEN: &str = "open";
    pub const LISTEN: &str = "listen";
    pub const ROOT: &str = "root";
    pub const MAX_CONNECTIONS: &str = "max_connections";
    pub const MAX_PER_IP: &str = "max_per_ip";
    pub const MAX_STARTUPS: &str = "max_startups";
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    pub const STALL_TIMEOUT: &str = "stall_timeout";
    pub const HANDSHAKE_TIMEOUT_MS: &str = "handshake_timeout_ms";
    pub const READ_ONLY: &str = "read_only";
    pub const MAX_FILE_SIZE: &str = "max_file_size";
    pub const NO_FSYNC: &str = "no_fsync";
    pub const PARTIAL_TTL: &str = "partial_ttl";
    pub const REUSE_PORT: &str = "reuse_port";
    pub const VERBOSE: &str = "verbose";
    pub const QUIET: &str = "quiet";
    /// `ftxd token add|revoke NAME`.
    pub const NAME: &str = "name";
    /// `ftxd token add --read-only` (an argument of `add` only).
    pub const TOKEN_READ_ONLY: &str = "read_only";
}

/// The subcommands' names, as typed.
const TOKEN: &str = "token";
const ADD: &str = "add";
const LIST: &str = "list";
const REVOKE: &str = "revoke";

impl Args for ServerArgs {
    fn command() -> Command {
        Command::new("ftxd")
            .version(env!("CARGO_PKG_VERSION"))
            .about("ftx file-transfer server: one thread, many clients")
            .subcommand(ServerCommand::command())
            .args(access_args())
            .args(listen_args())
            .args(timeout_args())
            .args(store_args())
            .args(process_args())
    }

    fn from_matches(m: &ArgMatches) -> ServerArgs {
        ServerArgs {
            command: ServerCommand::from_matches(m),
            state_dir: m.get_one::<PathBuf>(id::STATE_DIR).cloned(),
            plain: m.get_flag(id::PLAIN),
            open: m.get_flag(id::OPEN),
            listen: value(m, id::LISTEN),
            root: value(m, id::ROOT),
            max_connections: value(m, id::MAX_CONNECTIONS),
            max_per_ip: value(m, id::MAX_PER_IP),
            max_startups: value(m, id::MAX_STARTUPS),
            idle_timeout: value(m, id::IDLE_TIMEOUT),
            stall_timeout: value(m, id::STALL_TIMEOUT),
            handshake_timeout_ms: value(m, id::HANDSHAKE_TIMEOUT_MS),
            read_only: m.get_flag(id::READ_ONLY),
            max_file_size: m.get_one::<u64>(id::MAX_FILE_SIZE).copied(),
            no_fsync: m.get_flag(id::NO_FSYNC),
            partial_ttl: value(m, id::PARTIAL_TTL),
            reuse_port: m.get_flag(id::REUSE_PORT),
            verbose: m.get_flag(id::VERBOSE),
            quiet: m.get_flag(id::QUIET),
        }
    }
}

/// TLS, tokens and where their state lives. `--state-dir` is global so
/// that `ftxd token ... --state-dir DIR` works after the subcommand too.
fn access_args() -> [Arg; 3] {
    [
        option(
            id::STATE_DIR,
            "state-dir",
            "DIR",
            "Where the key, certificate and tokens live (default: $XDG_STATE_HOME/ftxd or ~/.local/state/ftxd; never inside the root)",
        )
        .value_parser(value_parser!(PathBuf))
        .global(true),
        switch(
            id::PLAIN,
            "plain",
            "No TLS: bytes cross the network in clear (trusted networks, benchmarks)",
        ),
        switch(
            id::OPEN,
            "open",
            "No access token needed: anyone who can connect may read and write",
        ),
    ]
}

/// Where to listen, what to serve and to how many.
fn listen_args() -> [Arg; 5] {
    [
        option(
            id::LISTEN,
            "listen",
            "ADDR:PORT",
            "Address and port to listen on (port 0 picks a free one)",
        )
        .value_parser(value_parser!(SocketAddr))
        .default_value(DEFAULT_LISTEN),
        option(id::ROOT, "root", "DIR", "Directory to serve")
            .value_parser(value_parser!(PathBuf))
            .default_value("."),
        option(
            id::MAX_CONNECTIONS,
            "max-connections",
            "N",
            "Largest number of connections served at once",
        )
        .value_parser(value_parser!(usize))
        .default_value(DEFAULT_MAX_CONNECTIONS.to_string()),
        option(
            id::MAX_PER_IP,
            "max-per-ip",
            "N",
            "Largest number of connections from one IP address (counted by /24 for IPv4, /64 for IPv6); the next one is told \"too many connections from your address\" and closed",
        )
        .value_parser(value_parser!(usize))
        .default_value(DEFAULT_MAX_PER_IP.to_string()),
        option(
            id::MAX_STARTUPS,
            "max-startups",
            "N",
            "Largest number of connections not yet past their Hello and token; past it the oldest of them is dropped to make room",
        )
        .value_parser(value_parser!(usize))
        .default_value(DEFAULT_MAX_STARTUPS.to_string()),
    ]
}

/// How long a connection may stay silent, stall or take to say hello.
/// The handshake deadline is hidden: the protocol fixes it, tests shorten it.
fn timeout_args() -> [Arg; 3] {
    [
        option(
            id::IDLE_TIMEOUT,
            "idle-timeout",
            "SECS",
            "Seconds a connection may stay silent before it is closed",
        )
        .value_parser(value_parser!(u64))
        .default_value(DEFAULT_IDLE_TIMEOUT.as_secs().to_string()),
        option(
            id::STALL_TIMEOUT,
            "stall-timeout",
            "SECS",
            "Seconds a running upload or download may go without data or acknowledgments before it is ended with a timeout error",
        )
        .value_parser(value_parser!(u64))
        .default_value(DEFAULT_STALL_TIMEOUT.as_secs().to_string()),
        option(
            id::HANDSHAKE_TIMEOUT_MS,
            "handshake-timeout-ms",
            "MS",
            "Handshake deadline in milliseconds (the protocol says 10 s; tests shorten it)",
        )
        .value_parser(value_parser!(u64))
        .default_value(HANDSHAKE_TIMEOUT.as_millis().to_string())
        .hide(true),
    ]
}

/// What the store accepts and how it keeps it.
fn store_args() -> [Arg; 4] {
    [
        switch(
            id::READ_ONLY,
            "read-only",
            "Refuse uploads and every change to the served tree",
        ),
        option(
            id::MAX_FILE_SIZE,
            "max-file-size",
            "BYTES",
            "Largest upload accepted (bytes; suffixes K, M, G, T are binary)",
        )
        .value_parser(parse_size),
        switch(
            id::NO_FSYNC,
            "no-fsync",
            "Do not fsync uploads (faster, not durable across a power loss)",
        ),
        option(
            id::PARTIAL_TTL,
            "partial-ttl",
            "DURATION",
            "Interrupted uploads older than this are removed (e.g. 7d, 12h, 30m, 90s)",
        )
        .value_parser(parse_duration)
        .default_value("7d"),
    ]
}

/// Sharing the port with other processes, and how much to log.
fn process_args() -> [Arg; 3] {
    [
        switch(
            id::REUSE_PORT,
            "reuse-port",
            "Let several ftxd processes listen on the same address and port (SO_REUSEPORT): the kernel spreads new connections among them, so more than one core serves clients. Give each the same --root",
        ),
        switch(id::VERBOSE, "verbose", "More log output (debug)")
            .short('v')
            .conflicts_with(id::QUIET),
        switch(
            id::QUIET,
            "quiet",
            "Less log output (warnings and errors only)",
        )
        .short('q'),
    ]
}

impl ServerCommand {
    /// `ftxd token`. It needs one of its own subcommands: alone it shows
    /// its help as an error (exit 2), as a mistyped command line should.
    fn command() -> Command {
        Command::new(TOKEN)
            .about("Manage access tokens (stored hashed in the state directory)")
            .subcommand_required(true)
            .arg_required_else_help(true)
            .subcommands(TokenCommand::commands())
    }

    /// The subcommand in `m`, if any.
    fn from_matches(m: &ArgMatches) -> Option<ServerCommand> {
        match m.subcommand() {
            None => None,
            Some((TOKEN, sub)) => Some(ServerCommand::Token(TokenCommand::from_matches(sub))),
            Some((other, _)) => unreachable!("ftxd defines no subcommand '{other}'"),
        }
    }
}

impl TokenCommand {
    /// `ftxd token add|list|revoke`.
    fn commands() -> [Command; 3] {
        [
            Command::new(ADD)
                .about("Make a new token and print it (shown only this once)")
                .arg(name_arg(
                    "A name for the token (letters, digits, '.', '_', '-')",
                ))
                .arg(switch(
                    id::TOKEN_READ_ONLY,
                    "read-only",
                    "The token may list and download but change nothing",
                )),
            Command::new(LIST).about("List the tokens' names and access (never the tokens)"),
            Command::new(REVOKE)
                .about("Remove a token: clients using it are refused from now on")
                .arg(name_arg("The token's name")),
        ]
    }

    /// The `token` subcommand in `m` (clap requires one).
    fn from_matches(m: &ArgMatches) -> TokenCommand {
        match m.subcommand() {
            Some((ADD, sub)) => TokenCommand::Add {
                name: value(sub, id::NAME),
                read_only: sub.get_flag(id::TOKEN_READ_ONLY),
            },
            Some((LIST, _)) => TokenCommand::List,
            Some((REVOKE, sub)) => TokenCommand::Revoke {
                name: value(sub, id::NAME),
            },
            other => unreachable!("'ftxd token' requires add, list or revoke, not {other:?}"),
        }
    }
}

/// The required `NAME` of `token add` and `token revoke`.
fn name_arg(help: &'static str) -> Arg {
    Arg::new(id::NAME)
        .value_name("NAME")
        .required(true)
        .value_parser(value_parser!(String))
        .action(ArgAction::Set)
        .help(help)
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
    /// The store's settings (root checked to be a directory).
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The root does not exist or is not a directory.
    #[error("root '{}' {reason}", root.display())]
    Root {
        /// The root as given.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
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
}

impl ServerConfig {
    /// Checks the flags and builds the configuration.
    pub fn from_args(args: ServerArgs) -> Result<ServerConfig, ConfigError> {
        if args.max_connections == 0 {
            return Err(ConfigError::Range {
                flag: "--max-connections",
                reason: "must be at least 1",
            });
        }
        if args.idle_timeout == 0 || args.idle_timeout > MAX_TIMEOUT_SECS {
            return Err(ConfigError::Range {
                flag: "--idle-timeout",
                reason: "must be between 1 second and a year (31536000)",
            });
        }
        if args.max_startups == 0 {
            return Err(ConfigError::Range {
                flag: "--max-startups",
                reason: "must be at least 1",
            });
        }
        if args.max_per_ip == 0 {
            return Err(ConfigError::Range {
                flag: "--max-per-ip",
                reason: "must be at least 1",
            });
        }
        if args.stall_timeout == 0 || args.stall_timeout > MAX_TIMEOUT_SECS {
            return Err(ConfigError::Range {
                flag: "--stall-timeout",
                reason: "must be between 1 second and a year (31536000)",
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
                    dir,
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
            max_startups: args.max_startups,
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
        // Durations past a year would overflow the clock at the first
        // connection: refused here instead.
        for flag in ["--idle-timeout", "--stall-timeout"] {
            let e = ServerConfig::from_args(args(&[flag, "18446744073709551615"]).unwrap())
                .unwrap_err();
            assert!(e.to_string().starts_with(flag), "{e}");
        }
        let e = ServerConfig::from_args(args(&["--max-startups", "0"]).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "--max-startups must be at least 1");
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
        assert_eq!(
            e.to_string(),
            format!("state directory '{r}' is inside the served root; choose one outside it")
        );
        assert_eq!(
            ConfigError::NoStateDir.to_string(),
            "no --state-dir given and neither $XDG_STATE_HOME nor $HOME is set"
        );
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

    /// The on/off flags in field order, to check that each switch sets
    /// its own field and no other.
    fn switches(a: &ServerArgs) -> [bool; 7] {
        [
            a.plain,
            a.open,
            a.read_only,
            a.no_fsync,
            a.reuse_port,
            a.verbose,
            a.quiet,
        ]
    }

    fn kind(extra: &[&str]) -> clap::error::ErrorKind {
        args(extra).unwrap_err().kind()
    }

    #[test]
    fn command_is_well_formed() {
        ServerArgs::command().debug_assert();
    }

    #[test]
    fn absent_flags_take_their_defaults() {
        let a = args(&[]).unwrap();
        assert!(a.command.is_none());
        assert_eq!(a.state_dir, None);
        assert_eq!(switches(&a), [false; 7]);
        assert_eq!(a.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(a.root, PathBuf::from("."));
        assert_eq!(a.max_connections, 1024);
        assert_eq!(a.max_per_ip, 64);
        assert_eq!(a.idle_timeout, 300);
        assert_eq!(a.stall_timeout, 60);
        assert_eq!(a.handshake_timeout_ms, 10_000);
        assert_eq!(a.max_file_size, None);
        assert_eq!(a.partial_ttl, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn every_value_flag_reaches_its_field() {
        // Distinct numbers, so two swapped fields cannot pass.
        let a = args(&[
            "--state-dir",
            "/state",
            "--listen",
            "127.0.0.1:7",
            "--root",
            "/srv",
            "--max-connections",
            "11",
            "--max-per-ip",
            "12",
            "--idle-timeout",
            "13",
            "--stall-timeout",
            "14",
            "--handshake-timeout-ms",
            "15",
            "--max-file-size",
            "16K",
            "--partial-ttl",
            "17m",
        ])
        .unwrap();
        assert!(a.command.is_none());
        assert_eq!(a.state_dir, Some(PathBuf::from("/state")));
        assert_eq!(a.listen, "127.0.0.1:7".parse().unwrap());
        assert_eq!(a.root, PathBuf::from("/srv"));
        assert_eq!(a.max_connections, 11);
        assert_eq!(a.max_per_ip, 12);
        assert_eq!(a.idle_timeout, 13);
        assert_eq!(a.stall_timeout, 14);
        assert_eq!(a.handshake_timeout_ms, 15);
        assert_eq!(a.max_file_size, Some(16 << 10));
        assert_eq!(a.partial_ttl, Duration::from_secs(17 * 60));
        assert_eq!(switches(&a), [false; 7]);
        // The `--flag=value` form too.
        let a = args(&["--max-per-ip=3", "--partial-ttl=2h"]).unwrap();
        assert_eq!(a.max_per_ip, 3);
        assert_eq!(a.partial_ttl, Duration::from_secs(7200));
    }

    #[test]
    fn each_switch_sets_only_its_field() {
        let cases = [
            ("--plain", 0),
            ("--open", 1),
            ("--read-only", 2),
            ("--no-fsync", 3),
            ("--reuse-port", 4),
            ("--verbose", 5),
            ("-v", 5),
            ("--quiet", 6),
            ("-q", 6),
        ];
        for (flag, field) in cases {
            let mut want = [false; 7];
            want[field] = true;
            assert_eq!(switches(&args(&[flag]).unwrap()), want, "{flag}");
        }
        let all = args(&[
            "--plain",
            "--open",
            "--read-only",
            "--no-fsync",
            "--reuse-port",
            "-v",
        ])
        .unwrap();
        assert_eq!(switches(&all), [true, true, true, true, true, true, false]);
    }

    #[test]
    fn verbose_and_quiet_conflict() {
        use clap::error::ErrorKind::ArgumentConflict;
        assert_eq!(kind(&["-v", "-q"]), ArgumentConflict);
        assert_eq!(kind(&["-q", "-v"]), ArgumentConflict);
        assert_eq!(kind(&["--verbose", "--quiet"]), ArgumentConflict);
    }

    #[test]
    fn bad_values_name_the_flag_and_the_reason() {
        let text = |extra: &[&str]| args(extra).unwrap_err().render().to_string();
        let first = |extra: &[&str]| text(extra).lines().next().unwrap_or_default().to_owned();
        assert_eq!(
            first(&["--max-file-size", "12X"]),
            "error: invalid value '12X' for '--max-file-size <BYTES>': \
             '12X': unknown size suffix (use K, M, G or T)"
        );
        assert_eq!(
            first(&["--partial-ttl", "nope"]),
            "error: invalid value 'nope' for '--partial-ttl <DURATION>': \
             'nope' is not a duration (examples: 7d, 12h, 30m, 90s)"
        );
        assert_eq!(
            first(&["-v", "-q"]),
            "error: the argument '--verbose' cannot be used with '--quiet'"
        );
        assert_eq!(
            first(&["--max-connections", "abc"]),
            "error: invalid value 'abc' for '--max-connections <N>': invalid digit found in string"
        );
        use clap::error::ErrorKind::*;
        assert_eq!(kind(&["--listen", "nowhere"]), ValueValidation);
        assert_eq!(kind(&["--idle-timeout", "-5"]), UnknownArgument);
        assert_eq!(kind(&["--stall-timeout", "x"]), ValueValidation);
        assert_eq!(kind(&["--handshake-timeout-ms", "x"]), ValueValidation);
        assert_eq!(kind(&["--root"]), InvalidValue);
        assert_eq!(kind(&["--plain=yes"]), TooManyValues);
        assert_eq!(kind(&["stray"]), InvalidSubcommand);
    }

    #[test]
    fn token_subcommands_take_the_state_dir_anywhere() {
        let add = |a: &ServerArgs| match &a.command {
            Some(ServerCommand::Token(TokenCommand::Add { name, read_only })) => {
                (name.clone(), *read_only)
            }
            other => panic!("not token add: {other:?}"),
        };
        for line in [
            &["--state-dir", "/s", "token", "add", "bob"][..],
            &["token", "--state-dir", "/s", "add", "bob"],
            &["token", "add", "--state-dir", "/s", "bob"],
            &["token", "add", "bob", "--state-dir", "/s"],
        ] {
            let a = args(line).unwrap();
            assert_eq!(a.state_dir, Some(PathBuf::from("/s")), "{line:?}");
            assert_eq!(add(&a), ("bob".to_owned(), false), "{line:?}");
        }
        let a = args(&["token", "add", "--read-only", "carol"]).unwrap();
        assert_eq!(
            (a.state_dir.clone(), add(&a)),
            (None, ("carol".into(), true))
        );
        // Only `token add` has a --read-only; the server's is another flag.
        assert!(!a.read_only);
        assert!(args(&["token", "list", "--read-only"]).is_err());
        let a = args(&["token", "list", "--state-dir", "/t"]).unwrap();
        assert!(matches!(
            a.command,
            Some(ServerCommand::Token(TokenCommand::List))
        ));
        assert_eq!(a.state_dir, Some(PathBuf::from("/t")));
        let a = args(&["--state-dir", "/u", "token", "revoke", "dave"]).unwrap();
        assert!(matches!(
            a.command,
            Some(ServerCommand::Token(TokenCommand::Revoke { ref name })) if name == "dave"
        ));
        assert_eq!(a.state_dir, Some(PathBuf::from("/u")));
    }

    #[test]
    fn token_subcommands_refuse_bad_lines() {
        use clap::error::ErrorKind::*;
        assert_eq!(kind(&["token"]), DisplayHelpOnMissingArgumentOrSubcommand);
        assert_eq!(kind(&["token", "add"]), MissingRequiredArgument);
        assert_eq!(kind(&["token", "revoke"]), MissingRequiredArgument);
        assert_eq!(kind(&["token", "add", "a", "b"]), UnknownArgument);
        assert_eq!(kind(&["token", "list", "extra"]), UnknownArgument);
        assert_eq!(kind(&["token", "frob"]), InvalidSubcommand);
        // Server flags belong before `token`, not after it.
        assert_eq!(kind(&["token", "list", "--plain"]), UnknownArgument);
    }

    #[test]
    fn help_and_version() {
        let help = ServerArgs::command().render_help().to_string();
        for flag in [
            "--state-dir <DIR>",
            "--plain",
            "--open",
            "--listen <ADDR:PORT>",
            "[default: 0.0.0.0:9999]",
            "--root <DIR>",
            "[default: .]",
            "--max-connections <N>",
            "[default: 1024]",
            "--max-per-ip <N>",
            "[default: 64]",
            "--max-startups <N>",
            "[default: 128]",
            "--idle-timeout <SECS>",
            "[default: 300]",
            "--stall-timeout <SECS>",
            "[default: 60]",
            "--read-only",
            "--max-file-size <BYTES>",
            "--no-fsync",
            "--partial-ttl <DURATION>",
            "[default: 7d]",
            "--reuse-port",
            "-v, --verbose",
            "-q, --quiet",
            "token",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
        assert!(!help.contains("handshake"), "hidden flag shown:\n{help}");
        let e = args(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            e.render().to_string(),
            format!("ftxd {}\n", env!("CARGO_PKG_VERSION"))
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
