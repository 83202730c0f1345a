//! Full disks and cut-short writes (issue 31, item 2): every writer of the `mm` binary, run under
//! a file-size limit (`RLIMIT_FSIZE`, set with the shell's `ulimit -f`) in two ways:
//!
//! - **full disk**: with `SIGXFSZ` ignored, a write past the limit fails with `EFBIG`, as a
//!   write to a full disk fails with `ENOSPC`. The command must fail with an error that names
//!   the file it could not write, and never panic;
//! - **cut short**: with `SIGXFSZ` left alone, the kernel kills the process in the middle of the
//!   write, as a power cut or `kill -9` would.
//!
//! Either way, nothing is left under a final name that is not complete: every file in the output
//! folder opens and reads to the end by its kind (data set, vectors, `.npy`, PNG, WAV, JSON,
//! TOML, checkpoint), or carries a temporary name (`*.tmp`, a `.NAME.tmp` folder), and after a
//! failed write (the full disk) no temporary is left either. A run's `metrics.jsonl` is an
//! append-only log; only its last line may be cut (a resumed run drops it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mm ARGS` with files limited to `blocks` blocks of `ulimit -f` (512 or 1024 bytes, as the
/// shell counts them); `cut`: let `SIGXFSZ` kill the process instead of failing the write.
fn mm_limited(blocks: u32, cut: bool, args: &[&str]) -> Output {
    let script = if cut {
        r#"ulimit -f "$0" && exec "$@""#
    } else {
        r#"trap '' XFSZ; ulimit -f "$0" && exec "$@""#
    };
    Command::new("sh")
        .args(["-c", script])
        .arg(blocks.to_string())
        .arg(env!("CARGO_BIN_EXE_mm"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env("MM_LOG", "warn")
        .output()
        .expect("sh starts")
}

/// Whether `path` carries a temporary name: `x.tmp`, `x.jsonl.tmp`, or inside `.x.tmp/`.
fn temporary(path: &Path) -> bool {
    path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c.ends_with(".tmp") || c.contains(".tmp.")
    })
}

fn incomplete<T>(path: &Path, why: impl std::fmt::Display) -> T {
    panic!("{} is incomplete: {why}", path.display())
}

/// Checks one file under a final name: it must read completely by its kind.
fn check_complete(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("events.out.tfevents.") {
        // an append-only log, as metrics.jsonl: complete records read, a cut last one ends it
        mm_train::events::read_scalars(path).unwrap_or_else(|e| incomplete(path, e));
        return;
    }
    match ext.as_str() {
        "h5" => {
            let r = mm_data::Reader::open(path).unwrap_or_else(|e| incomplete(path, e));
            if !r.is_empty() {
                r.read_range(0, r.len())
                    .unwrap_or_else(|e| incomplete(path, e));
            }
        }
        "png" => {
            image::open(path).unwrap_or_else(|e| incomplete(path, e));
        }
        "wav" => {
            mm_signal::read_wav(path).unwrap_or_else(|e| incomplete(path, e));
        }
        "npy" => {
            let _: ndarray::ArrayD<f32> =
                ndarray_npy::read_npy(path).unwrap_or_else(|e| incomplete(path, e));
        }
        "json" => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| incomplete(path, e));
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| incomplete(path, e));
        }
        "jsonl" => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| incomplete(path, e));
            let lines: Vec<&str> = text.lines().collect();
            // an append-only log: every line but a cut last one parses
            for l in lines.iter().take(lines.len().saturating_sub(1)) {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| incomplete(path, format!("line `{l}`: {e}")));
            }
        }
        "toml" => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| incomplete(path, e));
            toml::from_str::<toml::Table>(&text).unwrap_or_else(|e| incomplete(path, e));
        }
        "txt" | "vec" => {
            mm_text::word2vec::read_vectors(path, mm_text::word2vec::VectorFormat::Text)
                .unwrap_or_else(|e| incomplete(path, e));
        }
        "bin" => {
            mm_text::word2vec::read_vectors(path, mm_text::word2vec::VectorFormat::Binary)
                .unwrap_or_else(|e| incomplete(path, e));
        }
        "safetensors"
            if path
                .parent()
                .is_some_and(|p| p.join("manifest.json").exists()) => {}
        "safetensors" => {
            mm_text::word2vec::read_safetensors(path).unwrap_or_else(|e| incomplete(path, e));
        }
        _ => panic!("{}: no check for `{name}`", path.display()),
    }
}

/// Every file under `dir`, recursively; checkpoint folders (`checkpoints/step-N`) are checked
/// against their manifest. Returns the temporaries found.
fn check_tree(dir: &Path) -> Vec<PathBuf> {
    let mut temps = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return temps;
    };
    for e in entries {
        let p = e.unwrap().path();
        if temporary(&p) {
            temps.push(p);
        } else if p.is_dir() {
            if p.parent().is_some_and(|d| d.ends_with("checkpoints")) {
                mm_train::checkpoint::verify(&p)
                    .unwrap_or_else(|e| panic!("{} is an incomplete checkpoint: {e}", p.display()));
            }
            temps.extend(check_tree(&p));
        } else {
            check_complete(&p);
        }
    }
    temps
}

