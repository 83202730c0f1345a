//! `cargo xtask gpu-bundle --out DIR`: everything the CUDA checks need, for a machine with a GPU
//! and PyTorch 2.11 but no Rust toolchain.
//!
//! The bundle holds the release `mm` binary, the `signal-workloads` tool with
//! `scripts/gpu_w2_torch.py` (mm's tensor path against PyTorch on the same card), the
//! `vision-workloads` tool with `scripts/bench_vision.py` (ResNet-50 forward and
//! forward+backward against PyTorch on the same card), and the test
//! executables of `mm-tests` built with its `cuda` feature, stripped, and `run.sh`, which points the loader at that machine's torch
//! (`/opt/torch/.venv` by default, `TORCH_VENV` to override) and runs every check, exiting
//! non-zero if any fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, have, output, project_root, run as exec, step};

/// The bundle must stay small enough to carry to the GPU machine.
const MAX_BUNDLE_BYTES: u64 = 60 << 20;

const RUN_SH: &str = r#"#!/usr/bin/env bash
# CUDA checks for mm, built by `cargo xtask gpu-bundle`. Needs PyTorch 2.11 (CUDA build) in
# $TORCH_VENV (default /opt/torch/.venv); no Rust toolchain. Exits non-zero if any check fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TORCH_VENV:-/opt/torch/.venv}
lib=$(ls -d "$venv"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then echo "no torch/lib under $venv (set TORCH_VENV)"; exit 2; fi
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out=${OUT:-$(mktemp -d)}
failed=()
check() { local name=$1; shift; echo "== $name: $*"; if "$@"; then echo "-- ok: $name"; else echo "-- FAILED: $name"; failed+=("$name"); fi; }
check info "$here/mm" info
check info-json-cuda bash -c "'$here/mm' info --json | tee '$out/info.json' | grep -q '\"cuda_available\": true'"
check train-cuda "$here/mm" train sound-tagging --quick --device cuda --out "$out/sound-tagging-cuda"
for t in "$here"/tests/*; do check "$(basename "$t")" "$t" --test-threads=1; done
# measurement, not a pass/fail check: mm's tensor path vs PyTorch on this card (W2)
check w2-gpu-vs-torch "$venv/bin/python" "$here/gpu_w2_torch.py" --mm "$here/signal-workloads"
# the training engine on CUDA: SynthAV retrieval, fp32 and with autocast
check synthav "$here/mm" data synthav --out "$out/synthav.h5" --scenes 1000
check retrieval-cuda "$here/mm" train retrieval --data "$out/synthav.h5" --device cuda --out "$out/retrieval-cuda" --quiet --set train.epochs=10
check retrieval-cuda-autocast "$here/mm" train retrieval --data "$out/synthav.h5" --device cuda --out "$out/retrieval-autocast" --quiet --set train.epochs=10 --set train.autocast=bf16
check captioning-cuda "$here/mm" train captioning --data "$out/synthav.h5" --device cuda --out "$out/captioning-cuda" --quiet --set train.epochs=5
check captioning-scst-cuda "$here/mm" train captioning --data "$out/synthav.h5" --device cuda --out "$out/captioning-scst-cuda" --quiet --set train.epochs=2 --set task.objective=scst --set "task.init_weights=$out/captioning-cuda" --set train.optimizer.lr=2e-4 --set train.schedule.kind=constant
check vqa-cuda "$here/mm" train vqa --data "$out/synthav.h5" --device cuda --out "$out/vqa-cuda" --quiet --set train.epochs=10 --set train.autocast=bf16
# measurement: retrieval training samples/s vs an equivalent PyTorch script (needs h5py there)
if "$venv/bin/python" -c "import h5py" 2>/dev/null; then
  check retrieval-gpu-vs-torch "$venv/bin/python" "$here/bench_retrieval.py" --data "$out/synthav.h5" --mm "$here/mm" --device cuda --steps 300 --repeat 2
  check vqa-gpu-vs-torch "$venv/bin/python" "$here/bench_vqa.py" --data "$out/synthav.h5" --mm "$here/mm" --device cuda --steps 300 --repeat 2
  check captioning-gpu-vs-torch "$venv/bin/python" "$here/bench_captioning.py" --data "$out/synthav.h5" --mm "$here/mm" --device cuda --steps 200 --repeat 2
else
  echo "== retrieval-gpu-vs-torch: skipped (no h5py in $venv)"
fi
# measurement: ResNet-50 forward (eval) and forward+backward at batch 64 vs PyTorch, same card
check resnet-gpu-vs-torch env MM_VISION_BENCH="$here/vision-workloads" "$venv/bin/python" "$here/bench_vision.py" --device cuda --archs resnet50 --batch 64 --repeat 20
check resnet-train-gpu-vs-torch env MM_VISION_BENCH="$here/vision-workloads" "$venv/bin/python" "$here/bench_vision.py" --device cuda --archs resnet50 --batch 64 --repeat 20 --train --autocast bf16
echo
if [ ${#failed[@]} -eq 0 ]; then echo "all CUDA checks passed"; else echo "failed: ${failed[*]}"; exit 1; fi
"#;

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
    exec(
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
    )?;
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
    let tests = test_executables(&String::from_utf8_lossy(&o.stdout))?;

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
        bail!("cargo reported no test executable for mm-tests");
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
