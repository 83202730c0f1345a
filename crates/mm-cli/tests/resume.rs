//! Kill -9 and resume for every engine task (issue 31, item 3): a `mm train` process killed
//! mid-run, whose newest checkpoint is then damaged, resumes from the checkpoint before it
//! (with a warning, the damaged one moved aside) and ends exactly where the uninterrupted run
//! ends: the same validation history, test metrics and final weights. Every engine task has a
//! case: retrieval, captioning, VQA, sound tagging and text-to-image.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::kill_when_written;

fn mm(args: &[String]) -> Command {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::mm_command(&args)
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The step directories under a run's `checkpoints/`, by step.
fn checkpoints(run: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("step-") && p.join("manifest.json").is_file()
        })
        .collect();
    v.sort();
    v
}

/// `mm train TASK ARGS` through once, and once killed when checkpoint `kill_at` exists, its
/// newest checkpoint damaged (one byte of the weights flipped), then `--resume`d; the two must
/// end identically.
fn kill_damage_and_resume(task: &str, args: &[&str], kill_at: usize) {
    let dir = tempfile::tempdir().unwrap();
    let train = |out: &Path| {
        let mut a: Vec<String> = ["train", task, "--device", "cpu", "--quiet", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(out.display().to_string());
        a.extend(args.iter().map(|s| s.to_string()));
        a
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&mm(&train(&a)).output().unwrap());

    let mut child = mm(&train(&b)).spawn().unwrap();
    let marker = b.join(format!("checkpoints/step-{kill_at:08}/manifest.json"));
    kill_when_written(&mut child, &marker, 300);
    assert!(
        !b.join("summary.json").exists(),
        "{task}: killed before the end"
    );
    let kept = checkpoints(&b);
    assert!(kept.len() >= 2, "{task}: {kept:?}");
    let newest = kept.last().unwrap().clone();
    let model = newest.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let k = bytes.len() - 1;
    bytes[k] ^= 0x01;
    std::fs::write(&model, bytes).unwrap();

    let resume = [
        "train".to_string(),
        task.into(),
        "--resume".into(),
        b.display().to_string(),
        "--device".into(),
        "cpu".into(),
        "--quiet".into(),
    ];
    let o = mm(&resume).output().unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("SHA-256") && err.contains("resuming from the checkpoint before it"),
        "{task}: {err}"
    );
    let aside = b.join("checkpoints").join(format!(
        "corrupt-{}",
        newest.file_name().unwrap().to_string_lossy()
    ));
    assert!(
        aside.join("model.safetensors").is_file(),
        "{task}: moved aside, not deleted"
    );

    let lines = |d: &Path, what: &str| -> Vec<String> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(what))
            .map(str::to_owned)
            .collect()
    };
    assert!(lines(&a, "\"val\"").len() >= 3, "{task}");
    assert_eq!(
        lines(&a, "\"val\""),
        lines(&b, "\"val\""),
        "{task}: validation history"
    );
    let test = |d: &Path| -> serde_json::Value {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap())
                .unwrap();
        s["test"].clone()
    };
    assert_eq!(test(&a), test(&b), "{task}: test metrics");
    let last = checkpoints(&a).last().unwrap().clone();
    let name = last.file_name().unwrap();
    for f in ["model.safetensors", "optimizer.safetensors"] {
        assert!(
            std::fs::read(last.join(f)).unwrap()
                == std::fs::read(b.join("checkpoints").join(name).join(f)).unwrap(),
            "{task}: {f} differs after resume"
        );
    }

    // every checkpoint damaged: a clear error, nothing deleted
    for ck in checkpoints(&b) {
        let m = ck.join("model.safetensors");
        let mut bytes = std::fs::read(&m).unwrap();
        bytes[0] ^= 0x01;
        std::fs::write(&m, bytes).unwrap();
    }
    let o = mm(&resume).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("SHA-256"),
        "{task}: {err}"
    );
    assert!(b.join("summary.json").is_file());
}

/// `--data` of a fresh 120-scene SynthAV under `dir`, then `--set` for each of `sets`.
fn synthav_args(dir: &Path, sets: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--data".to_string(),
        common::synthav(dir, 120).display().to_string(),
    ];
    for s in ["train.epochs=4", "train.eval_every=3", "train.patience=0"]
        .iter()
        .chain(sets)
    {
        a.extend(["--set".to_string(), s.to_string()]);
    }
    a
}

#[test]
fn captioning_resumes_a_killed_run_past_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = synthav_args(
        dir.path(),
        &[
            "train.batch_size=16",
            "task.embed_dim=16",
            "task.decoder_dim=32",
            "task.attention_dim=16",
            "task.beam_size=1",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_damage_and_resume("captioning", &args, 12);
}

#[test]
fn vqa_resumes_a_killed_run_past_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = synthav_args(
        dir.path(),
        &[
            "train.batch_size=32",
            "task.word_dim=16",
            "task.hidden_dim=32",
            "task.fused_dim=32",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_damage_and_resume("vqa", &args, 9);
}

#[test]
fn sound_tagging_resumes_a_killed_run_past_a_damaged_checkpoint() {
    kill_damage_and_resume(
        "sound-tagging",
        &[
            "--quick",
            "--set",
            "train.eval_every=10",
            "--set",
            "train.patience=0",
        ],
        30,
    );
}

#[test]
fn retrieval_resumes_a_killed_run_past_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = synthav_args(dir.path(), &["train.batch_size=32"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_damage_and_resume("retrieval", &args, 9);
}

/// Two optimizer groups (discriminator and generator), each with its state in the checkpoint.
#[test]
fn text_to_image_resumes_a_killed_run_past_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = synthav_args(
        dir.path(),
        &[
            "train.batch_size=32",
            "task.gen_channels=8",
            "task.disc_channels=8",
            "task.noise_dim=16",
            "task.embed_dim=16",
            "task.text_dim=8",
            "task.evaluator_steps=20",
            "task.eval_texts=16",
            "task.samples=2",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_damage_and_resume("text-to-image", &args, 9);
}
