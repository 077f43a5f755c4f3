//! The shell's commands: the one table of command specs ([`SPECS`]) and the
//! parser from a line to a typed [`Command`].
//!
//! [`SPECS`] is the single source for `help`, `help COMMAND`, synopsis hints,
//! Tab completion (what each argument position names) and argument checking.
//! Parsing is pure: it never looks at files, the server or the terminal, and
//! it reports every problem as a [`ParseError`] whose `Display` is one line
//! a user can read. Options may appear anywhere before `--` (`ls dir -l`),
//! letters combine (`-la`), and `--` makes every later word an argument
//! (`rm -- -odd-name`). A lone `-` is an argument, not an option.

use std::fmt;

use super::listing::LsOptions;
use super::render::quoted_name;
use super::words::{self, Word, WordsError};

/// What an argument position names, which decides what Tab completes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A path on this machine.
    Local,
    /// A path on the server.
    Remote,
    /// The name of a shell command.
    Command,
    /// A value that names nothing (`chmod`'s MODE): nothing to complete.
    Value,
}

/// One positional argument of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    /// The placeholder in the synopsis (`LOCAL`).
    pub name: &'static str,
    /// How the "missing" error names it (`LOCAL file name`).
    pub what: &'static str,
    /// What it names, for completion.
    pub kind: ArgKind,
    /// Whether the command fails without it.
    pub required: bool,
}

/// One single-letter option of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    /// The letter (`f` for `-f`).
    pub letter: char,
    /// What it does, one line.
    pub help: &'static str,
}

/// Everything the shell knows about a command, defined once in [`SPECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name the user types.
    pub name: &'static str,
    /// Other names for the same command (`quit`, `bye`).
    pub aliases: &'static [&'static str],
    /// The options it accepts.
    pub flags: &'static [FlagSpec],
    /// Its positional arguments, required ones first.
    pub args: &'static [ArgSpec],
    /// What it does, one line for the `help` overview.
    pub summary: &'static str,
    /// Longer help for `help COMMAND`.
    pub help: &'static str,
    /// When set, the command also takes three or more arguments, all of
    /// this kind (`put a b c`): its second usage line.
    pub many: Option<ArgSpec>,
}

impl CommandSpec {
    /// The synopsis, derived from flags and arguments: `put [-f] LOCAL [REMOTE]`.
    pub fn synopsis(&self) -> String {
        let mut s = self.name.to_string();
        let args = self.args_synopsis();
        if !args.is_empty() {
            s.push(' ');
            s.push_str(&args);
        }
        s
    }

    /// The synopsis without the name: `[-f] LOCAL [REMOTE]` (empty when none).
    /// More than two options go in one bracket, as sftp writes them:
    /// `ls [-1ahlRrSt] [PATH]`.
    pub fn args_synopsis(&self) -> String {
        let flags: Vec<String> = if self.flags.len() > 2 {
            vec![format!("[-{}]", self.flags_letters())]
        } else {
            self.flags
                .iter()
                .map(|f| format!("[-{}]", f.letter))
                .collect()
        };
        let args = self.args.iter().map(|a| {
            if a.required {
                a.name.to_string()
            } else {
                format!("[{}]", a.name)
            }
        });
        flags.into_iter().chain(args).collect::<Vec<_>>().join(" ")
    }

    /// The option letters, in the table's order: `1ahlRrSt`.
    fn flags_letters(&self) -> String {
        self.flags.iter().map(|f| f.letter).collect()
    }

    /// Whether `word` names this command (its name or an alias).
    pub fn is_named(&self, word: &str) -> bool {
        self.name == word || self.aliases.contains(&word)
    }

    /// What argument position `index` (0-based, options not counted) names.
    pub fn arg_kind(&self, index: usize) -> Option<ArgKind> {
        self.args.get(index).or(self.many.as_ref()).map(|a| a.kind)
    }

    /// The second usage line for commands that take many names:
    /// `put [-f] [-p] [-r] [-R] LOCAL LOCAL LOCAL...`; arguments of another kind
    /// before the names stay (`chmod MODE PATH PATH...`), and the line
    /// shows three arguments or more.
    pub fn many_synopsis(&self) -> Option<String> {
        let many = self.many?;
        let mut s = self.name.to_string();
        if self.flags.len() > 2 {
            s.push_str(&format!(" [-{}]", self.flags_letters()));
        } else {
            for f in self.flags {
                s.push_str(&format!(" [-{}]", f.letter));
            }
        }
        let lead: Vec<&ArgSpec> = self
            .args
            .iter()
            .take_while(|a| a.kind != many.kind)
            .collect();
        for a in &lead {
            s.push_str(&format!(" {}", a.name));
        }
        let repeat = 3usize.saturating_sub(lead.len()).max(2);
        for _ in 1..repeat {
            s.push_str(&format!(" {}", many.name));
        }
        s.push_str(&format!(" {}...", many.name));
        Some(s)
    }

    /// The text of `help COMMAND`: synopsis, long help, options, aliases.
    pub fn long_help(&self) -> String {
        let mut s = format!("usage: {}\n", self.synopsis());
        if let Some(many) = self.many_synopsis() {
            s.push_str(&format!("       {many}\n"));
        }
        s.push_str(self.help);
        s.push('\n');
        for f in self.flags {
            s.push_str(&format!("  -{}  {}\n", f.letter, f.help));
        }
        if !self.aliases.is_empty() {
            s.push_str(&format!("aliases: {}\n", self.aliases.join(", ")));
        }
        s
    }
}

const fn req(name: &'static str, what: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        what,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, what: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        what,
        kind,
        required: false,
    }
}

const FORCE: FlagSpec = FlagSpec {
    letter: 'f',
    help: "replace an existing file instead of storing under a new name",
};

const RECURSIVE: FlagSpec = FlagSpec {
    letter: 'r',
    help: "copy whole directories, keeping the tree",
};

/// `-R`, sftp's other spelling of `-r`.
const RECURSIVE_R: FlagSpec = FlagSpec {
    letter: 'R',
    help: "the same as -r (as in sftp)",
};

const PRESERVE: FlagSpec = FlagSpec {
    letter: 'p',
    help: "keep modification times and permission bits (directories too, with -r)",
};

const UPDATE: FlagSpec = FlagSpec {
    letter: 'u',
    help: "skip a file of the same size and modification time; keeps times as -p",
};

const CONTENT: FlagSpec = FlagSpec {
    letter: 'c',
    help: "skip a file of the same size and content (BLAKE3 digest)",
};

const VERBOSE: FlagSpec = FlagSpec {
    letter: 'v',
    help: "with -u or -c, name each file skipped",
};

/// How `put`/`get` skip the files the other side already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// Everything named is sent.
    #[default]
    Off,
    /// `-u`: the same size and modification time (seconds) are the same file.
    Times,
    /// `-c`: the same size and BLAKE3 digest are the same file.
    Content,
}

/// `-u`, `-c` and `-v` of `put` and `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Update {
    /// What makes a file unchanged (`-c` wins over `-u`).
    pub check: Check,
    /// `-v`: each skipped file is named.
    pub verbose: bool,
}

impl Update {
    fn from_flags(a: &Args) -> Update {
        let check = if a.has('c') {
            Check::Content
        } else if a.has('u') {
            Check::Times
        } else {
            Check::Off
        };
        Update {
            check,
            verbose: a.has('v'),
        }
    }
}

