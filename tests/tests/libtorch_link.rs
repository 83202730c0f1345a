//! The link fix (docs/ARCHITECTURE.md, "Libtorch"): test and binary executables find libtorch
//! through their rpath and load its CUDA library, so CUDA works wherever a GPU exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// Paths of the shared objects mapped into this process.
fn loaded_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains(".so"))
        .map(PathBuf::from)
        .collect()
}

#[test]
fn cuda_library_is_loaded() {
    // Touch libtorch so that it is certainly initialised.
    let _ = tch::Cuda::is_available();
    // Without the fix rustc's --as-needed drops libtorch.so, so libtorch_cuda.so is never
    // loaded and CUDA would be silently unavailable even on a GPU machine.
    let libs = loaded_libraries();
    assert!(
        libs.iter().any(|p| p.ends_with("libtorch_cuda.so")),
        "libtorch_cuda.so is not loaded: {libs:?}"
    );
    // With the CUDA library loaded, libtorch reports CUDA exactly when a device exists.
    assert_eq!(tch::utils::has_cuda(), tch::Cuda::is_available());
}

#[test]
fn libtorch_is_found_through_the_rpath() {
    let _ = tch::get_num_threads();
    let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    if cfg!(feature = "cuda") {
        // The GPU bundle's run.sh points LD_LIBRARY_PATH at the GPU machine's torch on purpose.
        return;
    }
    // cargo test sets LD_LIBRARY_PATH to target directories, none of which holds libtorch.
    for dir in std::env::split_paths(&ld) {
        assert!(
            !dir.join("libtorch.so").exists(),
            "{} holds libtorch.so",
            dir.display()
        );
    }
    let torch = loaded_libraries()
        .into_iter()
        .find(|p| p.ends_with("libtorch_cpu.so"))
        .expect("libtorch_cpu.so loaded");
    assert!(torch.is_file());
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    assert_eq!(t.sum(tch::Kind::Float).double_value(&[]), 6.0);
}
