//! Image files to batches: the one image pipeline of `mm-image` (decoding, shorter-side resize,
//! crops, flips, with torchvision's rounding), re-exported here so that the data converters,
//! `mm vision features` and inference share it, and [`to_tensor`] to stack images for
//! [`crate::normalize_batch`].

use image::RgbImage;
pub use mm_image::{Transform, center_crop, load_rgb, load_square, random_crop, resize_shorter};
use tch::Tensor;

use crate::error::{Error, Result};

/// Stacks equally sized images into a `uint8` tensor for [`crate::normalize_batch`].
///
/// # Shapes
/// `images: N` images of `W x H` -> `[N, H, W, 3]` (`Kind::Uint8`).
pub fn to_tensor(images: &[RgbImage]) -> Result<Tensor> {
    let Some(first) = images.first() else {
        return Err(Error::InvalidParameter {
            name: "images",
            reason: "need at least one image".into(),
        });
    };
    let (w, h) = first.dimensions();
    if let Some(bad) = images.iter().find(|i| i.dimensions() != (w, h)) {
        return Err(Error::InvalidParameter {
            name: "images",
            reason: format!("all images must be {w}x{h}, found {:?}", bad.dimensions()),
        });
    }
    let mut data = Vec::with_capacity(images.len() * (w * h * 3) as usize);
    for img in images {
        data.extend_from_slice(img.as_raw());
    }
    Ok(Tensor::from_slice(&data).view([images.len() as i64, h as i64, w as i64, 3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
    }

    #[test]
    fn stacks_equal_images_and_refuses_others() {
        let c = center_crop(&gradient(40, 20), 10).unwrap();
        let batch = to_tensor(&[c.clone(), c]).unwrap();
        assert_eq!(batch.size(), [2, 10, 10, 3]);
        assert_eq!(batch.int64_value(&[1, 0, 0, 0]), 15);
        assert!(to_tensor(&[]).is_err());
        assert!(to_tensor(&[gradient(8, 8), gradient(8, 9)]).is_err());
    }
}