/// Every command of the shell, in the order `help` lists them.
pub const SPECS: &[CommandSpec] = &[
    CommandSpec {
        name: "put",
        aliases: &[],
        flags: &[
            FORCE,
            PRESERVE,
            RECURSIVE,
            RECURSIVE_R,
            UPDATE,
            CONTENT,
            VERBOSE,
        ],
        args: &[
            req("LOCAL", "LOCAL file name", ArgKind::Local),
            opt("REMOTE", "REMOTE file name", ArgKind::Remote),
        ],
        summary: "upload files",
        help: "Upload LOCAL to the server as REMOTE (default: LOCAL's base name).\n\
               When REMOTE is a directory the upload goes into it, under LOCAL's\n\
               base name; a REMOTE ending in '/' must be an existing directory.\n\
               A name that is taken gives name_1.ext, name_2.ext, ... unless -f\n\
               replaces it. LOCAL may be a pattern (*.log, ?, [a-z]): every match\n\
               is uploaded, into the directory REMOTE if given. Quoted or escaped\n\
               wildcards are literal: 'a[1].txt' and a\\[1\\].txt name one file.\n\
               With three or more names, each is uploaded under its base name. -r\n\
               uploads directories with everything in them: 'put -r dir other'\n\
               stores dir's tree as 'other', or as 'other/dir' when 'other' is a\n\
               directory. A failed file is reported and the rest go on; the\n\
               command fails at the end. Ctrl-C cancels. -p keeps each file's\n\
               modification time and permission bits on the server (with -r,\n\
               the directories' too). -u sends only what is missing or differs\n\
               in size or modification time, and keeps times and modes as -p\n\
               does, so that the next -u can tell (use -p on the first run too);\n\
               -c compares size and content (BLAKE3) instead, for files whose\n\
               times were not kept. Both replace a file that differs (as -f)\n\
               and end with the count of files skipped; -v names each.",
        many: Some(opt("LOCAL", "LOCAL file name", ArgKind::Local)),
    },
    CommandSpec {
        name: "get",
        aliases: &[],
        flags: &[
            FORCE,
            PRESERVE,
            RECURSIVE,
            RECURSIVE_R,
            UPDATE,
            CONTENT,
            VERBOSE,
        ],
        args: &[
            req("REMOTE", "REMOTE file name", ArgKind::Remote),
            opt("LOCAL", "LOCAL file name", ArgKind::Local),
        ],
        summary: "download files",
        help: "Download REMOTE from the server as LOCAL (default: REMOTE's base name\n\
               in the current local directory). When LOCAL is a directory the\n\
               download goes into it, under REMOTE's base name; a LOCAL ending in\n\
               '/' must be an existing directory. A name that is taken gives\n\
               name_1.ext, name_2.ext, ... unless -f replaces it. REMOTE may be a\n\
               pattern (logs/*.gz): every match is downloaded, into the directory\n\
               LOCAL if given. Quoted or escaped wildcards are literal:\n\
               'a[1].txt' and a\\[1\\].txt name one file. With three or more\n\
               names, each is downloaded under its base name. -r downloads\n\
               directories with everything in them: 'get -r dir other' stores\n\
               dir's tree as 'other', or as 'other/dir' when 'other' is a\n\
               directory. A failed file is reported and the rest go on; the\n\
               command fails at the end. Ctrl-C cancels. -p keeps each file's\n\
               modification time and permission bits here (with -r, the\n\
               directories' too). -u fetches only what is missing or differs\n\
               in size or modification time, and keeps times and modes as -p\n\
               does, so that the next -u can tell (use -p on the first run too);\n\
               -c compares size and content (BLAKE3) instead, for files whose\n\
               times were not kept. Both replace a file that differs (as -f)\n\
               and end with the count of files skipped; -v names each.",
        many: Some(opt("REMOTE", "REMOTE file name", ArgKind::Remote)),
    },
    CommandSpec {
        name: "reput",
        aliases: &[],
        flags: &[],
        args: &[
            req("LOCAL", "LOCAL file name", ArgKind::Local),
            opt("REMOTE", "REMOTE file name", ArgKind::Remote),
        ],
        summary: "resume an interrupted upload",
        help: "Resume an interrupted upload of LOCAL, sending only the missing bytes.\n\
               With nothing to resume it uploads the whole file and says so. REMOTE\n\
               names the upload as for put: a directory means into it.",
        many: None,
    },
    CommandSpec {
        name: "reget",
        aliases: &[],
        flags: &[],
        args: &[
            req("REMOTE", "REMOTE file name", ArgKind::Remote),
            opt("LOCAL", "LOCAL file name", ArgKind::Local),
        ],
        summary: "resume an interrupted download",
        help: "Resume an interrupted download of REMOTE, fetching only the missing\n\
               bytes. With nothing to resume it downloads the whole file and says so.\n\
               LOCAL names the download as for get: a directory means into it.",
        many: None,
    },
    CommandSpec {
        name: "cd",
        aliases: &[],
        flags: &[],
        args: &[opt("DIR", "remote directory DIR", ArgKind::Remote)],
        summary: "change the remote directory",
        help: "Change the remote working directory to DIR. Every remote name of every\n\
               command is taken relative to it; a name starting with '/' starts at\n\
               the top of what the server serves, and '..' never goes above it.\n\
               'cd' alone goes back to the top, 'cd -' to the directory before. A\n\
               DIR that is missing or not a directory is an error, and the working\n\
               directory stays as it was.",
        many: None,
    },
    CommandSpec {
        name: "pwd",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "print the remote directory",
        help: "Print the remote working directory, from the top of what the server\n\
               serves: 'Remote working directory: /docs'.",
        many: None,
    },
    CommandSpec {
        name: "ls",
        aliases: &["dir"],
        flags: &[
            FlagSpec {
                letter: '1',
                help: "names only, one a line",
            },
            FlagSpec {
                letter: 'a',
                help: "also list names starting with '.'",
            },
            FlagSpec {
                letter: 'h',
                help: "with -l, sizes as 1.5K, 12.3M, ...",
            },
            FlagSpec {
                letter: 'l',
                help: "long listing: permissions, size, modification time (UTC), name",
            },
            FlagSpec {
                letter: 'R',
                help: "list the directories beneath too, each after a 'DIR:' line",
            },
            FlagSpec {
                letter: 'r',
                help: "reverse the order",
            },
            FlagSpec {
                letter: 'S',
                help: "sort by size, largest first",
            },
            FlagSpec {
                letter: 't',
                help: "sort by modification time, newest first",
            },
        ],
        args: &[opt("PATH", "PATH", ArgKind::Remote)],
        summary: "list remote files",
        help: "List the remote directory PATH (default: the remote working\n\
               directory): size in bytes then name, directories with a trailing\n\
               '/', sorted by name. A PATH that is a file lists that file; a\n\
               pattern (*.log, logs/*.gz) lists what it matches, or the contents of\n\
               the one directory it matches. Options combine: 'ls -laht'.",
        many: None,
    },
    CommandSpec {
        name: "mkdir",
        aliases: &[],
        flags: &[FlagSpec {
            letter: 'p',
            help: "create missing parents too; a directory that exists is no error",
        }],
        args: &[req("PATH", "directory PATH", ArgKind::Remote)],
        summary: "create a remote directory",
        help: "Create the directory PATH on the server. Its parent must exist, unless\n\
               -p creates every missing one.",
        many: None,
    },
    CommandSpec {
        name: "rmdir",
        aliases: &[],
        flags: &[],
        args: &[req("DIR", "remote directory DIR", ArgKind::Remote)],
        summary: "remove an empty remote directory",
        help: "Remove the empty directory DIR on the server (a file is not a\n\
               directory: use rm). A symbolic link to a directory counts as one\n\
               (ftxd lists it as what it leads to): rmdir removes the link itself.",
        many: None,
    },
    CommandSpec {
        name: "rm",
        aliases: &[],
        flags: &[],
        args: &[req("PATH", "remote PATH", ArgKind::Remote)],
        summary: "remove remote files",
        help: "Remove the files PATH on the server: names or patterns (rm *.tmp),\n\
               several at once. A symbolic link is removed itself, not its target.\n\
               Directories are left alone (use rmdir). A name that fails is\n\
               reported and the rest go on; the command fails at the end.",
        many: Some(opt("PATH", "remote PATH", ArgKind::Remote)),
    },
    CommandSpec {
        name: "rename",
        aliases: &[],
        flags: &[],
        args: &[
            req("OLD", "OLD name", ArgKind::Remote),
            req("NEW", "NEW name", ArgKind::Remote),
        ],
        summary: "rename a remote file",
        help: "Rename OLD to NEW on the server.",
        many: None,
    },
    CommandSpec {
        name: "chmod",
        aliases: &[],
        flags: &[],
        args: &[
            req("MODE", "MODE", ArgKind::Value),
            req("PATH", "remote PATH", ArgKind::Remote),
        ],
        summary: "set the permissions of remote files",
        help: "Set the permission bits of each remote PATH to MODE, an octal number\n\
               such as 644 or 0755 (4 read, 2 write, 1 execute, for the owner, the\n\
               group and others). Setuid, setgid and sticky bits (4000, 2000, 1000)\n\
               are refused before anything is sent. PATH may be a pattern\n\
               (logs/*.gz); a symbolic link inside the root is followed. The server\n\
               must serve attributes (an older ftxd does not).",
        many: Some(opt("PATH", "remote PATH", ArgKind::Remote)),
    },
    CommandSpec {
        name: "df",
        aliases: &[],
        flags: &[FlagSpec {
            letter: 'h',
            help: "sizes for people (K, M, G, ...) instead of KiB",
        }],
        args: &[opt("PATH", "PATH", ArgKind::Remote)],
        summary: "show the server's disk space",
        help: "Show the file system on the server that holds PATH (default: the\n\
               root), as sftp does: its size, the space used, the space uploads\n\
               may still use (in KiB, 1024 bytes) and how full it is. The server\n\
               must serve attributes (an older ftxd does not).",
        many: None,
    },
    CommandSpec {
        name: "parts",
        aliases: &[],
        flags: &[],
        args: &[opt("DIR", "remote DIR", ArgKind::Remote)],
        summary: "list interrupted transfers on both sides",
        help: "List the interrupted transfers that reput and reget can continue:\n\
               your uploads the server keeps in DIR (default: the remote working\n\
               directory), and the downloads kept in the local directory, each with\n\
               the bytes already there. A cancelled, timed-out or cut transfer\n\
               leaves one; `discard NAME` and `ldiscard NAME` drop them.",
        many: None,
    },
    CommandSpec {
        name: "discard",
        aliases: &[],
        flags: &[],
        args: &[req("NAME", "remote NAME", ArgKind::Remote)],
        summary: "drop interrupted uploads on the server",
        help: "Drop your interrupted upload to each remote NAME (the name it was\n\
               uploaded to, as `parts` shows it), freeing its space: a later reput\n\
               of NAME starts from the beginning. A running transfer's is refused\n\
               as busy.",
        many: Some(opt("NAME", "remote NAME", ArgKind::Remote)),
    },
    CommandSpec {
        name: "ldiscard",
        aliases: &[],
        flags: &[],
        args: &[req("NAME", "local NAME", ArgKind::Local)],
        summary: "drop interrupted downloads here",
        help: "Drop the interrupted download to each local NAME (as `parts` shows\n\
               it), freeing its space: a later reget of NAME starts from the\n\
               beginning. A running transfer's is refused as busy.",
        many: Some(opt("NAME", "local NAME", ArgKind::Local)),
    },
    CommandSpec {
        name: "lls",
        aliases: &[],
        flags: &[
            FlagSpec {
                letter: 'l',
                help: "long listing: modification time and human sizes",
            },
            FlagSpec {
                letter: 'a',
                help: "also list names starting with '.'",
            },
        ],
        args: &[opt("PATH", "PATH", ArgKind::Local)],
        summary: "list a local directory",
        help: "List the local directory PATH (default: the current local directory)\n\
               as ls lists a remote one; a file is listed alone.",
        many: None,
    },
    CommandSpec {
        name: "lcd",
        aliases: &[],
        flags: &[],
        args: &[opt("PATH", "local directory PATH", ArgKind::Local)],
        summary: "change the local directory",
        help: "Change the current local directory to PATH (default: your home\n\
               directory, $HOME).",
        many: None,
    },
    CommandSpec {
        name: "lpwd",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "print the local directory",
        help: "Print the current local directory.",
        many: None,
    },
    CommandSpec {
        name: "lmkdir",
        aliases: &[],
        flags: &[],
        args: &[req("PATH", "local directory PATH", ArgKind::Local)],
        summary: "create a local directory",
        help: "Create the directory PATH on this machine (its parent must exist).",
        many: None,
    },
    CommandSpec {
        name: "!",
        aliases: &[],
        flags: &[],
        args: &[opt("COMMAND", "COMMAND", ArgKind::Local)],
        summary: "run COMMAND in the local shell",
        help: "!COMMAND runs the rest of the line with $SHELL -c (/bin/sh when SHELL\n\
               is not set), as sftp does; '!' alone starts that shell, and leaving\n\
               it (exit, Ctrl-D) comes back to ftx. A command that ends with a\n\
               non-zero status fails like any other (a batch stops there unless\n\
               the line starts with '-'). Ctrl-C reaches the command, not ftx. When\n\
               ftx reads its commands from a pipe or 'ftx -b -', the command's\n\
               standard input is empty.",
        many: None,
    },
    CommandSpec {
        name: "version",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "show ftx's and the server's versions",
        help: "Print ftx's version, the server's name and version as it announced\n\
               them, and the protocol version in use.",
        many: None,
    },
    CommandSpec {
        name: "progress",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "toggle the progress bar",
        help: "Turn the progress bar of transfers off or on again (as in sftp). It is\n\
               only ever drawn when standard error is a terminal, and starts off in\n\
               batch mode.",
        many: None,
    },
    CommandSpec {
        name: "open",
        aliases: &[],
        flags: &[],
        args: &[opt("HOST[:PORT]", "server HOST[:PORT]", ArgKind::Value)],
        summary: "connect to a server",
        help: "Close the connection and connect to the server HOST[:PORT] (port 9999\n\
               if not given) as ftx does from its command line: a server not seen\n\
               before is trusted on first use only on a terminal (or with\n\
               --accept-new), and the access token comes from $FTX_TOKEN, a saved\n\
               token or a prompt (--fingerprint and --token-file are about the\n\
               server on the command line only). 'open' alone connects to the last\n\
               server again. The remote working directory starts at the top.",
        many: None,
    },
    CommandSpec {
        name: "close",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "close the connection",
        help: "Close the connection to the server. Commands that need it then say\n\
               'not connected; use open HOST[:PORT]'; the local ones still work.",
        many: None,
    },
    CommandSpec {
        name: "help",
        aliases: &["?"],
        flags: &[],
        args: &[opt("COMMAND", "COMMAND", ArgKind::Command)],
        summary: "show help",
        help: "List the commands, or show what COMMAND does.",
        many: None,
    },
    CommandSpec {
        name: "exit",
        aliases: &["quit", "bye"],
        flags: &[],
        args: &[],
        summary: "leave ftx",
        help: "Close the connection and leave ftx.",
        many: None,
    },
    CommandSpec {
        name: "1",
        aliases: &[],
        flags: &[],
        args: &[opt("FILE", "FILE", ArgKind::Local)],
        summary: "menu: upload a file (asks for its name if not given)",
        help: "The original menu's \"Upload a file\": like 'put FILE'. Without FILE it\n\
               asks 'Enter full filename to upload:' and takes the answer as typed.",
        many: None,
    },
    CommandSpec {
        name: "2",
        aliases: &[],
        flags: &[],
        args: &[opt("FILE", "FILE", ArgKind::Remote)],
        summary: "menu: download a file (asks for its name if not given)",
        help: "The original menu's \"Download a file\": like 'get FILE'. Without FILE\n\
               it asks 'Enter full filename to download:' and takes the answer as typed.",
        many: None,
    },
    CommandSpec {
        name: "3",
        aliases: &[],
        flags: &[],
        args: &[],
        summary: "menu: exit",
        help: "The original menu's \"Exit\": like 'exit'.",
        many: None,
    },
];

