//! The `ftx` program as a function: its settings, asking for the server like the
//! original client, connecting, choosing the line source and running the
//! shell. Returns whether every command succeeded; the binary turns that
//! into the exit code.

use std::cell::RefCell;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;

use crate::client::known_hosts::{data_dir, HostFile, KNOWN_HOSTS_FILE, TOKENS_FILE};
use crate::client::{probe_fingerprint, Client, ClientError, ConnectOptions, LostReason};
use crate::proto::error::ErrorCode;

use super::batch::{run_with_style, Outcome};
use super::exec::{Connect, Executor};
use super::render::{escape_line_for_terminal, Style};
use super::source::{BatchSource, InteractiveSource, LineSource, PipedSource};

/// Port used when none is given (the original's).
pub const DEFAULT_PORT: u16 = 9999;
/// Host used when the user just presses Enter at the prompt.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// What the user asked `ftx` for: the binary fills it from its command
/// line. Plain values, checked where they are used (the server address
/// when it is parsed, the fingerprint when it is pinned), so the errors
/// come in the order the work is done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The server as HOST or HOST:PORT; `None`: ask for it.
    pub server: Option<String>,
    /// Run the commands of this file (`-` for standard input) and exit.
    pub batch: Option<PathBuf>,
    /// Print only errors and command results.
    pub quiet: bool,
    /// No TLS.
    pub plain: bool,
    /// Trust an unknown server's certificate without asking.
    pub accept_new: bool,
    /// Accept only the server certificate with this fingerprint.
    pub fingerprint: Option<String>,
    /// Read the access token from this file.
    pub token_file: Option<PathBuf>,
    /// Remember the access token for this server.
    pub save_token: bool,
}

/// Environment variable holding the access token.
pub const TOKEN_ENV: &str = "FTX_TOKEN";

/// Reads one line from the terminal without echoing it (for tokens).
fn read_secret(prompt: &str) -> Result<String, String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
    }
    // The prompt only once echo is off: a token typed (or pasted) as soon
    // as the prompt shows must never appear on the screen.
    eprint!("{prompt}");
    io::stderr().flush().ok();
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = tcsetattr(&stdin, OptionalActions::Now, saved);
        eprintln!();
    }
    r.map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(line.trim().to_owned())
}

/// Asks a yes/no question on the terminal; only "yes" (or "y") is yes.
fn ask_yes_no(question: &str) -> Result<bool, String> {
    let mut stdin = io::stdin().lock();
    for _ in 0..3 {
        eprint!("{question} (yes/no)? ");
        io::stderr().flush().ok();
        let mut line = String::new();
        if stdin
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the answer: {e}"))?
            == 0
        {
            return Ok(false);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" => return Ok(true),
            "no" | "n" => return Ok(false),
            _ => eprintln!("Please type 'yes' or 'no'."),
        }
    }
    Ok(false)
}

/// The fingerprint to pin for `addr`: `--fingerprint`, the known-hosts
/// entry, or (first contact) the one the server shows, trusted by the
/// user's answer or by `--accept-new`.
fn choose_pin(settings: &Settings, addr: &str, interactive: bool) -> Result<String, String> {
    if let Some(fp) = &settings.fingerprint {
        return crate::fingerprint::parse(fp)
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("--fingerprint '{fp}' is not of the form SHA256:<43 base64 characters>")
            });
    }
    let dir =
        data_dir().ok_or("cannot find the ftx data directory: set $XDG_DATA_HOME or $HOME")?;
    let known = HostFile::at(dir.join(KNOWN_HOSTS_FILE));
    let read_err = |e: io::Error| format!("cannot read '{}': {e}", known.path().display());
    if let Some(fp) = known.lookup(addr).map_err(read_err)? {
        return Ok(fp);
    }
    let seen = probe_fingerprint(addr).map_err(|e| e.to_string())?;
    let trusted = if settings.accept_new {
        true
    } else if interactive {
        eprintln!("The authenticity of server '{addr}' can't be established.");
        eprintln!("Its certificate fingerprint is {seen}.");
        ask_yes_no("Are you sure you want to continue connecting")?
    } else {
        return Err(unknown_server_text(addr, &seen));
    };
    if !trusted {
        return Err(format!("server {addr} not trusted: not connecting"));
    }
    known
        .store(addr, &seen)
        .map_err(|e| format!("cannot write '{}': {e}", known.path().display()))?;
    eprintln!(
        "warning: permanently added {addr} ({seen}) to the known servers in {}",
        known.path().display()
    );
    Ok(seen)
}

