//! # mm-tasks: multi-modal learning tasks
//!
//! Each task wires `mm-data`, `mm-signal`, `mm-text`, `mm-vision` and `mm-fusion` into a model
//! trained with tch on the training engine `mm-train`: [`sound_tagging`] (sound events from
//! log-mel spectrograms, ESC-50's folds), [`retrieval`] (image tagging and cross-modal
//! retrieval), [`captioning`] (Show, Attend and Tell), [`vqa`] (visual question answering) and
//! [`text_to_image`] (a text-conditioned GAN, two optimizer groups). The course's other tasks
//! (SoundNet, localization, separation, ...) are planned on the engine;
//! `examples/scene_classification.rs` shows a task written outside this crate.
//!
//! ```no_run
//! use mm_tasks::sound_tagging::{self, SoundTagging};
//! use mm_train::{RunOptions, config};
//! // the built-in sound classes, the preset that trains in seconds
//! let quick: Vec<String> = sound_tagging::QUICK.iter().map(|s| s.to_string()).collect();
//! let opts = RunOptions {
//!     config: None,
//!     overrides: quick,
//!     device: tch::Device::Cpu,
//!     dir: "runs/sound-tagging".into(),
//!     resume: false,
//!     progress: None,
//! };
//! let report = mm_train::run::train::<SoundTagging>(&sound_tagging::defaults(), &opts)?;
//! println!("accuracy {:.3} (prior {:.3})", report.test["accuracy"], report.test["prior_accuracy"]);
//! # let _ = config::ENV_PREFIX;
//! # Ok::<(), mm_train::Error>(())
//! ```
//!
//! ## Feature flags
//! None: this crate always requires libtorch.

pub mod captioning;
mod common;
mod error;
/// PNG pictures (spectrogram strips, curves), from the engine.
pub use mm_plot as plot;
pub mod retrieval;
pub mod sat;
pub mod sound_tagging;
mod stream;
pub mod text_to_image;
pub mod vqa;

pub use error::{Error, Result};
