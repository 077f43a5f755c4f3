//! `ftxd`'s command line: the flags and the `token` subcommands, declared
//! with clap's derive, and their reading into the library's plain
//! [`Settings`], over those of the config file. Each field's doc comment is
//! its help text (clap drops the final period); what the values mean and
//! how they are checked is the library's business (`ftx::server::config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use clap_complete::Shell;
use ftx::proto::limits::{DEFAULT_IDLE_TIMEOUT, DEFAULT_STALL_TIMEOUT, HANDSHAKE_TIMEOUT};
use ftx::server::config::{
    parse_duration, parse_seconds, parse_size, FileSettings, Settings, Verbosity, DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_IP, DEFAULT_MAX_STARTUPS, DEFAULT_PARTIAL_TTL,
    DEFAULT_ROOT, DEFAULT_STORAGE_TIMEOUT,
};

use crate::command_line::Given;

/// `ftxd [OPTIONS] [token ...]`, as typed.
#[derive(Debug, Parser)]
#[command(
    name = "ftxd",
    version,
    about = "ftx file-transfer server: one thread, many clients",
    long_about = None
)]
pub struct ServerArgs {
    /// Manage access tokens instead of serving.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,

    /// Read the settings from this TOML file (keys are the long flags'
    /// names: root = "/srv/ftx"); flags given as well override it. No file
    /// is read without it
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Check the settings, the root and the state directory as a start
    /// would, say what would be served, and exit without serving
    #[arg(long, conflicts_with = "show_fingerprint")]
    pub check_config: bool,

    // Access: TLS, tokens and where their state lives. `--state-dir` is
    // global so that `ftxd token ... --state-dir DIR` works after the
    // subcommand too.
    /// Where the key, certificate and tokens live (default:
    /// $XDG_STATE_HOME/ftxd or ~/.local/state/ftxd; never inside the root)
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// No TLS: bytes cross the network in clear (trusted networks,
    /// benchmarks)
    #[arg(long)]
    pub plain: bool,
    /// No access token needed: anyone who can connect may read and write
    #[arg(long)]
    pub open: bool,
    /// Print the fingerprint of the certificate in the state directory and
    /// exit (what ftx asks to compare on first contact); creates nothing
    #[arg(long, conflicts_with_all = ["plain", "open"])]
    pub show_fingerprint: bool,

    // Where to listen, what to serve and to how many.
    /// Address and port to listen on (port 0 picks a free one)
    #[arg(long, value_name = "ADDR:PORT", default_value_t = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Directory to serve
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Largest number of connections served at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Largest number of connections from one IP address (counted by /24
    /// for IPv4, /64 for IPv6); the next one is told "too many connections
    /// from your address" and closed
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PER_IP)]
    pub max_per_ip: usize,
    /// Largest number of connections not yet past their Hello and token;
    /// past it the oldest of them is dropped to make room
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_STARTUPS)]
    pub max_startups: usize,

    // How long a connection may stay silent, stall or take to say hello.
    // The handshake deadline is hidden: the protocol fixes it, tests
    // shorten it.
    /// Seconds a connection may stay silent before it is closed (or with
    /// a unit: 90s, 5m, 2h)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(),
          value_parser = parse_seconds)]
    pub idle_timeout: u64,
    /// Seconds a running upload or download may go without data or
    /// acknowledgments before it is ended with a timeout error (or with a
    /// unit: 90s, 5m)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STALL_TIMEOUT.as_secs(),
          value_parser = parse_seconds)]
    pub stall_timeout: u64,
    /// Seconds a storage call (fsync, flush, prefix hash, health probe)
    /// may take on ftxd's disk helpers before the transfer waiting for it
    /// fails with a timeout error, the node going on (or with a unit: 30s,
    /// 2m)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STORAGE_TIMEOUT.as_secs(),
          value_parser = parse_seconds)]
    pub storage_timeout: u64,
    /// Handshake deadline in milliseconds (the protocol says 10 s; tests
    /// shorten it)
    #[arg(
        long,
        value_name = "MS",
        default_value = HANDSHAKE_TIMEOUT.as_millis().to_string(),
        hide = true
    )]
    pub handshake_timeout_ms: u64,

    // What the store accepts and how it keeps it.
    /// Refuse uploads and every change to the served tree
    #[arg(long)]
    pub read_only: bool,
    /// Largest upload accepted (bytes; suffixes K, M, G, T are binary)
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Do not fsync uploads (faster, not durable across a power loss)
    #[arg(long)]
    pub no_fsync: bool,
    /// Interrupted uploads older than this are removed (e.g. 7d, 12h, 30m,
    /// 90s)
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = DEFAULT_PARTIAL_TTL
    )]
    pub partial_ttl: Duration,

    // Sharing the port with other processes, and how much to log.
    /// Let several ftxd processes listen on the same address and port
    /// (SO_REUSEPORT): the kernel spreads new connections among them, so
    /// more than one core serves clients. Give each the same --root
    #[arg(long)]
    pub reuse_port: bool,
    /// A load balancer (HAProxy, ...) whose connections start with a
    /// PROXY protocol v2 header naming the client; repeat it or separate
    /// addresses with commas. Only these connections are read for one
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub proxy_protocol: Vec<std::net::IpAddr>,
    /// Answer load balancers' health checks on this address (plain TCP,
    /// an HTTP/1.0 reply, then closed): 200 while a probe of the root
    /// answers within --storage-timeout, 503 otherwise
    #[arg(long, value_name = "ADDR:PORT")]
    pub health: Option<SocketAddr>,
    /// More log output (debug)
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Less log output (warnings and errors only)
    #[arg(short, long)]
    pub quiet: bool,
}

