//! # mm-vision: images as data
//!
//! CNN backbones in tch that expose a spatial feature map (for attention) and a pooled vector
//! (for embedding), plus torchvision-compatible preprocessing.
//!
//! ```
//! use mm_vision::{SmallCnn, SmallCnnConfig};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = SmallCnn::new(&vs.root(), &SmallCnnConfig::default())?;
//! let images = Tensor::zeros([4, 3, 64, 64], (Kind::Float, Device::Cpu));
//! assert_eq!(net.feature_map(&images, false)?.size(), [4, 128, 8, 8]);
//! assert_eq!(net.pooled(&images, false)?.size(), [4, 128]);
//! # Ok::<(), mm_vision::Error>(())
//! ```
//!
//! ## Conventions
//! Tensors are NCHW `f32`; parameter names follow PyTorch's state-dict naming so that converted
//! weights load. ResNet and VGG backbones with torchvision names are planned.
//!
//! ## Feature flags
//! None: this crate always requires libtorch.

mod error;
mod preprocess;
mod small;

pub use error::{Error, Result};
pub use preprocess::{IMAGENET_MEAN, IMAGENET_STD, normalize_batch};
pub use small::{SmallCnn, SmallCnnConfig};
