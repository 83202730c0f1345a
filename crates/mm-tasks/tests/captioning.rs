//! Show, Attend and Tell on a small SynthAV: it learns to caption within seconds, its attention
//! maps are distributions, and bad configurations are errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_tasks::captioning::{self, Captioning};
use mm_train::{Input, RunOptions, Task};
use tch::Device;

#[test]
fn learns_to_caption_and_writes_attention_strips() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let sv = mm_data::synthav::SynthAvConfig {
        scenes: 300,
        seed: 9,
        ..Default::default()
    };
    mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
    let mut defaults = captioning::defaults();
    defaults.task.data = data.clone();
    defaults.task.decoder_dim = 128;
    defaults.task.dropout = 0.3;
    defaults.task.beam_size = 2;
    defaults.train.epochs = 8;
    defaults.train.batch_size = 32;
    defaults.train.patience = 0;
    let out = dir.path().join("run");
    let opts = RunOptions {
        config: None,
        overrides: vec![],
        device: Device::Cpu,
        dir: out.clone(),
        resume: false,
        progress: None,
    };
    let t0 = std::time::Instant::now();
    let r = mm_train::run::train::<Captioning>(&defaults, &opts).unwrap();
    eprintln!("{:.1} s: {:?}", t0.elapsed().as_secs_f64(), r.test);
    // an untrained decoder scores near zero; a few epochs give fluent SynthAV captions
    assert!(r.test["bleu4"] > 20.0, "BLEU-4 {}", r.test["bleu4"]);
    assert!(r.test["cider_d"] > 50.0, "CIDEr-D {}", r.test["cider_d"]);
    assert!(r.test["nn_bleu4"] > 0.0 && r.test["nn_cider_d"] > 0.0);
    let v = mm_train::run::infer::<Captioning>(
        &out,
        &[Input::parse("test:0").unwrap()],
        &dir.path().join("inf"),
        &[],
        Device::Cpu,
    )
    .unwrap();
    let caption = v[0]["caption"].as_str().unwrap();
    assert!(caption.split(' ').count() >= 3, "{caption}");
    assert!(dir.path().join("inf/caption_0.png").is_file());

    // beam search over a batch of images gives each image the caption it gets alone
    let model: Captioning = mm_train::run::restore(&out, Device::Cpu).unwrap();
    let reader = mm_data::Reader::open(&data).unwrap();
    let test: Vec<usize> = reader.split("test").unwrap()[..12]
        .iter()
        .map(|&i| i as usize)
        .collect();
    let images = reader
        .read_batch_fields(&test, &["image"])
        .unwrap()
        .tensor("image", Device::Cpu)
        .unwrap();
    let batched = tch::no_grad(|| model.caption(&images, 5)).unwrap();
    let alone = tch::no_grad(|| model.caption(&images, 1)).unwrap();
    assert_eq!(batched.len(), 12);
    assert_eq!(batched, alone);
    assert!(batched.iter().all(|c| c.split(' ').count() >= 3));
    assert!(model.caption(&images, 0).is_err());
    assert!(model.caption(&images.get(0), 4).is_err());

    // self-critical fine-tuning from that model raises the CIDEr-D it is rewarded with (on
    // the training images, whose references give the reward); a wrong sign or a reward
    // scored against other images' references would lower it
    let before = mm_train::run::evaluate::<Captioning>(&out, "train", &[], Device::Cpu).unwrap();
    let mut scst = defaults.clone();
    scst.task.init_weights = Some(out.clone());
    scst.task.objective = captioning::Objective::Scst;
    scst.task.scst_samples = 4;
    scst.train.epochs = 3;
    scst.train.optimizer = mm_train::OptimizerConfig::adam(3e-4);
    scst.train.schedule = Default::default();
    let scst_out = dir.path().join("scst");
    let t0 = std::time::Instant::now();
    mm_train::run::train::<Captioning>(
        &scst,
        &RunOptions {
            dir: scst_out.clone(),
            ..opts
        },
    )
    .unwrap();
    let after =
        mm_train::run::evaluate::<Captioning>(&scst_out, "train", &[], Device::Cpu).unwrap();
    eprintln!(
        "SCST {:.1} s: train CIDEr-D {:.1} -> {:.1}, BLEU-4 {:.1} -> {:.1}",
        t0.elapsed().as_secs_f64(),
        before["cider_d"],
        after["cider_d"],
        before["bleu4"],
        after["bleu4"]
    );
    assert!(
        after["cider_d"] > before["cider_d"] + 10.0,
        "train CIDEr-D {} -> {}",
        before["cider_d"],
        after["cider_d"]
    );
}

#[test]
fn bad_configurations_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = captioning::defaults().task;
    cfg.data = dir.path().join("absent.h5");
    assert!(Captioning::build(&cfg, Device::Cpu).is_err());
    let data = dir.path().join("sv.h5");
    let sv = mm_data::synthav::SynthAvConfig {
        scenes: 30,
        seed: 1,
        ..Default::default()
    };
    mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
    cfg.data = data;
    cfg.decoder_dim = 0;
    assert!(
        Captioning::build(&cfg, Device::Cpu)
            .unwrap_err()
            .to_string()
            .contains("decoder_dim")
    );
    cfg.decoder_dim = 16;
    cfg.stage = Some("stage9".into());
    assert!(Captioning::build(&cfg, Device::Cpu).is_err());
    cfg.stage = Some("stage2".into());
    cfg.beam_size = 0;
    let e = Captioning::build(&cfg, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("beam_size"), "{e}");
    cfg.beam_size = 3;
    let t = Captioning::build(&cfg, Device::Cpu).unwrap();
    assert!(t.train_size() > 0);
    // SCST's sample-mean baseline needs two samples; init weights must exist and fit
    cfg.objective = captioning::Objective::Scst;
    cfg.scst_samples = 1;
    let e = Captioning::build(&cfg, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("scst_samples"), "{e}");
    cfg.scst_baseline = captioning::ScstBaseline::Greedy;
    assert!(Captioning::build(&cfg, Device::Cpu).is_ok());
    cfg.scst_samples = captioning::MAX_SCST_SAMPLES + 1;
    let e = Captioning::build(&cfg, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("scst_samples") && e.contains("at most"), "{e}");
    cfg.scst_samples = 1;
    cfg.init_weights = Some(dir.path().join("absent-run"));
    assert!(Captioning::build(&cfg, Device::Cpu).is_err());
    let file = dir.path().join("small.safetensors");
    t.var_store().save(&file).unwrap();
    cfg.init_weights = Some(file.clone());
    assert!(Captioning::build(&cfg, Device::Cpu).is_ok());
    cfg.decoder_dim = 32;
    let e = Captioning::build(&cfg, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape"), "{e}");
}
