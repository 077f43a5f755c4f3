//! The `ftx` program as a function: flags, asking for the server like the
//! original client, connecting, choosing the line source and running the
//! shell. Returns whether every command succeeded; the binary turns that
//! into the exit code.

use std::cell::RefCell;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};

use crate::cli::{option, switch, Args};
use crate::client::known_hosts::{data_dir, HostFile, KNOWN_HOSTS_FILE, TOKENS_FILE};
use crate::client::{probe_fingerprint, Client, ClientError, ConnectOptions};
use crate::proto::error::ErrorCode;

use super::batch::{run_with_style, Outcome};
use super::exec::Executor;
use super::render::Style;
use super::source::{BatchSource, InteractiveSource, LineSource, PipedSource};

/// Port used when none is given (the original's).
pub const DEFAULT_PORT: u16 = 9999;
/// Host used when the user just presses Enter at the prompt.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// `ftx [HOST[:PORT]] [-b FILE] [-q] [-v]`; [`Args::command`] describes
/// the flags (the help texts repeat each field's documentation).
#[derive(Debug)]
pub struct ClientArgs {
    /// Server as HOST or HOST:PORT (default port 9999; an IPv6 address with a port goes in brackets)
    pub server: Option<String>,
    /// Run commands from FILE ('-' for standard input) and exit
    pub batch: Option<PathBuf>,
    /// Print only errors and command results (no connection line, no transfer summaries)
    pub quiet: bool,
    /// Log protocol details to stderr
    pub verbose: bool,
    /// No TLS (for an ftxd started with --plain, on a trusted network)
    pub plain: bool,
    /// Trust an unknown server's certificate without asking and remember it
    pub accept_new: bool,
    /// Accept only the server certificate with this fingerprint (SHA256:...)
    pub fingerprint: Option<String>,
    /// Read the access token from FILE (else $FTX_TOKEN, a saved token, or a prompt)
    pub token_file: Option<PathBuf>,
    /// Remember the access token for this server (in the ftx data directory, mode 0600)
    pub save_token: bool,
}

/// The ids of `ftx`'s arguments (the field names), shared by the `Command`
/// and the reading of its matches so the two cannot drift apart.
mod id {
    pub const SERVER: &str = "server";
    pub const BATCH: &str = "batch";
    pub const QUIET: &str = "quiet";
    pub const VERBOSE: &str = "verbose";
    pub const PLAIN: &str = "plain";
    pub const ACCEPT_NEW: &str = "accept_new";
    pub const FINGERPRINT: &str = "fingerprint";
    pub const TOKEN_FILE: &str = "token_file";
    pub const SAVE_TOKEN: &str = "save_token";
}

impl Args for ClientArgs {
    fn command() -> Command {
        Command::new("ftx")
            .version(env!("CARGO_PKG_VERSION"))
            .about("ftx: a shell for fast, verified file transfers with an ftxd server")
            .after_help(
                "Without HOST it asks for the server's address and port.\n\
                 Type 'help' at the ftx> prompt for the commands.",
            )
            .args(session_args())
            .args(trust_args())
    }

    fn from_matches(m: &ArgMatches) -> ClientArgs {
        ClientArgs {
            server: m.get_one::<String>(id::SERVER).cloned(),
            batch: m.get_one::<PathBuf>(id::BATCH).cloned(),
            quiet: m.get_flag(id::QUIET),
            verbose: m.get_flag(id::VERBOSE),
            plain: m.get_flag(id::PLAIN),
            accept_new: m.get_flag(id::ACCEPT_NEW),
            fingerprint: m.get_one::<String>(id::FINGERPRINT).cloned(),
            token_file: m.get_one::<PathBuf>(id::TOKEN_FILE).cloned(),
            save_token: m.get_flag(id::SAVE_TOKEN),
        }
    }
}

/// Which server, where the commands come from and how much is printed.
fn session_args() -> [Arg; 4] {
    [
        Arg::new(id::SERVER)
            .value_name("SERVER")
            .value_parser(value_parser!(String))
            .action(ArgAction::Set)
            .help("Server as HOST or HOST:PORT (default port 9999; an IPv6 address with a port goes in brackets)"),
        option(
            id::BATCH,
            "batch",
            "FILE",
            "Run commands from FILE ('-' for standard input) and exit",
        )
        .short('b')
        .value_parser(value_parser!(PathBuf)),
        switch(
            id::QUIET,
            "quiet",
            "Print only errors and command results (no connection line, no transfer summaries)",
        )
        .short('q')
        .conflicts_with(id::VERBOSE),
        switch(id::VERBOSE, "verbose", "Log protocol details to stderr").short('v'),
    ]
}

