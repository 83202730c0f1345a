//! Cached encoder features (`task.image_features`) stand for the frozen encoder exactly, and a
//! file that does not belong to the data set or the encoder is refused.

use std::collections::BTreeMap;
use std::path::Path;

use mm_data::{Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer};
use mm_train::Task;
use tch::Device;

use super::{Captioning, defaults};

/// Writes the feature maps of `task`'s encoder (eval mode) for every sample of `data`, as
/// `mm vision features` lays them out; `keep` samples and `arch` as the file says, and the
/// `val` and `test` splits swapped when `swap` is set.
fn write_features(task: &Captioning, data: &Path, out: &Path, keep: usize, arch: &str, swap: bool) {
    let r = Reader::open(data).unwrap();
    let all: Vec<usize> = (0..keep).collect();
    let images = r.read_batch_fields(&all, &["image"]).unwrap();
    let images = images.tensor("image", Device::Cpu).unwrap();
    let x = mm_vision::normalize_batch(
        &images,
        &mm_vision::IMAGENET_MEAN,
        &mm_vision::IMAGENET_STD,
        Device::Cpu,
    )
    .unwrap();
    let maps = tch::no_grad(|| task.cnn.feature_map(&x, &task.stage, false)).unwrap();
    let shape: Vec<usize> = maps.size()[1..].iter().map(|&d| d as usize).collect();
    let schema = Schema {
        fixed: vec![FieldSpec {
            name: "features".into(),
            dtype: Dtype::F32,
            shape: shape.clone(),
            compress: false,
        }],
        ragged: vec![],
    };
    let meta = Meta {
        source: "mm vision features".into(),
        version: "test".into(),
        params: serde_json::json!({ "backbone": arch, "layer": task.stage }),
    };
    let mut w = Writer::create(out, &schema, &meta).unwrap();
    for i in 0..keep {
        let v = Vec::<f32>::try_from(&maps.get(i as i64).reshape([-1])).unwrap();
        let mut s = Sample::default();
        s.fixed.insert(
            "features".into(),
            Value::F32(ndarray::ArrayD::from_shape_vec(shape.clone(), v).unwrap()),
        );
        w.push(&s).unwrap();
    }
    let splits: BTreeMap<String, Vec<u64>> = r
        .split_names()
        .unwrap()
        .into_iter()
        .map(|s| {
            let from = match (swap, s.as_str()) {
                (true, "val") => "test",
                (true, "test") => "val",
                _ => s.as_str(),
            };
            let idx: Vec<u64> = r
                .split(from)
                .unwrap()
                .into_iter()
                .filter(|&i| (i as usize) < keep)
                .collect();
            (s, idx)
        })
        .collect();
    w.finish(&splits).unwrap();
}

#[test]
fn cached_features_equal_the_frozen_encoder_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let sv = mm_data::synthav::SynthAvConfig {
        scenes: 40,
        seed: 2,
        ..Default::default()
    };
    mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
    let mut cfg = defaults().task;
    cfg.data = data.clone();
    cfg.freeze_backbone = true;
    tch::manual_seed(0);
    let mut plain = Captioning::build(&cfg, Device::Cpu).unwrap();
    let arch = cfg.backbone.arch.name();
    let feats = dir.path().join("f.h5");
    write_features(&plain, &data, &feats, 40, arch, false);

    let mut cached_cfg = cfg.clone();
    cached_cfg.image_features = Some(feats.clone());
    let mut cached = Captioning::build(&cached_cfg, Device::Cpu).unwrap();
    // the same weights (libtorch's generator is shared with tests running beside this one)
    cached.vs.copy(&plain.vs).unwrap();
    // the same annotations in training (the frozen encoder in eval mode) and in evaluation
    let batch = [3, 0, 5];
    let a = plain.train_annotations(&batch).unwrap();
    let b = cached.train_annotations(&batch).unwrap();
    let err = (&a - &b).abs().max().double_value(&[]);
    assert!(err < 1e-5, "max difference {err}");
    let a = plain.split_annotations("val", &[0, 1], false).unwrap();
    let b = cached.split_annotations("val", &[0, 1], false).unwrap();
    assert!((&a - &b).abs().max().double_value(&[]) < 1e-5);
    // hence the same captions
    assert_eq!(
        plain.caption_split("test").unwrap(),
        cached.caption_split("test").unwrap()
    );

    // refused: features with the encoder trainable, of fewer samples, of another backbone
    let mut c = cached_cfg.clone();
    c.freeze_backbone = false;
    let e = Captioning::build(&c, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("freeze_backbone"), "{e}");
    let short = dir.path().join("short.h5");
    write_features(&plain, &data, &short, 30, arch, false);
    let mut c = cached_cfg.clone();
    c.image_features = Some(short);
    let e = Captioning::build(&c, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("30 samples") && e.contains("40"), "{e}");
    let other = dir.path().join("other.h5");
    write_features(&plain, &data, &other, 40, "resnet50", false);
    let mut c = cached_cfg.clone();
    c.image_features = Some(other);
    let e = Captioning::build(&c, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("resnet50"), "{e}");
    let swapped = dir.path().join("swapped.h5");
    write_features(&plain, &data, &swapped, 40, arch, true);
    let mut c = cached_cfg.clone();
    c.image_features = Some(swapped);
    let e = Captioning::build(&c, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("split `test` differs"), "{e}");
    let mut c = cached_cfg;
    c.image_features = Some(dir.path().join("absent.h5"));
    assert!(Captioning::build(&c, Device::Cpu).is_err());
}
