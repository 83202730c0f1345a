//! `cargo xtask demo`: set up, then run the main pipelines on built-in data.

use anyhow::Result;

use crate::util::{mm, project_root, step};

pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run()?;
    step("mm info");
    mm(&["info"], "mm info")?;
    if !project_root().join("data/synthav.h5").is_file() {
        step("SynthAV: generate the built-in audio-visual-text data set");
        mm(
            &["data", "synthav", "--out", "data/synthav.h5"],
            "generating SynthAV",
        )?;
    }
    step("SynthAV: what is in it, and one scene to look at and listen to");
    mm(&["data", "info", "data/synthav.h5"], "mm data info")?;
    mm(
        &[
            "data",
            "show",
            "data/synthav.h5",
            "--index",
            "0",
            "--out",
            "runs/demo/synthav",
        ],
        "mm data show",
    )?;
    step("mm train sound-tagging (synthetic sound classes -> log-mel -> CNN)");
    let mut args = vec!["train", "sound-tagging", "--out", "runs/demo"];
    args.extend(extra.iter().map(String::as_str).filter(|a| *a != "--"));
    mm(&args, "demo training run")
}
