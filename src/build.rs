//! Build script: has the linker group the functions `ftxd` runs to start
//! and then idle at the front of its code, with the linker script
//! `src/bin/ftxd-idle.ld` (made by `scripts/layout`). The kernel maps a
//! binary's code into a process in blocks around each page it touches, so
//! start-up code scattered over the binary keeps most of it resident in an
//! idle `ftxd`; grouped, a few hundred KiB. Layout only: it changes no
//! behaviour, and does nothing for the other targets.

use std::env;

/// The linker script, relative to the package root.
const LAYOUT: &str = "src/bin/ftxd-idle.ld";

fn main() {
    println!("cargo:rerun-if-changed={LAYOUT}");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !linux || !linker_takes_insert_scripts() {
        return;
    }
    let Ok(root) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let script = format!("{root}/{LAYOUT}");
    if !std::path::Path::new(&script).exists() {
        return;
    }
    // `-Wl,` splits its argument at commas.
    if script.contains(',') {
        println!("cargo:warning=not grouping ftxd's start-up code: a comma in {script}");
        return;
    }
    println!("cargo:rustc-link-arg-bin=ftxd=-Wl,-T,{script}");
}

/// GNU ld and LLD (Rust's default on x86-64 Linux) add an `INSERT` script
/// to their default layout; mold and gold do not take one.
fn linker_takes_insert_scripts() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let linker = env::var("RUSTC_LINKER").unwrap_or_default();
    !["mold", "gold"]
        .iter()
        .any(|other| flags.contains(other) || linker.contains(other))
}
