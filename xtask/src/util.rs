//! Small helpers shared by the tasks: the project root, running commands, step reporting.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Prints a step header.
pub fn step(what: &str) {
    println!("\n==> {what}");
}

/// The `cargo` that runs this xtask (so that the same toolchain is used).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(project_root());
    c
}

/// Runs `cmd` with inherited stdio; fails with `what` and the exit status.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` capturing its output; `Err` if it cannot start.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("could not start {:?}", cmd.get_program()))
}

/// Whether a program is on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Runs the release `mm` binary through cargo: `cargo run --release -p mm-cli -- ARGS`.
pub fn mm<S: AsRef<std::ffi::OsStr>>(args: &[S], what: &str) -> Result<()> {
    run(
        cargo()
            .args([
                "run",
                "--release",
                "--locked",
                "--quiet",
                "-p",
                "mm-cli",
                "--",
            ])
            .args(args),
        what,
    )
}

/// Builds the release `mm`, `signal-workloads` and `vision-workloads`: what the benchmarks and
/// the GPU bundle run.
pub fn build_release_tools() -> Result<()> {
    run(
        cargo().args([
            "build",
            "--release",
            "--locked",
            "-p",
            "mm-cli",
            "-p",
            "mm-benches",
            "--bin",
            "mm",
            "--bin",
            "signal-workloads",
            "--bin",
            "vision-workloads",
        ]),
        "release build",
    )
}
