//! The `[task]` table of a captioning run, its checks, and `mm train captioning`'s defaults.

use std::path::PathBuf;

use mm_train::{Error, Result};
use mm_vision::BackboneConfig;
use serde::{Deserialize, Serialize};

use super::bad;

/// The `[task]` table of a captioning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptioningConfig {
    /// The data set (SynthAV, Flickr8k, COCO as `mm data convert` writes them).
    pub data: PathBuf,
    /// The encoder.
    pub backbone: BackboneConfig,
    /// The stage whose feature map is attended (`None`: the last).
    #[serde(default)]
    pub stage: Option<String>,
    /// torchvision-named weights for the backbone.
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
    /// Freeze the encoder.
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Resize images to this side first.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// Cached feature maps of a frozen encoder (`mm vision features --images DATA.h5
    /// --backbone B --layer STAGE --size S --out F.h5`), read in place of the images for
    /// training and evaluation: the encoder runs once per data set instead of once per step.
    /// Needs `freeze_backbone = true`, the same backbone and stage, and the data set's sample
    /// count and splits; inference on image files still runs the encoder (with
    /// `backbone_weights`, the weights the features were computed with).
    #[serde(default)]
    pub image_features: Option<PathBuf>,
    /// Word embedding size `m`.
    pub embed_dim: i64,
    /// LSTM size `n`.
    pub decoder_dim: i64,
    /// Attention MLP size.
    pub attention_dim: i64,
    /// Dropout before the output layer.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// `lambda` of the doubly stochastic attention penalty.
    #[serde(default = "default_alpha_c")]
    pub alpha_c: f64,
    /// Longest generated caption (words).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Beam size for evaluation and inference (1: greedy).
    #[serde(default = "default_beam")]
    pub beam_size: usize,
    /// Length normalisation exponent of beam scores.
    #[serde(default)]
    pub length_alpha: f64,
    /// Weights that start this run: a captioning run or checkpoint directory (its best
    /// checkpoint) or model file. Every variable of the model must be found there (the same
    /// data set's vocabulary and the same sizes); loaded after `backbone_weights`.
    #[serde(default)]
    pub init_weights: Option<PathBuf>,
    /// The training objective.
    #[serde(default)]
    pub objective: Objective,
    /// Captions sampled per image and step under `objective = "scst"` (1 to [`MAX_SCST_SAMPLES`]).
    #[serde(default = "default_scst_samples")]
    pub scst_samples: usize,
    /// The reward baseline under `objective = "scst"`.
    #[serde(default)]
    pub scst_baseline: ScstBaseline,
}

/// What a captioning run minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Teacher-forced negative log-likelihood plus the doubly stochastic attention penalty.
    #[default]
    CrossEntropy,
    /// Self-critical sequence training: REINFORCE with CIDEr-D rewards of sampled captions.
    Scst,
}

/// The baseline subtracted from each sampled caption's reward under SCST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScstBaseline {
    /// The mean reward of the same image's other samples (needs `scst_samples >= 2`).
    #[default]
    SampleMean,
    /// The reward of the greedy caption (one extra decoding pass without gradients).
    Greedy,
}

fn default_dropout() -> f64 {
    0.5
}
fn default_alpha_c() -> f64 {
    1.0
}

/// The most SCST samples per image (Rennie et al. and Luo use 1-16).
pub const MAX_SCST_SAMPLES: usize = 64;

fn default_max_len() -> usize {
    20
}
fn default_beam() -> usize {
    3
}
fn default_scst_samples() -> usize {
    5
}

impl CaptioningConfig {
    /// Checks what the types do not: sizes, rates and the SCST settings.
    pub(crate) fn validate(&self) -> Result<()> {
        crate::common::positive(&[
            ("embed_dim", self.embed_dim),
            ("decoder_dim", self.decoder_dim),
            ("attention_dim", self.attention_dim),
        ])?;
        if self.max_len == 0 || !(0.0..1.0).contains(&self.dropout) || self.alpha_c < 0.0 {
            return Err(bad(
                "max_len must be positive, dropout in [0, 1), alpha_c >= 0",
            ));
        }
        if self.beam_size == 0 || !self.length_alpha.is_finite() {
            return Err(Error::InvalidParameter {
                name: "beam_size",
                reason: format!(
                    "beam_size must be at least 1 (1 is greedy) and length_alpha finite, got {} and {}",
                    self.beam_size, self.length_alpha
                ),
            });
        }
        if self.image_features.is_some() && !self.freeze_backbone {
            return Err(Error::InvalidParameter {
                name: "image_features",
                reason: "cached features stand for a frozen encoder: set freeze_backbone = true"
                    .into(),
            });
        }
        let min_samples = match self.scst_baseline {
            ScstBaseline::SampleMean => 2,
            ScstBaseline::Greedy => 1,
        };
        if self.objective == Objective::Scst && self.scst_samples < min_samples {
            return Err(Error::InvalidParameter {
                name: "scst_samples",
                reason: format!(
                    "the {:?} baseline needs at least {min_samples} samples per image, got {}",
                    self.scst_baseline, self.scst_samples
                ),
            });
        }
        if self.objective == Objective::Scst && self.scst_samples > MAX_SCST_SAMPLES {
            // every sample is a rollout kept for backward: 1000 per image took a 24 GiB
            // machine's memory (the process was killed) instead of failing here
            return Err(Error::InvalidParameter {
                name: "scst_samples",
                reason: format!(
                    "at most {MAX_SCST_SAMPLES} (each is a decoder rollout kept for backward, \
                 so a batch becomes batch_size x scst_samples rows), got {}",
                    self.scst_samples
                ),
            });
        }
        Ok(())
    }
}

/// The defaults of `mm train captioning`: SynthAV, small CNN (8x8 map), minutes on a CPU.
pub fn defaults() -> mm_train::RunConfig<CaptioningConfig> {
    use mm_train::{Autocast, Mode, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 60,
            max_steps: 0,
            batch_size: 64,
            eval_batch_size: None,
            drop_last: false,
            eval_every: 0,
            log_every: 10,
            seed: 0,
            optimizer: OptimizerConfig::adam(2e-3),
            schedule: ScheduleConfig {
                kind: ScheduleKind::Cosine,
                warmup_steps: 20,
                min_factor: 0.05,
                ..Default::default()
            },
            lr_groups: vec![],
            clip_grad_norm: 5.0,
            monitor: "cider_d".into(),
            mode: Mode::Max,
            patience: 8,
            keep_last: 2,
            autocast: Autocast::Off,
            optimizers: Default::default(),
        },
        task: CaptioningConfig {
            data: PathBuf::from("data/synthav.h5"),
            backbone: BackboneConfig::headless(mm_vision::Arch::SmallCnn),
            stage: None,
            backbone_weights: None,
            freeze_backbone: false,
            image_size: None,
            image_features: None,
            embed_dim: 64,
            decoder_dim: 512,
            attention_dim: 128,
            dropout: 0.1,
            alpha_c: 1.0,
            max_len: 20,
            beam_size: 3,
            length_alpha: 0.0,
            init_weights: None,
            objective: Objective::CrossEntropy,
            scst_samples: default_scst_samples(),
            scst_baseline: ScstBaseline::SampleMean,
        },
    }
}
