//! # mm-data: data sets
//!
//! Multi-modal samples in HDF5 files ([`store`]: an atomic streaming [`Writer`], a random-access
//! [`Reader`], deterministic shuffled prefetching [`BatchIter`]; layout in `docs/datasets.md`),
//! the SynthAV audio-visual-text world ([`synthav`]), and small synthetic generators
//! ([`sound_classes`]). Every pipeline can train on them without a download.
//!
//! ```
//! use mm_data::synthav::{self, SynthAvConfig};
//! let cfg = SynthAvConfig { scenes: 4, duration_s: 0.25, ..Default::default() };
//! let scene = synthav::generate_scene(&cfg, 0)?;
//! assert_eq!(scene.image.dim(), (64, 64, 3));
//! assert!(scene.scene.objects.iter().any(|o| o.sounding));
//! # Ok::<(), mm_data::Error>(())
//! ```
//!
//! ## Feature flags
//! - `tch`: `Value::to_tensor` and `Batch::tensor`, fixed fields as tensors on a device.

pub mod convert;
mod error;
pub mod sound_classes;
pub mod store;
pub mod synthav;

pub use error::{Error, Result};
pub use sound_classes::{Clip, SoundClassesConfig};
pub use store::{
    Batch, BatchConfig, BatchIter, Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer,
};
