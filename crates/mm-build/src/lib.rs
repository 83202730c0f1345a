//! Build-script helper for every `mm` crate whose binaries, tests, benches or examples link tch.
//!
//! # Why
//! With a plain `tch` dependency, executables get no rpath (they fail to start without
//! `LD_LIBRARY_PATH`) and rustc's default `--as-needed` drops `libtorch_cuda.so`, so
//! `tch::Cuda::is_available()` is false even on a GPU machine. tch's own build script emits
//! the fix, but `cargo:rustc-link-arg` only applies to the package that emits it, so each crate
//! that produces tch executables must emit it again.
//!
//! # Use
//! Depend on `torch-sys` directly (its `links = "tch"` hands this crate's build script the
//! `DEP_TCH_LIBTORCH_LIB` variable) and call [`link_libtorch`] from `build.rs`:
//!
//! ```text
//! // build.rs
//! fn main() {
//!     mm_build::link_libtorch();
//! }
//! ```
//!
//! For a crate where tch is optional (a `tch` feature), the variable is only present when the
//! feature is on; [`link_libtorch`] then does nothing.

use std::fmt::Write as _;

/// The variable torch-sys exports (through `links = "tch"`) to dependents' build scripts.
pub const LIBTORCH_LIB_VAR: &str = "DEP_TCH_LIBTORCH_LIB";

/// The `cargo:` lines that link libtorch for the directory `lib_dir`: an rpath to it, then
/// `--no-as-needed` and `-ltorch`, so that `libtorch_cuda.so` (a dependency of `libtorch.so`)
/// is loaded whenever it exists.
pub fn link_directives(lib_dir: &str) -> String {
    let mut out = String::new();
    for arg in [
        format!("-Wl,-rpath,{lib_dir}"),
        "-Wl,--no-as-needed".to_owned(),
        format!("-L{lib_dir}"),
        "-ltorch".to_owned(),
    ] {
        let _ = writeln!(out, "cargo:rustc-link-arg={arg}");
    }
    out
}

/// Emits the link directives for libtorch when the build script sees `DEP_TCH_LIBTORCH_LIB`
/// (that is, when the crate depends on `torch-sys`), and nothing otherwise.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed={LIBTORCH_LIB_VAR}");
    if let Some(dir) = std::env::var_os(LIBTORCH_LIB_VAR) {
        print!("{}", link_directives(&dir.to_string_lossy()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_put_rpath_before_no_as_needed_before_torch() {
        let d = link_directives("/x/lib");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines[0], "cargo:rustc-link-arg=-Wl,-rpath,/x/lib");
        let pos = |s: &str| lines.iter().position(|l| l.ends_with(s)).unwrap();
        assert!(pos("--no-as-needed") < pos("-ltorch"));
        assert!(lines.iter().all(|l| l.starts_with("cargo:rustc-link-arg=")));
    }
}
