//! # mm-tasks: multi-modal learning tasks
//!
//! Each task wires `mm-data`, `mm-signal`, `mm-text`, `mm-vision` and `mm-fusion` into a model
//! trained with tch. Today: [`sound_tagging`] (sound events from log-mel spectrograms). The
//! shared training engine and the course's tasks (retrieval, captioning, VQA, SoundNet,
//! localization, separation, ...) are planned.
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

mod error;
/// PNG pictures (spectrogram strips, curves), from the engine.
pub use mm_train::plot;
pub mod retrieval;
pub mod sound_tagging;

pub use error::{Error, Result};
