//! # mm-data: data sets
//!
//! Deterministic synthetic data generators that every pipeline can train on without a
//! download. HDF5 storage, loaders and the SynthAV audio-visual-text world are planned.
//!
//! ```
//! use mm_data::{sound_classes, SoundClassesConfig};
//! let cfg = SoundClassesConfig { n_classes: 3, clips_per_class: 2, ..Default::default() };
//! let clips = sound_classes::generate(&cfg)?;
//! assert_eq!(clips.len(), 6);
//! assert_eq!(clips[5].label, 2);
//! # Ok::<(), mm_data::Error>(())
//! ```
//!
//! ## Feature flags
//! None.

mod error;
pub mod sound_classes;
pub mod store;
pub mod synthav;

pub use error::{Error, Result};
pub use sound_classes::{Clip, SoundClassesConfig};
pub use store::{
    Batch, BatchConfig, BatchIter, Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer,
};
