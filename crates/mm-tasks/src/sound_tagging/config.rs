//! The `[task]` table of a sound-tagging run, its checks, and `mm train sound-tagging`'s
//! defaults.

use std::path::PathBuf;

use mm_data::SoundClassesConfig;
use mm_train::{Error, Result};
use mm_vision::SmallCnnConfig;
use serde::{Deserialize, Serialize};

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

/// The `[task]` table of a sound-tagging run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoundTaggingConfig {
    /// A data set of clips (`audio` f32 `[samples]`, `label` i64; as `mm data convert esc50`
    /// writes), or none for the built-in synthetic sound classes ([`Self::classes`]).
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// The built-in sound classes (used when `data` is none).
    #[serde(default)]
    pub classes: SoundClassesConfig,
    /// Built-in classes: the fraction of each class's clips held out for testing.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// ESC-50's protocol: test on fold `N` (1..=5) and train on the other four (the data set's
    /// `fold1`..`fold5` splits); none for its `train`/`test` splits.
    #[serde(default)]
    pub fold: Option<usize>,
    /// The seeded fraction of the training clips held out for validation (which selects the
    /// checkpoint; the test split is never used for that).
    #[serde(default = "default_val_holdout")]
    pub val_holdout: f64,
    /// Log-mel features.
    #[serde(default)]
    pub features: FeatureConfig,
    /// The CNN (its `in_channels` must be 1).
    pub model: SmallCnnConfig,
}

fn default_test_fraction() -> f64 {
    0.25
}

fn default_val_holdout() -> f64 {
    0.1
}

impl SoundTaggingConfig {
    /// Checks what serde cannot, before any data is read.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason: String| Err(Error::InvalidParameter { name, reason });
        if self.model.in_channels != 1 {
            return bad(
                "task.model.in_channels",
                "must be 1 (a spectrogram has one channel)".into(),
            );
        }
        if let Some(k) = self.fold
            && !(1..=5).contains(&k)
        {
            return bad("task.fold", format!("ESC-50 has folds 1 to 5, got {k}"));
        }
        if self.fold.is_some() && self.data.is_none() {
            return bad(
                "task.fold",
                "folds are ESC-50's: set task.data to a converted ESC-50 file".into(),
            );
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return bad("task.test_fraction", "must be in (0, 1)".into());
        }
        if !(self.val_holdout > 0.0 && self.val_holdout < 1.0) {
            return bad("task.val_holdout", "must be in (0, 1)".into());
        }
        let f = &self.features;
        if f.n_fft == 0 || f.hop_length == 0 || f.n_mels == 0 {
            return bad(
                "task.features",
                "n_fft, hop_length and n_mels must be positive".into(),
            );
        }
        Ok(())
    }
}

/// The defaults of `mm train sound-tagging`: the built-in sound classes, a three-stage CNN,
/// Adam 3e-3, 8 epochs.
pub fn defaults() -> mm_train::RunConfig<SoundTaggingConfig> {
    use mm_train::{Autocast, Mode, OptimizerConfig, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 8,
            max_steps: 0,
            batch_size: 32,
            eval_batch_size: None,
            drop_last: false,
            eval_every: 0,
            log_every: 10,
            seed: 0,
            optimizer: OptimizerConfig::adam(3e-3),
            schedule: Default::default(),
            lr_groups: vec![],
            clip_grad_norm: 0.0,
            monitor: "accuracy".into(),
            mode: Mode::Max,
            patience: 0,
            keep_last: 2,
            autocast: Autocast::Off,
            optimizers: Default::default(),
        },
        task: SoundTaggingConfig {
            data: None,
            classes: SoundClassesConfig::default(),
            test_fraction: default_test_fraction(),
            fold: None,
            val_holdout: default_val_holdout(),
            features: FeatureConfig::default(),
            model: SmallCnnConfig {
                in_channels: 1,
                widths: vec![16, 32, 64],
            },
        },
    }
}

/// `mm train sound-tagging --quick`: six classes of 40 short clips, a narrower CNN, ten
/// epochs of batches of 16; about a second on a CPU (test accuracy 1.0 on 2026-12-07).
pub const QUICK: &[&str] = &[
    "task.classes.n_classes=6",
    "task.classes.clips_per_class=40",
    "task.classes.duration_s=0.4",
    "task.model.widths=[8, 16, 32]",
    "train.epochs=10",
    "train.batch_size=16",
];
