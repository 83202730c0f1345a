//! # mm-fusion: bringing modalities together
//!
//! Attention between an audio vector and a visual feature map, and pointwise (Hadamard)
//! fusion. Works on tensors and embeddings only; it imports no modality crate.
//!
//! ```
//! use mm_fusion::{audio_visual_attention, MapNorm};
//! use tch::{Device, Kind, Tensor};
//!
//! let audio = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
//! let visual = Tensor::randn([2, 16, 7, 7], (Kind::Float, Device::Cpu));
//! let att = audio_visual_attention(&audio, &visual, MapNorm::Softmax)?;
//! assert_eq!(att.weights.size(), [2, 7, 7]);
//! # Ok::<(), mm_fusion::Error>(())
//! ```
//!
//! ## Feature flags
//! None: this crate always requires libtorch.

mod audio_visual;
mod error;
mod pointwise;

pub use audio_visual::{AvAttention, MapNorm, audio_visual_attention};
pub use error::{Error, Result};
pub use pointwise::HadamardFusion;