/// Why an unknown server is refused without a terminal. The fingerprint
/// is shown to be compared, never as a ready `--fingerprint` flag: pasting
/// the value the connection itself showed would trust whoever answered.
fn unknown_server_text(addr: &str, seen: &str) -> String {
    format!(
        "unknown server {addr}: not trusted; it shows the certificate fingerprint {seen}: \
         compare it with the one ftxd printed when it started (on the server, \
         'ftxd --show-fingerprint' prints it again); if they are the same, connect once \
         interactively, or give the server's fingerprint with --fingerprint, or use --accept-new"
    )
}

/// The token from `--token-file`, `$FTX_TOKEN` or the saved tokens (empty
/// if none: the server may be `--open`).
fn find_token(settings: &Settings, saved: Option<&HostFile>, addr: &str) -> Result<String, String> {
    if let Some(path) = &settings.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read token file '{}': {e}", path.display()))?;
        return Ok(text.trim().to_owned());
    }
    if let Some(t) = std::env::var_os(TOKEN_ENV) {
        return Ok(t.to_string_lossy().trim().to_owned());
    }
    if let Some(f) = saved {
        if let Ok(Some(t)) = f.lookup(addr) {
            return Ok(t);
        }
    }
    Ok(String::new())
}

/// Connects as the flags say: TLS with trust on first use unless
/// `--plain`, the token from the flags, environment, saved tokens or (on a
/// terminal, when the server asks for one) a prompt. Returns the client
/// and the certificate and token it used, to connect again with them.
fn connect(
    settings: &Settings,
    addr: &str,
    interactive: bool,
) -> Result<(Client, ConnectOptions), String> {
    let pin = if settings.plain {
        None
    } else {
        Some(choose_pin(settings, addr, interactive)?)
    };
    let saved = data_dir().map(|d| HostFile::at(d.join(TOKENS_FILE)));
    let mut token = find_token(settings, saved.as_ref(), addr)?;
    let mut prompts = 0;
    let (client, options) = loop {
        let options = ConnectOptions {
            pin: pin.clone(),
            token: token.clone().into_bytes(),
        };
        match Client::connect_with(addr, &options) {
            Ok(c) => break (c, options),
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) => {
                let missing = token.is_empty();
                if !interactive || prompts == TOKEN_PROMPTS {
                    return Err(refused_text(&e, missing, prompts > 0));
                }
                if !missing {
                    // As ssh after a wrong password; the server's own
                    // words when it slows this address down.
                    eprintln!("{}", refused_text(&e, missing, prompts > 0));
                }
                token = read_secret("Enter access token: ")?;
                prompts += 1;
            }
            Err(e) => return Err(connect_failure(e, addr)),
        }
    };
    if !token.is_empty()
        && (settings.save_token
            || (prompts > 0 && ask_yes_no("Remember this token for this server")?))
    {
        if let Some(f) = &saved {
            f.store(addr, &token)
                .map_err(|e| format!("cannot write '{}': {e}", f.path().display()))?;
        }
    }
    Ok((client, options))
}

/// A failed connection to `addr` in words; a changed certificate says
/// where the known one is kept.
fn connect_failure(e: ClientError, addr: &str) -> String {
    match e {
        ClientError::IdentityChanged(c) => {
            let file = data_dir()
                .map(|d| d.join(KNOWN_HOSTS_FILE).display().to_string())
                .unwrap_or_else(|| KNOWN_HOSTS_FILE.to_owned());
            format!("{c}; if the change is expected, remove the line for {addr} from {file}")
        }
        e => e.to_string(),
    }
}

/// How the shell connects again ([`Connect`]): to the server of the last
/// connection with the certificate and token that worked then, or to
/// another one by the command line's rules.
struct Session {
    settings: Settings,
    interactive: bool,
    /// The server named on the command line (or at the prompt):
    /// `--fingerprint` and `--token-file` are about it alone.
    named: String,
    /// The server connected last, and how.
    addr: String,
    options: ConnectOptions,
}

impl Connect for Session {
    fn addr(&self) -> &str {
        &self.addr
    }

