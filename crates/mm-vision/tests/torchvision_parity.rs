//! Every backbone against torchvision 0.26: the same seeded random weights (calibrated batch
//! norms), loaded from safetensors with torchvision's names, must give the same feature maps,
//! pooled vectors, fc7 features and logits in eval mode, to 1e-4 max abs error.
//!
//! The reference weights (about 2.6 GB, VGG being most of it) are too large to commit: the
//! first test to need them runs `scripts/vision_reference.py` with the PyTorch venv that
//! `cargo xtask setup` creates (torch 2.11.0, torchvision 0.26.0, safetensors) and caches
//! them under the target directory until the script changes. `MM_REF_PYTHON` overrides the
//! interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mm_vision::{Arch, BackboneConfig, LoadOptions, Vgg, backbone, load_safetensors};
use tch::{Device, Tensor, nn};

const TOLERANCE: f64 = 1e-4;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MM_REF_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("MM_TORCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/venv-torch-2.11.0"));
    venv.join("bin/python")
}

/// The directory of reference files, generated once per script version.
fn reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vision_reference.py");
        let source = std::fs::read(&script).expect("scripts/vision_reference.py");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vision-ref");
        let stamp = dir.join("script.py");
        if std::fs::read(&stamp).ok().as_deref() == Some(&source[..])
            && dir.join("manifest.json").is_file()
        {
            return dir;
        }
        let py = python();
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new(&py)
            .arg(&script)
            .arg("--out")
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): run `cargo xtask setup`, which installs torch, \
                     torchvision and safetensors there, or set MM_REF_PYTHON",
                    py.display()
                )
            });
        assert!(
            status.success(),
            "{} scripts/vision_reference.py failed; `cargo xtask setup` installs torchvision \
             0.26.0 and safetensors into the PyTorch venv",
            py.display()
        );
        std::fs::write(&stamp, &source).expect("stamp");
        dir
    })
}

fn outputs(arch: Arch) -> HashMap<String, Tensor> {
    let path = reference().join(format!("{arch}.outputs.safetensors"));
    Tensor::read_safetensors(&path)
        .expect("reference outputs")
        .into_iter()
        .collect()
}

fn max_err(name: &str, ours: &Tensor, theirs: &Tensor) -> f64 {
    assert_eq!(ours.size(), theirs.size(), "{name}: shape");
    let e = (ours - theirs).abs().max().double_value(&[]);
    let scale = theirs.abs().max().double_value(&[]);
    assert!(
        scale > 1e-3,
        "{name}: the reference output is degenerate ({scale})"
    );
    e
}

fn check(arch: Arch) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let cfg = BackboneConfig {
        num_classes: Some(1000),
        ..BackboneConfig::headless(arch)
    };
    let net = backbone(&vs.root(), &cfg).unwrap();
    let weights = reference().join(format!("{arch}.safetensors"));
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let report = load_safetensors(&mut vs, &weights, &strict).unwrap();
    assert_eq!(report.loaded, vs.variables().len());
    let out = outputs(arch);
    let x = &out["input"];
    let mut worst = Vec::new();
    tch::no_grad(|| {
        for stage in net.stages() {
            let ours = net.feature_map(x, &stage, false).unwrap();
            worst.push((stage.clone(), max_err(&stage, &ours, &out[&stage])));
        }
        let pooled = net.pooled(x, false).unwrap();
        worst.push(("pooled".into(), max_err("pooled", &pooled, &out["pooled"])));
        let logits = net.logits(x, false).unwrap();
        worst.push(("logits".into(), max_err("logits", &logits, &out["logits"])));
    });
    if let Some(fc7) = out.get("fc7") {
        // the boxed backbone hides `fc7`: build a `Vgg` and load the same file
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let vgg2 = Vgg::new(&vs2.root(), arch, Some(1000)).unwrap();
        load_safetensors(&mut vs2, &weights, &strict).unwrap();
        let ours = tch::no_grad(|| vgg2.fc7(x, false).unwrap());
        worst.push(("fc7".into(), max_err("fc7", &ours, fc7)));
    }
    eprintln!("{arch}: max abs error per output {worst:?}");
    for (name, e) in worst {
        assert!(
            e <= TOLERANCE,
            "{arch} {name}: max abs error {e:e} > {TOLERANCE:e}"
        );
    }
}

#[test]
fn resnet18_matches_torchvision() {
    check(Arch::Resnet18);
}

#[test]
fn resnet34_matches_torchvision() {
    check(Arch::Resnet34);
}

#[test]
fn resnet50_matches_torchvision() {
    check(Arch::Resnet50);
}

#[test]
fn resnet101_matches_torchvision() {
    check(Arch::Resnet101);
}

#[test]
fn vgg16_matches_torchvision() {
    check(Arch::Vgg16);
}

#[test]
fn vgg16_bn_matches_torchvision() {
    check(Arch::Vgg16Bn);
}

#[test]
fn vgg19_matches_torchvision() {
    check(Arch::Vgg19);
}

#[test]
fn vgg19_bn_matches_torchvision() {
    check(Arch::Vgg19Bn);
}
