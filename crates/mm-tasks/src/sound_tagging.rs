//! Sound tagging: classify synthetic sound events from log-mel spectrograms with a small CNN.
//!
//! The pipeline every audio task builds on: generate clips (`mm-data`), compute log-mel
//! spectrograms (`mm-signal`), standardise with training-set statistics, train a CNN
//! (`mm-vision`'s [`SmallCnn`] on 1-channel spectrogram "images") plus a linear classifier with
//! Adam, and report held-out accuracy beside chance level.

use mm_data::sound_classes::{self, Clip, SoundClassesConfig};
use mm_signal::{DbConfig, MelConfig, MelSpectrogram, StftConfig, power_to_db_inplace};
use mm_vision::{Backbone, SmallCnn, SmallCnnConfig};
use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Log-mel feature settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// FFT length.
    pub n_fft: usize,
    /// Hop between frames.
    pub hop_length: usize,
    /// Mel bands.
    pub n_mels: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            n_fft: 512,
            hop_length: 160,
            n_mels: 40,
        }
    }
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Clips per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            batch_size: 32,
            learning_rate: 3e-3,
            test_fraction: 0.25,
            seed: 0,
        }
    }
}

/// Everything the sound-tagging run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoundTaggingConfig {
    /// The synthetic data set.
    pub data: SoundClassesConfig,
    /// Log-mel features.
    pub features: FeatureConfig,
    /// The CNN (its `in_channels` must be 1).
    pub model: SmallCnnConfig,
    /// Optimisation.
    pub train: TrainConfig,
}

impl Default for SoundTaggingConfig {
    fn default() -> Self {
        Self {
            data: SoundClassesConfig::default(),
            features: FeatureConfig::default(),
            model: SmallCnnConfig {
                in_channels: 1,
                widths: vec![16, 32, 64],
            },
            train: TrainConfig::default(),
        }
    }
}

impl SoundTaggingConfig {
    /// A configuration that trains in seconds on a CPU (for the demo's quick mode and tests).
    pub fn quick() -> Self {
        Self {
            data: SoundClassesConfig {
                n_classes: 6,
                clips_per_class: 24,
                duration_s: 0.4,
                ..Default::default()
            },
            features: FeatureConfig::default(),
            model: SmallCnnConfig {
                in_channels: 1,
                widths: vec![8, 16, 32],
            },
            train: TrainConfig {
                epochs: 6,
                batch_size: 16,
                ..Default::default()
            },
        }
    }
}

/// What the caller hears about during training.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Features are being computed for this many clips.
    Features {
        /// Number of clips.
        clips: usize,
    },
    /// One optimisation step finished.
    Step {
        /// Epoch (from 0).
        epoch: usize,
        /// Steps done so far in total.
        step: usize,
        /// Total steps of the run.
        total_steps: usize,
        /// This step's mean loss.
        loss: f32,
    },
    /// An epoch finished.
    Epoch {
        /// Epoch (from 0).
        epoch: usize,
        /// Mean training loss.
        train_loss: f32,
        /// Held-out accuracy.
        test_accuracy: f64,
    },
}

/// The outcome of [`train`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Class names, by label.
    pub class_names: Vec<String>,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f32>,
    /// Held-out accuracy after each epoch.
    pub test_accuracy: Vec<f64>,
    /// Accuracy of always answering one class (1 / classes, the splits being balanced).
    pub chance: f64,
    /// `confusion[true][predicted]` counts on the test split after the last epoch.
    pub confusion: Vec<Vec<usize>>,
    /// Clips in the training and test splits.
    pub split_sizes: (usize, usize),
    /// One log-mel spectrogram (dB, `[n_mels, frames]`) of a test clip per class, for pictures.
    #[serde(skip)]
    pub examples: Vec<Array2<f32>>,
}

impl Report {
    /// Accuracy on the test split after the last epoch.
    pub fn final_accuracy(&self) -> f64 {
        self.test_accuracy.last().copied().unwrap_or(0.0)
    }
}

