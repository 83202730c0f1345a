//! The `[task]` table of a VQA run, its checks, and `mm train vqa`'s defaults.

use std::path::PathBuf;

use mm_fusion::FusionKind;
use mm_train::{Error, Result};
use mm_vision::BackboneConfig;
use serde::{Deserialize, Serialize};

use super::bad;

/// Which streams the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VqaModel {
    /// Image and question, fused.
    #[default]
    Fused,
    /// The question alone (the baseline that shows what the image adds).
    QuestionOnly,
}

/// The `[task]` table of a VQA run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaConfig {
    /// The data set (SynthAV, or VQA v2 as `mm data convert vqa` writes it).
    pub data: PathBuf,
    /// The model.
    #[serde(default)]
    pub model: VqaModel,
    /// The image backbone.
    pub backbone: BackboneConfig,
    /// Weights for the backbone (a pretrained image stream): a safetensors file with
    /// torchvision's names, or a run or checkpoint directory of another task (its best
    /// checkpoint's model file), with [`VqaConfig::backbone_weights_prefix`] naming the part.
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
    /// Prefix of the backbone's names in `backbone_weights`, e.g. `"encoder."` for the image
    /// encoder of a captioning run; empty for a file with torchvision's names.
    #[serde(default)]
    pub backbone_weights_prefix: String,
    /// Attend over the backbone's last feature map with the question (Show-Attend-Tell soft
    /// attention from `mm-fusion`) instead of pooling it globally: the image vector becomes
    /// the question-weighted mean of the locations.
    #[serde(default)]
    pub question_attention: bool,
    /// Number of attention glimpses over the feature map (`question_attention = true`). With
    /// one, the question's last LSTM state queries the map. With more, each glimpse has its own
    /// attention over the question's words (`w_g^T tanh(W h_t)`, softmax over the words), whose
    /// weighted LSTM states query the map, so glimpses can follow different phrases ("the red
    /// square" and "the blue circle"); the glimpses' vectors are concatenated.
    #[serde(default = "default_glimpses")]
    pub glimpses: i64,
    /// Append each location's (x, y), in [-1, 1], to the feature map before attention, so an
    /// attended vector says where it looked (`question_attention = true`).
    #[serde(default)]
    pub coordinates: bool,
    /// Also pass the whole map's mean vector (L2-normalised) beside the glimpses
    /// (`question_attention = true`): what no attention has to find, such as how many
    /// objects there are.
    #[serde(default)]
    pub global_vector: bool,
    /// Freeze the backbone (no gradients, batch norms on running statistics).
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Resize images to this side first.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// Word vector size.
    pub word_dim: i64,
    /// Initialise word vectors with skip-gram on the training questions.
    #[serde(default)]
    pub word2vec_init: bool,
    /// LSTM hidden size.
    pub hidden_dim: i64,
    /// The fusion.
    pub fusion: FusionKind,
    /// Fused size.
    pub fused_dim: i64,
    /// Low-rank bilinear rank (`fusion = "bilinear"`).
    #[serde(default)]
    pub rank: Option<i64>,
    /// Answer classes: the most frequent training answers.
    pub top_k: usize,
    /// Dropout before the classifier.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// For a data set with no `test` split (VQA v2, whose test answers are not public): the
    /// part of `train`'s images held out, by a fixed seed, as the validation split that picks
    /// the checkpoint, while `val` becomes the reported `test` split. A checkpoint is never
    /// selected on the split that is reported.
    #[serde(default = "default_val_holdout")]
    pub val_holdout: f64,
}

fn default_dropout() -> f64 {
    0.3
}

fn default_val_holdout() -> f64 {
    0.1
}

fn default_glimpses() -> i64 {
    1
}

impl VqaConfig {
    /// Checks what the types do not: sizes, rates and the attention options.
    pub(crate) fn validate(&self) -> Result<()> {
        crate::common::positive(&[
            ("word_dim", self.word_dim),
            ("hidden_dim", self.hidden_dim),
            ("fused_dim", self.fused_dim),
        ])?;
        if self.top_k == 0 || !(0.0..1.0).contains(&self.dropout) {
            return Err(bad("top_k must be positive and dropout in [0, 1)"));
        }
        if self.glimpses < 1 {
            return Err(Error::InvalidParameter {
                name: "glimpses",
                reason: format!("must be at least 1, got {}", self.glimpses),
            });
        }
        if (self.glimpses > 1 || self.coordinates || self.global_vector) && !self.question_attention
        {
            return Err(bad(
                "glimpses > 1, coordinates and global_vector need question_attention = true",
            ));
        }
        Ok(())
    }
}

/// The defaults of `mm train vqa`: SynthAV, small CNN, Hadamard fusion; minutes on a CPU.
pub fn defaults() -> mm_train::RunConfig<VqaConfig> {
    use mm_train::{Autocast, Mode, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 25,
            max_steps: 0,
            batch_size: 128,
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
            monitor: "accuracy".into(),
            mode: Mode::Max,
            patience: 8,
            keep_last: 2,
            autocast: Autocast::Off,
            optimizers: Default::default(),
        },
        task: VqaConfig {
            data: PathBuf::from("data/synthav.h5"),
            model: VqaModel::Fused,
            backbone: BackboneConfig::headless(mm_vision::Arch::SmallCnn),
            question_attention: false,
            glimpses: 1,
            coordinates: false,
            global_vector: false,
            backbone_weights: None,
            backbone_weights_prefix: String::new(),
            freeze_backbone: false,
            image_size: None,
            word_dim: 64,
            word2vec_init: false,
            hidden_dim: 128,
            fusion: FusionKind::Hadamard,
            fused_dim: 256,
            rank: None,
            top_k: 1000,
            dropout: 0.3,
            val_holdout: 0.1,
        },
    }
}
