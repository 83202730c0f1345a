//! The retrieval task trains in seconds on a small SynthAV and retrieves far above chance;
//! bad configurations are errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_tasks::retrieval::{self, LossKind, Retrieval};
use mm_train::{Input, RunOptions, Task};
use tch::Device;

fn synthav(dir: &std::path::Path, scenes: usize) -> std::path::PathBuf {
    let path = dir.join("sv.h5");
    let cfg = mm_data::synthav::SynthAvConfig {
        scenes,
        seed: 3,
        ..Default::default()
    };
    mm_data::synthav::write(&path, &cfg, &mut |_, _| {}).unwrap();
    path
}

#[test]
fn learns_a_joint_space_far_above_chance() {
    let dir = tempfile::tempdir().unwrap();
    let mut defaults = retrieval::defaults();
    defaults.task.data = synthav(dir.path(), 400);
    defaults.train.epochs = 14;
    defaults.train.batch_size = 32;
    defaults.train.patience = 0;
    defaults.task.sum_warmup_epochs = 4;
    defaults.task.hidden_dim = 64;
    let opts = RunOptions {
        config: None,
        overrides: vec![],
        device: Device::Cpu,
        dir: dir.path().join("run"),
        resume: false,
        progress: None,
    };
    let t0 = std::time::Instant::now();
    let r = mm_train::run::train::<Retrieval>(&defaults, &opts).unwrap();
    let t = &r.test;
    eprintln!("{:.1} s: {t:?}", t0.elapsed().as_secs_f64());
    // 40 test images: a random ranking has R@1 = 2.5%
    assert!((t["chance_r1"] - 2.5).abs() < 1e-9);
    assert!(
        t["r1_i2t"] >= 4.0 * t["chance_r1"],
        "image-to-text R@1 {}",
        t["r1_i2t"]
    );
    assert!(
        t["r1_t2i"] >= 3.0 * t["chance_r1"],
        "text-to-image R@1 {}",
        t["r1_t2i"]
    );
    assert!(t["r10_i2t"] > t["r1_i2t"] && t["medr_i2t"] < 10.0);
    // tag precision is reported (it is far above chance at full scale, see docs/tasks/, but
    // 40 test images are too few to assert it here)
    assert!((0.0..=100.0).contains(&t["tag_p1"]) && t["tag_p1_chance"] > 5.0);
    let out = dir.path().join("infer");
    let v = mm_train::run::infer::<Retrieval>(
        &opts.dir,
        &[
            Input::parse("test:0").unwrap(),
            Input::parse("text:a red circle").unwrap(),
        ],
        &out,
        &[],
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(v["results"][0]["captions"].as_array().unwrap().len(), 5);
    assert_eq!(v["results"][1]["images"].as_array().unwrap().len(), 5);
    assert!(out.join("retrieval.png").is_file());
    let e = mm_train::run::infer::<Retrieval>(
        &opts.dir,
        &[Input::parse("text:zebra").unwrap()],
        &out,
        &[],
        Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("vocabulary"), "{e}");
    // the data set moved: the run names the old path, and `task.data` points it at the new
    let moved = dir.path().join("moved.h5");
    std::fs::rename(&defaults.task.data, &moved).unwrap();
    let e = mm_train::run::evaluate::<Retrieval>(&opts.dir, "test", &[], Device::Cpu).unwrap_err();
    // mm-data's i/o error, wrapped as the task's
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.map(|i| i.kind()),
        Some(std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    assert!(e.to_string().contains("sv.h5"), "{e}");
    let set = [mm_train::config::string_override(
        "task.data",
        &moved.display().to_string(),
    )];
    let m = mm_train::run::evaluate::<Retrieval>(&opts.dir, "test", &set, Device::Cpu).unwrap();
    assert_eq!(&m, t);
}

#[test]
fn bad_configurations_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = retrieval::defaults().task;
    cfg.data = dir.path().join("absent.h5");
    assert!(Retrieval::build(&cfg, Device::Cpu).is_err());
    cfg.data = synthav(dir.path(), 30);
    cfg.embed_dim = 0;
    assert!(
        Retrieval::build(&cfg, Device::Cpu)
            .unwrap_err()
            .to_string()
            .contains("embed_dim")
    );
    cfg.embed_dim = 16;
    // torchvision-named backbone weights load into `image.backbone.*`
    tch::manual_seed(4);
    let bvs = tch::nn::VarStore::new(Device::Cpu);
    mm_vision::backbone(&bvs.root(), &cfg.backbone).unwrap();
    let weights = dir.path().join("cnn.safetensors");
    mm_vision::save_safetensors(&bvs, &weights, None).unwrap();
    cfg.backbone_weights = Some(weights);
    let t = Retrieval::build(&cfg, Device::Cpu).unwrap();
    let vars = t.var_store().variables();
    let want = &bvs.variables()["stages.1.conv.weight"];
    assert!(vars["image.backbone.stages.1.conv.weight"].equal(want));
    cfg.backbone_weights = Some(dir.path().join("absent.safetensors"));
    assert!(Retrieval::build(&cfg, Device::Cpu).is_err());
    cfg.backbone_weights = None;
    cfg.captions_field = "answers_typo".into();
    assert!(Retrieval::build(&cfg, Device::Cpu).is_err());
    // unknown keys in the TOML are rejected
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "[task]\nembed_dims = 8\n").unwrap();
    let opts = RunOptions {
        config: Some(toml),
        overrides: vec![],
        device: Device::Cpu,
        dir: dir.path().join("run"),
        resume: false,
        progress: None,
    };
    let e = mm_train::run::train::<Retrieval>(&retrieval::defaults(), &opts).unwrap_err();
    assert!(e.to_string().contains("embed_dims"), "{e}");
    assert_eq!(LossKind::default(), LossKind::VseppHardest);
}
