//! `cargo xtask demo`: set up, then run the main pipeline on built-in data.

use anyhow::Result;

use crate::util::{cargo, run as exec, step};

pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run()?;
    step("mm info");
    exec(
        cargo().args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "mm-cli",
            "--",
            "info",
        ]),
        "mm info",
    )?;
    step("mm train sound-tagging (synthetic sound classes -> log-mel -> CNN)");
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--locked",
        "--quiet",
        "-p",
        "mm-cli",
        "--",
        "train",
        "sound-tagging",
        "--out",
        "runs/demo",
    ]);
    cmd.args(extra.iter().filter(|a| *a != "--"));
    exec(&mut cmd, "demo training run")
}
