//! Text-to-image (GAN-INT-CLS) on a small SynthAV: both optimizer groups train, the attribute
//! classifier that scores generated images beats the prior on real images, the text
//! conditions the images (and an unconditional GAN ignores it), and bad input is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mm_data::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};
use mm_tasks::text_to_image::{self, TextToImage};
use mm_train::{Input, RunOptions, Task};
use tch::Device;

fn small(data: &std::path::Path) -> mm_train::RunConfig<text_to_image::TextToImageConfig> {
    let mut d = text_to_image::defaults();
    d.task.data = data.to_owned();
    d.task.gen_channels = 8;
    d.task.disc_channels = 8;
    d.task.noise_dim = 16;
    d.task.embed_dim = 16;
    d.task.text_dim = 8;
    d.task.evaluator_steps = 150;
    d.task.eval_texts = 40;
    d.task.samples = 3;
    d.train.batch_size = 32;
    d.train.epochs = 2;
    d
}

#[test]
fn trains_both_groups_scores_with_a_classifier_that_beats_the_prior_and_draws_grids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let sv = mm_data::synthav::SynthAvConfig {
        scenes: 250,
        seed: 4,
        ..Default::default()
    };
    mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
    let out = dir.path().join("run");
    let opts = RunOptions {
        config: None,
        overrides: vec![],
        device: Device::Cpu,
        dir: out.clone(),
        resume: false,
        progress: None,
    };
    let r = mm_train::run::train::<TextToImage>(&small(&data), &opts).unwrap();
    eprintln!("{:?}", r.test);
    // every metric, and each group's loss in the log
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(log.contains("loss_discriminator") && log.contains("loss_generator"));
    for k in [
        "frechet",
        "diversity",
        "cond_accuracy",
        "real_cond_accuracy",
    ] {
        assert!(r.test[k].is_finite(), "{k}");
    }
    // the judge: on real images it reads colours and scenes far better than the prior
    // (measured 0.82 vs 0.66 and 1.0 vs 0.24 here)
    assert!(
        r.test["real_colour_accuracy"] > r.test["prior_colour_accuracy"] + 0.1,
        "{:?}",
        r.test
    );
    assert!(
        r.test["real_scene_accuracy"] > r.test["prior_scene_accuracy"] + 0.3,
        "{:?}",
        r.test
    );
    assert!(r.test["frechet"] > 0.0);

    // inference: a grid per call, one row per text; the text changes the images
    let v = mm_train::run::infer::<TextToImage>(
        &out,
        &[
            Input::Text("a large red circle in the forest".into()),
            Input::Text("a small blue square at night".into()),
        ],
        &dir.path().join("inf"),
        &[],
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(v["samples"], 3);
    assert!(dir.path().join("inf/text_to_image.png").is_file());

    // the same codes with two texts: different images when conditional, the same when not
    for conditional in [true, false] {
        let mut cfg = small(&data).task;
        cfg.conditional = conditional;
        tch::manual_seed(1);
        let mut t = TextToImage::build(&cfg, Device::Cpu).unwrap();
        let mut grids = Vec::new();
        for text in ["red circle", "blue square in the city"] {
            let o = dir.path().join(format!("c{conditional}{}", text.len()));
            std::fs::create_dir_all(&o).unwrap();
            let v = tch::no_grad(|| t.infer(&[Input::Text(text.into())], &o)).unwrap();
            grids.push(std::fs::read(v["grid"].as_str().unwrap()).unwrap());
        }
        // the grids differ in their caption line anyway: compare the image rows only
        let a = image::load_from_memory(&grids[0]).unwrap().to_rgb8();
        let b = image::load_from_memory(&grids[1]).unwrap().to_rgb8();
        let rows = |img: &image::RgbImage| -> Vec<u8> {
            img.rows()
                .skip(18)
                .flat_map(|r| r.flat_map(|p| p.0))
                .collect()
        };
        assert_eq!(
            rows(&a) != rows(&b),
            conditional,
            "conditional = {conditional}"
        );
    }
}

#[test]
fn bad_configurations_and_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.h5");
    // a data set of 16x16 images
    let schema = Schema {
        fixed: vec![FieldSpec {
            name: "image".into(),
            dtype: Dtype::U8,
            shape: vec![16, 16, 3],
            compress: false,
        }],
        ragged: vec!["captions".into()],
    };
    let meta = Meta {
        source: "test".into(),
        version: "1".into(),
        params: serde_json::json!({ "vocabulary": ["a", "red", "circle"] }),
    };
    let mut w = Writer::create(&path, &schema, &meta).unwrap();
    for _ in 0..3 {
        let mut s = Sample::default();
        s.fixed.insert(
            "image".into(),
            Value::U8(ndarray::ArrayD::from_elem(vec![16, 16, 3], 9)),
        );
        s.ragged.insert("captions".into(), vec![vec![0, 1, 2]]);
        w.push(&s).unwrap();
    }
    let splits = BTreeMap::from([
        ("train".to_string(), vec![0u64]),
        ("val".to_string(), vec![1]),
        ("test".to_string(), vec![2]),
    ]);
    w.finish(&splits).unwrap();
    let cfg = small(&path).task;
    let e = TextToImage::build(&cfg, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("64x64") && e.contains("[16, 16, 3]"), "{e}");
    for (set, want) in [
        ("samples", "task.samples"),
        ("noise_dim", "task.noise_dim"),
        ("int_beta", "int_beta"),
    ] {
        let mut c = cfg.clone();
        match set {
            "samples" => c.samples = 0,
            "noise_dim" => c.noise_dim = 0,
            _ => c.int_beta = 1.5,
        }
        let e = TextToImage::build(&c, Device::Cpu).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