/// The spec of the command called `name` (by name or alias).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    SPECS.iter().find(|s| s.is_named(name))
}

/// The command name (or alias) nearest to `typed`, for "did you mean":
/// one edit away (a letter added, dropped or changed, or two neighbours
/// swapped: `gte` -> `get`), two for words of five letters or more, case
/// ignored (`PUT` -> `put`). The menu's digits and `!` are never offered.
/// The first such name in [`SPECS`] order wins a tie.
pub fn suggest(typed: &str) -> Option<&'static str> {
    let typed: Vec<char> = typed.to_lowercase().chars().collect();
    if typed.is_empty() || typed.len() > 32 {
        return None;
    }
    let limit = if typed.len() >= 5 { 2 } else { 1 };
    SPECS
        .iter()
        .flat_map(|s| std::iter::once(&s.name).chain(s.aliases))
        .filter(|name| name.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|name| {
            (
                edit_distance(&typed, &name.chars().collect::<Vec<_>>()),
                *name,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to
/// `b`: the optimal string alignment distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The `help` overview: one line per command, synopsis then summary.
pub fn help_overview() -> String {
    let rows: Vec<(String, &str)> = SPECS.iter().map(|s| (s.synopsis(), s.summary)).collect();
    let width = rows.iter().map(|(syn, _)| syn.len()).max().unwrap_or(0);
    let mut out = String::from("commands:\n");
    for (syn, summary) in rows {
        out.push_str(&format!("  {syn:width$}  {summary}\n"));
    }
    out.push_str(
        "Type 'help COMMAND' for more. Quote names with spaces or wildcards:\n\
         \"my file\", my\\ file, 'a[1].txt' (a quoted *, ? or [ is literal).\n",
    );
    out
}

/// A parsed shell command, ready for the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `put [-f] [-p] [-r] LOCAL [REMOTE]` or `put [-f] [-p] [-r] LOCAL LOCAL LOCAL...`,
    /// also `1 FILE`.
    Put {
        /// `-f`: replace instead of storing under a free name.
        force: bool,
        /// `-r` (or `-R`): directories with everything in them.
        recursive: bool,
        /// `-p`: keep modification times and permission bits.
        preserve: bool,
        /// `-u`, `-c`, `-v`: skip the files the other side already has.
        update: Update,
        /// The local files, directories or patterns to send (at least one),
        /// each as a [`glob`](super::glob) pattern: a wildcard character
        /// that was quoted or escaped has a backslash before it
        /// ([`Word::pattern`]); `glob::unescape` gives the name.
        local: Vec<String>,
        /// The remote name, or the directory to put into (one that exists,
        /// one named with a trailing `/`, or any for a pattern); only with
        /// exactly two names. `None` means each LOCAL's base name.
        remote: Option<String>,
    },
    /// `get [-f] [-p] [-r] REMOTE [LOCAL]` or `get [-f] [-p] [-r] REMOTE REMOTE REMOTE...`,
    /// also `2 FILE`.
    Get {
        /// `-f`: replace instead of storing under a free name.
        force: bool,
        /// `-r` (or `-R`): directories with everything in them.
        recursive: bool,
        /// `-p`: keep modification times and permission bits.
        preserve: bool,
        /// `-u`, `-c`, `-v`: skip the files the other side already has.
        update: Update,
        /// The remote files, directories or patterns to fetch (at least
        /// one), as patterns like `Put`'s `local`.
        remote: Vec<String>,
        /// The local name, or the directory to get into (one that exists,
        /// one named with a trailing `/`, or any for a pattern); only with
        /// exactly two names. `None` means each REMOTE's base name in the
        /// local directory.
        local: Option<String>,
    },
    /// `reput LOCAL [REMOTE]`.
    Reput {
        /// The local file to send.
        local: String,
        /// The remote name or directory (as for `put`); `None` means
        /// LOCAL's base name.
        remote: Option<String>,
    },
    /// `reget REMOTE [LOCAL]`.
    Reget {
        /// The remote file to fetch.
        remote: String,
        /// The local name or directory (as for `get`); `None` means
        /// REMOTE's base name.
        local: Option<String>,
    },
    /// `cd [DIR]`.
    Cd {
        /// The new remote working directory; `None` for the top (the
        /// served root), `-` for the previous one.
        path: Option<String>,
    },
    /// `pwd`.
    Pwd,
    /// `ls [-1ahlRrSt] [PATH]`.
    Ls {
        /// What to show and in which order.
        options: LsOptions,
        /// A directory, file or pattern, as a [`glob`](super::glob)
        /// pattern like `Put`'s `local`; `None` means the remote working
        /// directory.
        path: Option<String>,
    },
    /// `mkdir [-p] PATH`.
    Mkdir {
        /// `-p`: create missing parents; an existing directory is fine.
        parents: bool,
        /// The remote directory to create.
        path: String,
    },
    /// `rmdir DIR`.
    Rmdir {
        /// The empty remote directory to remove.
        path: String,
    },
    /// `rm PATH...`.
    Rm {
        /// The remote files or patterns to remove (at least one), as
        /// patterns like `Put`'s `local`.
        paths: Vec<String>,
    },
    /// `rename OLD NEW`.
    Rename {
        /// The current remote name.
        from: String,
        /// The new remote name.
        to: String,
    },
    /// `chmod MODE PATH...`.
    Chmod {
        /// The permission bits, at most `0o777` (checked by the parser).
        mode: u16,
        /// The remote paths or patterns (at least one), as patterns like
        /// `Put`'s `local`.
        paths: Vec<String>,
    },
    /// `df [-h] [PATH]`.
    Df {
        /// `-h`: human sizes instead of KiB.
        human: bool,
        /// A remote path on the file system to show; `None` means the root.
        path: Option<String>,
    },
    /// `parts [DIR]`.
    Parts {
        /// The remote directory; `None` means the working directory.
        dir: Option<String>,
    },
    /// `discard NAME...`.
    Discard {
        /// The remote names whose interrupted uploads go (at least one).
        names: Vec<String>,
    },
    /// `ldiscard NAME...`.
    Ldiscard {
        /// The local names whose interrupted downloads go (at least one).
        names: Vec<String>,
    },
    /// `lls [-l] [-a] [PATH]`.
    Lls {
        /// `-l`: modification times and human sizes.
        long: bool,
        /// `-a`: include names starting with `.`.
        all: bool,
        /// The local directory (or file); `None` means the current one.
        path: Option<String>,
    },
    /// `lcd [PATH]`.
    Lcd {
        /// The new local directory; `~` (the home directory) when none
        /// was given.
        path: String,
    },
    /// `lmkdir PATH`.
    Lmkdir {
        /// The local directory to create.
        path: String,
    },
    /// `!COMMAND` or `!` alone.
    Shell {
        /// The rest of the line after `!`, trimmed, as the shell gets it
        /// (never split into words); empty for an interactive shell.
        command: String,
    },
    /// `version`.
    Version,
    /// `lpwd`.
    Lpwd,
    /// `progress`: toggle the progress bar.
    Progress,
    /// `open [HOST[:PORT]]`.
    Open {
        /// The server to connect to; `None`: the last one again.
        server: Option<String>,
    },
    /// `close`.
    Close,
    /// `help [COMMAND]`; the topic is the canonical name of a known command.
    Help {
        /// The command to explain; `None` for the overview.
        topic: Option<&'static str>,
    },
    /// `exit`, `quit`, `bye`, `3`.
    Exit,
    /// `1` alone: ask `Enter full filename to upload:` then upload.
    PromptPut,
    /// `2` alone: ask `Enter full filename to download:` then download.
    PromptGet,
}

/// Why a line is not a valid command; `Display` is one line without the
/// `error:` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line cannot be split into words (unterminated quote...).
    #[error("{0}")]
    Words(WordsError),
    /// The first word is not a command.
    #[error(fmt = unknown_command)]
    UnknownCommand(String),
    /// An option the command does not have.
    #[error("{command}: unknown option {}", quoted_name(.option))]
    UnknownOption {
        /// The command's name.
        command: &'static str,
        /// The option as typed (`-x`, or `-l` inside `-lx` shown as `-x`).
        option: String,
    },
    /// A required argument is missing.
    #[error("{command}: missing {what}")]
    MissingArgument {
        /// The command's name.
        command: &'static str,
        /// What is missing (`LOCAL file name`).
        what: &'static str,
    },
    /// More arguments than the command takes.
    #[error("{command}: unexpected argument {}", quoted_name(.extra))]
    TooManyArguments {
        /// The command's name.
        command: &'static str,
        /// The first argument too many.
        extra: String,
    },
    /// `help X` where X is not a command.
    #[error("help: no command named {} (try 'help')", quoted_name(.0))]
    UnknownHelpTopic(String),
    /// `chmod`'s MODE is not permission bits it may set.
    #[error("chmod: invalid mode {}: {why}", quoted_name(.text))]
    BadMode {
        /// The MODE as typed.
        text: String,
        /// Why not, in plain words.
        why: &'static str,
    },
}

/// [`ParseError::UnknownCommand`] in words, with the nearest command
/// when there is one.
fn unknown_command(name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match suggest(name) {
        Some(near) => write!(
            f,
            "unknown command {} (did you mean '{near}'?)",
            quoted_name(name)
        ),
        None => write!(f, "unknown command {} (try 'help')", quoted_name(name)),
    }
}

impl From<WordsError> for ParseError {
    fn from(e: WordsError) -> Self {
        ParseError::Words(e)
    }
}

/// Options and positional arguments of one command line, checked against its spec.
struct Args {
    flags: Vec<char>,
    positional: Vec<Word>,
}

impl Args {
    fn has(&self, letter: char) -> bool {
        self.flags.contains(&letter)
    }

    /// Takes the next positional argument (they are consumed in order).
    fn next_word(&mut self) -> Option<Word> {
        if self.positional.is_empty() {
            None
        } else {
            Some(self.positional.remove(0))
        }
    }

    /// The next positional argument as a name: its text.
    fn next(&mut self) -> Option<String> {
        self.next_word().map(|w| w.text)
    }

    /// The next positional argument as a pattern, its quoted wildcard
    /// characters escaped ([`Word::pattern`]).
    fn next_pattern(&mut self) -> Option<String> {
        self.next_word().map(|w| w.pattern)
    }

    /// The next positional argument, which the spec says is required;
    /// `check` has already made sure it is there.
    fn required(&mut self) -> String {
        self.next().unwrap_or_default()
    }

    /// `put`/`get` names: one or two are SOURCE [TARGET]; three or more are
    /// all sources. Sources are patterns ([`Word::pattern`]), the target a
    /// plain name (no wildcards there, as in sftp).
    fn sources_and_target(self) -> (Vec<String>, Option<String>) {
        let mut names = self.positional;
        let target = if names.len() == 2 {
            names.pop().map(|w| w.text)
        } else {
            None
        };
        (names.into_iter().map(|w| w.pattern).collect(), target)
    }
}

/// `chmod`'s MODE: one to four octal digits (`644`, `0755`), leading
/// zeros aside, and no setuid, setgid or sticky bit (ftxd refuses them,
/// so they are refused before anything is sent).
pub fn parse_mode(text: &str) -> Result<u16, &'static str> {
    let digits = text.trim_start_matches('0');
    if text.is_empty() || !text.chars().all(|c| matches!(c, '0'..='7')) {
        return Err("not an octal mode such as 644 or 0755");
    }
    if digits.len() > 4 {
        return Err("more than four octal digits");
    }
    let mode = u16::from_str_radix(if digits.is_empty() { "0" } else { digits }, 8)
        .map_err(|_| "not an octal mode such as 644 or 0755")?;
    if mode & !0o777 != 0 {
        return Err("setuid, setgid and sticky bits cannot be set");
    }
    Ok(mode)
}

