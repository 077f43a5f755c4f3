//! Times `ls` from one client, over and over, until a stop file appears
//! (or a time limit passes): how long other clients wait while something
//! big runs on the same single-threaded `ftxd`. Used by
//! `scripts/bench fairness`; benchmark helper only.
//!
//! ```text
//! ls_probe ADDR STOP_FILE [MAX_SECONDS]
//! ```
//! Prints `key=value` lines: `requests`, `ls_median_ms`, `ls_p99_ms`,
//! `ls_max_ms`.

use std::path::Path;
use std::time::{Duration, Instant};

use ftx::client::Client;

/// Pause between two requests, so the probe measures waiting, not load.
const PAUSE: Duration = Duration::from_millis(2);

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: ls_probe ADDR STOP_FILE [MAX_SECONDS]".into());
    }
    let stop = Path::new(&args[2]);
    let max: u64 = args
        .get(3)
        .map_or(Ok(60), |s| s.parse())
        .map_err(|e| format!("max seconds: {e}"))?;
    let mut client = Client::connect(&args[1]).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(max);
    let mut times = Vec::new();
    while !stop.exists() && Instant::now() < deadline {
        let t = Instant::now();
        client.list("").map_err(|e| e.to_string())?;
        times.push(t.elapsed());
        std::thread::sleep(PAUSE);
    }
    if times.is_empty() {
        return Err("no request finished before the stop file appeared".into());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("requests={}", times.len());
    println!("ls_median_ms={:.3}", ms(pick(0.5)));
    println!("ls_p99_ms={:.3}", ms(pick(0.99)));
    println!("ls_max_ms={:.3}", ms(times[times.len() - 1]));
    Ok(())
}
