//! The `[task]` table of a text-to-image run, its checks, and `mm train text-to-image`'s
//! defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mm_train::Result;
use serde::{Deserialize, Serialize};

use super::bad;

/// The `[task]` table of a text-to-image run (GAN-INT-CLS, Reed et al. 2016).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextToImageConfig {
    /// The data set: 64x64 images with captions and SynthAV's object labels (`objects`,
    /// `scene_type`).
    pub data: PathBuf,
    /// Size of the Gaussian code `z`.
    #[serde(default = "default_noise_dim")]
    pub noise_dim: i64,
    /// Size of the learned word embeddings whose mean is the sentence vector.
    #[serde(default = "default_embed_dim")]
    pub embed_dim: i64,
    /// Size of the compressed text vector that the generator and the discriminator each
    /// project the sentence vector to (the reference's 128).
    #[serde(default = "default_text_dim")]
    pub text_dim: i64,
    /// Channels of the generator's last layer (DCGAN's `ngf`; the layers before have 2x, 4x,
    /// 8x as many).
    #[serde(default = "default_channels")]
    pub gen_channels: i64,
    /// Channels of the discriminator's first layer (DCGAN's `ndf`).
    #[serde(default = "default_channels")]
    pub disc_channels: i64,
    /// The matching-aware discriminator (CLS): it also learns to call a real image with a
    /// mismatched text fake.
    #[serde(default = "yes")]
    pub cls: bool,
    /// Interpolated text vectors (INT): the generator also learns to fool the discriminator
    /// on the mixture `beta t1 + (1 - beta) t2` of two texts.
    #[serde(default = "yes")]
    pub int: bool,
    /// The interpolation weight `beta` of INT.
    #[serde(default = "default_beta")]
    pub int_beta: f64,
    /// Condition on the text at all: `false` trains an unconditional GAN (the generator and the
    /// discriminator see a zero text vector), the lower bound of conditional accuracy.
    #[serde(default = "yes")]
    pub conditional: bool,
    /// Images drawn per text by `mm infer` (and per text for the diversity metric).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Texts of the evaluated split whose generated images are scored (the first ones).
    #[serde(default = "default_eval_texts")]
    pub eval_texts: usize,
    /// Training steps of the attribute classifier that scores generated images (trained on the
    /// real training images, with its own fixed seed, the first time a run evaluates).
    #[serde(default = "default_evaluator_steps")]
    pub evaluator_steps: usize,
}

fn default_noise_dim() -> i64 {
    100
}
fn default_embed_dim() -> i64 {
    128
}
fn default_text_dim() -> i64 {
    128
}
fn default_channels() -> i64 {
    64
}
fn yes() -> bool {
    true
}
fn default_beta() -> f64 {
    0.5
}
fn default_samples() -> usize {
    8
}
fn default_eval_texts() -> usize {
    256
}
fn default_evaluator_steps() -> usize {
    400
}

impl TextToImageConfig {
    /// Checks ranges that serde cannot.
    pub fn validate(&self) -> Result<()> {
        crate::common::positive(&[
            ("task.noise_dim", self.noise_dim),
            ("task.embed_dim", self.embed_dim),
            ("task.text_dim", self.text_dim),
            ("task.gen_channels", self.gen_channels),
            ("task.disc_channels", self.disc_channels),
            ("task.samples", self.samples as i64),
            ("task.eval_texts", self.eval_texts as i64),
            ("task.evaluator_steps", self.evaluator_steps as i64),
        ])?;
        if !(0.0..=1.0).contains(&self.int_beta) {
            return Err(bad(format!(
                "int_beta must be in [0, 1], got {}",
                self.int_beta
            )));
        }
        Ok(())
    }
}

/// The defaults of `mm train text-to-image`: SynthAV, GAN-INT-CLS with the reference's Adam
/// (learning rate 2e-4, betas 0.5 and 0.999) for the discriminator and the generator, one
/// update of each per step.
pub fn defaults() -> mm_train::RunConfig<TextToImageConfig> {
    use mm_train::{Autocast, GroupConfig, Mode, OptimizerConfig, TrainConfig};
    let adam = OptimizerConfig {
        betas: [0.5, 0.999],
        ..OptimizerConfig::adam(2e-4)
    };
    let group = GroupConfig {
        optimizer: Some(adam.clone()),
        ..Default::default()
    };
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 20,
            max_steps: 0,
            batch_size: 64,
            eval_batch_size: None,
            drop_last: true,
            eval_every: 0,
            log_every: 10,
            seed: 0,
            optimizer: adam,
            schedule: Default::default(),
            lr_groups: vec![],
            clip_grad_norm: 0.0,
            monitor: "cond_accuracy".into(),
            mode: Mode::Max,
            patience: 0,
            keep_last: 2,
            autocast: Autocast::Off,
            optimizers: BTreeMap::from([
                ("discriminator".to_string(), group.clone()),
                ("generator".to_string(), group),
            ]),
        },
        task: TextToImageConfig {
            data: PathBuf::from("data/synthav.h5"),
            noise_dim: default_noise_dim(),
            embed_dim: default_embed_dim(),
            text_dim: default_text_dim(),
            gen_channels: default_channels(),
            disc_channels: default_channels(),
            cls: true,
            int: true,
            int_beta: default_beta(),
            conditional: true,
            samples: default_samples(),
            eval_texts: default_eval_texts(),
            evaluator_steps: default_evaluator_steps(),
        },
    }
}