/// Separates options from arguments and checks both against `spec`.
fn check(spec: &'static CommandSpec, words: Vec<Word>) -> Result<Args, ParseError> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut options_done = false;
    for w in words {
        let word = &w.text;
        if options_done || word == "-" || !word.starts_with('-') {
            positional.push(w);
        } else if word == "--" {
            options_done = true;
        } else {
            for letter in word.chars().skip(1) {
                if !spec.flags.iter().any(|f| f.letter == letter) {
                    let option = if word.starts_with("--") {
                        word.clone()
                    } else {
                        format!("-{letter}")
                    };
                    return Err(ParseError::UnknownOption {
                        command: spec.name,
                        option,
                    });
                }
                flags.push(letter);
            }
        }
    }
    if let Some(missing) = spec
        .args
        .iter()
        .filter(|a| a.required)
        .nth(positional.len())
    {
        return Err(ParseError::MissingArgument {
            command: spec.name,
            what: missing.what,
        });
    }
    if positional.len() > spec.args.len() && spec.many.is_none() {
        return Err(ParseError::TooManyArguments {
            command: spec.name,
            extra: positional.swap_remove(spec.args.len()).text,
        });
    }
    Ok(Args { flags, positional })
}

/// Parses one command line. `Ok(None)` for a line with no words.
///
/// Batch prefixes (`-`, `@`) and comment lines are the runner's business and
/// must be stripped before calling this.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    // As sftp: the rest of a `!` line is the local shell's, not words.
    if let Some(rest) = line.trim_start().strip_prefix('!') {
        return Ok(Some(Command::Shell {
            command: rest.trim().to_owned(),
        }));
    }
    let mut words = words::split(line)?;
    if words.is_empty() {
        return Ok(None);
    }
    let name = words.remove(0).text;
    let spec = spec(&name).ok_or(ParseError::UnknownCommand(name))?;
    let mut a = check(spec, words)?;
    let command = match spec.name {
        "put" => {
            let (force, preserve) = (a.has('f'), a.has('p'));
            let recursive = a.has('r') || a.has('R');
            let update = Update::from_flags(&a);
            let (local, remote) = a.sources_and_target();
            Command::Put {
                force,
                recursive,
                preserve,
                update,
                local,
                remote,
            }
        }
        "get" => {
            let (force, preserve) = (a.has('f'), a.has('p'));
            let recursive = a.has('r') || a.has('R');
            let update = Update::from_flags(&a);
            let (remote, local) = a.sources_and_target();
            Command::Get {
                force,
                recursive,
                preserve,
                update,
                remote,
                local,
            }
        }
        "reput" => Command::Reput {
            local: a.required(),
            remote: a.next(),
        },
        "reget" => Command::Reget {
            remote: a.required(),
            local: a.next(),
        },
        "cd" => Command::Cd { path: a.next() },
        "pwd" => Command::Pwd,
        "ls" => Command::Ls {
            options: LsOptions::from_letters(a.flags.iter().copied()),
            path: a.next_pattern(),
        },
        "mkdir" => Command::Mkdir {
            parents: a.has('p'),
            path: a.required(),
        },
        "rmdir" => Command::Rmdir { path: a.required() },
        "rm" => Command::Rm {
            paths: a.positional.into_iter().map(|w| w.pattern).collect(),
        },
        "rename" => Command::Rename {
            from: a.required(),
            to: a.required(),
        },
        "chmod" => {
            let text = a.required();
            let mode = parse_mode(&text).map_err(|why| ParseError::BadMode { text, why })?;
            let paths = a.positional.into_iter().map(|w| w.pattern).collect();
            Command::Chmod { mode, paths }
        }
        "df" => Command::Df {
            human: a.has('h'),
            path: a.next(),
        },
        "parts" => Command::Parts { dir: a.next() },
        "discard" => Command::Discard {
            names: a.positional.into_iter().map(|w| w.text).collect(),
        },
        "ldiscard" => Command::Ldiscard {
            names: a.positional.into_iter().map(|w| w.text).collect(),
        },
        "lls" => Command::Lls {
            long: a.has('l'),
            all: a.has('a'),
            path: a.next(),
        },
        "lcd" => Command::Lcd {
            path: a.next().unwrap_or_else(|| "~".to_owned()),
        },
        "lmkdir" => Command::Lmkdir { path: a.required() },
        "version" => Command::Version,
        "lpwd" => Command::Lpwd,
        "progress" => Command::Progress,
        "open" => Command::Open { server: a.next() },
        "close" => Command::Close,
        "help" => match a.next() {
            None => Command::Help { topic: None },
            Some(topic) => match self::spec(&topic) {
                Some(s) => Command::Help {
                    topic: Some(s.name),
                },
                None => return Err(ParseError::UnknownHelpTopic(topic)),
            },
        },
        "exit" | "3" => Command::Exit,
        "1" => match a.next_pattern() {
            Some(local) => Command::Put {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![local],
                remote: None,
            },
            None => Command::PromptPut,
        },
        "2" => match a.next_pattern() {
            Some(remote) => Command::Get {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![remote],
                local: None,
            },
            None => Command::PromptGet,
        },
        other => return Err(ParseError::UnknownCommand(other.to_string())),
    };
    Ok(Some(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        match parse(line) {
            Ok(Some(c)) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Err(e) => e.to_string(),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn blank_lines_are_none() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \t"), Ok(None));
    }

    #[test]
    fn put_forms() {
        assert_eq!(
            ok("put a.txt"),
            Command::Put {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("a.txt")],
                remote: None
            }
        );
        assert_eq!(
            ok("put -f a.txt dir/b.txt"),
            Command::Put {
                force: true,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("a.txt")],
                remote: Some(s("dir/b.txt"))
            }
        );
        assert_eq!(
            ok("put a.txt -f"),
            Command::Put {
                force: true,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("a.txt")],
                remote: None
            }
        );
        assert_eq!(
            ok(r#"put "my file.txt""#),
            Command::Put {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("my file.txt")],
                remote: None
            }
        );
        assert_eq!(ok(r"put my\ file.txt"), ok("put 'my file.txt'"));
        assert_eq!(err("put"), "put: missing LOCAL file name");
        assert_eq!(err("put -f"), "put: missing LOCAL file name");
        assert_eq!(
            ok("put -r a b c"),
            Command::Put {
                force: false,
                recursive: true,
                preserve: false,
                update: Default::default(),
                local: vec![s("a"), s("b"), s("c")],
                remote: None
            }
        );
        assert_eq!(
            ok("put -rf dir other"),
            Command::Put {
                force: true,
                recursive: true,
                preserve: false,
                update: Default::default(),
                local: vec![s("dir")],
                remote: Some(s("other"))
            }
        );
        assert_eq!(err("put -x a"), "put: unknown option '-x'");
        assert_eq!(err("put --force a"), "put: unknown option '--force'");
    }

    #[test]
    fn update_flags() {
        let update = |line: &str| match ok(line) {
            Command::Put { update, .. } | Command::Get { update, .. } => update,
            other => panic!("{other:?}"),
        };
        let u = |check, verbose| Update { check, verbose };
        assert_eq!(update("put a"), u(Check::Off, false));
        assert_eq!(update("put -u a"), u(Check::Times, false));
        assert_eq!(update("put -ruv d"), u(Check::Times, true));
        assert_eq!(update("get -c a b"), u(Check::Content, false));
        // -c wins over -u.
        assert_eq!(update("get -uc a"), u(Check::Content, false));
        assert_eq!(update("get -v a"), u(Check::Off, true));
        assert_eq!(err("reput -u a"), "reput: unknown option '-u'");
        let help = spec("put").map(|s| s.long_help()).unwrap_or_default();
        assert!(help.contains("-u  skip a file of the same size and modification time"));
        assert!(help.contains("(use -p on the first run too)"));
    }

    #[test]
    fn preserve_and_capital_r() {
        let put = |recursive, preserve, local: &[&str], remote: Option<&str>| Command::Put {
            force: false,
            recursive,
            preserve,
            update: Default::default(),
            local: local.iter().map(|l| s(l)).collect(),
            remote: remote.map(s),
        };
        assert_eq!(ok("put -p a"), put(false, true, &["a"], None));
        assert_eq!(ok("put -R d"), put(true, false, &["d"], None));
        assert_eq!(ok("put -pR d x"), put(true, true, &["d"], Some("x")));
        assert_eq!(ok("put -rp a b c"), put(true, true, &["a", "b", "c"], None));
        assert_eq!(
            ok("get -Rp d"),
            Command::Get {
                force: false,
                recursive: true,
                preserve: true,
                update: Default::default(),
                remote: vec![s("d")],
                local: None
            }
        );
        assert_eq!(err("reput -p a"), "reput: unknown option '-p'");
        assert!(spec("put").is_some_and(|s| s.long_help().contains("-R  the same as -r")));
    }

    #[test]
    fn get_forms() {
        assert_eq!(
            ok("get a.txt"),
            Command::Get {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![s("a.txt")],
                local: None
            }
        );
        assert_eq!(
            ok("get -f a.txt local.txt"),
            Command::Get {
                force: true,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![s("a.txt")],
                local: Some(s("local.txt"))
            }
        );
        assert_eq!(err("get"), "get: missing REMOTE file name");
        assert_eq!(
            ok("get logs/*.gz a b"),
            Command::Get {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![s("logs/*.gz"), s("a"), s("b")],
                local: None
            }
        );
        assert_eq!(err("get -l a"), "get: unknown option '-l'");
    }

    #[test]
    fn sources_are_patterns_with_quoted_wildcards_escaped() {
        let put = |local: &[&str], remote: Option<&str>| Command::Put {
            force: false,
            recursive: false,
            preserve: false,
            update: Default::default(),
            local: local.iter().map(|l| s(l)).collect(),
            remote: remote.map(s),
        };
        assert_eq!(ok("put 'a[1].txt'"), put(&[r"a\[1\].txt"], None));
        assert_eq!(ok(r"put a\[1\].txt"), put(&[r"a\[1\].txt"], None));
        assert_eq!(ok(r"put \*"), put(&[r"\*"], None));
        assert_eq!(ok("put *.log"), put(&["*.log"], None));
        assert_eq!(ok("put 'a[1]'*.txt"), put(&[r"a\[1\]*.txt"], None));
        // Three or more: every one a source pattern.
        assert_eq!(ok("put '*' ? \"?\""), put(&[r"\*", "?", r"\?"], None));
        // The target is a plain name, never a pattern.
        assert_eq!(ok("put *.log 'd[1]'"), put(&["*.log"], Some("d[1]")));
        assert_eq!(ok("put x d[1]"), put(&["x"], Some("d[1]")));
        assert_eq!(
            ok(r#"get "report[1].txt" 'x?'"#),
            Command::Get {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![s(r"report\[1\].txt")],
                local: Some(s("x?"))
            }
        );
        // The menu's FILE is a source too.
        assert_eq!(ok("1 'a*'"), put(&[r"a\*"], None));
        // Other commands take names as they are.
        assert_eq!(
            ok("rm 'a[1]' *.tmp"),
            Command::Rm {
                paths: vec![s(r"a\[1\]"), s("*.tmp")]
            }
        );
        assert_eq!(ok("rmdir 'a[1]'"), Command::Rmdir { path: s("a[1]") });
        assert_eq!(
            ok("reput 'a[1]' \\*"),
            Command::Reput {
                local: s("a[1]"),
                remote: Some(s("*"))
            }
        );
        // A quoted option is still an option, as in a shell.
        assert_eq!(
            ok("put '-f' x"),
            Command::Put {
                force: true,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("x")],
                remote: None
            }
        );
    }

    #[test]
    fn resume_forms() {
        assert_eq!(
            ok("reput a b"),
            Command::Reput {
                local: s("a"),
                remote: Some(s("b"))
            }
        );
        assert_eq!(
            ok("reget a"),
            Command::Reget {
                remote: s("a"),
                local: None
            }
        );
        assert_eq!(err("reput"), "reput: missing LOCAL file name");
        assert_eq!(err("reget"), "reget: missing REMOTE file name");
        assert_eq!(err("reput -f a"), "reput: unknown option '-f'");
        assert_eq!(err("reget a b c"), "reget: unexpected argument 'c'");
    }

    #[test]
    fn ls_flags_combine() {
        use crate::shell::listing::{Sort, View};
        let ls = |letters: &str, path: Option<&str>| Command::Ls {
            options: LsOptions::from_letters(letters.chars()),
            path: path.map(s),
        };
        assert_eq!(ok("ls"), ls("", None));
        assert_eq!(ok("ls -l"), ls("l", None));
        assert_eq!(ok("ls -a dir"), ls("a", Some("dir")));
        assert_eq!(ok("ls -la"), ls("la", None));
        assert_eq!(ok("ls -al dir"), ls("la", Some("dir")));
        assert_eq!(ok("ls -l -a"), ls("la", None));
        assert_eq!(ok("ls dir -l"), ls("l", Some("dir")));
        assert_eq!(ok("ls -laht"), ls("laht", None));
        assert_eq!(ok("ls -1RSr d"), ls("1RSr", Some("d")));
        let Command::Ls { options, .. } = ok("ls -laht") else {
            panic!("not ls");
        };
        assert!(options.all && options.human);
        assert_eq!((options.view, options.sort), (View::Long, Sort::Time));
        // Patterns, with quoted wildcards literal.
        assert_eq!(ok("ls *.log"), ls("", Some("*.log")));
        assert_eq!(ok("ls 'a[1]'"), ls("", Some(r"a\[1\]")));
        assert_eq!(err("ls -x"), "ls: unknown option '-x'");
        assert_eq!(err("ls -lx"), "ls: unknown option '-x'");
        assert_eq!(err("ls a b"), "ls: unexpected argument 'b'");
    }

    #[test]
    fn remote_directory() {
        assert_eq!(ok("cd"), Command::Cd { path: None });
        assert_eq!(
            ok("cd docs"),
            Command::Cd {
                path: Some(s("docs"))
            }
        );
        assert_eq!(
            ok("cd 'my dir'"),
            Command::Cd {
                path: Some(s("my dir"))
            }
        );
        assert_eq!(ok("pwd"), Command::Pwd);
        assert_eq!(err("cd a b"), "cd: unexpected argument 'b'");
        assert_eq!(err("pwd x"), "pwd: unexpected argument 'x'");
        assert_eq!(err("cd -P x"), "cd: unknown option '-P'");
    }

    #[test]
    fn double_dash_ends_options() {
        assert_eq!(
            ok("rm -- -odd"),
            Command::Rm {
                paths: vec![s("-odd")]
            }
        );
        assert_eq!(
            ok("ls -l -- -a"),
            Command::Ls {
                options: LsOptions::from_letters(['l']),
                path: Some(s("-a"))
            }
        );
        assert_eq!(
            ok("put -f -- -x --"),
            Command::Put {
                force: true,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("-x")],
                remote: Some(s("--"))
            }
        );
        // A lone dash is an argument.
        assert_eq!(
            ok("rm -"),
            Command::Rm {
                paths: vec![s("-")]
            }
        );
        assert_eq!(ok("cd -"), Command::Cd { path: Some(s("-")) });
        assert_eq!(err("rm -odd"), "rm: unknown option '-o'");
    }

    #[test]
    fn remote_management() {
        assert_eq!(
            ok("mkdir d"),
            Command::Mkdir {
                parents: false,
                path: s("d")
            }
        );
        assert_eq!(
            ok("mkdir -p a/b/c"),
            Command::Mkdir {
                parents: true,
                path: s("a/b/c")
            }
        );
        assert_eq!(
            ok("rm d/x"),
            Command::Rm {
                paths: vec![s("d/x")]
            }
        );
        assert_eq!(
            ok("rm a b c"),
            Command::Rm {
                paths: vec![s("a"), s("b"), s("c")]
            }
        );
        assert_eq!(ok("rmdir d"), Command::Rmdir { path: s("d") });
        assert_eq!(err("rmdir"), "rmdir: missing remote directory DIR");
        assert_eq!(err("rmdir a b"), "rmdir: unexpected argument 'b'");
        assert_eq!(err("mkdir -x a"), "mkdir: unknown option '-x'");
        assert_eq!(err("rm -r d"), "rm: unknown option '-r'");
        assert_eq!(
            ok("rename 'a b' c"),
            Command::Rename {
                from: s("a b"),
                to: s("c")
            }
        );
        assert_eq!(err("mkdir"), "mkdir: missing directory PATH");
        assert_eq!(err("rm"), "rm: missing remote PATH");
        assert_eq!(err("rename"), "rename: missing OLD name");
        assert_eq!(err("rename a"), "rename: missing NEW name");
        assert_eq!(err("rename a b c"), "rename: unexpected argument 'c'");
        assert_eq!(err("mkdir a b"), "mkdir: unexpected argument 'b'");
    }

    #[test]
    fn chmod_forms() {
        let chmod = |mode, paths: &[&str]| Command::Chmod {
            mode,
            paths: paths.iter().map(|p| s(p)).collect(),
        };
        assert_eq!(ok("chmod 644 a"), chmod(0o644, &["a"]));
        assert_eq!(ok("chmod 0755 a b *.sh"), chmod(0o755, &["a", "b", "*.sh"]));
        assert_eq!(ok("chmod 0 a"), chmod(0, &["a"]));
        assert_eq!(ok("chmod 000644 'a[1]'"), chmod(0o644, &[r"a\[1\]"]));
        assert_eq!(ok("chmod 7 -- -x"), chmod(0o7, &["-x"]));
        assert_eq!(err("chmod"), "chmod: missing MODE");
        assert_eq!(err("chmod 644"), "chmod: missing remote PATH");
        assert_eq!(
            err("chmod 4755 a"),
            "chmod: invalid mode '4755': setuid, setgid and sticky bits cannot be set"
        );
        assert_eq!(
            err("chmod 1777 a"),
            "chmod: invalid mode '1777': setuid, setgid and sticky bits cannot be set"
        );
        for bad in ["u+x", "8", "64a", "0x1ff", "+644", "''"] {
            assert_eq!(
                err(&format!("chmod {bad} a")),
                format!(
                    "chmod: invalid mode '{}': not an octal mode such as 644 or 0755",
                    if bad == "''" { "" } else { bad }
                ),
                "{bad}"
            );
        }
        assert_eq!(
            err("chmod 77777 a"),
            "chmod: invalid mode '77777': more than four octal digits"
        );
        assert_eq!(err("chmod -R 644 a"), "chmod: unknown option '-R'");
    }

    #[test]
    fn df_forms() {
        assert_eq!(
            ok("df"),
            Command::Df {
                human: false,
                path: None
            }
        );
        assert_eq!(
            ok("df -h logs"),
            Command::Df {
                human: true,
                path: Some(s("logs"))
            }
        );
        assert_eq!(err("df -i"), "df: unknown option '-i'");
        assert_eq!(err("df a b"), "df: unexpected argument 'b'");
    }

    #[test]
    fn local_side() {
        let lls = |long, all, path: Option<&str>| Command::Lls {
            long,
            all,
            path: path.map(s),
        };
        assert_eq!(ok("lls"), lls(false, false, None));
        assert_eq!(ok("lls /tmp"), lls(false, false, Some("/tmp")));
        assert_eq!(ok("lls -la ~/x"), lls(true, true, Some("~/x")));
        assert_eq!(ok("lls d -a"), lls(false, true, Some("d")));
        assert_eq!(err("lls -h"), "lls: unknown option '-h'");
        assert_eq!(ok("lcd /tmp"), Command::Lcd { path: s("/tmp") });
        // Bare lcd goes home, as in sftp.
        assert_eq!(ok("lcd"), Command::Lcd { path: s("~") });
        assert_eq!(ok("lmkdir 'a b'"), Command::Lmkdir { path: s("a b") });
        assert_eq!(err("lmkdir"), "lmkdir: missing local directory PATH");
        assert_eq!(ok("version"), Command::Version);
        assert_eq!(err("version x"), "version: unexpected argument 'x'");
        assert_eq!(ok("lpwd"), Command::Lpwd);
        assert_eq!(ok("progress"), Command::Progress);
        assert_eq!(ok("open"), Command::Open { server: None });
        assert_eq!(
            ok("open h:12"),
            Command::Open {
                server: Some(s("h:12"))
            }
        );
        assert_eq!(err("open a b"), "open: unexpected argument 'b'");
        assert_eq!(ok("close"), Command::Close);
        assert_eq!(err("close x"), "close: unexpected argument 'x'");
        assert_eq!(err("progress on"), "progress: unexpected argument 'on'");
        assert_eq!(err("lpwd x"), "lpwd: unexpected argument 'x'");
        assert_eq!(err("lls a b"), "lls: unexpected argument 'b'");
    }

    #[test]
    fn bang_lines_go_to_the_shell_whole() {
        let sh = |c: &str| Command::Shell { command: s(c) };
        assert_eq!(ok("!ls -l 'a b' | wc"), sh("ls -l 'a b' | wc"));
        assert_eq!(ok("  ! echo \"unterminated "), sh("echo \"unterminated"));
        assert_eq!(ok("!"), sh(""));
        assert_eq!(ok("!   "), sh(""));
        assert_eq!(ok("help !"), Command::Help { topic: Some("!") });
        assert_eq!(spec("!").map(|s| s.synopsis()), Some(s("! [COMMAND]")));
    }

    #[test]
    fn help_topics() {
        assert_eq!(ok("help"), Command::Help { topic: None });
        assert_eq!(ok("help put"), Command::Help { topic: Some("put") });
        assert_eq!(
            ok("help quit"),
            Command::Help {
                topic: Some("exit")
            }
        );
        assert_eq!(ok("help 1"), Command::Help { topic: Some("1") });
        assert_eq!(
            err("help nope"),
            "help: no command named 'nope' (try 'help')"
        );
        assert_eq!(err("help a b"), "help: unexpected argument 'b'");
    }

    #[test]
    fn exit_and_aliases() {
        for line in ["exit", "quit", "bye", "3", "  bye  "] {
            assert_eq!(ok(line), Command::Exit, "{line}");
        }
        assert_eq!(err("exit now"), "exit: unexpected argument 'now'");
        assert_eq!(err("3 x"), "3: unexpected argument 'x'");
    }

    #[test]
    fn menu_aliases() {
        assert_eq!(ok("1"), Command::PromptPut);
        assert_eq!(ok("2"), Command::PromptGet);
        assert_eq!(
            ok("1 'a b.txt'"),
            Command::Put {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                local: vec![s("a b.txt")],
                remote: None
            }
        );
        assert_eq!(
            ok("2 a.txt"),
            Command::Get {
                force: false,
                recursive: false,
                preserve: false,
                update: Default::default(),
                remote: vec![s("a.txt")],
                local: None
            }
        );
        assert_eq!(err("1 a b"), "1: unexpected argument 'b'");
        assert_eq!(err("2 -f a"), "2: unknown option '-f'");
        assert_eq!(err("4"), "unknown command '4' (try 'help')");
    }

    #[test]
    fn unknown_commands_and_bad_quotes() {
        assert_eq!(err("foo"), "unknown command 'foo' (try 'help')");
        // Commands are lower case; the nearest one is suggested.
        assert_eq!(err("PUT a"), "unknown command 'PUT' (did you mean 'put'?)");
        assert_eq!(err("put 'a"), "unterminated single quote");
        assert_eq!(err("get \"a"), "unterminated double quote");
        assert_eq!(err("\x1b[31m"), "unknown command '\\x1b[31m' (try 'help')");
    }

    #[test]
    fn unknown_commands_suggest_the_nearest() {
        assert_eq!(err("gte x"), "unknown command 'gte' (did you mean 'get'?)");
        assert_eq!(suggest("gte"), Some("get"));
        assert_eq!(suggest("pt"), Some("put"));
        assert_eq!(suggest("lsl"), Some("ls"));
        assert_eq!(suggest("mkdri"), Some("mkdir"));
        assert_eq!(suggest("renmae"), Some("rename"));
        assert_eq!(suggest("progres"), Some("progress"));
        assert_eq!(suggest("qiut"), Some("quit"));
        assert_eq!(suggest("Exit"), Some("exit"));
        // Too far from anything, or only near a digit of the menu.
        assert_eq!(suggest("foo"), None);
        assert_eq!(suggest("4"), None);
        assert_eq!(suggest("xyzzy"), None);
        assert_eq!(suggest(""), None);
        assert_eq!(suggest(&"p".repeat(1000)), None);
        assert_eq!(edit_distance(&['a', 'b'], &['b', 'a']), 1);
        assert_eq!(edit_distance(&[], &['a', 'b']), 2);
    }

    #[test]
    fn specs_are_consistent() {
        for (i, spec) in SPECS.iter().enumerate() {
            // Names are unique across names and aliases.
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert_eq!(self::spec(name).map(|s| s.name), Some(spec.name));
                assert!(!SPECS[i + 1..].iter().any(|o| o.is_named(name)), "{name}");
            }
            // Required arguments come first.
            let first_optional = spec.args.iter().position(|a| !a.required);
            if let Some(p) = first_optional {
                assert!(spec.args[p..].iter().all(|a| !a.required), "{}", spec.name);
            }
            assert!(!spec.summary.is_empty() && !spec.help.is_empty());
        }
        assert_eq!(
            spec("put").map(|s| s.synopsis()),
            Some(s("put [-fprRucv] LOCAL [REMOTE]"))
        );
        assert_eq!(
            spec("put").and_then(|s| s.many_synopsis()),
            Some(s("put [-fprRucv] LOCAL LOCAL LOCAL..."))
        );
        assert_eq!(
            spec("get").and_then(|s| s.arg_kind(5)),
            Some(ArgKind::Remote)
        );
        assert_eq!(
            spec("ls").map(|s| s.synopsis()),
            Some(s("ls [-1ahlRrSt] [PATH]"))
        );
        assert_eq!(
            spec("rm").and_then(|s| s.many_synopsis()),
            Some(s("rm PATH PATH PATH..."))
        );
        assert_eq!(spec("cd").map(|s| s.synopsis()), Some(s("cd [DIR]")));
        assert_eq!(
            spec("mkdir").map(|s| s.synopsis()),
            Some(s("mkdir [-p] PATH"))
        );
        assert_eq!(spec("lpwd").map(|s| s.synopsis()), Some(s("lpwd")));
        assert_eq!(
            spec("chmod").and_then(|s| s.many_synopsis()),
            Some(s("chmod MODE PATH PATH..."))
        );
        assert_eq!(
            spec("chmod").and_then(|s| s.arg_kind(0)),
            Some(ArgKind::Value)
        );
        assert_eq!(
            spec("chmod").and_then(|s| s.arg_kind(3)),
            Some(ArgKind::Remote)
        );
        assert_eq!(
            spec("get").and_then(|s| s.arg_kind(1)),
            Some(ArgKind::Local)
        );
    }

    #[test]
    fn help_texts_mention_every_command() {
        let overview = help_overview();
        for spec in SPECS {
            assert!(overview.contains(&spec.synopsis()), "{}", spec.name);
            assert!(spec
                .long_help()
                .starts_with(&format!("usage: {}", spec.synopsis())));
        }
        assert!(spec("exit").is_some_and(|s| s.long_help().contains("quit, bye")));
        assert!(spec("put").is_some_and(|s| s.long_help().contains("-f")));
    }
}
