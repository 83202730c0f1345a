//! `cargo xtask gpu-bundle --out DIR`: everything the CUDA checks need, for a machine with a GPU
//! and PyTorch 2.11 but no Rust toolchain.
//!
//! The bundle holds the release `mm` binary; the `signal-workloads` tool with
//! `scripts/gpu_w2_torch.py` (mm's tensor path against PyTorch on the same card); the
//! `vision-workloads` tool with `scripts/bench_vision.py` (ResNet-50 forward and
//! forward+backward against PyTorch on the same card); the training benchmarks
//! `scripts/bench_{retrieval,vqa,captioning}.py`; a gzipped prefix of the word2vec benchmark
//! corpus when `data/w2v` has one; wheels of numpy, h5py and torchaudio for that machine's
//! Python 3.12, which `run.sh` unpacks when its venv lacks them; the test executables of
//! `mm-tests` built with its `cuda` feature and mm-signal's `tensor_sweep` (the tensor path
//! against the CPU path, on the card), stripped; and `run.sh` (`xtask/src/gpu_run.sh`),
//! which points the loader at that machine's torch (`/opt/torch/.venv` by default,
//! `TORCH_VENV` to override) and runs every check under a deadline, most wanted first, logging
//! to `$OUT/run.log` and `$OUT/results.tsv` (plus `details.tar.gz` at the end; data and runs
//! go to a temporary folder), and exiting non-zero if any fails. `run.sh NAME...` reruns only
//! some; `MM_BUNDLE_DEVICE=cpu MM_BUNDLE_QUICK=1 bash run.sh` rehearses its command lines here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{build_release_tools, cargo, have, output, project_root, run as exec, step};

/// The bundle must stay small enough to carry to the GPU machine.
const MAX_BUNDLE_BYTES: u64 = 60 << 20;

/// `run.sh`: every check, with time limits, a log and a results table under `$OUT`.
const RUN_SH: &str = include_str!("gpu_run.sh");

/// Python packages the comparison scripts import beyond torch, as wheels for the GPU machine's
/// Python, which has no network: `run.sh` unpacks those its venv cannot import. numpy first
/// (h5py needs it); torchaudio is optional there (`gpu_w2_torch.py` falls back to torch.stft).
const DEVICE_WHEELS: &[(&str, &str)] = &[
    ("numpy", "2.4.6"),
    ("h5py", "3.16.0"),
    ("torchaudio", "2.11.0"),
];
/// The GPU machine's Python (`/opt/torch/.venv` is Python 3.12; `MM_BUNDLE_PYTHON` overrides,
/// e.g. to rehearse with this machine's venv).
const DEVICE_PYTHON: &str = "3.12";

/// Words of the benchmark corpus (`data/w2v/corpus.txt`, made by `benches/w2v/build_corpus.sh`)
/// carried for the word2vec check, gzipped (about 3.5 MB; 3 M words, 7 MB, no longer fit under
/// the bundle's limit beside the tensor sweep's executable: enough for words/s, not for quality).
const W2V_WORDS: usize = 1_500_000;

