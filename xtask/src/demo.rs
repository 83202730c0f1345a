//! `cargo xtask demo`: set up, then run the main pipelines on built-in data.

use anyhow::{Context, Result};

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
    let extra: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--")
        .collect();
    let run = project_root().join("runs/demo/sound-tagging");
    if run.exists() {
        std::fs::remove_dir_all(&run)
            .with_context(|| format!("clearing the previous demo run {}", run.display()))?;
    }
    let mut args = vec!["train", "sound-tagging", "--out", "runs/demo/sound-tagging"];
    args.extend(&extra);
    mm(&args, "demo training run")?;

    step("mm train retrieval (SynthAV images <-> captions: joint embedding, VSE++)");
    let run = project_root().join("runs/demo/retrieval");
    if run.exists() {
        std::fs::remove_dir_all(&run)
            .with_context(|| format!("clearing the previous demo run {}", run.display()))?;
    }
    // the device choice (if any) applies here too
    let device: Vec<&str> = extra
        .windows(2)
        .find(|w| w[0] == "--device")
        .map(|w| vec!["--device", w[1]])
        .unwrap_or_default();
    let mut args = vec![
        "train",
        "retrieval",
        "--config",
        "configs/retrieval/synthav.toml",
        "--out",
        "runs/demo/retrieval",
    ];
    args.extend(&device);
    mm(&args, "retrieval training")?;
    step("mm infer retrieval: captions and tags for test images, images for a query");
    let mut args = vec![
        "infer",
        "retrieval",
        "--checkpoint",
        "runs/demo/retrieval",
        "--out",
        "runs/demo/retrieval/infer",
    ];
    for input in [
        "test:0",
        "test:1",
        "test:2",
        "test:3",
        "text:a large red circle",
    ] {
        args.extend(["--input", input]);
    }
    args.extend(&device);
    mm(&args, "retrieval inference")?;
    println!(
        "\nlook at runs/demo/retrieval/infer/retrieval.png (retrieved captions and tags), \
         runs/demo/retrieval/rsum.png and loss.png (curves), runs/demo/sound-tagging/spectrograms.png"
    );
    Ok(())
}
