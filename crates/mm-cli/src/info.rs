//! `mm info`: what this binary was built with and what the machine offers.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

/// The path of the shared library `name` if this process has it mapped (`/proc/self/maps`).
fn loaded_library(name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|p| p.file_name().is_some_and(|f| f == name))
}

/// The PyTorch version of a pip-installed libtorch (`torch/version.py` beside `torch/lib`).
fn torch_version(lib_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_owned())
}

pub fn run(as_json: bool) -> Result<()> {
    // Touch libtorch first so that its libraries are mapped.
    let threads = tch::get_num_threads();
    let has_cuda = tch::utils::has_cuda();
    let cuda = tch::Cuda::is_available();
    let devices = tch::Cuda::device_count();
    let cudnn = tch::Cuda::cudnn_is_available();
    let lib_dir = loaded_library("libtorch_cpu.so").and_then(|p| p.parent().map(PathBuf::from));
    // Loaded, CUDA works wherever a device exists; not loaded, CUDA is off even on a GPU.
    let cuda_linked = loaded_library("libtorch_cuda.so").is_some();
    let torch = lib_dir.as_deref().and_then(torch_version);
    let info = json!({
        "mm": env!("CARGO_PKG_VERSION"),
        "tch": env!("MM_TCH_VERSION"),
        "libtorch": {
            "version": torch,
            "path": lib_dir.as_ref().map(|p| p.display().to_string()),
            "cuda_library_loaded": cuda_linked,
            "has_cuda": has_cuda,
        },
        "cuda_available": cuda,
        "cuda_devices": devices,
        "cudnn_available": cudnn,
        "torch_threads": threads,
        "cpus": cpus(),
        "features": compiled_features(),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("mm {}", env!("CARGO_PKG_VERSION"));
        println!("tch {} (compiled)", env!("MM_TCH_VERSION"));
        println!(
            "libtorch {} at {}",
            torch.as_deref().unwrap_or("(version unknown)"),
            lib_dir.map_or("(not found)".into(), |p| p.display().to_string())
        );
        println!("libtorch CUDA library loaded: {cuda_linked} (libtorch has CUDA: {has_cuda})");
        println!("CUDA available: {cuda} ({devices} device(s)), cuDNN: {cudnn}");
        println!("threads: torch {threads}, cpus {}", cpus());
        let f = compiled_features();
        println!(
            "features: {}",
            if f.is_empty() {
                "none".to_owned()
            } else {
                f.join(", ")
            }
        );
    }
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Cargo features of `mm-cli` compiled into this binary. `mm-cli` has none yet; each feature it
/// gains gets a `#[cfg(feature = "...")]` entry here.
fn compiled_features() -> Vec<&'static str> {
    let features: &[&str] = &[];
    features.to_vec()
}
