//! `cargo xtask <task>`: the workspace's automation, in Rust so that it runs wherever cargo does.
//!
//! Tasks: `setup`, `test`, `demo`, `bench`, `prepare`, `gpu-bundle --out DIR`. Run
//! `cargo xtask help` for details.

mod architecture;
mod bench;
mod demo;
mod gpu_bundle;
mod prepare;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

tasks:
  setup                 make this machine ready: PyTorch 2.11.0 in a reusable venv, the libtorch
                        symlink that .cargo/config.toml points at, HDF5 development files
  test                  setup, then fmt --check, clippy -D warnings, rustdoc -D warnings,
                        dependency guards, every test
  demo [-- ARGS]        setup, then train the main pipeline on built-in data (ARGS go to
                        `mm train sound-tagging`, e.g. `-- --quick` or `-- --device cuda`)
  bench [--quick] [--threads N] [NAME...]
                        setup, then the side-by-side benchmarks against librosa/torchaudio/PyTorch
                        (signal vision retrieval vqa captioning; also criterion, word2vec, all);
                        logs in runs/bench/ (`cargo xtask bench --help` for more)
  prepare synthav [--out data/synthav.h5] [--scenes N] [--seed S]
                        generate the SynthAV audio-visual-text data set (HDF5)
  prepare esc50|flickr8k|coco|vqa|av-folders --raw DIR --out FILE.h5 [--skip-bad]
                        convert a downloaded data set tree (see docs/datasets.md)
  gpu-bundle --out DIR  release binaries and CUDA test executables, stripped, with run.sh for a
                        CUDA machine that has PyTorch 2.11 at /opt/torch/.venv (no Rust needed)

environment:
  MM_TORCH_VENV   where the PyTorch venv lives (default /opt/venv-torch-2.11.0)
  LIBTORCH        libtorch path (default from .cargo/config.toml: /opt/libtorch)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => test::run(),
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("gpu-bundle") => gpu_bundle::run(&args[1..]),
        Some("prepare") => prepare::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