/// TLS and the server's certificate (both pins are meaningless without
/// TLS, so they conflict with `--plain`), and the access token.
fn trust_args() -> [Arg; 5] {
    [
        switch(
            id::PLAIN,
            "plain",
            "No TLS (for an ftxd started with --plain, on a trusted network)",
        ),
        switch(
            id::ACCEPT_NEW,
            "accept-new",
            "Trust an unknown server's certificate without asking and remember it",
        )
        .conflicts_with(id::PLAIN),
        option(
            id::FINGERPRINT,
            "fingerprint",
            "FP",
            "Accept only the server certificate with this fingerprint (SHA256:...)",
        )
        .value_parser(value_parser!(String))
        .conflicts_with(id::PLAIN),
        option(
            id::TOKEN_FILE,
            "token-file",
            "FILE",
            "Read the access token from FILE (else $FTX_TOKEN, a saved token, or a prompt)",
        )
        .value_parser(value_parser!(PathBuf)),
        switch(
            id::SAVE_TOKEN,
            "save-token",
            "Remember the access token for this server (in the ftx data directory, mode 0600)",
        ),
    ]
}

/// Environment variable holding the access token.
pub const TOKEN_ENV: &str = "FTX_TOKEN";

/// Reads one line from the terminal without echoing it (for tokens).
fn read_secret(prompt: &str) -> Result<String, String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a valid termios for the same fd.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    // The prompt only once echo is off: a token typed (or pasted) as soon
    // as the prompt shows must never appear on the screen.
    eprint!("{prompt}");
    io::stderr().flush().ok();
    let mut line = String::new();
    let r = io::stdin().lock().read_line(&mut line);
    if have_tty {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
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
fn choose_pin(args: &ClientArgs, addr: &str, interactive: bool) -> Result<String, String> {
    if let Some(fp) = &args.fingerprint {
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
    let trusted = if args.accept_new {
        true
    } else if interactive {
        eprintln!("The authenticity of server '{addr}' can't be established.");
        eprintln!("Its certificate fingerprint is {seen}.");
        ask_yes_no("Are you sure you want to continue connecting")?
    } else {
        return Err(format!(
            "unknown server {addr} (certificate fingerprint {seen}): not trusted; \
             check the fingerprint ftxd printed and pass --fingerprint {seen}, or --accept-new, \
             or connect once interactively"
        ));
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

/// The token from `--token-file`, `$FTX_TOKEN` or the saved tokens (empty
/// if none: the server may be `--open`).
fn find_token(args: &ClientArgs, saved: Option<&HostFile>, addr: &str) -> Result<String, String> {
    if let Some(path) = &args.token_file {
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
/// terminal, when the server asks for one) a prompt.
fn connect(args: &ClientArgs, addr: &str, interactive: bool) -> Result<Client, String> {
    let pin = if args.plain {
        None
    } else {
        Some(choose_pin(args, addr, interactive)?)
    };
    let saved = data_dir().map(|d| HostFile::at(d.join(TOKENS_FILE)));
    let mut token = find_token(args, saved.as_ref(), addr)?;
    let mut prompted = false;
    let client = loop {
        let options = ConnectOptions {
            pin: pin.clone(),
            token: token.clone().into_bytes(),
        };
        match Client::connect_with(addr, &options) {
            Ok(c) => break c,
            Err(e) if e.code() == Some(ErrorCode::Unauthorized) && interactive && !prompted => {
                if !token.is_empty() {
                    eprintln!("error: {e}");
                }
                token = read_secret("Enter access token: ")?;
                prompted = true;
            }
            Err(ClientError::IdentityChanged(c)) => {
                let file = data_dir()
                    .map(|d| d.join(KNOWN_HOSTS_FILE).display().to_string())
                    .unwrap_or_else(|| KNOWN_HOSTS_FILE.to_owned());
                return Err(format!(
                    "{c}; if the change is expected, remove the line for {addr} from {file}"
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    if !token.is_empty()
        && (args.save_token || (prompted && ask_yes_no("Remember this token for this server")?))
    {
        if let Some(f) = &saved {
            f.store(addr, &token)
                .map_err(|e| format!("cannot write '{}': {e}", f.path().display()))?;
        }
    }
    Ok(client)
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
    let interactive = batch.is_none() && io::stdin().is_terminal();
    let client = connect(&args, &addr, interactive)?;
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
    let stdin_commands = match &args.batch {
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

    fn args(extra: &[&str]) -> Result<ClientArgs, clap::Error> {
        ClientArgs::try_parse_from(std::iter::once("ftx").chain(extra.iter().copied()))
    }

    fn kind(extra: &[&str]) -> clap::error::ErrorKind {
        args(extra).unwrap_err().kind()
    }

    /// The on/off flags in field order, to check that each switch sets
    /// its own field and no other.
    fn switches(a: &ClientArgs) -> [bool; 5] {
        [a.quiet, a.verbose, a.plain, a.accept_new, a.save_token]
    }

    #[test]
    fn command_is_well_formed() {
        ClientArgs::command().debug_assert();
    }

    #[test]
    fn absent_flags_take_their_defaults() {
        let a = args(&[]).unwrap();
        assert_eq!(a.server, None);
        assert_eq!(a.batch, None);
        assert_eq!(a.fingerprint, None);
        assert_eq!(a.token_file, None);
        assert_eq!(switches(&a), [false; 5]);
    }

    #[test]
    fn every_value_flag_reaches_its_field() {
        let a = args(&[
            "host:7",
            "-b",
            "cmds",
            "--fingerprint",
            "SHA256:x",
            "--token-file",
            "tok",
        ])
        .unwrap();
        assert_eq!(a.server.as_deref(), Some("host:7"));
        assert_eq!(a.batch, Some(PathBuf::from("cmds")));
        assert_eq!(a.fingerprint.as_deref(), Some("SHA256:x"));
        assert_eq!(a.token_file, Some(PathBuf::from("tok")));
        assert_eq!(switches(&a), [false; 5]);
        // Long form, `=` form, and the server after the flags.
        let a = args(&["--batch", "-", "--token-file=t2", "[::1]:9"]).unwrap();
        assert_eq!(a.batch, Some(PathBuf::from("-")));
        assert_eq!(a.token_file, Some(PathBuf::from("t2")));
        assert_eq!(a.server.as_deref(), Some("[::1]:9"));
    }

    #[test]
    fn each_switch_sets_only_its_field() {
        let cases = [
            ("--quiet", 0),
            ("-q", 0),
            ("--verbose", 1),
            ("-v", 1),
            ("--plain", 2),
            ("--accept-new", 3),
            ("--save-token", 4),
        ];
        for (flag, field) in cases {
            let mut want = [false; 5];
            want[field] = true;
            assert_eq!(switches(&args(&[flag]).unwrap()), want, "{flag}");
        }
        let a = args(&["-q", "--accept-new", "--save-token"]).unwrap();
        assert_eq!(switches(&a), [true, false, false, true, true]);
        let a = args(&["-v", "--plain", "--save-token"]).unwrap();
        assert_eq!(switches(&a), [false, true, true, false, true]);
    }

    #[test]
    fn conflicts_are_refused() {
        use clap::error::ErrorKind::ArgumentConflict;
        assert_eq!(kind(&["-q", "-v"]), ArgumentConflict);
        assert_eq!(kind(&["-v", "-q"]), ArgumentConflict);
        assert_eq!(kind(&["--plain", "--accept-new"]), ArgumentConflict);
        assert_eq!(kind(&["--accept-new", "--plain"]), ArgumentConflict);
        assert_eq!(kind(&["--plain", "--fingerprint", "X"]), ArgumentConflict);
        let e = args(&["--plain", "--fingerprint", "X"]).unwrap_err();
        assert_eq!(
            e.render().to_string().lines().next(),
            Some("error: the argument '--plain' cannot be used with '--fingerprint <FP>'")
        );
        // Pins go together; they only conflict with --plain.
        let a = args(&["--accept-new", "--fingerprint", "X"]).unwrap();
        assert!(a.accept_new && a.fingerprint.is_some());
    }

    #[test]
    fn bad_lines_are_refused() {
        use clap::error::ErrorKind::*;
        assert_eq!(kind(&["a", "b"]), UnknownArgument);
        assert_eq!(kind(&["-b"]), InvalidValue);
        assert_eq!(kind(&["--fingerprint"]), InvalidValue);
        assert_eq!(kind(&["--bogus"]), UnknownArgument);
        assert_eq!(kind(&["--plain=yes"]), TooManyValues);
    }

    #[test]
    fn help_and_version() {
        let help = ClientArgs::command().render_help().to_string();
        for text in [
            "Usage: ftx [OPTIONS] [SERVER]",
            "[SERVER]  Server as HOST or HOST:PORT",
            "-b, --batch <FILE>",
            "-q, --quiet",
            "-v, --verbose",
            "--plain",
            "--accept-new",
            "--fingerprint <FP>",
            "--token-file <FILE>",
            "--save-token",
            "\n\nWithout HOST it asks for the server's address and port.\n\
             Type 'help' at the ftx> prompt for the commands.\n",
        ] {
            assert!(help.contains(text), "{text:?} missing from:\n{help}");
        }
        let e = args(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            e.render().to_string(),
            format!("ftx {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(kind(&["-h"]), clap::error::ErrorKind::DisplayHelp);
    }
}