fn validate(cfg: &SoundTaggingConfig) -> Result<()> {
    let t = &cfg.train;
    let bad = |name, reason: &str| {
        Err(Error::InvalidParameter {
            name,
            reason: reason.into(),
        })
    };
    if cfg.model.in_channels != 1 {
        return bad(
            "model.in_channels",
            "must be 1 (a spectrogram has one channel)",
        );
    }
    if t.epochs == 0 || t.batch_size == 0 {
        return bad("train.epochs/batch_size", "must be positive");
    }
    if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) {
        return bad("train.learning_rate", "must be positive and finite");
    }
    if !(t.test_fraction > 0.0 && t.test_fraction < 1.0) {
        return bad("train.test_fraction", "must be in (0, 1)");
    }
    let n_test = (cfg.data.clips_per_class as f64 * t.test_fraction).round() as usize;
    if n_test == 0 || n_test >= cfg.data.clips_per_class {
        return bad(
            "train.test_fraction",
            "leaves no clip of a class for training or for testing",
        );
    }
    Ok(())
}

/// Log-mel spectrograms (dB, top 80 dB) of `clips`, computed in parallel.
pub fn log_mel_features(
    clips: &[Clip],
    sample_rate_hz: u32,
    f: &FeatureConfig,
) -> Result<Vec<Array2<f32>>> {
    let mel = MelSpectrogram::new(
        &StftConfig {
            n_fft: f.n_fft,
            hop_length: Some(f.hop_length),
            ..Default::default()
        },
        &MelConfig {
            sample_rate_hz: f64::from(sample_rate_hz),
            n_fft: f.n_fft,
            n_mels: f.n_mels,
            ..Default::default()
        },
    )?;
    clips
        .par_iter()
        .map(|c| {
            let mut s = mel.process(&c.samples)?;
            power_to_db_inplace(&mut s, &DbConfig::default())?;
            Ok(s)
        })
        .collect()
}

fn stack(specs: &[&Array2<f32>]) -> Tensor {
    let (b, f) = specs[0].dim();
    let mut flat: Vec<f32> = Vec::with_capacity(specs.len() * b * f);
    for s in specs {
        flat.extend(s.iter());
    }
    Tensor::from_slice(&flat).view([specs.len() as i64, 1, b as i64, f as i64])
}

/// The classifier: CNN features, then a linear layer.
struct Model {
    cnn: SmallCnn,
    head: nn::Linear,
}

impl Model {
    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.cnn.pooled(xs, train)?.apply(&self.head))
    }
}