pub fn run(args: &[String]) -> Result<()> {
    let out = match args {
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask gpu-bundle --out DIR"),
    };
    let out = if out.is_absolute() {
        out
    } else {
        project_root().join(out)
    };
    crate::setup::run()?;

    step("build release binaries");
    build_release_tools()?;
    step("build CUDA test executables");
    let o = output(cargo().args([
        "test",
        "--release",
        "--locked",
        "-p",
        "mm-tests",
        "--features",
        "cuda",
        "--no-run",
        "--message-format=json",
    ]))?;
    if !o.status.success() {
        bail!(
            "building the CUDA tests failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut tests = test_executables(&String::from_utf8_lossy(&o.stdout))?;
    // mm-signal's tensor path against its CPU path over a seeded sweep, on the card
    let o = output(cargo().args([
        "test",
        "--release",
        "--locked",
        "-p",
        "mm-signal",
        "--features",
        "tch",
        "--test",
        "tensor_sweep",
        "--no-run",
        "--message-format=json",
    ]))?;
    if !o.status.success() {
        bail!(
            "building mm-signal's tensor sweep failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    tests.extend(test_executables(&String::from_utf8_lossy(&o.stdout))?);

    step(&format!("assemble {}", out.display()));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(out.join("tests"))
        .with_context(|| format!("creating {}", out.display()))?;
    let target = project_root().join("target/release");
    copy_stripped(&target.join("mm"), &out.join("mm"))?;
    copy_stripped(
        &target.join("signal-workloads"),
        &out.join("signal-workloads"),
    )?;
    copy_stripped(
        &target.join("vision-workloads"),
        &out.join("vision-workloads"),
    )?;
    for name in [
        "gpu_w2_torch.py",
        "bench_vision.py",
        "bench_retrieval.py",
        "bench_vqa.py",
        "bench_captioning.py",
        "bench_common.py",
    ] {
        let script = project_root().join("scripts").join(name);
        std::fs::copy(&script, out.join(name))
            .with_context(|| format!("copying {}", script.display()))?;
    }
    for (name, exe) in &tests {
        copy_stripped(exe, &out.join("tests").join(name))?;
    }
    add_w2v_corpus(&out.join("w2v"))?;
    add_wheels(&out.join("wheels"))?;
    let run_sh = out.join("run.sh");
    std::fs::write(&run_sh, RUN_SH).with_context(|| format!("writing {}", run_sh.display()))?;
    set_executable(&run_sh)?;

    let size = dir_size(&out)?;
    println!(
        "bundle: mm + {} test executable(s), {:.1} MiB -> {}",
        tests.len(),
        size as f64 / (1u64 << 20) as f64,
        out.display()
    );
    if size > MAX_BUNDLE_BYTES {
        bail!("the bundle is {size} bytes, over the 60 MiB limit");
    }
    println!("on the CUDA machine: bash {}/run.sh", out.display());
    Ok(())
}

/// [`DEVICE_WHEELS`] for the GPU machine's Python (x86-64 Linux), downloaded once into
/// `target/gpu-wheels/PYTHON` and copied into `dir`; without PyPI, a note (the training
/// comparisons then run only where the machine's venv has h5py).
fn add_wheels(dir: &Path) -> Result<()> {
    let version = std::env::var("MM_BUNDLE_PYTHON").unwrap_or_else(|_| DEVICE_PYTHON.into());
    let cache = project_root().join("target/gpu-wheels").join(&version);
    let cached = |name: &str, v: &str| -> Option<PathBuf> {
        let prefix = format!("{name}-{v}-");
        std::fs::read_dir(&cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".whl"))
            })
    };
    let missing: Vec<String> = DEVICE_WHEELS
        .iter()
        .filter(|(n, v)| cached(n, v).is_none())
        .map(|(n, v)| format!("{n}=={v}"))
        .collect();
    if !missing.is_empty() {
        let python = crate::setup::venv_python_with(&[], "cargo xtask gpu-bundle")?;
        let mut pip = Command::new(python);
        pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--progress-bar", "off"])
            .args(["--python-version", &version])
            .args(["--platform", "manylinux_2_28_x86_64"])
            .args(["--platform", "manylinux_2_17_x86_64"])
            .arg("-d")
            .arg(&cache)
            .args(&missing);
        if let Err(e) = exec(&mut pip, "pip download") {
            println!(
                "note: could not download {} for Python {version} ({e:#}); the training \
                 comparisons will run only where the GPU machine's venv has h5py",
                missing.join(" ")
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, v) in DEVICE_WHEELS {
        if let Some(whl) = cached(name, v) {
            let to = dir.join(whl.file_name().context("a wheel's name")?);
            std::fs::copy(&whl, &to).with_context(|| format!("copying {}", whl.display()))?;
        }
    }
    Ok(())
}

/// The first [`W2V_WORDS`] words (whole lines) of the word2vec benchmark corpus, gzipped,
/// with the analogy and similarity files, when `data/w2v` has them; else a note.
fn add_w2v_corpus(dir: &Path) -> Result<()> {
    use std::io::{BufRead, Write};
    let src = project_root().join("data/w2v");
    let files = ["corpus.txt", "questions-words.txt", "wordsim353.tsv"];
    if let Some(missing) = files.iter().find(|f| !src.join(f).is_file()) {
        println!(
            "note: no {} in {}; the bundle's word2vec checks will be skipped",
            missing,
            src.display()
        );
        return Ok(());
    }
    if !have("gzip") {
        println!("note: no `gzip` on PATH; the bundle's word2vec checks will be skipped");
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in &files[1..] {
        std::fs::copy(src.join(f), dir.join(f)).with_context(|| format!("copying {f}"))?;
    }
    let gz = dir.join("corpus.txt.gz");
    let file = std::fs::File::create(&gz).with_context(|| format!("creating {}", gz.display()))?;
    let mut child = Command::new("gzip")
        .arg("-6")
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .spawn()
        .context("starting gzip")?;
    let corpus = src.join("corpus.txt");
    let reader = std::io::BufReader::new(
        std::fs::File::open(&corpus).with_context(|| format!("opening {}", corpus.display()))?,
    );
    {
        let mut stdin = child.stdin.take().context("gzip's stdin")?;
        let mut words = 0;
        for line in reader.lines() {
            let line = line.with_context(|| format!("reading {}", corpus.display()))?;
            words += line.split_whitespace().count();
            writeln!(stdin, "{line}").context("writing to gzip")?;
            if words >= W2V_WORDS {
                break;
            }
        }
    }
    if !child.wait().context("waiting for gzip")?.success() {
        bail!("gzip failed on {}", corpus.display());
    }
    Ok(())
}

/// `(name, path)` of every test executable in cargo's JSON messages.
fn test_executables(json_lines: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for line in json_lines.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // integration-test targets only (the library's unit-test harness holds no CUDA check)
        let is_test_target = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "test"));
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true || !is_test_target
        {
            continue;
        }
        if let (Some(exe), Some(name)) =
            (msg["executable"].as_str(), msg["target"]["name"].as_str())
        {
            found.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    if found.is_empty() {
        bail!("cargo reported no test executable");
    }
    Ok(found)
}

fn copy_stripped(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    if have("strip") {
        exec(Command::new("strip").arg("--strip-all").arg(to), "strip")?;
    } else {
        println!(
            "warning: no `strip` on PATH; {} left unstripped",
            to.display()
        );
    }
    set_executable(to)
}

fn set_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", p.display()))
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle whose tools are stand-ins that print what `run.sh` greps for and exit with
    /// `rc` (the python stand-in always succeeds), with a fake torch venv beside it.
    fn fake_bundle(rc: i32) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("bundle");
        std::fs::create_dir_all(b.join("tests")).unwrap();
        std::fs::create_dir_all(b.join("w2v")).unwrap();
        std::fs::create_dir_all(d.path().join("venv/lib/python3.12/site-packages/torch/lib"))
            .unwrap();
        std::fs::create_dir_all(d.path().join("venv/bin")).unwrap();
        let tool = format!("#!/bin/sh\necho '\"cuda_available\": true'\nexit {rc}\n");
        let tools = ["mm", "signal-workloads", "vision-workloads", "tests/cuda"];
        for t in tools.iter().chain(&["tests/pipeline"]) {
            std::fs::write(b.join(t), &tool).unwrap();
            set_executable(&b.join(t)).unwrap();
        }
        let py = d.path().join("venv/bin/python");
        std::fs::write(&py, "#!/bin/sh\nexit 0\n").unwrap();
        set_executable(&py).unwrap();
        let gz = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo a b c | gzip > {}",
                b.join("w2v/corpus.txt.gz").display()
            ))
            .status()
            .unwrap();
        assert!(gz.success());
        std::fs::write(b.join("run.sh"), RUN_SH).unwrap();
        d
    }

    /// Runs the fake bundle's `run.sh` with `args`; returns its exit code and results table.
    fn run_fake(d: &tempfile::TempDir, args: &[&str]) -> (Option<i32>, Vec<(String, String)>) {
        let out = d.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        let o = Command::new("bash")
            .arg(d.path().join("bundle/run.sh"))
            .args(args)
            .env("TORCH_VENV", d.path().join("venv"))
            .env("OUT", &out)
            .output()
            .unwrap();
        // everything printed is in the log too (no log when the arguments are refused)
        if let Ok(log) = std::fs::read_to_string(out.join("run.log")) {
            assert_eq!(log, String::from_utf8_lossy(&o.stdout));
        }
        let table = std::fs::read_to_string(out.join("results.tsv")).unwrap_or_default();
        let rows = table
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_owned(), f[1].to_owned())
            })
            .collect();
        (o.status.code(), rows)
    }

    #[test]
    fn run_sh_runs_every_listed_check_and_records_each() {
        let d = fake_bundle(0);
        let o = Command::new("bash")
            .arg(d.path().join("bundle/run.sh"))
            .arg("--list")
            .output()
            .unwrap();
        let listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(listed.len() > 15 && listed.contains(&"test-cuda".to_owned()));
        let (rc, rows) = run_fake(&d, &[]);
        assert_eq!(rc, Some(0), "{rows:?}");
        // every listed check ran and passed, in the listed order (but the absent test
        // executables), each once
        let expected: Vec<(String, String)> = listed
            .iter()
            .filter(|n| {
                ![
                    "test-tensor_sweep",
                    "test-libtorch_link",
                    "test-synthav_learnable",
                ]
                .contains(&n.as_str())
            })
            .map(|n| (n.clone(), "ok".to_owned()))
            .collect();
        assert_eq!(rows, expected);
        // what comes back from the device is at most 8 files: run.log, results.tsv and the
        // details archive
        let mut back: Vec<String> = std::fs::read_dir(d.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        back.sort();
        assert_eq!(back, ["details.tar.gz", "results.tsv", "run.log"]);

        // a selection runs what it names and what that needs, nothing else
        let (rc, rows) = run_fake(&d, &["captioning-scst-cuda"]);
        assert_eq!(rc, Some(0));
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            ["synthav", "captioning-cuda", "captioning-scst-cuda"]
        );
        let (rc, _) = run_fake(&d, &["no-such-check"]);
        assert_eq!(rc, Some(2));

        // past the deadline nothing starts, and the run fails
        let out = d.path().join("out");
        let o = Command::new("bash")
            .arg(d.path().join("bundle/run.sh"))
            .args(["info", "vqa-cuda"])
            .env("TORCH_VENV", d.path().join("venv"))
            .env("OUT", &out)
            .env("MM_BUNDLE_DEADLINE", "0")
            .status()
            .unwrap();
        assert_eq!(o.code(), Some(1));
        let table = std::fs::read_to_string(out.join("results.tsv")).unwrap();
        assert!(table.lines().all(|l| l.contains("\tskipped\t")), "{table}");
    }

    #[test]
    fn run_sh_unpacks_the_wheels_a_venv_lacks() {
        let d = fake_bundle(0);
        // a python that sees no site-packages, so that it lacks numpy, h5py and torchaudio
        let py = d.path().join("venv/bin/python");
        std::fs::write(&py, "#!/bin/sh\nexec python3 -S \"$@\"\n").unwrap();
        let wheels = d.path().join("bundle/wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        let zip = |name: &str, init: &str| {
            let ok = Command::new("python3")
                .args(["-S", "-c"])
                .arg(format!(
                    "import zipfile; z = zipfile.ZipFile('{}', 'w'); \
                     z.writestr('{}/__init__.py', '{init}'); z.close()",
                    wheels.join(format!("{name}-0-py3-none-any.whl")).display(),
                    name
                ))
                .status()
                .unwrap();
            assert!(ok.success());
        };
        zip("h5py", "version = 1");
        zip("torchaudio", "raise ImportError");
        let work = d.path().join("work");
        let o = Command::new("bash")
            .arg(d.path().join("bundle/run.sh"))
            .arg("info")
            .env("TORCH_VENV", d.path().join("venv"))
            .env("OUT", d.path().join("out"))
            .env("MM_BUNDLE_WORK", &work)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{log}");
        assert!(log.contains("# python: no numpy in"), "{log}");
        assert!(
            log.contains("# python: h5py from the bundle's h5py-0-py3-none-any.whl\n"),
            "{log}"
        );
        assert!(
            log.contains("torchaudio-0-py3-none-any.whl does not import"),
            "{log}"
        );
        assert!(work.join("pylib/h5py/__init__.py").is_file());
    }

    #[test]
    fn run_sh_reports_failing_checks_and_exits_non_zero() {
        let d = fake_bundle(3);
        let (rc, rows) = run_fake(&d, &["info", "test-cuda", "word2vec-cpu"]);
        assert_eq!(rc, Some(1));
        assert_eq!(
            rows,
            [
                ("info".to_owned(), "FAILED".to_owned()),
                ("test-cuda".to_owned(), "FAILED".to_owned()),
                ("word2vec-cpu".to_owned(), "FAILED".to_owned()),
            ]
        );
    }

    #[test]
    fn picks_integration_test_executables_only() {
        let lines = [
            r#"{"reason":"compiler-artifact","target":{"name":"cuda","kind":["test"]},"profile":{"test":true},"executable":"/t/cuda-1"}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"mm_tests","kind":["lib"]},"profile":{"test":true},"executable":"/t/mm_tests-2"}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"tch","kind":["lib"]},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ]
        .join("\n");
        let found = test_executables(&lines).unwrap();
        assert_eq!(found, vec![("cuda".to_owned(), PathBuf::from("/t/cuda-1"))]);
        assert!(test_executables("").is_err());
    }
}
