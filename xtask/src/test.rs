//! `cargo xtask test`: the README's test command and CI's only step.

use std::collections::BTreeSet;

use anyhow::{Result, bail};

use crate::util::{cargo, output, run as exec, step};

/// Crates that must exist in one version only: two ndarrays (tch's and hdf5's) make their
/// arrays incompatible types; two tch/torch-sys would link two libtorch bindings.
const SINGLE_VERSION: &[&str] = &["ndarray", "tch", "torch-sys"];
/// Crates that must build without libtorch.
const NO_LIBTORCH: &[&str] = &[
    "mm-signal",
    "mm-text",
    "mm-data",
    "mm-core",
    "mm-plot",
    "mm-image",
];

pub fn run() -> Result<()> {
    let t0 = std::time::Instant::now();
    crate::setup::run()?;

    step("cargo fmt --check");
    exec(
        cargo().args(["fmt", "--all", "--", "--check"]),
        "formatting check (run `cargo fmt --all` to fix)",
    )?;

    step("cargo clippy -D warnings");
    exec(
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        "clippy",
    )?;

    step("cargo doc -D warnings");
    exec(
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--locked"])
            .env("RUSTDOCFLAGS", "-D warnings"),
        "crate docs (broken links, unclosed tags)",
    )?;

    step("dependency guards");
    single_versions()?;
    no_libtorch_in_leaves()?;
    crate::architecture::check()?;
    // the leaves must also compile on their own, with their default features (no tch)
    exec(
        cargo()
            .args(["check", "--locked", "--all-targets"])
            .args(NO_LIBTORCH.iter().flat_map(|k| ["-p", k])),
        "building the libtorch-free crates alone",
    )?;

    step("cargo test --workspace");
    exec(cargo().args(["test", "--workspace", "--locked"]), "tests")?;

    println!(
        "\nxtask test: all passed in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn tree(args: &[&str]) -> Result<String> {
    let o = output(
        cargo()
            .args(["tree", "--locked", "--prefix", "none", "--format", "{p}"])
            .args(args),
    )?;
    if !o.status.success() {
        bail!("cargo tree failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn single_versions() -> Result<()> {
    let text = tree(&["--workspace", "--all-features", "-e", "normal,build,dev"])?;
    for name in SINGLE_VERSION {
        let versions = versions_of(name, &text);
        if versions.len() > 1 {
            bail!(
                "{name} appears in several versions ({}): pin one in Cargo.lock, e.g. \
                 `cargo update -p {name}@<newer> --precise <older>`",
                versions.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        println!(
            "ok: one {name} ({})",
            versions.into_iter().next().unwrap_or("absent")
        );
    }
    Ok(())
}

/// The versions of crate `name` in `cargo tree --prefix none --format {p}` output.
fn versions_of<'a>(name: &str, tree: &'a str) -> BTreeSet<&'a str> {
    tree.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(" v"))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default())
        .collect()
}

fn no_libtorch_in_leaves() -> Result<()> {
    for krate in NO_LIBTORCH {
        let text = tree(&["-p", krate, "-e", "normal"])?;
        if text
            .lines()
            .any(|l| l.starts_with("torch-sys ") || l.starts_with("tch "))
        {
            bail!("{krate} must build without libtorch, but its normal dependencies pull in tch");
        }
        println!("ok: {krate} builds without libtorch");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_two_ndarrays_but_not_ndarray_npy() {
        let tree = "ndarray v0.16.1\nndarray-npy v0.9.1\nhdf5-metno v0.15.1\nndarray v0.17.2\n\
                    ndarray v0.16.1 (*)\n";
        let v: Vec<&str> = versions_of("ndarray", tree).into_iter().collect();
        assert_eq!(v, ["0.16.1", "0.17.2"]);
        assert!(versions_of("tch", tree).is_empty());
    }
}
