//! Interrupted transfers made visible and dropped: `parts` lists this
//! client's interrupted uploads on the server and the interrupted
//! downloads in the local directory; `discard` and `ldiscard` drop them.
//! Another token never sees or drops yours.

use std::fs;

use crate::util::{ftx_bin, run_cmd_env, write_server_part, Server, RUN_TIMEOUT};

#[test]
fn parts_lists_both_sides_and_discard_drops_them() {
    let server = Server::start(&["--no-fsync"]);
    let root = server.root();
    fs::create_dir(root.join("d")).unwrap();
    // What a cancelled `put big.bin` and `put x d/y.bin` leave (the token's
    // own part files), and a cancelled `get movie.mkv` here.
    let part = server.part_path(root, "big.bin");
    write_server_part(&part, &vec![1u8; 300_000]);
    let sub = server.part_path(root.join("d"), "y.bin");
    write_server_part(&sub, b"abc");
    let cwd = server.scratch("client");
    let lpart = cwd.join(".ftx-part-movie.mkv");
    fs::write(&lpart, vec![2u8; 4096]).unwrap();

    let out = server.batch(&cwd, "parts\nparts d\n");
    out.assert_success();
    let text = &out.stdout;
    assert!(
        text.contains("Interrupted uploads on the server (continue: reput LOCAL NAME; drop: discard NAME):\n      300000 big.bin\n"),
        "{out}"
    );
    assert!(text.contains("           3 y.bin\n"), "{out}");
    assert!(
        text.contains("Interrupted downloads here (continue: reget NAME; drop: ldiscard NAME):\n        4096 movie.mkv\n"),
        "{out}"
    );
    assert!(!text.contains("d/y.bin"), "{out}");

    let out = server.batch(&cwd, "discard big.bin d/y.bin\nldiscard movie.mkv\nparts\n");
    out.assert_success();
    assert!(
        out.stdout.contains("No interrupted uploads on the server."),
        "{out}"
    );
    assert!(
        out.stdout.contains("No interrupted downloads here."),
        "{out}"
    );
    assert!(!part.exists() && !sub.exists() && !lpart.exists());

    // Nothing left to drop: said so, and the command fails.
    let out = server.batch(&cwd, "discard big.bin\n");
    out.assert_error("discard: 'big.bin': no interrupted upload of it on the server");
    let out = server.batch(&cwd, "ldiscard movie.mkv\n");
    out.assert_error("ldiscard: 'movie.mkv': no interrupted download of it here");
}

/// Another token's `parts` does not show your interrupted upload and its
/// `discard` cannot drop it.
#[test]
fn another_token_neither_sees_nor_drops_your_parts() {
    let server = Server::start(&["--no-fsync"]);
    let part = server.part_path(server.root(), "mine.bin");
    write_server_part(&part, &[5u8; 1000]);
    let state = server.base().join("state");
    let added = run_cmd_env(
        crate::util::ftxd_bin(),
        &[
            "token",
            "add",
            "other",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        server.base(),
        None,
        RUN_TIMEOUT,
        &[],
        None,
    );
    added.assert_success();
    let other = added.stdout.trim().to_owned();
    let cwd = server.scratch("client");
    let fp = server.creds().fingerprint.clone().unwrap();
    let addr = server.addr_arg();
    let args = [addr.as_str(), "-b", "-", "--fingerprint", fp.as_str()];
    let env = [("FTX_TOKEN", other.as_str())];
    let out = run_cmd_env(
        ftx_bin(),
        &args,
        &cwd,
        Some(b"parts\n"),
        RUN_TIMEOUT,
        &env,
        None,
    );
    out.assert_success();
    assert!(
        out.stdout.contains("No interrupted uploads on the server."),
        "{out}"
    );
    let out = run_cmd_env(
        ftx_bin(),
        &args,
        &cwd,
        Some(b"discard mine.bin\n"),
        RUN_TIMEOUT,
        &env,
        None,
    );
    out.assert_error("no interrupted upload of it on the server");
    assert_eq!(fs::read(&part).unwrap().len(), 1000);
    // The owner sees it.
    let out = server.batch(&cwd, "parts\n");
    assert!(out.stdout.contains("        1000 mine.bin\n"), "{out}");
}
