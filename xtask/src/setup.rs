//! `cargo xtask setup`: PyTorch 2.11.0 in a reusable venv, the libtorch symlink, system packages.
//!
//! Idempotent: each step checks first and does nothing when already done, so a second run takes
//! well under a second.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{have, output, project_root, run as exec, step};

/// The PyTorch release that tch 0.24 is built for.
pub const TORCH_VERSION: &str = "2.11.0";
/// Python packages the reference scripts that tests run need beside torch (torchvision's
/// release for torch 2.11, safetensors to write weights, and librosa for mm-signal's parity
/// sweep), pinned.
pub const REFERENCE_PACKAGES: &[(&str, &str)] = &[
    ("torchvision", "0.26.0"),
    ("safetensors", "0.8.0"),
    ("librosa", "0.11.0"),
];
/// Free space the PyTorch install needs (2.75 GB download, 4.7 GB installed), with margin.
const TORCH_NEEDS_BYTES: u64 = 8 << 30;
/// Debian packages the build needs.
const APT_PACKAGES: &[&str] = &["libhdf5-dev", "pkg-config"];

pub fn run() -> Result<()> {
    let t0 = std::time::Instant::now();
    step("setup: system packages");
    apt_packages()?;
    let libtorch = configured_libtorch()?;
    if let Some(lib) = std::env::var_os("LIBTORCH").filter(|_| exported_libtorch()) {
        step("setup: libtorch");
        let lib = PathBuf::from(lib);
        if !lib.join("lib/libtorch.so").is_file() {
            bail!(
                "LIBTORCH is exported as {} but it has no lib/libtorch.so; unset LIBTORCH to \
                 let setup install PyTorch {TORCH_VERSION}, or point it at a libtorch {TORCH_VERSION}",
                lib.display()
            );
        }
        println!("ok: using the exported LIBTORCH={}", lib.display());
        return Ok(());
    }
    step(&format!("setup: PyTorch {TORCH_VERSION} venv"));
    let install = TorchInstall::from_env();
    let torch_dir = install.ensure()?;
    step("setup: reference packages (torchvision, safetensors, librosa)");
    install.ensure_reference_packages()?;
    step("setup: libtorch symlink");
    ensure_symlink(&libtorch, &torch_dir)?;
    println!(
        "\nsetup done in {:.1} s: LIBTORCH={} -> {}",
        t0.elapsed().as_secs_f64(),
        libtorch.display(),
        torch_dir.display()
    );
    Ok(())
}

/// The interpreter of the PyTorch venv, after installing those of `packages` (name, version)
/// that it lacks. [`run`] must have made the venv.
pub fn venv_python_with(packages: &[(&str, &str)], rerun: &str) -> Result<PathBuf> {
    let install = TorchInstall::from_env();
    let python = install.venv.join("bin/python");
    if installed_torch(&install.venv).is_none() {
        bail!(
            "{} holds no PyTorch {TORCH_VERSION} (with an exported LIBTORCH, setup makes no \
             venv): set MM_TORCH_VENV to a venv that has it, or unset LIBTORCH",
            install.venv.display()
        );
    }
    install.ensure_packages(packages, rerun)?;
    Ok(python)
}

/// True when the user exported LIBTORCH (cargo's `[env]` does not override it).
fn exported_libtorch() -> bool {
    // Inside `cargo xtask`, cargo has already applied `[env]` from .cargo/config.toml, so the
    // variable is always set; it was exported by the user only if it differs from the config.
    match (std::env::var_os("LIBTORCH"), configured_libtorch()) {
        (Some(v), Ok(cfg)) => v != cfg.as_os_str(),
        _ => false,
    }
}

