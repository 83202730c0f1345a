//! # mm-image: the one image pipeline
//!
//! Decoding (PNG, JPEG), shorter-side resizing, centre and random square crops and horizontal
//! flips, with torchvision's rounding (`Resize(int)` truncates the longer side,
//! `CenterCrop` rounds its offset). The data set converters of `mm-data`, `mm vision
//! features` and every task's inference use these functions, so a training image and the same
//! file at inference become the same pixels; `mm-vision` turns them into tensors.
//!
//! ```
//! let img = image::RgbImage::from_fn(40, 20, |x, y| image::Rgb([x as u8, y as u8, 0]));
//! let t = mm_image::Transform { resize: Some(10), crop: Some(10), random_crop: false, hflip: false };
//! let square = t.apply(&img, &mut rand::rng())?;
//! assert_eq!(square.dimensions(), (10, 10));
//! # Ok::<(), mm_image::Error>(())
//! ```
//!
//! The resize uses a triangle (bilinear) filter that, like torchvision's antialiased
//! `Resize`, widens its support when shrinking; pixels may still differ from PIL's by a grey
//! level or two.
//!
//! ## Feature flags
//! None; no libtorch.

mod error;
mod transform;

pub use error::{Error, Result};
pub use transform::{Transform, center_crop, load_rgb, load_square, random_crop, resize_shorter};