/// Generates the data, trains and evaluates; `progress` hears about each step and epoch.
pub fn train(
    cfg: &SoundTaggingConfig,
    device: Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    validate(cfg)?;
    let clips = sound_classes::generate(&cfg.data)?;
    progress(Progress::Features { clips: clips.len() });
    let feats = log_mel_features(&clips, cfg.data.sample_rate_hz, &cfg.features)?;
    let per_class = cfg.data.clips_per_class;
    let n_test = (per_class as f64 * cfg.train.test_fraction).round() as usize;
    let (mut train_idx, mut test_idx) = (Vec::new(), Vec::new());
    for (i, c) in clips.iter().enumerate() {
        if i - c.label * per_class < per_class - n_test {
            train_idx.push(i);
        } else {
            test_idx.push(i);
        }
    }
    // standardise with training statistics only
    let train_vals = train_idx.iter().flat_map(|&i| feats[i].iter().copied());
    let (n, sum, sq) = train_vals.fold((0f64, 0f64, 0f64), |(n, s, q), v| {
        (n + 1.0, s + f64::from(v), q + f64::from(v) * f64::from(v))
    });
    let mean = sum / n;
    let std = (sq / n - mean * mean).max(1e-12).sqrt();
    let gather = |idx: &[usize]| {
        let x = stack(&idx.iter().map(|&i| &feats[i]).collect::<Vec<_>>());
        let y: Vec<i64> = idx.iter().map(|&i| clips[i].label as i64).collect();
        (
            ((x - mean) / std).to(device),
            Tensor::from_slice(&y).to(device),
        )
    };
    let (x_train, y_train) = gather(&train_idx);
    let (x_test, y_test) = gather(&test_idx);

    tch::manual_seed(cfg.train.seed as i64);
    let vs = nn::VarStore::new(device);
    let cnn = SmallCnn::new(&(vs.root() / "cnn"), &cfg.model)?;
    let head = nn::linear(
        vs.root() / "head",
        cnn.out_channels(),
        cfg.data.n_classes as i64,
        Default::default(),
    );
    let model = Model { cnn, head };
    let mut opt = nn::Adam::default().build(&vs, cfg.train.learning_rate)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let n_train = train_idx.len();
    let steps_per_epoch = n_train.div_ceil(cfg.train.batch_size);
    let total_steps = steps_per_epoch * cfg.train.epochs;
    let mut report = Report {
        class_names: (0..cfg.data.n_classes)
            .map(|k| sound_classes::class_name(&cfg.data, k))
            .collect(),
        train_loss: Vec::new(),
        test_accuracy: Vec::new(),
        chance: 1.0 / cfg.data.n_classes as f64,
        confusion: Vec::new(),
        split_sizes: (n_train, test_idx.len()),
        examples: (0..cfg.data.n_classes)
            .filter_map(|k| test_idx.iter().find(|&&i| clips[i].label == k))
            .map(|&i| feats[i].clone())
            .collect(),
    };
    let mut step = 0;
    let mut order: Vec<i64> = (0..n_train as i64).collect();
    for epoch in 0..cfg.train.epochs {
        order.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for chunk in order.chunks(cfg.train.batch_size) {
            let idx = Tensor::from_slice(chunk).to(device);
            let (xb, yb) = (x_train.index_select(0, &idx), y_train.index_select(0, &idx));
            let loss = model.logits(&xb, true)?.cross_entropy_for_logits(&yb);
            opt.backward_step(&loss);
            let l = loss.double_value(&[]) as f32;
            epoch_loss += l * chunk.len() as f32;
            step += 1;
            progress(Progress::Step {
                epoch,
                step,
                total_steps,
                loss: l,
            });
        }
        let train_loss = epoch_loss / n_train as f32;
        let pred = tch::no_grad(|| model.logits(&x_test, false))?.argmax(-1, false);
        let correct = pred.eq_tensor(&y_test).sum(Kind::Int64).int64_value(&[]);
        let acc = correct as f64 / test_idx.len() as f64;
        report.train_loss.push(train_loss);
        report.test_accuracy.push(acc);
        progress(Progress::Epoch {
            epoch,
            train_loss,
            test_accuracy: acc,
        });
        if epoch + 1 == cfg.train.epochs {
            let k = cfg.data.n_classes;
            let mut confusion = vec![vec![0usize; k]; k];
            let pred: Vec<i64> = Vec::try_from(pred.to(Device::Cpu))?;
            for (&i, p) in test_idx.iter().zip(pred) {
                confusion[clips[i].label][p as usize] += 1;
            }
            report.confusion = confusion;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_far_above_chance_in_seconds() {
        let cfg = SoundTaggingConfig::quick();
        let mut epochs = 0;
        let report = train(&cfg, Device::Cpu, &mut |p| {
            if let Progress::Epoch { .. } = p {
                epochs += 1;
            }
        })
        .unwrap();
        assert_eq!(epochs, cfg.train.epochs);
        assert_eq!(report.split_sizes, (6 * 18, 6 * 6));
        let acc = report.final_accuracy();
        assert!(
            acc >= 3.0 * report.chance,
            "accuracy {acc} vs chance {}",
            report.chance
        );
        assert!(report.train_loss.last() < report.train_loss.first());
        let total: usize = report.confusion.iter().flatten().sum();
        assert_eq!(total, 36);
        assert_eq!(report.examples.len(), 6);
        assert_eq!(report.examples[0].nrows(), 40);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let mut cfg = SoundTaggingConfig::quick();
        cfg.train.test_fraction = 0.01;
        assert!(matches!(
            train(&cfg, Device::Cpu, &mut |_| {}),
            Err(Error::InvalidParameter { .. })
        ));
        let mut cfg = SoundTaggingConfig::quick();
        cfg.model.in_channels = 3;
        assert!(matches!(
            train(&cfg, Device::Cpu, &mut |_| {}),
            Err(Error::InvalidParameter {
                name: "model.in_channels",
                ..
            })
        ));
    }
}