/// The LIBTORCH value committed in `.cargo/config.toml`.
fn configured_libtorch() -> Result<PathBuf> {
    let path = project_root().join(".cargo/config.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("LIBTORCH"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|v| PathBuf::from(v.trim().trim_matches('"')))
        .next()
        .with_context(|| format!("{} sets no LIBTORCH under [env]", path.display()))
}

/// Where and how PyTorch is installed.
#[derive(Debug, Clone)]
struct TorchInstall {
    /// The venv (`MM_TORCH_VENV`, default `/opt/venv-torch-2.11.0`).
    venv: PathBuf,
    /// The interpreter that creates it (`PYTHON`, default `python3`).
    python: String,
    /// Refuse to start with less free space than this.
    min_free_bytes: u64,
    /// A PyPI mirror (`MM_PIP_INDEX_URL`), passed to pip as `--index-url`.
    index_url: Option<String>,
}

impl TorchInstall {
    fn from_env() -> Self {
        Self {
            venv: std::env::var_os("MM_TORCH_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(format!("/opt/venv-torch-{TORCH_VERSION}"))),
            python: std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            min_free_bytes: TORCH_NEEDS_BYTES,
            index_url: std::env::var("MM_PIP_INDEX_URL").ok(),
        }
    }
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u"))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn missing_apt_packages(pkgs: &[&str]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for p in pkgs {
        let o = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))?;
        if !String::from_utf8_lossy(&o.stdout).contains("install ok installed") {
            missing.push((*p).to_owned());
        }
    }
    Ok(missing)
}

fn apt_packages() -> Result<()> {
    if !have("dpkg-query") {
        println!(
            "skip: not a Debian-like system; install the HDF5 development files (HDF5 1.10+) and \
             pkg-config with your package manager"
        );
        return Ok(());
    }
    let mut wanted = APT_PACKAGES.to_vec();
    // Debian's python3 creates venvs only with python3-venv (it provides ensurepip).
    let python = TorchInstall::from_env().python;
    let has_ensurepip = output(Command::new(&python).args(["-c", "import ensurepip"]))
        .is_ok_and(|o| o.status.success());
    if !has_ensurepip && installed_torch(&TorchInstall::from_env().venv).is_none() {
        wanted.push("python3-venv");
    }
    let missing = missing_apt_packages(&wanted)?;
    if missing.is_empty() {
        println!("ok: {} already installed", wanted.join(", "));
        return Ok(());
    }
    let sudo: &[&str] = if is_root() {
        &[]
    } else if have("sudo") {
        &["sudo", "-n"]
    } else {
        bail!(
            "missing Debian packages {}: not root and no sudo; run as root: apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    };
    let apt = |args: &[&str]| -> Result<()> {
        let mut full: Vec<&str> = sudo.to_vec();
        full.push("apt-get");
        full.extend_from_slice(args);
        let mut cmd = Command::new(full[0]);
        cmd.args(&full[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        println!("running: {}", full.join(" "));
        let o = output(&mut cmd)?;
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "`{}` failed ({}):\n{}\nfix the package manager (network, disk space, a held \
                 dpkg lock), or install {} by hand, then re-run `cargo xtask setup`",
                full.join(" "),
                o.status,
                tail.join("\n"),
                missing.join(" ")
            );
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter().map(String::as_str));
    apt(&install)?;
    println!("done: installed {}", missing.join(", "));
    Ok(())
}

/// The `torch` package directory of `venv` if it holds PyTorch [`TORCH_VERSION`].
fn installed_torch(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(&lib).ok()?.flatten() {
        let torch = entry.path().join("site-packages/torch");
        let Ok(text) = std::fs::read_to_string(torch.join("version.py")) else {
            continue;
        };
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("__version__ = "))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_owned())?;
        let base = version.split('+').next().unwrap_or_default();
        if base == TORCH_VERSION && torch.join("lib/libtorch.so").is_file() {
            return Some(torch);
        }
    }
    None
}

/// The version pip recorded for distribution `name` in `venv` (from its `.dist-info`).
fn installed_version(venv: &Path, name: &str) -> Option<String> {
    let prefix = format!("{name}-");
    for lib in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        for entry in std::fs::read_dir(lib.path().join("site-packages"))
            .ok()?
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(rest) = file.strip_prefix(&prefix)
                && let Some(version) = rest.strip_suffix(".dist-info")
            {
                return Some(version.split('+').next().unwrap_or_default().to_owned());
            }
        }
    }
    None
}

/// Free bytes on the file system holding `path` (or its nearest existing ancestor).
fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent()?;
    }
    let o = output(Command::new("df").args(["-Pk"]).arg(p)).ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let kb: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

