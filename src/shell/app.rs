//! The `ftx` program as a function: flags, asking for the server like the
//! original client, connecting, choosing the line source and running the
//! shell. Returns whether every command succeeded; the binary turns that
//! into the exit code.

use std::cell::RefCell;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;

use clap::Parser;

use crate::client::Client;

use super::batch::{run_with_style, Outcome};
use super::exec::{Executor, RemoteCompleter};
use super::render::Style;
use super::source::{BatchSource, InteractiveSource, LineSource, PipedSource};

/// Port used when none is given (the original's).
pub const DEFAULT_PORT: u16 = 9999;
/// Host used when the user just presses Enter at the prompt.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// `ftx [HOST[:PORT]] [-b FILE] [-q] [-v]`
#[derive(Debug, Parser)]
#[command(
    name = "ftx",
    version,
    about = "ftx: a shell for fast, verified file transfers with an ftxd server",
    after_help = "Without HOST it asks for the server's address and port.\n\
                  Type 'help' at the ftx> prompt for the commands."
)]
pub struct ClientArgs {
    /// Server as HOST or HOST:PORT (default port 9999; an IPv6 address with a port goes in brackets)
    pub server: Option<String>,
    /// Run commands from FILE ('-' for standard input) and exit
    #[arg(short = 'b', long = "batch", value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// Print only errors and command results (no connection line, no transfer summaries)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log protocol details to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

/// Splits `HOST[:PORT]` (IPv6 as `[ADDR]:PORT` or a bare address) into an
/// address cargo for `connect`, keeping the text shown to the user.
pub fn parse_server(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok((DEFAULT_HOST.to_owned(), DEFAULT_PORT));
    }
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port '{p}'"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid server address '{text}'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(format!("invalid server address '{text}'")),
        };
        return Ok((host.to_owned(), port));
    }
    match text.matches(':').count() {
        0 => Ok((text.to_owned(), DEFAULT_PORT)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            let host = if host.is_empty() { DEFAULT_HOST } else { host };
            Ok((host.to_owned(), port_of(port)?))
        }
        // A bare IPv6 address.
        _ => Ok((text.to_owned(), DEFAULT_PORT)),
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Asks for the server like the original client did; empty answers take
/// the defaults.
fn ask_server() -> Result<(String, u16), String> {
    let mut stdin = io::stdin().lock();
    let mut ask = |prompt: &str| -> Result<String, String> {
        print!("{prompt}");
        io::stdout().flush().ok();
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        Ok(line.trim().to_owned())
    };
    let host = ask("Enter IP address of server: ")?;
    let port = ask("Enter port of server: ")?;
    let host = if host.is_empty() {
        DEFAULT_HOST.to_owned()
    } else {
        host
    };
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        port.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port '{port}'"))?
    };
    Ok((host, port))
}

/// The original menu, shown once when the shell is interactive.
const BANNER: &str = "Options:\n1. Upload a file\n2. Download a file\n3. Exit\n\
                      (or type a command: put, get, ls, ... 'help' lists them)";

/// Runs `ftx`: `Ok(true)` when every command succeeded, `Ok(false)` when
/// some failed (already reported), `Err` for a failure before the shell ran.
pub fn run(args: ClientArgs) -> Result<bool, String> {
    let out_style = Style::for_stdout();
    let err_style = Style::for_stderr();
    // Open the batch first: a missing file must fail before any network work.
    let batch = match &args.batch {
        Some(path) => Some(BatchSource::open(path).map_err(|e| {
            format!(
                "cannot read batch file '{}': {}",
                path.display(),
                match e.kind() {
                    io::ErrorKind::NotFound => "not found".to_owned(),
                    _ => e.to_string(),
                }
            )
        })?),
        None => None,
    };
    let (host, port) = match &args.server {
        Some(s) => parse_server(s)?,
        None => ask_server()?,
    };
    let addr = join_host_port(&host, port);
    let client = Client::connect(&addr).map_err(|e| e.to_string())?;
    log::info!(
        "connected to {} at {addr}",
        super::render::escape_for_terminal(client.server_name())
    );
    if !args.quiet {
        println!("Connected to server at {addr}");
    }
    let client = Rc::new(RefCell::new(client));
    let mut exec = Executor::new(
        client.clone(),
        Box::new(io::stdout()),
        out_style,
        args.quiet,
    );
    exec.set_errors(Box::new(io::stderr()), err_style);
    exec.set_batch(batch.is_some());
    let mut source: Box<dyn LineSource> = match batch {
        Some(b) => Box::new(b),
        None if io::stdin().is_terminal() => {
            let mut it = InteractiveSource::new(out_style)
                .map_err(|e| format!("cannot start the shell: {e}"))?;
            it.set_remote_names(Box::new(RemoteCompleter::new(client.clone())));
            if !args.quiet {
                println!("{BANNER}");
            }
            exec.set_interruptible(true);
            Box::new(it)
        }
        None => Box::new(PipedSource::stdin()),
    };
    let mut out = io::stdout();
    let mut err = io::stderr();
    let outcome: Outcome =
        run_with_style(source.as_mut(), &mut exec, &mut out, &mut err, err_style);
    Ok(outcome.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(parse_server("h").unwrap(), ("h".into(), 9999));
        assert_eq!(parse_server("h:12").unwrap(), ("h".into(), 12));
        assert_eq!(parse_server("").unwrap(), ("127.0.0.1".into(), 9999));
        assert_eq!(parse_server("[::1]:7").unwrap(), ("::1".into(), 7));
        assert_eq!(parse_server("[::1]").unwrap(), ("::1".into(), 9999));
        assert_eq!(parse_server("::1").unwrap(), ("::1".into(), 9999));
        assert!(parse_server("h:x").is_err());
        assert!(parse_server("h:0").is_err());
        assert!(parse_server("h:70000").is_err());
        assert_eq!(join_host_port("::1", 5), "[::1]:5");
    }
}
