//! # mm-vision: images as data
//!
//! CNN backbones in tch that expose a spatial feature map at any stage (for attention) and a
//! pooled vector (for embedding): ResNet-18/34/50/101 and VGG-16/19 (with and without batch
//! norm) with torchvision's structure and state-dict names, and [`SmallCnn`] for 64x64 images;
//! weights as safetensors; image decoding, crops, flips and ImageNet normalisation.
//!
//! ```
//! use mm_vision::{backbone, Arch, Backbone, BackboneConfig};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let mut net = backbone(&vs.root(), &BackboneConfig::headless(Arch::SmallCnn))?;
//! let images = Tensor::zeros([4, 3, 64, 64], (Kind::Float, Device::Cpu));
//! assert_eq!(net.feature_map(&images, "stage3", false)?.size(), [4, 128, 8, 8]);
//! assert_eq!(net.pooled(&images, false)?.size(), [4, 128]);
//! net.set_trainable("stage1", false)?; // frozen: no gradients, batch norm in eval mode
//! # Ok::<(), mm_vision::Error>(())
//! ```
//!
//! ## Conventions
//! Tensors are NCHW; parameter names follow PyTorch's state-dict names, so torchvision weights
//! converted to safetensors (`mm vision convert`) load with [`load_safetensors`]. Every forward
//! checks its input and uses libtorch's fallible ops: bad shapes, kinds or devices are
//! [`Error`]s, never aborts. Parity with torchvision 0.26 is tested to 1e-4 (max abs) for
//! every architecture (`tests/torchvision_parity.rs`, reference `scripts/vision_reference.py`).
//!
//! Differences from torchvision, on purpose: a frozen stage's batch norms always use running
//! statistics ("frozen BN", as detection backbones do); [`Backbone::pooled`] of a VGG is the
//! global average of `pool5` (use [`Vgg::fc7`] for the 4096-d features).
//!
//! ## Feature flags
//! None: this crate always requires libtorch.

mod backbone;
mod error;
pub mod image;
mod layers;
mod preprocess;
mod resnet;
mod small;
mod vgg;
mod weights;

pub use backbone::{Arch, Backbone, BackboneConfig, backbone};
pub use error::{Error, Result};
pub use preprocess::{IMAGENET_MEAN, IMAGENET_STD, normalize_batch};
pub use resnet::ResNet;
pub use small::{SmallCnn, SmallCnnConfig};
pub use vgg::Vgg;
pub use weights::{LoadOptions, LoadReport, load_safetensors, save_safetensors, save_tensors};