/// `ftxd` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ServerCommand {
    // It needs one of its own subcommands: alone it shows its help as an
    // error (exit 2), as a mistyped command line should.
    /// Manage access tokens (stored hashed in the state directory)
    #[command(subcommand, arg_required_else_help = true)]
    Token(TokenCommand),
    /// Print the shell completion script for ftxd (bash, zsh or fish)
    Completions {
        /// The shell
        shell: Shell,
    },
    /// Print ftxd's manual page (roff), for packaging
    #[command(hide = true)]
    Manpage,
}

/// `ftxd token add|list|revoke`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Make a new token and print it (shown only this once)
    Add {
        /// A name for the token (letters, digits, '.', '_', '-')
        name: String,
        /// The token may list and download but change nothing
        #[arg(long)]
        read_only: bool,
    },
    /// List the tokens' names and access (never the tokens)
    List,
    /// Remove a token: clients using it are refused from now on
    Revoke {
        /// The token's name
        name: String,
    },
}

impl ServerArgs {
    /// The server's settings, as the flags give them over their defaults
    /// (checked later by `ServerConfig::new`). The subcommand is not part
    /// of them.
    #[cfg(test)]
    pub fn settings(self) -> Settings {
        self.settings_over(Settings::default(), &|_| true)
    }

    /// `base` (the config file's settings) with the flags that `given`
    /// says were typed put in their place: a flag overrides the file, a
    /// flag's default never does. A switch can only turn its setting on.
    pub fn settings_over(self, base: Settings, given: &dyn Fn(&str) -> bool) -> Settings {
        let mut s = base;
        if given("state_dir") {
            s.state_dir = self.state_dir;
        }
        if given("plain") {
            s.tls = !self.plain;
        }
        if given("open") {
            s.require_token = !self.open;
        }
        if given("listen") {
            s.listen = self.listen;
        }
        if given("root") {
            s.root = self.root;
        }
        if given("max_connections") {
            s.max_connections = self.max_connections;
        }
        if given("max_per_ip") {
            s.max_per_ip = self.max_per_ip;
        }
        if given("max_startups") {
            s.max_startups = self.max_startups;
        }
        if given("idle_timeout") {
            s.idle_timeout_secs = self.idle_timeout;
        }
        if given("stall_timeout") {
            s.stall_timeout_secs = self.stall_timeout;
        }
        if given("storage_timeout") {
            s.storage_timeout_secs = self.storage_timeout;
        }
        if given("health") {
            s.health = self.health;
        }
        if given("handshake_timeout_ms") {
            s.handshake_timeout_ms = self.handshake_timeout_ms;
        }
        if given("read_only") {
            s.read_only = self.read_only;
        }
        if given("max_file_size") {
            s.max_file_size = self.max_file_size;
        }
        if given("no_fsync") {
            s.fsync = !self.no_fsync;
        }
        if given("partial_ttl") {
            s.partial_ttl = self.partial_ttl;
        }
        if given("reuse_port") {
            s.reuse_port = self.reuse_port;
        }
        if given("proxy_protocol") {
            s.proxy_protocol.clone_from(&self.proxy_protocol);
        }
        // -v and -q conflict, so at most one of them is on.
        if given("verbose") && self.verbose {
            s.verbosity = Verbosity::Verbose;
        } else if given("quiet") && self.quiet {
            s.verbosity = Verbosity::Quiet;
        }
        s
    }

