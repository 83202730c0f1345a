//! Helpers shared by the `mm` binary's integration tests (`cli.rs`, `resume.rs`, `memory.rs`,
//! `full_disk.rs`, `bad_input.rs`).
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses some of them

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// `mm ARGS` as a user runs it (no LD_LIBRARY_PATH, library logs from warn), ready to run.
pub fn mm_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mm"));
    c.args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env("MM_LOG", "warn");
    c
}

/// `mm ARGS`, run to the end.
pub fn mm(args: &[&str]) -> Output {
    mm_command(args).output().expect("mm starts")
}

/// Generates a SynthAV data set of `scenes` scenes at `dir/sv.h5` with `mm data synthav`
/// (failing the test if it fails) and returns its path.
pub fn synthav(dir: &Path, scenes: usize) -> PathBuf {
    let data = dir.join("sv.h5");
    let o = mm(&[
        "data",
        "synthav",
        "--scenes",
        &scenes.to_string(),
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    data
}

/// Kills `child` (a training run) as soon as `marker` (a checkpoint's manifest) exists,
/// failing if the process ends first or no marker appears within `limit_s` seconds.
pub fn kill_when_written(child: &mut Child, marker: &Path, limit_s: u64) {
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed ({})",
            marker.display()
        );
        assert!(
            t0.elapsed().as_secs() < limit_s,
            "no {} after {limit_s} s",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