impl TorchInstall {
    /// `pip install` of `packages` with the venv's interpreter.
    fn pip(&self, packages: &[String]) -> Command {
        let mut pip = Command::new(self.venv.join("bin/python"));
        pip.args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            // the venv is made once; a cached copy of torch's CUDA wheels is ~4 GB of disk
            // that a CI machine may not have
            "--no-cache-dir",
            "--progress-bar",
            "off",
        ]);
        if let Some(url) = &self.index_url {
            pip.args(["--index-url", url]);
        }
        pip.args(packages);
        pip
    }

    /// Installs [`REFERENCE_PACKAGES`] that the venv lacks (torchvision pins torch, so pip
    /// leaves the installed torch as it is).
    fn ensure_reference_packages(&self) -> Result<()> {
        self.ensure_packages(REFERENCE_PACKAGES, "cargo xtask setup")
    }

    /// Installs those of `packages` (name, version) that the venv lacks; `rerun` names the
    /// command to run again after a failure.
    fn ensure_packages(&self, packages: &[(&str, &str)], rerun: &str) -> Result<()> {
        if packages.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = packages
            .iter()
            .filter(|(name, version)| {
                installed_version(&self.venv, name).as_deref() != Some(*version)
            })
            .map(|(name, version)| format!("{name}=={version}"))
            .collect();
        if missing.is_empty() {
            let names: Vec<String> = packages.iter().map(|(n, v)| format!("{n} {v}")).collect();
            println!("ok: {} already installed", names.join(", "));
            return Ok(());
        }
        println!(
            "installing {} into {}",
            missing.join(" "),
            self.venv.display()
        );
        exec(&mut self.pip(&missing), "pip install").with_context(|| {
            format!(
                "could not install {} into {}: check that PyPI is reachable, then re-run \
                 `{rerun}`",
                missing.join(" "),
                self.venv.display()
            )
        })
    }

    /// The `torch` package directory, installing PyTorch first if the venv lacks it.
    fn ensure(&self) -> Result<PathBuf> {
        let (venv, python) = (self.venv.as_path(), self.python.as_str());
        if let Some(torch) = installed_torch(venv) {
            println!("ok: PyTorch {TORCH_VERSION} already in {}", venv.display());
            return Ok(torch);
        }
        if !have(python) && !Path::new(python).is_file() {
            bail!(
                "`{python}` not found: install Python 3.9+ with venv support \
             (Debian: apt-get install -y python3 python3-venv), then re-run `cargo xtask setup`"
            );
        }
        if let Some(free) = free_bytes(venv)
            && free < self.min_free_bytes
        {
            bail!(
                "only {:.1} GiB free where the venv goes ({}); PyTorch needs about 8 GiB: free \
             space there, or set MM_TORCH_VENV to a directory on a larger disk",
                free as f64 / (1u64 << 30) as f64,
                venv.display()
            );
        }
        let vpy = venv.join("bin/python");
        if !vpy.is_file() {
            println!("creating venv {}", venv.display());
            let o = output(Command::new(python).args(["-m", "venv"]).arg(venv))?;
            if !o.status.success() {
                bail!(
                    "`{python} -m venv {}` failed: {}\non Debian install venv support with \
                 `apt-get install -y python3-venv`; if the directory is not writable, run as \
                 root or set MM_TORCH_VENV to a writable path",
                    venv.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
            }
        }
        let mut pip = self.pip(&[format!("torch=={TORCH_VERSION}")]);
        println!(
            "installing torch=={TORCH_VERSION} from PyPI into {} (2.75 GB download, ~1-3 min)",
            venv.display()
        );
        exec(&mut pip, "pip install torch")
    .with_context(|| {
        format!(
            "PyTorch could not be installed: check that PyPI is reachable and that the disk has \
             about 8 GiB free, then re-run `cargo xtask setup` (the venv {} is reused)",
            venv.display()
        )
    })?;
        installed_torch(venv).with_context(|| {
            format!(
                "pip finished but {} holds no torch {TORCH_VERSION} with lib/libtorch.so",
                venv.display()
            )
        })
    }
}

