//! # mm-tasks: multi-modal learning tasks
//!
//! Each task wires `mm-data`, `mm-signal`, `mm-text`, `mm-vision` and `mm-fusion` into a model
//! trained with tch. Today, on the training engine `mm-train`: [`retrieval`] (image tagging and
//! cross-modal retrieval), [`captioning`] (Show, Attend and Tell), [`vqa`] (visual question
//! answering) and [`text_to_image`] (a text-conditioned GAN, two optimizer groups); and [`sound_tagging`] (sound events from log-mel spectrograms,
//! with its own small loop). The course's other tasks (SoundNet,
//! localization, separation, ...) are planned on the engine; `examples/scene_classification.rs`
//! shows a task written outside this crate.
//!
//! ```no_run
//! use mm_tasks::sound_tagging::{self, SoundTaggingConfig};
//! let report = sound_tagging::train(&SoundTaggingConfig::quick(), tch::Device::Cpu, &mut |_| {})?;
//! println!("accuracy {:.3} (chance {:.3})", report.final_accuracy(), report.chance);
//! # Ok::<(), mm_tasks::Error>(())
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
pub mod text_to_image;
pub mod vqa;

pub use error::{Error, Result};
