//! `ftxd`: flags -> validated config -> the root checked -> logger ->
//! identity and tokens -> bind -> "listening on" -> the event loop; or
//! `ftxd token ...`. The exit code is decided here only: 0 after a clean
//! shutdown, 1 with a one-line `error:` on failure, 2 for a bad flag. What
//! the operator must see (the first token, the fingerprint, warnings) is
//! printed here, not logged.

mod args;
#[path = "../common/command_line.rs"]
mod command_line;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use ftx::server::config::{resolve_state_dir, Settings};
use ftx::server::store::Store;
use ftx::server::tokens::{Access, TokenStore, FIRST_TOKEN_NAME};
use ftx::server::{self, ServerConfig, Shutdown};

use args::{ServerArgs, ServerCommand, TokenCommand};

fn main() -> ExitCode {
    let mut args = match command_line::parse::<ServerArgs>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let result = match args.command.take() {
        Some(ServerCommand::Token(cmd)) => token_command(args.state_dir, cmd),
        None if args.show_fingerprint => show_fingerprint(args.state_dir),
        None => serve(args.settings()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> Result<(), String> {
    let config = ServerConfig::new(settings).map_err(|e| e.to_string())?;
    // The store is the one judge of the root (missing, not a directory,
    // unreadable): a bad one is refused now, before any state is made and
    // before the port is taken. The event loop opens its own.
    Store::open(config.store.clone()).map_err(|e| e.to_string())?;
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(config.verbosity.filter()),
    )
    .init();
    let (security, prepared) = server::Security::prepare(&config.access)?;
    tell_access(&config, &prepared);
    let fingerprint = prepared.fingerprint;
    let listener =
        server::bind(&config).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let mut out = std::io::stdout().lock();
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
    server::run_with(listener, config, security, Shutdown::on_signals()).map_err(|e| e.to_string())
}

/// The `ftx` command that reaches this server, for the operator to hand
/// on: the address (this machine's name when listening on every
/// address), the fingerprint to pin or `--plain`, and how to give a token.
fn connect_line(config: &ServerConfig, bound: SocketAddr, fingerprint: Option<&str>) -> String {
    let host = if bound.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
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
    if let Some(token) = &prepared.first_token {
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