/// Runs `args` (which write `out`, and maybe files beside it) at `blocks`, as a full disk and
/// cut short. On the full disk the command must fail naming a path in `out`'s folder, without a
/// panic; in both cases every file left in that folder must be complete.
fn writes_safely(out: &Path, blocks: u32, args: &[&str]) {
    for cut in [false, true] {
        if out.is_dir() {
            std::fs::remove_dir_all(out).unwrap();
        } else if out.exists() {
            std::fs::remove_file(out).unwrap();
        }
        let before = check_tree(out.parent().unwrap());
        let o = mm_limited(blocks, cut, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} (cut {cut}) succeeded: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if !cut {
            // the file it could not write: the output or one beside it (`--png`)
            let folder = out.parent().unwrap();
            assert!(
                err.contains(s(folder)),
                "{args:?}: the error names no path in {}: {err}",
                folder.display()
            );
        }
        let parent = out.parent().unwrap();
        let temps: Vec<PathBuf> = check_tree(parent)
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        // a writer whose write failed removes its temporary; only a killed one cannot
        assert!(
            cut || temps.is_empty(),
            "{args:?}: a full disk left temporaries {temps:?}"
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Inputs the writers read (made without a limit): a SynthAV file, a corpus, a WAV clip.
struct Inputs {
    _dir: tempfile::TempDir,
    synthav: PathBuf,
    corpus: PathBuf,
    wav: PathBuf,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let synthav = common::synthav(dir.path(), 24);
    let corpus = dir.path().join("corpus.txt");
    let text: String = (0..400)
        .map(|i| {
            format!(
                "w{} w{} w{} the of and\n",
                i % 37,
                (i * 7) % 41,
                (i * 3) % 29
            )
        })
        .collect();
    std::fs::write(&corpus, text).unwrap();
    let wav = dir.path().join("tone.wav");
    let audio = mm_signal::Audio {
        samples: ndarray::Array2::from_shape_fn((1, 22050), |(_, t)| (t as f32 * 0.05).sin() * 0.3),
        sample_rate: 22050,
    };
    mm_signal::write_wav(&wav, &audio, mm_signal::WavEncoding::Pcm16).unwrap();
    Inputs {
        _dir: dir,
        synthav,
        corpus,
        wav,
    }
}

#[test]
fn data_set_writers_leave_nothing_incomplete() {
    let inp = inputs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen.h5");
    writes_safely(
        &out,
        64,
        &["data", "synthav", "--out", s(&out), "--scenes", "40"],
    );
    let sounds = dir.path().join("sounds");
    writes_safely(
        &sounds,
        16,
        &[
            "data",
            "sounds",
            "--out",
            s(&sounds),
            "--classes",
            "3",
            "--per-class",
            "2",
        ],
    );
    let show = dir.path().join("show");
    writes_safely(
        &show,
        8,
        &[
            "data",
            "show",
            s(&inp.synthav),
            "--index",
            "1",
            "--out",
            s(&show),
        ],
    );
    let feats = dir.path().join("feats.h5");
    writes_safely(
        &feats,
        16,
        &[
            "vision",
            "features",
            "--images",
            s(&inp.synthav),
            "--backbone",
            "resnet18",
            "--layer",
            "layer2",
            "--device",
            "cpu",
            "--out",
            s(&feats),
        ],
    );
}

#[test]
fn text_and_audio_writers_leave_nothing_incomplete() {
    let inp = inputs();
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [("v.txt", None), ("v.bin", Some("--binary"))] {
        let out = dir.path().join(name);
        let mut args = vec![
            "text",
            "word2vec",
            "train",
            "--train",
            s(&inp.corpus),
            "--output",
            s(&out),
            "--size",
            "64",
            "--min-count",
            "1",
            "--iter",
            "1",
        ];
        args.extend(extra);
        writes_safely(&out, 2, &args);
    }
    let vocab = dir.path().join("vocab.json");
    writes_safely(
        &vocab,
        0,
        &[
            "text",
            "vocab",
            "--train",
            s(&inp.corpus),
            "--out",
            s(&vocab),
            "--min-count",
            "1",
        ],
    );
    let npy = dir.path().join("mel.npy");
    let png = dir.path().join("mel.png");
    writes_safely(
        &npy,
        4,
        &[
            "audio",
            "features",
            "--input",
            s(&inp.wav),
            "--feature",
            "mel",
            "--out",
            s(&npy),
            "--png",
            s(&png),
        ],
    );
}

#[test]
fn a_training_run_leaves_nothing_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    writes_safely(
        &run,
        64,
        &[
            "train",
            "sound-tagging",
            "--quick",
            "--device",
            "cpu",
            "--quiet",
            "--set",
            "train.epochs=1",
            "--out",
            s(&run),
        ],
    );
}
