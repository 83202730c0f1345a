//! SynthAV is learnable from each modality: small models trained for seconds on a few hundred
//! scenes beat chance by a wide margin on held-out scenes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_data::synthav::{self, SceneSample, SynthAvConfig};
use mm_signal::{DbConfig, LogMelSpectrogram, MelConfig, MelSpectrogram, StftConfig, batch};
use mm_vision::{Backbone, SmallCnn, SmallCnnConfig};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn scenes(n: usize) -> Vec<SceneSample> {
    let cfg = SynthAvConfig {
        scenes: n,
        seed: 11,
        ..Default::default()
    };
    (0..n)
        .map(|i| synthav::generate_scene(&cfg, i).unwrap())
        .collect()
}

/// Trains a small CNN on `x` (`[N, C, H, W]`) for `labels` (`n_classes`), first 75 % train,
/// rest test; returns the test accuracy.
fn train_cnn(x: &Tensor, labels: &[i64], n_classes: i64, in_channels: i64, epochs: usize) -> f64 {
    tch::manual_seed(0);
    let n = labels.len() as i64;
    let n_train = n * 3 / 4;
    let y = Tensor::from_slice(labels);
    let vs = nn::VarStore::new(Device::Cpu);
    let cnn = SmallCnn::new(
        &(vs.root() / "cnn"),
        &SmallCnnConfig {
            in_channels,
            widths: vec![8, 16, 32],
        },
    )
    .unwrap();
    let head = nn::linear(vs.root() / "head", 32, n_classes, Default::default());
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    for _ in 0..epochs {
        for start in (0..n_train).step_by(32) {
            let len = 32.min(n_train - start);
            let xb = x.narrow(0, start, len);
            let yb = y.narrow(0, start, len);
            let loss = cnn
                .pooled(&xb, true)
                .unwrap()
                .apply(&head)
                .cross_entropy_for_logits(&yb);
            opt.backward_step(&loss);
        }
    }
    let xt = x.narrow(0, n_train, n - n_train);
    let yt = y.narrow(0, n_train, n - n_train);
    let pred = tch::no_grad(|| cnn.pooled(&xt, false).unwrap().apply(&head)).argmax(-1, false);
    pred.eq_tensor(&yt)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

#[test]
fn scene_type_from_sound_and_object_count_from_pixels_beat_chance() {
    let s = scenes(320);
    // audio -> scene type (SoundNet's scene head): 4 classes, chance 25 %
    let clips = ndarray::Array2::from_shape_fn((s.len(), s[0].audio.len()), |(i, t)| s[i].audio[t]);
    let lm = LogMelSpectrogram {
        mel: MelSpectrogram::new(
            &StftConfig {
                n_fft: 512,
                hop_length: Some(256),
                ..Default::default()
            },
            &MelConfig {
                sample_rate_hz: 16000.0,
                n_fft: 512,
                n_mels: 32,
                ..Default::default()
            },
        )
        .unwrap(),
        db: DbConfig::default(),
    };
    let feats = batch(&lm, clips.view()).unwrap(); // [N, 32, 63]
    let (n, b, f) = feats.dim();
    let flat: Vec<f32> = feats.iter().map(|v| (v + 40.0) / 40.0).collect();
    let x = Tensor::from_slice(&flat).view([n as i64, 1, b as i64, f as i64]);
    let scene: Vec<i64> = s.iter().map(|x| x.scene.scene_type as i64).collect();
    let acc = train_cnn(&x, &scene, 4, 1, 6);
    eprintln!("scene type from audio: {acc:.3} (chance 0.25)");
    assert!(acc >= 0.6, "scene type from audio: {acc} (chance 0.25)");

    // image -> number of objects: 3 classes, chance about a third
    let img: Vec<f32> = s
        .iter()
        .flat_map(|x| x.image.iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    let x = Tensor::from_slice(&img)
        .view([n as i64, 64, 64, 3])
        .permute([0, 3, 1, 2])
        .contiguous();
    let count: Vec<i64> = s.iter().map(|x| x.scene.objects.len() as i64 - 1).collect();
    let acc = train_cnn(&x, &count, 3, 3, 10);
    eprintln!("object count from pixels: {acc:.3} (chance 0.33)");
    assert!(acc >= 0.55, "object count from pixels: {acc} (chance 0.33)");
}
