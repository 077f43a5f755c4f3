//! `ftxd`: flags (over the config file) -> validated config -> the root
//! checked -> logger -> identity and tokens -> bind -> "listening on" ->
//! the event loop; or `ftxd token ...`, `--check-config`, `completions`.
//! The exit code is decided here only: 0 after a clean shutdown, 1 with a
//! one-line `error:` on failure, 2 for a bad flag. What the operator must
//! see (the first token, the fingerprint, warnings) is printed here, not
//! logged.

mod args;
#[path = "../common/command_line.rs"]
mod command_line;
#[path = "../common/docs.rs"]
mod docs;
mod logging;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use ftx::server::config::{resolve_state_dir, AccessConfig, Settings};
use ftx::server::store::Store;
use ftx::server::tokens::{Access, TokenStore, FIRST_TOKEN_NAME};
use ftx::server::{self, ServerConfig, Shutdown};

use args::{ServerArgs, ServerCommand, TokenCommand};

fn main() -> ExitCode {
    let (mut args, given) = match command_line::parse::<ServerArgs>() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let result = match args.command.take() {
        Some(ServerCommand::Completions { shell }) => {
            docs::completions(ServerArgs::command(), shell, &mut std::io::stdout())
                .map_err(|e| e.to_string())
        }
        Some(ServerCommand::Manpage) => manpage(&mut std::io::stdout()).map_err(|e| e.to_string()),
        Some(ServerCommand::Token(cmd)) => args
            .resolve(&given)
            .and_then(|s| token_command(s.state_dir, cmd)),
        None => {
            let (fingerprint, check) = (args.show_fingerprint, args.check_config);
            args.resolve(&given).and_then(|s| {
                if fingerprint {
                    show_fingerprint(s.state_dir)
                } else if check {
                    check_config(s)
                } else {
                    serve(s)
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `ftxd --check-config`: everything a start checks before it takes the
/// port, in the same order and with the same errors, creating nothing;
/// then one line per setting that matters to an operator.
fn check_config(settings: Settings) -> Result<(), String> {
    let config = ServerConfig::new(settings).map_err(|e| e.to_string())?;
    Store::open(config.store.clone()).map_err(|e| e.to_string())?;
    // The port as a start takes it, given back at once.
    drop(server::bind(&config).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?);
    drop(bind_health(&config)?);
    let state = check_state_dir(&config.access)?;
    let root = std::fs::canonicalize(&config.store.root).unwrap_or(config.store.root.clone());
    println!("ftxd: configuration OK");
    println!("listen: {}", config.listen);
    println!("root: {}", root.display());
    println!("state directory: {state}");
    println!(
        "access: {}, {}",
        if config.access.tls {
            "TLS"
        } else {
            "plain (no TLS)"
        },
        if config.access.require_token {
            "token required"
        } else {
            "open (no token)"
        }
    );
    if config.store.read_only {
        println!("read-only: yes");
    }
    if let Some(addr) = config.health {
        println!("health checks: {addr}");
    }
    println!("storage timeout: {} s", config.storage_timeout.as_secs());
    Ok(())
}

/// What a start would find wrong with the state directory, without
/// making it or anything in it: its privacy, the key and certificate when
/// TLS is on, the token file when tokens are. A directory not made yet is
/// fine (the first start makes it).
fn check_state_dir(access: &AccessConfig) -> Result<String, String> {
    let Some(dir) = access.state_dir.as_deref() else {
        return Ok("none (--plain --open)".to_owned());
    };
    let state_err = |e: &dyn std::fmt::Display| format!("state directory: {e}");
    if !dir.exists() {
        return Ok(format!("{} (made at the first start)", dir.display()));
    }
    ftx::server::state::check_private(dir).map_err(|e| e.to_string())?;
    if access.tls && has_identity(dir) {
        ftx::server::state::Identity::load(dir).map_err(|e| state_err(&e))?;
    }
    if access.require_token {
        TokenStore::open(dir).map_err(|e| state_err(&e))?;
    }
    Ok(dir.display().to_string())
}

/// Whether the state directory holds a key or a certificate (a start
/// loads them then, and makes a new pair only when neither is there).
fn has_identity(dir: &Path) -> bool {
    use ftx::server::state::{CERT_FILE, KEY_FILE};
    dir.join(KEY_FILE).exists() || dir.join(CERT_FILE).exists()
}

/// `ftxd manpage`: ftxd(8), from the flags and what they cannot say.
fn manpage(out: &mut dyn Write) -> std::io::Result<()> {
    let item = |term: &str, text: &str| (term.to_owned(), text.to_owned());
    let extra = [
        docs::ManSection {
            title: "CONFIGURATION",
            items: vec![
                item("", "With --config FILE, ftxd reads its settings from FILE (TOML) first; flags given on the command line override it. Each key is a long flag's name without its dashes: root = \"/srv/ftx\", listen = \"0.0.0.0:9999\", max-file-size = \"10G\", partial-ttl = \"7d\", read-only = true. Unknown keys are errors and paths must be absolute. Without --config no file is read. ftxd --check-config checks the file, the flags, the root and the state directory and exits."),
            ],
        },
        docs::ManSection {
            title: "FILES",
            items: vec![
                item("/etc/ftxd.toml", "The config file of the packaged service (ftxd.service starts ftxd --config /etc/ftxd.toml)."),
                item("/var/lib/ftxd", "The service's state directory: key.pem, cert.pem and the hashed tokens. For a user: $XDG_STATE_HOME/ftxd or ~/.local/state/ftxd."),
                item("/srv/ftxd", "The directory the packaged service serves unless the config file says otherwise."),
            ],
        },
        docs::ManSection {
            title: "SIGNALS",
            items: vec![item("SIGTERM, SIGINT", "Stop cleanly (exit status 0); an upload in progress is kept for reput.")],
        },
        docs::ManSection {
            title: "ENVIRONMENT",
            items: vec![
                item("RUST_LOG", "Log filter (overrides -v and -q), e.g. RUST_LOG=debug."),
                item("JOURNAL_STREAM", "Set by systemd when stderr goes to the journal: log lines then carry a syslog priority and no timestamp."),
            ],
        },
        docs::ManSection {
            title: "EXIT STATUS",
            items: vec![
                item("0", "Clean shutdown, or a command that succeeded."),
                item("1", "A failure, said in one line starting with error:."),
                item("2", "A bad command line."),
            ],
        },
        docs::ManSection {
            title: "SEE ALSO",
            items: vec![item("", "ftx(1), systemd.exec(5)")],
        },
    ];
    docs::manpage(ServerArgs::command(), "8", &extra, out)
}

fn serve(settings: Settings) -> Result<(), String> {
    // First: a SIGTERM while the state is loaded or made asks for a clean
    // stop instead of killing ftxd halfway.
    let shutdown = Shutdown::on_signals();
    let config = ServerConfig::new(settings).map_err(|e| e.to_string())?;
    // The store is the one judge of the root (missing, not a directory,
    // unreadable): a bad one is refused now, before any state is made and
    // before the port is taken. The event loop opens its own.
    Store::open(config.store.clone()).map_err(|e| e.to_string())?;
    logging::init(config.verbosity);
    // The port before the state: a start that cannot listen must not
    // make (and show, once) the first token for nothing.
    let listener =
        server::bind(&config).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let health = bind_health(&config)?;
    let (security, prepared) = server::Security::prepare(&config.access)?;
    tell_access(&config, &prepared);
    let fingerprint = prepared.fingerprint;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let mut out = std::io::stdout().lock();
    // Before the listening line, which tells a waiting script all is set.
    if let Some(addr) = health.as_ref().and_then(|h| h.local_addr().ok()) {
        let _ = writeln!(out, "ftxd: health checks on {addr}");
    }
    // A closed stdout must not stop the server: the line is informative.
    let _ = writeln!(out, "ftxd listening on {bound}")
        .and_then(|()| {
            writeln!(
                out,
                "ftxd: connect with: {}",
                connect_line(&config, bound, fingerprint.as_deref())
            )
        })
        .and_then(|()| out.flush());
    drop(out);
    server::run_with(listener, health, config, security, shutdown).map_err(|e| e.to_string())
}

/// The health-check listener (`--health`), if asked for; an error names
/// the address, as for the main port.
fn bind_health(config: &ServerConfig) -> Result<Option<std::net::TcpListener>, String> {
    server::bind_health(config).map_err(|e| {
        let addr = config.health.map(|a| a.to_string()).unwrap_or_default();
        format!("cannot listen for health checks on {addr}: {e}")
    })
}

/// The `ftx` command that reaches this server, for the operator to hand
/// on: the address (this machine's name when listening on every
/// address), the fingerprint to pin or `--plain`, and how to give a token.
fn connect_line(config: &ServerConfig, bound: SocketAddr, fingerprint: Option<&str>) -> String {
    let host = if bound.ip().is_unspecified() {
        // uname, not /proc/sys/kernel/hostname: a sandboxed service
        // (ProcSubset=pid) sees no /proc/sys.
        rustix::system::uname()
            .nodename()
            .to_str()
            .ok()
            .map(str::to_owned)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "HOST".to_owned())
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    };
    let mut line = format!("ftx {host}:{}", bound.port());
    match fingerprint {
        Some(fp) => line.push_str(&format!(" --fingerprint {fp}")),
        None => line.push_str(" --plain"),
    }
    if config.access.require_token {
        line.push_str(" (with a token: FTX_TOKEN=..., --token-file FILE, or at its prompt)");
    }
    line
}

/// Tells the operator what the state directory gave: a new key and
/// certificate, the fingerprint every time, the first token once, and a
/// warning for `--plain` / `--open`.
fn tell_access(config: &ServerConfig, prepared: &server::Prepared) {
    let mut out = std::io::stdout().lock();
    if prepared.created_identity {
        if let Some(dir) = config.access.state_dir.as_deref() {
            let _ = writeln!(
                out,
                "ftxd: created a new key and certificate in {}",
                dir.display()
            );
        }
    }
    if let Some(fp) = &prepared.fingerprint {
        let _ = writeln!(out, "ftxd: certificate fingerprint {fp}");
    }
    if prepared.first_token.is_some() && logging::journal_has(&std::io::stdout()) {
        // The journal is kept for months and read by more people than the
        // operator: a secret does not go there.
        let _ = writeln!(
            out,
            "ftxd: created read-write access token '{FIRST_TOKEN_NAME}', not shown in the journal; \
             make one to hand out with 'ftxd token add NAME' as ftxd's user"
        );
    } else if let Some(token) = &prepared.first_token {
        let _ = writeln!(
            out,
            "ftxd: created read-write access token '{FIRST_TOKEN_NAME}' (shown only once): {token}"
        );
        let _ = writeln!(
            out,
            "ftxd: give it to ftx with FTX_TOKEN, --token-file or at the prompt; 'ftxd token add' makes more"
        );
    }
    let _ = out.flush();
    drop(out);
    if !config.access.tls {
        eprintln!("warning: --plain: TLS is off; files and tokens cross the network in clear");
    }
    if !config.access.require_token {
        eprintln!(
            "warning: --open: no access token is needed; anyone who can connect may read and change files"
        );
    }
}

/// `ftxd --show-fingerprint`: the fingerprint of the certificate in the
/// state directory, for the operator to compare with what ftx shows on
/// first contact. Reads only: a missing key is an error, never made here.
fn show_fingerprint(state_dir: Option<PathBuf>) -> Result<(), String> {
    let dir = resolve_state_dir(state_dir).map_err(|e| e.to_string())?;
    if !dir.join(ftx::server::state::CERT_FILE).exists() {
        return Err(format!(
            "no certificate in {}: ftxd makes one when it first starts (without --plain)",
            dir.display()
        ));
    }
    let identity =
        ftx::server::state::Identity::load(&dir).map_err(|e| format!("state directory: {e}"))?;
    println!("{}", identity.fingerprint());
    Ok(())
}

/// `ftxd token add|list|revoke`.
fn token_command(state_dir: Option<PathBuf>, cmd: TokenCommand) -> Result<(), String> {
    let dir = resolve_state_dir(state_dir).map_err(|e| e.to_string())?;
    let mut tokens = TokenStore::open(&dir).map_err(|e| e.to_string())?;
    match cmd {
        TokenCommand::Add { name, read_only } => {
            let access = if read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            let token = tokens.add(&name, access).map_err(|e| e.to_string())?;
            println!("{token}");
            eprintln!("created {access} token '{name}'; it is shown only this once");
        }
        TokenCommand::List => {
            for t in tokens.list() {
                println!("{} {}", t.name, t.access);
            }
        }
        TokenCommand::Revoke { name } => {
            tokens.revoke(&name).map_err(|e| e.to_string())?;
            println!("revoked token '{name}'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_page_has_its_sections() {
        let mut page = Vec::new();
        manpage(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(".TH ftxd 8 "), "{page}");
        assert_eq!(
            docs::section_heads(&page),
            [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH OPTIONS",
                ".SH SUBCOMMANDS",
                ".SH CONFIGURATION",
                ".SH FILES",
                ".SH SIGNALS",
                ".SH ENVIRONMENT",
                ".SH EXIT STATUS",
                ".SH SEE ALSO",
                ".SH VERSION",
            ]
        );
        for flag in ["config", "check\\-config", "root", "max\\-file\\-size"] {
            assert!(page.contains(&format!("\\-\\-{flag}")), "--{flag} missing");
        }
        assert!(
            page.contains("ftxd\\-token"),
            "the token subcommand is named"
        );
        assert!(!page.contains("manpage"), "the hidden subcommand is shown");
    }

    #[test]
    fn completions_name_the_subcommands_and_flags() {
        docs::assert_completions_name(
            &ServerArgs::command(),
            &["token", "revoke", "completions", "config", "max-file-size"],
        );
    }
}