    /// The settings of this command line: the config file's (when
    /// `--config` names one) with the typed flags over them.
    pub fn resolve(self, given: &Given) -> Result<Settings, String> {
        let base = match &self.config {
            Some(path) => FileSettings::load(path).map_err(|e| e.to_string())?,
            None => Settings::default(),
        };
        Ok(self.settings_over(base, &|id| given.has(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use ftx::server::config::{AccessConfig, ConfigError, ServerConfig};
    use ftx::server::store::Store;

    fn args(extra: &[&str]) -> Result<ServerArgs, clap::Error> {
        ServerArgs::try_parse_from(std::iter::once("ftxd").chain(extra.iter().copied()))
    }

    /// The validated config of `ftxd` with `extra` flags.
    fn config(extra: &[&str]) -> Result<ServerConfig, ConfigError> {
        ServerConfig::new(args(extra).unwrap().settings())
    }

    #[test]
    fn no_flags_are_the_library_defaults() {
        assert_eq!(args(&[]).unwrap().settings(), Settings::default());
    }

    #[test]
    fn defaults() {
        let a = args(&[]).unwrap();
        let c = ServerConfig::new(a.settings()).unwrap();
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
        let c = ServerConfig::new(a.settings()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.store.root, dir.path());
        assert!(c.store.read_only);
        assert!(!c.store.fsync);
        assert_eq!(c.store.max_file_size, Some(10 << 20));
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.verbosity, Verbosity::Quiet);
        assert!(c.reuse_port);
        let v = config(&["-v"]).unwrap();
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
        let e = config(&["--max-connections", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--max-connections must be at least 1");
        let e = config(&["--idle-timeout", "0"]).unwrap_err();
        assert!(matches!(e, ConfigError::Range { .. }));
        // Durations past a year would overflow the clock at the first
        // connection: refused here instead.
        for flag in ["--idle-timeout", "--stall-timeout", "--storage-timeout"] {
            let e = config(&[flag, "18446744073709551615"]).unwrap_err();
            assert!(e.to_string().starts_with(flag), "{e}");
        }
        let e = config(&["--max-startups", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--max-startups must be at least 1");
        // The root is the store's to judge, when ftxd opens it before
        // listening; the config takes it as given.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let root_error = |root: &std::path::Path| {
            let c = config(&["--root", root.to_str().unwrap()]).unwrap();
            assert_eq!(c.store.root, root);
            Store::open(c.store).unwrap_err().to_string()
        };
        assert_eq!(
            root_error(&file),
            format!("root '{}' is not a directory", file.display())
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            root_error(&missing),
            format!("root '{}' does not exist", missing.display())
        );
    }

    #[test]
    fn access_flags_and_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let r = root.to_str().unwrap();
        let state = dir.path().join("state");
        let st = state.to_str().unwrap();
        let c = config(&["--root", r, "--state-dir", st]).unwrap();
        assert!(c.access.tls && c.access.require_token);
        assert_eq!(c.access.state_dir.as_deref(), Some(state.as_path()));
        let c = config(&["--root", r, "--plain", "--open"]).unwrap();
        assert_eq!(c.access, AccessConfig::plain_open());
        let c = config(&["--root", r, "--open", "--state-dir", st]).unwrap();
        assert!(c.access.tls && !c.access.require_token);
        // Inside the root, even through a path that does not exist yet.
        let inside = root.join("a/b/state");
        let e = config(&["--root", r, "--state-dir", inside.to_str().unwrap()]).unwrap_err();
        assert!(e.to_string().contains("inside the served root"), "{e}");
        let e = config(&["--root", r, "--state-dir", r]).unwrap_err();
        assert!(e.to_string().contains("inside the served root"), "{e}");
    }

    /// `ftxd --config FILE extra...` with FILE holding `toml`: the
    /// settings a start would use.
    fn resolved(toml: &str, extra: &[&str]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ftxd.toml");
        std::fs::write(&file, toml).unwrap();
        let line = ["ftxd", "--config", file.to_str().unwrap()]
            .into_iter()
            .chain(extra.iter().copied());
        let (a, given) = crate::command_line::try_parse_from::<ServerArgs, _>(line).unwrap();
        a.resolve(&given)
    }

    #[test]
    fn flags_override_the_file_and_defaults_do_not() {
        let file = "listen = \"127.0.0.1:7\"\nroot = \"/srv/a\"\nmax-per-ip = 3\n\
                    partial-ttl = \"1h\"\nquiet = true\nno-fsync = true\n";
        // Alone, the file's values; the flags' defaults do not undo them.
        let s = resolved(file, &[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:7".parse().unwrap());
        assert_eq!(s.root, PathBuf::from("/srv/a"));
        assert_eq!(s.max_per_ip, 3);
        assert_eq!(s.partial_ttl, Duration::from_secs(3600));
        assert_eq!(s.verbosity, Verbosity::Quiet);
        assert!(!s.fsync);
        // What the file does not say keeps the default.
        assert_eq!(s.max_connections, DEFAULT_MAX_CONNECTIONS);
        // Typed flags win, even when they repeat a default value.
        let s = resolved(
            file,
            &[
                "--listen",
                "0.0.0.0:9999",
                "--root",
                "/srv/b",
                "--max-per-ip=64",
                "--partial-ttl",
                "7d",
                "-v",
                "--read-only",
            ],
        )
        .unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert_eq!(s.root, PathBuf::from("/srv/b"));
        assert_eq!(s.max_per_ip, 64);
        assert_eq!(s.partial_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.verbosity, Verbosity::Verbose);
        assert!(s.read_only);
        // A switch the file turned on stays on: a flag can only add one.
        assert!(!s.fsync);
    }

    #[test]
    fn storage_timeout_and_health_from_the_file_or_the_flags() {
        let file = "storage-timeout = \"2m\"\nhealth = \"127.0.0.1:9998\"\n";
        let s = resolved(file, &[]).unwrap();
        assert_eq!(s.storage_timeout_secs, 120);
        assert_eq!(s.health, Some("127.0.0.1:9998".parse().unwrap()));
        // The default 60 s is not typed: the file's value stays.
        let s = resolved(file, &["--storage-timeout", "30s", "--health", "[::1]:7"]).unwrap();
        assert_eq!(s.storage_timeout_secs, 30);
        assert_eq!(s.health, Some("[::1]:7".parse().unwrap()));
        // Without either, the defaults: 60 s and no health listener.
        let s = resolved("", &[]).unwrap();
        assert_eq!((s.storage_timeout_secs, s.health), (60, None));
        let c = config(&["--storage-timeout", "1"]).unwrap();
        assert_eq!(c.storage_timeout, Duration::from_secs(1));
        let e = config(&["--storage-timeout", "0"]).unwrap_err();
        assert!(
            e.to_string().starts_with("--storage-timeout must be"),
            "{e}"
        );
    }

    #[test]
    fn the_config_file_reaches_token_commands() {
        let s = resolved("state-dir = \"/var/lib/ftxd\"", &["token", "list"]).unwrap();
        assert_eq!(s.state_dir, Some(PathBuf::from("/var/lib/ftxd")));
        // --config and --state-dir are global: after the subcommand too.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "state-dir = \"/a\"").unwrap();
        let f = file.to_str().unwrap();
        for line in [
            &["ftxd", "token", "list", "--config", f][..],
            &["ftxd", "token", "list", "--config", f, "--state-dir", "/b"],
        ] {
            let (a, given) = crate::command_line::try_parse_from::<ServerArgs, _>(line).unwrap();
            let want = if line.len() > 5 { "/b" } else { "/a" };
            assert_eq!(
                a.resolve(&given).unwrap().state_dir,
                Some(PathBuf::from(want)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_bad_config_file_is_an_error() {
        let e = resolved("nonsense = 1", &[]).unwrap_err();
        assert!(e.starts_with("config file '"), "{e}");
        assert!(e.contains("line 1: unknown field `nonsense`"), "{e}");
        let (a, given) = crate::command_line::try_parse_from::<ServerArgs, _>([
            "ftxd",
            "--config",
            "/nonexistent/ftxd.toml",
        ])
        .unwrap();
        assert_eq!(
            a.resolve(&given).unwrap_err(),
            "config file '/nonexistent/ftxd.toml': No such file or directory (os error 2)"
        );
        // Without --config no file is read: the defaults.
        let (a, given) = crate::command_line::try_parse_from::<ServerArgs, _>(["ftxd"]).unwrap();
        assert_eq!(a.resolve(&given).unwrap(), Settings::default());
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
        assert_eq!(a.storage_timeout, 60);
        assert_eq!(a.health, None);
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
            "--storage-timeout",
            "2m",
            "--health",
            "127.0.0.1:9",
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
        assert_eq!(a.storage_timeout, 120);
        assert_eq!(a.health, Some("127.0.0.1:9".parse().unwrap()));
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
    fn a_bad_command_line_is_one_line_that_says_what_to_type() {
        let line = |extra: &[&str]| {
            let rendered = args(extra).unwrap_err().render().to_string();
            crate::command_line::one_line(&rendered)
        };
        assert_eq!(
            line(&["token", "add"]),
            "error: the following required arguments were not provided: <NAME> \
             (usage: ftxd token add <NAME>)"
        );
        let shells = line(&["completions", "tcsh"]);
        assert!(
            shells.starts_with("error: invalid value 'tcsh' for '<SHELL>' [possible values: bash,"),
            "{shells}"
        );
        assert!(!shells.contains('\n'), "{shells}");
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
        assert_eq!(kind(&["--storage-timeout", "soon"]), ValueValidation);
        assert_eq!(kind(&["--health", "nowhere"]), ValueValidation);
        assert_eq!(kind(&["--health"]), InvalidValue);
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
            "--storage-timeout <SECS>",
            "--health <ADDR:PORT>",
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
}
