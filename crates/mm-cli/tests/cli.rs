//! The `mm` binary, run as a user runs it: without LD_LIBRARY_PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{kill_when_written, mm};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_and_info_report_libtorch_and_cuda_truthfully() {
    let v = mm(&["--version"]);
    assert!(v.status.success());
    assert_eq!(
        stdout(&v).trim(),
        format!("mm {}", env!("CARGO_PKG_VERSION"))
    );

    let o = mm(&["info", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(info["libtorch"]["cuda_library_loaded"], true);
    assert_eq!(info["libtorch"]["has_cuda"], tch::Cuda::is_available());
    assert_eq!(info["cuda_available"], tch::Cuda::is_available());
    assert_eq!(info["cuda_devices"], tch::Cuda::device_count());
    assert!(
        info["libtorch"]["version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{info}"
    );
    assert!(info["tch"].as_str().unwrap().starts_with("0.24."));
    assert!(info["torch_threads"].as_i64().unwrap() >= 1);
}

#[test]
fn asking_for_cuda_without_it_is_a_clear_error() {
    if tch::Cuda::is_available() {
        // On a GPU machine the same request must succeed instead.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let o = mm(&[
            "train",
            "sound-tagging",
            "--quick",
            "--device",
            "cuda",
            "--set",
            "train.epochs=1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        return;
    }
    let o = mm(&["train", "sound-tagging", "--device", "cuda"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("CUDA is not available"), "{err}");
    let o = mm(&["train", "sound-tagging", "--device", "tpu"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown device `tpu`"));
}

#[test]
fn synthetic_sounds_round_trip_through_wav_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = mm(&[
        "data",
        "sounds",
        "--out",
        d,
        "--classes",
        "3",
        "--per-class",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let wavs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    assert_eq!(wavs.len(), 6);
    let o = mm(&[
        "audio",
        "info",
        Path::new(d).join("02_001.wav").to_str().unwrap(),
    ]);
    let s = stdout(&o);
    assert!(s.contains("16000 Hz") && s.contains("0.500 s"), "{s}");
    let o = mm(&[
        "audio",
        "info",
        Path::new(d).join("missing.wav").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.wav"));
}

#[test]
fn vocab_from_a_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "A red circle.\nA blue square, a red square.\n").unwrap();
    let out = dir.path().join("vocab.json");
    let o = mm(&[
        "text",
        "vocab",
        "--train",
        corpus.to_str().unwrap(),
        "--min-count",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = mm_text::Vocab::load(&out).unwrap();
    // 4 specials + a (3), red (2), square (2)
    assert_eq!(v.len(), 7);
    assert_eq!(v.word(4).unwrap(), "a");
    assert_eq!(v.id("circle"), None);
    // a corpus with no word reaching --min-count writes nothing
    let o = mm(&[
        "text",
        "vocab",
        "--train",
        corpus.to_str().unwrap(),
        "--min-count",
        "9",
        "--out",
        dir.path().join("none.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no word occurs"),
        "{err}"
    );
    assert!(!dir.path().join("none.json").exists());
}

/// `--quick` trains sound tagging on the engine in seconds: the run directory holds the
/// engine's files and the task's spectrograms, and accuracy is far above the prior's.
#[test]
fn quick_training_writes_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = mm(&[
        "train",
        "sound-tagging",
        "--quick",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = stdout(&o);
    assert!(s.contains("prior_accuracy") && s.contains("0.167"), "{s}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let (acc, prior) = (
        m["test"]["accuracy"].as_f64().unwrap(),
        m["test"]["prior_accuracy"].as_f64().unwrap(),
    );
    // six balanced classes: the prior is 1/6; the quick preset reaches 1.0
    assert!((prior - 1.0 / 6.0).abs() < 1e-9, "prior {prior}");
    assert!(acc >= 0.9, "accuracy {acc}");
    for f in [
        "config.toml",
        "metrics.jsonl",
        "spectrograms.png",
        "loss.png",
        "accuracy.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        std::fs::read_dir(&out).unwrap().all(|e| !e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".tmp"))
    );
    // inference on a WAV file (resampled and cut to the clips' length) and on a test clip
    let wav = dir.path().join("clip.wav");
    let y: Vec<f32> = (0..22050).map(|t| 0.4 * (t as f32 * 0.05).sin()).collect();
    mm_signal::write_wav(
        &wav,
        &mm_signal::Audio {
            samples: ndarray::Array2::from_shape_vec((1, y.len()), y).unwrap(),
            sample_rate: 22050,
        },
        mm_signal::WavEncoding::Pcm16,
    )
    .unwrap();
    let inf = dir.path().join("inf");
    let o = mm(&[
        "infer",
        "sound-tagging",
        "--checkpoint",
        out.to_str().unwrap(),
        "--input",
        wav.to_str().unwrap(),
        "--input",
        "test:0",
        "--out",
        inf.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["top5"].as_array().unwrap().len(), 5);
    assert!(inf.join("sound_0.png").is_file() && inf.join("sound_1.png").is_file());
    // an image is not a sound
    let o = mm(&[
        "infer",
        "sound-tagging",
        "--checkpoint",
        out.to_str().unwrap(),
        "--input",
        "photo.png",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("audio"), "{err}");
    // --quick on a task without a preset is refused
    let o = mm(&[
        "train",
        "vqa",
        "--quick",
        "--out",
        dir.path().join("q").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no --quick preset"),
        "{err}"
    );
}

/// One epoch (one evaluation: no validation curve to draw) trains and writes what it can;
/// logs piped to a file carry no terminal colour codes.
#[test]
fn one_epoch_of_training_works_and_piped_logs_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_mm"))
        .args(["train", "sound-tagging", "--quick", "--device", "cpu"])
        .args(["--set", "train.epochs=1", "--out", out.to_str().unwrap()])
        .env_remove("LD_LIBRARY_PATH")
        .env("MM_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("INFO") && !err.contains('\x1b'), "{err:?}");
    assert!(out.join("summary.json").is_file() && out.join("spectrograms.png").is_file());
    assert!(!out.join("accuracy.png").exists());
    // the TensorBoard event file holds every number of metrics.jsonl at its step
    let events: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let scalars = mm_train::events::read_scalars(&events[0]).unwrap();
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let mut n = 0;
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (step, split) = (v["step"].as_i64().unwrap(), v["split"].as_str().unwrap());
        for (k, x) in v.as_object().unwrap() {
            let Some(x) = x.as_f64().filter(|_| k != "step" && k != "epoch") else {
                continue;
            };
            let tag = format!("{split}/{k}");
            assert!(
                scalars
                    .iter()
                    .any(|s| s.step == step && s.tag == tag && s.value == x as f32),
                "{tag} at step {step} = {x} is not in the event file"
            );
            n += 1;
        }
    }
    let logged = scalars
        .iter()
        .filter(|s| !s.tag.starts_with("test/"))
        .count();
    assert!(n >= 5 && logged == n, "{n} numbers, {logged} scalars");
    // then the test metrics of summary.json, and the run's picture, at the last step
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let test = summary["test"].as_object().unwrap();
    assert!(!test.is_empty());
    for (k, x) in test {
        let tag = format!("test/{k}");
        assert!(
            scalars
                .iter()
                .any(|s| s.tag == tag && s.value == x.as_f64().unwrap() as f32),
            "{tag}"
        );
    }
    let png = std::fs::read(out.join("spectrograms.png")).unwrap();
    let values = mm_train::events::read_values(&events[0]).unwrap();
    assert!(
        values.iter().any(|r| r.tag == "pictures/spectrograms"
            && matches!(&r.value, mm_train::events::Value::Image { png: p, colorspace: 3, .. } if *p == png)),
        "no spectrograms picture in the event file"
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mm-signal/tests/fixtures/librosa")
        .join(name)
}

#[test]
fn audio_features_match_librosa_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let y: ndarray::Array1<f32> = ndarray_npy::read_npy(fixture("x_music.npy")).unwrap();
    let wav = dir.path().join("music.wav");
    let n = y.len();
    mm_signal::write_wav(
        &wav,
        &mm_signal::Audio {
            samples: y.into_shape_with_order((1, n)).unwrap(),
            sample_rate: 22050,
        },
        mm_signal::WavEncoding::Float32,
    )
    .unwrap();
    for (feature, reference, tol) in [
        ("log-mel", "p2db_music_ref1_amin1e-10_top80.npy", 1e-3),
        ("mfcc", "mfcc_music_default.npy", 1e-3),
    ] {
        let out = dir.path().join(format!("{feature}.npy"));
        let png = dir.path().join(format!("{feature}.png"));
        let o = mm(&[
            "audio",
            "features",
            "--input",
            wav.to_str().unwrap(),
            "--feature",
            feature,
            "--out",
            out.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: ndarray::Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
        let want: ndarray::Array2<f32> = ndarray_npy::read_npy(fixture(reference)).unwrap();
        assert_eq!(got.dim(), want.dim(), "{feature}");
        let err = (&got - &want).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
        assert!(f64::from(err) <= tol, "{feature}: max error {err}");
        assert!(image::open(&png).is_ok(), "{feature} png");
    }
}

/// A folder, or a file no decoder reads, given as audio: mm's own error naming it, and no
/// library's log line before it (with the default log filter, as a user runs `mm`).
#[test]
fn a_folder_as_audio_input_is_one_clear_error_without_library_noise() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.xyz");
    std::fs::write(&notes, "not audio\n").unwrap();
    // `mm audio features` on `input`, with `RUST_LOG` set or not (and no `MM_LOG`)
    let run = |input: &Path, rust_log: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mm"));
        c.args(["audio", "features", "--feature", "mel", "--input"])
            .arg(input)
            .arg("--out")
            .arg(dir.path().join("x.npy"))
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("MM_LOG")
            .env_remove("RUST_LOG");
        if let Some(v) = rust_log {
            c.env("RUST_LOG", v);
        }
        let o = c.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = run(dir.path(), None);
    assert!(
        err.contains(dir.path().to_str().unwrap()) && err.contains("Is a directory"),
        "{err}"
    );
    // a file symphonia probes and gives up on: its log line stays hidden
    let err = run(&notes, None);
    assert!(err.contains("notes.xyz"), "{err}");
    assert!(
        !err.contains("symphonia") && !err.contains("ERROR"),
        "{err}"
    );
    // RUST_LOG still shows what the default hides
    let err = run(&notes, Some("trace"));
    assert!(err.contains("symphonia_core"), "{err}");
}

/// The seeded subset of `scripts/librosa_sweep.py` that `cargo xtask test` runs: the first 40
/// settings of seed 0 (the full sweep is 300; the script's docstring says how to run it).
#[test]
fn audio_features_match_librosa_over_a_seeded_parameter_sweep() {
    let py = torch_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/librosa_sweep.py");
    let o = Command::new(&py)
        .arg(&script)
        .args([
            "--mm",
            env!("CARGO_BIN_EXE_mm"),
            "--settings",
            "40",
            "--seed",
            "0",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run `cargo xtask setup`", py.display()));
    let (out, err) = (stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success(),
        "the sweep failed (`cargo xtask setup` installs librosa):\n{out}\n{err}"
    );
    // every feature was compared somewhere in the subset, and most settings fully
    assert!(out.contains("40 settings"), "{out}");
    for f in ["stft-mag", "power", "mel", "log-mel", "mfcc"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{f} ")))
            .unwrap_or_else(|| panic!("no row for {f}:\n{out}"));
        let compared: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(compared >= 3, "{f} compared {compared} times:\n{out}");
    }
}

#[test]
fn audio_features_resample_keep_channels_and_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("stereo.wav");
    let frames = 44100;
    let samples = ndarray::Array2::from_shape_fn((2, frames), |(c, i)| {
        0.3 * ((i as f32) * 0.05 * (c + 1) as f32).sin()
    });
    mm_signal::write_wav(
        &wav,
        &mm_signal::Audio {
            samples,
            sample_rate: 44100,
        },
        mm_signal::WavEncoding::Pcm16,
    )
    .unwrap();
    let out = dir.path().join("mel.npy");
    let o = mm(&[
        "audio",
        "features",
        "--input",
        wav.to_str().unwrap(),
        "--feature",
        "mel",
        "--sample-rate",
        "16000",
        "--n-fft",
        "512",
        "--n-mels",
        "40",
        "--mono",
        "false",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: ndarray::Array3<f32> = ndarray_npy::read_npy(&out).unwrap();
    // 1 s at 16 kHz, hop 128: 1 + 16000 / 128 frames
    assert_eq!(got.dim(), (2, 40, 1 + 16000 / 128));
    for (args, needle) in [
        (
            vec!["--n-mels", "300", "--n-fft", "256"],
            "covers no FFT bin",
        ),
        (vec!["--hop-length", "0"], "hop_length"),
        (vec!["--win-length", "4096"], "win_length"),
        (vec!["--fmin", "5000", "--fmax", "4000"], "fmax"),
        (vec!["--ref", "loud"], "--ref"),
        (vec!["--amin", "0"], "--amin"),
        (vec!["--sample-rate", "abc"], "--sample-rate"),
        (vec!["--top-db", "nan"], "--top-db"),
        (vec!["--n-fft", "2"], "hop_length"),
    ] {
        let mut full = vec![
            "audio",
            "features",
            "--input",
            wav.to_str().unwrap(),
            "--feature",
            "mfcc",
            "--out",
            out.to_str().unwrap(),
        ];
        full.extend(args.iter().copied());
        let o = mm(&full);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // a failed mel of `input` into `to`: its error message
    let mel_error = |input: &Path, to: &Path| {
        let o = mm(&[
            "audio",
            "features",
            "--input",
            input.to_str().unwrap(),
            "--feature",
            "mel",
            "--out",
            to.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEfmt ").unwrap();
    let err = mel_error(&bad, &out);
    assert!(
        err.contains("bad.wav") && !err.contains("panicked"),
        "{err}"
    );
    // a NaN sample in a float WAV that must be resampled: a typed error, not a panic
    let nan = dir.path().join("nan.wav");
    mm_signal::write_wav(
        &nan,
        &mm_signal::Audio {
            samples: ndarray::Array2::from_shape_fn(
                (1, 4000),
                |(_, i)| {
                    if i == 7 { f32::NAN } else { 0.1 }
                },
            ),
            sample_rate: 16000,
        },
        mm_signal::WavEncoding::Float32,
    )
    .unwrap();
    let err = mel_error(&nan, &out);
    assert!(err.contains("non-finite sample at index 7"), "{err}");
    // an output folder that does not exist: the path and the OS error, each once
    let err = mel_error(&wav, &dir.path().join("no/such/x.npy"));
    assert!(err.contains("x.npy.tmp"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn synthav_generate_info_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("synthav.h5");
    let o = mm(&[
        "data",
        "synthav",
        "--out",
        h5.to_str().unwrap(),
        "--scenes",
        "50",
        "--seed",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join("synthav.h5.tmp").exists());
    let o = mm(&["data", "info", h5.to_str().unwrap()]);
    let s = stdout(&o);
    assert!(
        s.contains("synthav") && s.contains("50 samples") && s.contains("train    40"),
        "{s}"
    );
    let show = dir.path().join("show");
    let o = mm(&[
        "data",
        "show",
        h5.to_str().unwrap(),
        "--index",
        "4",
        "--out",
        show.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = stdout(&o);
    assert!(
        s.contains("captions: ") && s.contains("question_types: "),
        "{s}"
    );
    // unit ids print as numbers, question types by name
    assert!(
        s.lines()
            .filter_map(|l| l.strip_prefix("spoken_units: "))
            .all(|l| l.split(' ').all(|u| u.parse::<u32>().is_ok())),
        "{s}"
    );
    let types = ["colour", "shape", "count", "exist", "relation"];
    assert!(
        s.lines()
            .filter_map(|l| l.strip_prefix("question_types: "))
            .all(|t| types.contains(&t)),
        "{s}"
    );
    assert!(s.contains("spoken_units: "), "{s}");
    assert_eq!(image::open(show.join("4_image.png")).unwrap().width(), 256);
    let wav = mm_signal::read_wav(&show.join("4_audio.wav")).unwrap();
    assert_eq!((wav.sample_rate, wav.frames()), (16000, 16000));
    assert!(image::open(show.join("4_spectrogram.png")).is_ok());
    assert!(image::open(show.join("4_face.png")).is_ok());
    let spoken = mm_signal::read_wav(&show.join("4_spoken_caption.wav")).unwrap();
    assert_eq!((spoken.sample_rate, spoken.frames()), (8000, 24000));
    let o = mm(&["data", "info", dir.path().join("nope.h5").to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("nope.h5"));
}

#[test]
fn word2vec_train_eval_and_neighbors() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    let mut text = String::new();
    for i in 0..1500usize {
        let t = i % 3;
        let line: Vec<String> = (0..10)
            .map(|k| format!("t{t}w{}", (i * 7 + k * 3) % 8))
            .collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    std::fs::write(&corpus, text).unwrap();
    let vec = dir.path().join("v.bin");
    let o = mm(&[
        "text",
        "word2vec",
        "train",
        "--train",
        corpus.to_str().unwrap(),
        "--output",
        vec.to_str().unwrap(),
        "--binary",
        "--size",
        "16",
        "--min-count",
        "1",
        "--iter",
        "2",
        "--threads",
        "2",
        "--sample",
        "0",
        // hierarchical softmax alone: without `--hs 1` reaching the trainer, `--negative 0`
        // would be refused
        "--hs",
        "1",
        "--negative",
        "0",
        "--safetensors",
        dir.path().join("v.safetensors").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("words/s/thread"));
    let st = mm_text::word2vec::read_safetensors(&dir.path().join("v.safetensors")).unwrap();
    assert_eq!(st.size(), 16);
    let o = mm(&[
        "text",
        "word2vec",
        "neighbors",
        "--vectors",
        vec.to_str().unwrap(),
        "--binary",
        "--k",
        "3",
        "t1w1",
        "zzz",
    ]);
    let s = stdout(&o);
    assert!(
        s.contains("t1w1:") && s.contains("zzz: not in the vocabulary"),
        "{s}"
    );
    let near: Vec<&str> = s.lines().skip(1).take(3).collect();
    assert!(
        near.iter().filter(|l| l.contains(" t1w")).count() >= 2,
        "{s}"
    );
    let an = dir.path().join("q.txt");
    std::fs::write(&an, ": topics\nt0w1 t0w2 t1w1 t1w2\n").unwrap();
    let o = mm(&[
        "text",
        "word2vec",
        "eval",
        "--vectors",
        vec.to_str().unwrap(),
        "--binary",
        "--analogies",
        an.to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains("of 1 answered"), "{}", stdout(&o));
    // a file of another format (here the corpus) has no questions: an error, not "0 %"
    for flag in ["--analogies", "--similarity"] {
        let o = mm(&[
            "text",
            "word2vec",
            "eval",
            "--vectors",
            vec.to_str().unwrap(),
            "--binary",
            flag,
            corpus.to_str().unwrap(),
        ]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains("no "), "{flag}: {e}");
    }
    // a text file read as binary is a clear error, and an empty corpus too
    let o = mm(&[
        "text",
        "word2vec",
        "neighbors",
        "--vectors",
        an.to_str().unwrap(),
        "x",
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("q.txt"));
    std::fs::write(&corpus, "").unwrap();
    let o = mm(&[
        "text",
        "word2vec",
        "train",
        "--train",
        corpus.to_str().unwrap(),
        "--output",
        vec.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("empty"));
}

#[test]
fn vision_features_match_the_library_and_keep_splits() {
    use mm_vision::{Arch, BackboneConfig, IMAGENET_MEAN, IMAGENET_STD};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let o = mm(&[
        "data",
        "synthav",
        "--out",
        data.to_str().unwrap(),
        "--scenes",
        "12",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // weights the command loads, from a seeded model the test keeps
    tch::manual_seed(7);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = mm_vision::backbone(&vs.root(), &BackboneConfig::headless(Arch::SmallCnn)).unwrap();
    let weights = dir.path().join("small.safetensors");
    mm_vision::save_safetensors(&vs, &weights, None).unwrap();
    let out = dir.path().join("feat.h5");
    // `mm vision features` of `input` into `out` with the small CNN's stage2, on the CPU
    let features = |input: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "vision",
            "features",
            "--images",
            input.to_str().unwrap(),
            "--backbone",
            "small_cnn",
            "--weights",
            weights.to_str().unwrap(),
            "--layer",
            "stage2",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = mm(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    features(&data, &out, &["--batch-size", "5"]);
    let feats = mm_data::Reader::open(&out).unwrap();
    let input = mm_data::Reader::open(&data).unwrap();
    assert_eq!(feats.len(), 12);
    assert_eq!(feats.split("test").unwrap(), input.split("test").unwrap());
    let got = feats
        .read_range(0, 12)
        .unwrap()
        .tensor("features", tch::Device::Cpu)
        .unwrap();
    let images = input
        .read_range(0, 12)
        .unwrap()
        .tensor("image", tch::Device::Cpu)
        .unwrap();
    let x = mm_vision::normalize_batch(&images, &IMAGENET_MEAN, &IMAGENET_STD, tch::Device::Cpu)
        .unwrap();
    let want = tch::no_grad(|| net.feature_map(&x, "stage2", false).unwrap());
    assert_eq!(got.size(), [12, 64, 16, 16]);
    assert!((got - want).abs().max().double_value(&[]) < 1e-5);

    // one image file: what a directory holding just that file gives
    let pngs = dir.path().join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    let png = pngs.join("im3.png");
    let px = Vec::<u8>::try_from(images.get(3).reshape([-1])).unwrap();
    let (h, w) = (images.size()[1] as u32, images.size()[2] as u32);
    image::RgbImage::from_raw(w, h, px)
        .unwrap()
        .save(&png)
        .unwrap();
    let extract = |input: &Path, out: &Path| {
        features(input, out, &["--size", "64"]);
        mm_data::Reader::open(out)
            .unwrap()
            .read_range(0, 1)
            .unwrap()
            .tensor("features", tch::Device::Cpu)
            .unwrap()
    };
    let single = extract(&png, &dir.path().join("one.h5"));
    let listed = extract(&pngs, &dir.path().join("dir.h5"));
    assert_eq!(single.size(), [1, 64, 16, 16]);
    assert_eq!(single, listed);

    let bad = mm(&[
        "vision",
        "features",
        "--images",
        data.to_str().unwrap(),
        "--backbone",
        "small_cnn",
        "--layer",
        "layer4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no stage `layer4`"));
    // a missing input, and a file that is neither an image nor HDF5, say so
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    for (input, says) in [
        (dir.path().join("missing.png"), "no such file"),
        (text, "--images takes"),
    ] {
        let o = mm(&[
            "vision",
            "features",
            "--images",
            input.to_str().unwrap(),
            "--backbone",
            "small_cnn",
            "--layer",
            "pooled",
            "--out",
            out.to_str().unwrap(),
        ]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(says), "{e}");
    }
}

/// PyTorch's Python as the tests find it (the venv `cargo xtask setup` makes).
fn torch_python() -> std::path::PathBuf {
    std::env::var_os("MM_REF_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::env::var_os("MM_TORCH_VENV")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| "/opt/venv-torch-2.11.0".into())
                .join("bin/python")
        })
}

#[test]
fn vision_convert_turns_a_wrapped_pth_into_loadable_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("r18.pth");
    let py = torch_python();
    let made = Command::new(&py)
        .args([
            "-c",
            "import sys, torch, torchvision\n\
             m = torchvision.models.resnet18(num_classes=7)\n\
             sd = {'module.' + k: v for k, v in m.state_dict().items()}\n\
             torch.save({'epoch': 1, 'state_dict': sd}, sys.argv[1])",
        ])
        .arg(&pth)
        .status()
        .unwrap_or_else(|e| panic!("{} ({e}): run `cargo xtask setup`", py.display()));
    assert!(made.success());
    let st = dir.path().join("r18.safetensors");
    let o = mm(&[
        "vision",
        "convert",
        "--input",
        pth.to_str().unwrap(),
        "--out",
        st.to_str().unwrap(),
        "--backbone",
        "resnet18",
        "--python",
        py.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o).contains("loads into resnet18 with 7 classes"),
        "{}",
        stdout(&o)
    );
    let o = mm(&[
        "vision",
        "convert",
        "--input",
        st.to_str().unwrap(),
        "--backbone",
        "resnet34",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not fit resnet34"));
    // a file that is no checkpoint: one line saying so, no Python traceback
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"RIFF....WAVEfmt not a pickle").unwrap();
    let o = mm(&[
        "vision",
        "convert",
        "--input",
        junk.to_str().unwrap(),
        "--out",
        dir.path().join("junk.safetensors").to_str().unwrap(),
        "--python",
        py.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not a PyTorch checkpoint"),
        "{err}"
    );
    assert!(!err.contains("Traceback"), "{err}");
}

/// A training process killed mid-run and resumed ends exactly where an uninterrupted run with
/// the same seed ends: same validation history, same test metrics, same final weights. Also:
/// environment overrides, refusing to overwrite a run, and a corrupt checkpoint is reported.
#[test]
fn killed_training_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let o = mm(&[
        "data",
        "synthav",
        "--out",
        data.to_str().unwrap(),
        "--scenes",
        "200",
    ]);
    assert!(o.status.success());
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "retrieval",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
            "--quiet",
            "--set",
            "train.batch_size=32",
            "--set",
            "train.eval_every=2",
            "--set",
            "train.patience=0",
            "--set",
            "task.hidden_dim=32",
            "--set",
            "task.sum_warmup_epochs=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mm"));
        c.args(args(out))
            .env("MM_CFG__TRAIN__EPOCHS", "6")
            .env("MM_LOG", "warn");
        c
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = run(&a).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        cfg.contains("epochs = 6"),
        "the environment override is in the resolved config"
    );

    let mut child = run(&b).spawn().unwrap();
    kill_when_written(
        &mut child,
        &b.join("checkpoints/step-00000010/manifest.json"),
        120,
    );
    assert!(!b.join("summary.json").exists(), "killed before the end");
    // the same command again refuses to overwrite the run
    let o = run(&b).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let o = Command::new(env!("CARGO_BIN_EXE_mm"))
        .args([
            "train",
            "retrieval",
            "--resume",
            b.to_str().unwrap(),
            "--device",
            "cpu",
            "--quiet",
        ])
        .env("MM_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let val = |d: &Path| -> Vec<String> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"val\""))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(val(&a).len(), 15);
    assert_eq!(val(&a), val(&b), "validation history differs after resume");
    let test = |d: &Path| {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap())
                .unwrap();
        s["test"].clone()
    };
    assert_eq!(test(&a), test(&b));
    let last = "checkpoints/step-00000030/model.safetensors";
    assert!(std::fs::read(a.join(last)).unwrap() == std::fs::read(b.join(last)).unwrap());

    // the data set moved to a relative path that looks like a TOML array: --data takes it as
    // the path it is (and moves back for what follows)
    std::fs::rename(&data, dir.path().join("[moved].h5")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mm"))
        .current_dir(dir.path())
        .args(["eval", "retrieval", "--checkpoint", a.to_str().unwrap()])
        .args(["--data", "[moved].h5", "--device", "cpu"])
        .env("MM_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(dir.path().join("[moved].h5"), &data).unwrap();

    // another task's command names what the run is; a run from before the header line (no
    // header, summary.json present) too
    let ck = a.join("checkpoints/step-00000030");
    let o = mm(&["eval", "captioning", "--checkpoint", ck.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is a `retrieval` run, not `captioning`"),
        "{err}"
    );
    let cfg = a.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.starts_with("# mm task: retrieval\n"), "{text}");
    std::fs::write(&cfg, text.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let o = mm(&["eval", "vqa", "--checkpoint", a.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is a `retrieval` run, not `vqa`"), "{err}");

    // a damaged checkpoint is detected, not loaded
    let model = b.join(last);
    let mut bytes = std::fs::read(&model).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let ck = b.join("checkpoints/step-00000030");
    let o = mm(&[
        "eval",
        "retrieval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SHA-256"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A two-optimizer task (text-to-image: discriminator and generator) killed mid-run and
/// resumed ends exactly where the uninterrupted run ends: same validation history, same
/// weights and the same state of both optimizers. Also: inference draws a grid for texts,
/// and a text of unknown words, `--samples 0` and a group the task lacks are clear errors.
#[test]
fn a_killed_two_optimizer_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let o = mm(&[
        "data",
        "synthav",
        "--out",
        data.to_str().unwrap(),
        "--scenes",
        "200",
    ]);
    assert!(o.status.success());
    let run = |out: &Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mm"));
        c.args(["train", "text-to-image", "--data", data.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap(), "--device", "cpu", "--quiet"])
            .args([
                "--set",
                "train.batch_size=32",
                "--set",
                "train.epochs=10",
                "--set",
                "train.eval_every=5",
                "--set",
                "task.gen_channels=8",
                "--set",
                "task.disc_channels=8",
                "--set",
                "task.noise_dim=16",
                "--set",
                "task.embed_dim=16",
                "--set",
                "task.text_dim=8",
                "--set",
                "task.evaluator_steps=20",
                "--set",
                "task.eval_texts=16",
                "--set",
                "task.samples=2",
                "--set",
                "train.optimizers.discriminator.repeats=2",
            ])
            .args(extra)
            .env("MM_LOG", "warn");
        c
    };
    // a group the task does not have: an error before anything is trained
    let bad = dir.path().join("bad");
    let o = run(&bad, &["--set", "train.optimizers.critic.repeats=1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no parameter group `critic`"),
        "{err}"
    );
    assert!(!bad.join("checkpoints").exists());

    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = run(&a, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut child = run(&b, &[]).spawn().unwrap();
    kill_when_written(
        &mut child,
        &b.join("checkpoints/step-00000020/manifest.json"),
        120,
    );
    assert!(!b.join("summary.json").exists(), "killed before the end");
    let o = Command::new(env!("CARGO_BIN_EXE_mm"))
        .args(["train", "text-to-image", "--resume", b.to_str().unwrap()])
        .args(["--device", "cpu", "--quiet"])
        .env("MM_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    let (la, lb) = (lines(&a), lines(&b));
    assert_eq!(la.lines().filter(|l| l.contains("\"val\"")).count(), 10);
    assert!(la.contains("loss_discriminator") && la.contains("loss_generator"));
    assert_eq!(la, lb, "metrics.jsonl differs after resume");
    for f in ["model.safetensors", "optimizer.safetensors"] {
        let p = format!("checkpoints/step-00000050/{f}");
        assert!(
            std::fs::read(a.join(&p)).unwrap() == std::fs::read(b.join(&p)).unwrap(),
            "{f} differs after resume"
        );
    }

    // inference: a grid of images for each text; unknown words are reported
    let out = dir.path().join("inf");
    let o = mm(&[
        "infer",
        "text-to-image",
        "--checkpoint",
        a.to_str().unwrap(),
        "--text",
        "a large red circle in the forest",
        "--text",
        "a blue zorblax",
        "--samples",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["samples"], 3);
    assert_eq!(v["texts"][1]["unknown_words"][0], "zorblax");
    let grid = image::open(out.join("text_to_image.png")).unwrap();
    assert!(grid.width() > 3 * 128 && grid.height() > 2 * 128);
    for (text, want) in [
        (&["--text", "zorblax quux"][..], "unknown-word rate 100 %"),
        (
            &["--text", "a red circle", "--samples", "0"][..],
            "task.samples",
        ),
    ] {
        let mut args = vec![
            "infer",
            "text-to-image",
            "--checkpoint",
            a.to_str().unwrap(),
        ];
        args.extend_from_slice(text);
        args.extend(["--out", out.to_str().unwrap(), "--device", "cpu"]);
        let o = mm(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{err}");
    }
}

/// A tiny ESC-50 tree: 3 classes (targets 0, 10, 20, each its own pitch) x 5 folds x 3 clips,
/// 0.3 s at 22.05 kHz with some noise.
fn esc50_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("meta")).unwrap();
    std::fs::create_dir_all(dir.join("audio")).unwrap();
    let mut csv = String::from("filename,fold,target,category,esc10,src_file,take\n");
    let mut k = 0u32;
    for fold in 1..=5 {
        for target in [0, 10, 20] {
            for take in ["A", "B", "C"] {
                k += 1;
                let name = format!("{fold}-{k}-{take}-{target}.wav");
                csv.push_str(&format!(
                    "{name},{fold},{target},class{target},False,{k},{take}\n"
                ));
                let f0 = 220.0 * (1.0 + target as f32 / 10.0);
                let y: Vec<f32> = (0..6615u32)
                    .map(|t| {
                        let noise = ((t.wrapping_mul(2_654_435_761).wrapping_add(k * 97) >> 16)
                            % 1000) as f32
                            / 1000.0
                            - 0.5;
                        0.4 * (t as f32 * f0 * std::f32::consts::TAU / 22050.0).sin() + 0.1 * noise
                    })
                    .collect();
                mm_signal::write_wav(
                    &dir.join("audio").join(&name),
                    &mm_signal::Audio {
                        samples: ndarray::Array2::from_shape_vec((1, y.len()), y).unwrap(),
                        sample_rate: 22050,
                    },
                    mm_signal::WavEncoding::Pcm16,
                )
                .unwrap();
            }
        }
    }
    std::fs::write(dir.join("meta/esc50.csv"), csv).unwrap();
}

/// ESC-50's protocol on a fixture tree: convert, then `--folds 5` trains once per held-out
/// fold and reports the mean and spread; running it again reads the finished folds back; a
/// fold outside 1..5 and a fold without a data set are clear errors before any training.
#[test]
fn esc50_five_fold_cross_validation_runs_on_a_fixture_tree() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("ESC-50");
    esc50_tree(&raw);
    let data = dir.path().join("esc50.h5");
    let o = mm(&[
        "data",
        "convert",
        "esc50",
        "--raw",
        raw.to_str().unwrap(),
        "--out",
        data.to_str().unwrap(),
        "--seconds",
        "0.3",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cv = dir.path().join("cv");
    let run = || {
        mm(&[
            "train",
            "sound-tagging",
            "--data",
            data.to_str().unwrap(),
            "--folds",
            "5",
            "--out",
            cv.to_str().unwrap(),
            "--device",
            "cpu",
            "--quiet",
            "--set",
            "train.epochs=20",
            "--set",
            "train.batch_size=8",
            "--set",
            "task.model.widths=[8, 16]",
        ])
    };
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(text.contains("5-fold cross-validation"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cv.join("cross_validation.json")).unwrap())
            .unwrap();
    assert_eq!(v["folds"].as_array().unwrap().len(), 5);
    for k in 1..=5 {
        let cfg = std::fs::read_to_string(cv.join(format!("fold{k}/config.toml"))).unwrap();
        assert!(cfg.contains(&format!("fold = {k}")), "fold {k}: {cfg}");
        // each fold tests on its own 9 clips: 3 classes, chance 1/3
        assert!((v["folds"][k - 1]["test"]["chance"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }
    let (mean, prior) = (
        v["mean"]["accuracy"].as_f64().unwrap(),
        v["mean"]["prior_accuracy"].as_f64().unwrap(),
    );
    assert!(v["std"]["accuracy"].as_f64().unwrap() >= 0.0);
    // three pitches: far above the prior (1/3); measured 0.933 +- 0.149 over the folds
    assert!(mean >= prior + 0.5, "mean accuracy {mean} vs prior {prior}");
    // the same command again: every fold is read back, nothing is trained
    let o = run();
    assert!(o.status.success());
    assert_eq!(stdout(&o).matches("finished before").count(), 5);

    for (set, want) in [
        ("task.fold=6", "folds 1 to 5"),
        ("task.fold=0", "folds 1 to 5"),
    ] {
        let out = dir.path().join("bad");
        let o = mm(&[
            "train",
            "sound-tagging",
            "--data",
            data.to_str().unwrap(),
            "--set",
            set,
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{err}");
        assert!(!out.exists(), "a refused run leaves no directory");
    }
    let out = dir.path().join("no-data");
    let o = mm(&[
        "train",
        "sound-tagging",
        "--set",
        "task.fold=2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("task.data"), "{err}");
    assert!(!out.exists());
}
