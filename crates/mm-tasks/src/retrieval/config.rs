//! The `[task]` table of a retrieval run and `mm train retrieval`'s defaults.

use std::path::PathBuf;

use mm_vision::BackboneConfig;
use serde::{Deserialize, Serialize};

use super::{LossKind, TextEncoderKind};

/// The `[task]` table of a retrieval run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalConfig {
    /// The data set (`mm data synthav`, `mm data convert flickr8k`, ...).
    pub data: PathBuf,
    /// The image field.
    #[serde(default = "default_image_field")]
    pub image_field: String,
    /// The ragged caption field.
    #[serde(default = "default_captions_field")]
    pub captions_field: String,
    /// The image backbone.
    pub backbone: BackboneConfig,
    /// torchvision-named safetensors weights for the backbone (e.g. ImageNet ResNet-50).
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
    /// Freeze the whole backbone: no gradients, batch norms on their running statistics
    /// (for pretrained weights; per-stage control is `mm_vision::Backbone::set_trainable`).
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Resize images to this side before the backbone (bilinear); `None` keeps them.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// Joint space dimension.
    pub embed_dim: i64,
    /// Word vector dimension.
    pub word_dim: i64,
    /// Initialise word vectors with skip-gram trained on the training captions.
    #[serde(default = "yes")]
    pub word2vec_init: bool,
    /// The sentence encoder.
    pub text_encoder: TextEncoderKind,
    /// GRU hidden size.
    #[serde(default = "default_hidden")]
    pub hidden_dim: i64,
    /// The metric-learning loss.
    #[serde(default)]
    pub loss: LossKind,
    /// `vsepp_hardest`: use the sum over negatives for this many epochs first.
    #[serde(default)]
    pub sum_warmup_epochs: usize,
    /// Triplet/contrastive margin.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Use only this many training images (`None`: all).
    #[serde(default)]
    pub max_train: Option<usize>,
}

fn default_image_field() -> String {
    "image".into()
}
fn default_captions_field() -> String {
    "captions".into()
}
fn yes() -> bool {
    true
}
fn default_hidden() -> i64 {
    256
}
fn default_margin() -> f64 {
    0.2
}

/// The defaults of `mm train retrieval`: SynthAV at `data/synthav.h5`, a small CNN, a GRU,
/// VSE++ hardest negatives; minutes on a CPU. `configs/retrieval/synthav.toml` spells them out.
pub fn defaults() -> mm_train::RunConfig<RetrievalConfig> {
    use mm_train::{Mode, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 40,
            max_steps: 0,
            batch_size: 64,
            eval_batch_size: None,
            drop_last: false,
            eval_every: 0,
            log_every: 5,
            seed: 0,
            optimizer: OptimizerConfig::adam(2e-3),
            schedule: ScheduleConfig {
                kind: ScheduleKind::Cosine,
                warmup_steps: 20,
                min_factor: 0.05,
                ..Default::default()
            },
            lr_groups: vec![],
            clip_grad_norm: 2.0,
            monitor: "rsum".into(),
            mode: Mode::Max,
            patience: 8,
            keep_last: 2,
            autocast: mm_train::Autocast::Off,
            optimizers: Default::default(),
        },
        task: RetrievalConfig {
            data: PathBuf::from("data/synthav.h5"),
            image_field: default_image_field(),
            captions_field: default_captions_field(),
            backbone: BackboneConfig::headless(mm_vision::Arch::SmallCnn),
            backbone_weights: None,
            freeze_backbone: false,
            image_size: None,
            embed_dim: 128,
            word_dim: 64,
            word2vec_init: true,
            text_encoder: TextEncoderKind::Gru,
            hidden_dim: 128,
            loss: LossKind::VseppHardest,
            sum_warmup_epochs: 10,
            margin: 0.2,
            max_train: None,
        },
    }
}