    fn reconnect(&mut self) -> Result<Client, String> {
        match Client::connect_with(&self.addr, &self.options) {
            Ok(c) => Ok(c),
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) => {
                Err(refused_text(&e, self.options.token.is_empty(), false))
            }
            Err(e) => Err(connect_failure(e, &self.addr)),
        }
    }

    fn open(&mut self, server: &str) -> Result<Client, String> {
        let (host, port) = parse_server(server)?;
        let addr = join_host_port(&host, port);
        let mut settings = self.settings.clone();
        if addr != self.named {
            settings.fingerprint = None;
            settings.token_file = None;
        }
        let (client, options) = connect(&settings, &addr, self.interactive)?;
        log::info!(
            "connected to {} at {addr}",
            super::render::escape_for_terminal(client.server_name())
        );
        self.addr = addr;
        self.options = options;
        Ok(client)
    }
}

/// How many times the shell asks for a token before it gives up, as ssh
/// asks for a password.
const TOKEN_PROMPTS: usize = 3;

/// What a refused token means, said as a refusal (the connection did not
/// break: the server said no). `missing`: none was given; `typed`: the
/// last one came from the prompt.
fn refused_text(e: &ClientError, missing: bool, typed: bool) -> String {
    let server = escape_line_for_terminal(&match e {
        ClientError::Remote(r) | ClientError::Lost(LostReason::Ended(r)) => r.message.clone(),
        other => other.to_string(),
    });
    if missing {
        format!(
            "this server needs an access token: give it with ${TOKEN_ENV} or --token-file, \
             or run ftx on a terminal to be asked for it"
        )
    } else if typed {
        format!("the server refused the access token: {server}")
    } else {
        format!(
            "the server refused the access token: {server}; check ${TOKEN_ENV}, --token-file \
             or the token saved for this server"
        )
    }
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
/// the defaults, an end of input is an error (never a silent default).
fn ask_server() -> Result<(String, u16), String> {
    let mut stdin = io::stdin().lock();
    let mut ask = |prompt: &str| -> Result<String, String> {
        print!("{prompt}");
        io::stdout().flush().ok();
        let mut line = String::new();
        let n = stdin
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if n == 0 {
            // The prompt's line was not ended by the user's Enter.
            println!();
            return Err("no server given: end of input at the prompt".to_owned());
        }
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
pub fn run(settings: Settings) -> Result<bool, String> {
    let out_style = Style::for_stdout();
    let err_style = Style::for_stderr();
    // Open the batch first: a missing file must fail before any network work.
    let batch = match &settings.batch {
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
    let (host, port) = match &settings.server {
        Some(s) => parse_server(s)?,
        None => ask_server()?,
    };
    let addr = join_host_port(&host, port);
    let interactive = batch.is_none() && io::stdin().is_terminal();
    let (client, options) = connect(&settings, &addr, interactive)?;
    log::info!(
        "connected to {} at {addr}",
        super::render::escape_for_terminal(client.server_name())
    );
    if !settings.quiet {
        println!("Connected to server at {addr}");
    }
    let client = Rc::new(RefCell::new(client));
    let mut exec = Executor::new(
        client.clone(),
        Box::new(io::stdout()),
        out_style,
        settings.quiet,
    );
    exec.set_errors(Box::new(io::stderr()), err_style);
    exec.set_connector(Box::new(Session {
        settings: settings.clone(),
        interactive,
        named: addr.clone(),
        addr,
        options,
    }));
    exec.set_batch(batch.is_some());
    let stdin_commands = match &settings.batch {
        Some(path) => path.as_os_str() == "-",
        None => true,
    };
    exec.set_commands_on_stdin(stdin_commands && !io::stdin().is_terminal());
    let mut source: Box<dyn LineSource> = match batch {
        Some(b) => Box::new(b),
        None if io::stdin().is_terminal() => {
            let mut it = InteractiveSource::new(out_style)
                .map_err(|e| format!("cannot start the shell: {e}"))?;
            it.set_remote_names(Box::new(exec.remote_names()));
            if !settings.quiet {
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
    // As sftp: an interactive session succeeds whatever its commands did
    // (each failure was shown as it happened); a batch or piped input
    // reports failures in the exit status.
    Ok(interactive || outcome.success())
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
