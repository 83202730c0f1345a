//! Sound tagging on the engine: the quick preset learns the built-in classes far above the
//! prior, the held-out validation split never overlaps training or test, and bad settings are
//! typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_tasks::sound_tagging::{self, SoundTagging};
use mm_train::{Error, RunOptions, Task, config};
use tch::Device;

#[test]
fn the_quick_preset_learns_far_above_the_prior() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        config: None,
        overrides: sound_tagging::QUICK.iter().map(|s| s.to_string()).collect(),
        device: Device::Cpu,
        dir: dir.path().join("run"),
        resume: false,
        progress: None,
    };
    let t0 = std::time::Instant::now();
    let r = mm_train::run::train::<SoundTagging>(&sound_tagging::defaults(), &opts).unwrap();
    eprintln!("{:.1} s: {:?}", t0.elapsed().as_secs_f64(), r.test);
    // 6 balanced classes of 10 test clips each: prior and chance 1/6; measured 1.0
    assert!((r.test["prior_accuracy"] - 1.0 / 6.0).abs() < 1e-9);
    assert!((r.test["chance"] - 1.0 / 6.0).abs() < 1e-9);
    assert!(r.test["accuracy"] >= 0.9, "{:?}", r.test);
    assert_eq!(r.pictures, [dir.path().join("run/spectrograms.png")]);
    // the model's splits: 6 x 30 training clips, a tenth of them held out for validation
    let cfg = config::with_overrides(&sound_tagging::defaults(), &opts.overrides).unwrap();
    let t = SoundTagging::build(&cfg.task, Device::Cpu).unwrap();
    assert_eq!(t.train_size(), 180 - 18);
    assert_eq!(t.class_names().len(), 6);
}

#[test]
fn bad_settings_are_typed_errors_before_any_data_is_read() {
    let d = sound_tagging::defaults().task;
    type Edit = Box<dyn Fn(&mut sound_tagging::SoundTaggingConfig)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "task.model.in_channels",
            Box::new(|c| c.model.in_channels = 3),
        ),
        ("task.fold", Box::new(|c| c.fold = Some(2))),
        ("task.test_fraction", Box::new(|c| c.test_fraction = 0.001)),
        ("task.val_holdout", Box::new(|c| c.val_holdout = 0.0)),
        ("task.features", Box::new(|c| c.features.n_mels = 0)),
    ];
    for (name, set) in cases {
        let mut c = d.clone();
        set(&mut c);
        let e = SoundTagging::build(&c, Device::Cpu).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidParameter { name: n, .. } if *n == name),
            "{name}: {e}"
        );
    }
    let mut c = d.clone();
    c.data = Some("/nonexistent/esc50.h5".into());
    assert!(SoundTagging::build(&c, Device::Cpu).is_err());
}