fn ensure_symlink(link: &Path, target: &Path) -> Result<()> {
    match std::fs::read_link(link) {
        Ok(current) if current == target => {
            println!("ok: {} -> {}", link.display(), target.display());
            return Ok(());
        }
        Ok(_) => {}
        Err(_) if link.exists() => bail!(
            "{} exists and is not a symlink; move it away (or export LIBTORCH to use it as \
             libtorch), then re-run `cargo xtask setup`",
            link.display()
        ),
        Err(_) => {}
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).with_context(|| {
        format!(
            "creating symlink {} (run as root, or export LIBTORCH={})",
            tmp.display(),
            target.display()
        )
    })?;
    std::fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))?;
    println!("done: {} -> {}", link.display(), target.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(venv: &Path) -> TorchInstall {
        TorchInstall {
            venv: venv.to_owned(),
            python: "python3".to_owned(),
            min_free_bytes: 0,
            index_url: None,
        }
    }

    fn fake_torch(venv: &Path, version: &str) -> PathBuf {
        let torch = venv.join("lib/python3.11/site-packages/torch");
        std::fs::create_dir_all(torch.join("lib")).unwrap();
        std::fs::write(
            torch.join("version.py"),
            format!("__version__ = '{version}'\n"),
        )
        .unwrap();
        std::fs::write(torch.join("lib/libtorch.so"), b"").unwrap();
        torch
    }

    #[test]
    fn an_installed_torch_of_the_right_version_is_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let torch = fake_torch(&d.join("v"), "2.11.0+cu130");
        assert_eq!(installed_torch(&d.join("v")), Some(torch.clone()));
        // ensure() finds it without running python or pip
        let t = TorchInstall {
            python: "/nonexistent/python3".into(),
            ..install(&d.join("v"))
        };
        assert_eq!(t.ensure().unwrap(), torch);
        fake_torch(&d.join("w"), "2.10.0");
        assert_eq!(installed_torch(&d.join("w")), None);
    }

    #[test]
    fn a_missing_python_stops_with_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = TorchInstall {
            python: "/nonexistent/python3".into(),
            ..install(&d.join("v"))
        };
        let e = format!("{:#}", t.ensure().unwrap_err());
        assert!(
            e.contains("not found") && e.contains("apt-get install -y python3"),
            "{e}"
        );
    }

    #[test]
    fn too_little_disk_stops_before_downloading() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = TorchInstall {
            min_free_bytes: u64::MAX,
            ..install(&d.join("v"))
        };
        let e = format!("{:#}", t.ensure().unwrap_err());
        assert!(e.contains("GiB free") && e.contains("MM_TORCH_VENV"), "{e}");
        assert!(!d.join("v").exists(), "nothing is created before the check");
    }

    #[test]
    fn a_failing_pip_stops_with_a_clear_message() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // a venv whose "python" is a script that fails like pip without network
        let bin = d.join("v/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("python"),
            "#!/bin/sh\necho 'ERROR: No matching distribution found for torch' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("python"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let e = format!("{:#}", install(&d.join("v")).ensure().unwrap_err());
        assert!(
            e.contains("PyTorch could not be installed") && e.contains("re-run"),
            "{e}"
        );
    }

    #[test]
    fn reference_packages_are_found_by_dist_info_or_installed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let site = d.join("v/lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("torchvision-0.26.0+cu130.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("safetensors-0.7.0.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("librosa-0.11.0.dist-info")).unwrap();
        assert_eq!(
            installed_version(&d.join("v"), "torchvision").as_deref(),
            Some("0.26.0")
        );
        assert_eq!(
            installed_version(&d.join("v"), "safetensors").as_deref(),
            Some("0.7.0")
        );
        assert_eq!(installed_version(&d.join("v"), "torch"), None);
        // safetensors has the wrong version: pip runs (here a fake that fails) for it alone
        let bin = d.join("v/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "#!/bin/sh\necho \"$@\" >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("python"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let e = format!(
            "{:#}",
            install(&d.join("v"))
                .ensure_reference_packages()
                .unwrap_err()
        );
        assert!(e.contains("could not install safetensors==0.8.0"), "{e}");
        assert!(
            !e.contains("torchvision==") && !e.contains("librosa=="),
            "{e}"
        );
        std::fs::rename(
            site.join("safetensors-0.7.0.dist-info"),
            site.join("safetensors-0.8.0.dist-info"),
        )
        .unwrap();
        install(&d.join("v")).ensure_reference_packages().unwrap();
    }

    #[test]
    fn the_committed_config_names_the_libtorch_symlink() {
        assert_eq!(
            configured_libtorch().unwrap(),
            PathBuf::from("/opt/libtorch")
        );
    }

    #[test]
    fn the_symlink_is_created_replaced_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let link = d.join("libtorch");
        ensure_symlink(&link, &a).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), a);
        ensure_symlink(&link, &b).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), b);
        ensure_symlink(&link, &b).unwrap();
        let real = d.join("real");
        std::fs::create_dir_all(&real).unwrap();
        let e = format!("{:#}", ensure_symlink(&real, &a).unwrap_err());
        assert!(e.contains("not a symlink"), "{e}");
    }
}
