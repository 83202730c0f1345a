//! Decoding, resizing, crops and flips.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Decodes an image file (PNG or JPEG) to 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::open(path).map_err(|source| Error::Image {
        path: path.to_owned(),
        source,
    })?;
    Ok(img.to_rgb8())
}

/// Scales `img` so that its shorter side is `side` pixels (torchvision's `Resize(int)`).
pub fn resize_shorter(img: &RgbImage, side: u32) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    if side == 0 || w == 0 || h == 0 {
        return Err(Error::InvalidParameter {
            name: "resize",
            reason: format!("cannot resize a {w}x{h} image to shorter side {side}"),
        });
    }
    let (nw, nh) = if w <= h {
        (side, ((h as u64 * side as u64) / w as u64).max(1) as u32)
    } else {
        (((w as u64 * side as u64) / h as u64).max(1) as u32, side)
    };
    Ok(imageops::resize(img, nw, nh, FilterType::Triangle))
}

fn check_crop(img: &RgbImage, size: u32) -> Result<()> {
    let (w, h) = img.dimensions();
    if size == 0 || size > w || size > h {
        return Err(Error::InvalidParameter {
            name: "crop",
            reason: format!("a {size}x{size} crop does not fit a {w}x{h} image"),
        });
    }
    Ok(())
}

/// The central `size x size` square (torchvision's `CenterCrop`, rounding the offset as it does).
pub fn center_crop(img: &RgbImage, size: u32) -> Result<RgbImage> {
    check_crop(img, size)?;
    let (w, h) = img.dimensions();
    // Python's round(), which torchvision calls, rounds halves to even: (25 - 16) / 2 -> 4
    let x = ((w - size) as f64 / 2.0).round_ties_even() as u32;
    let y = ((h - size) as f64 / 2.0).round_ties_even() as u32;
    Ok(imageops::crop_imm(img, x, y, size, size).to_image())
}

/// A uniformly placed `size x size` square (torchvision's `RandomCrop`).
pub fn random_crop<R: Rng>(img: &RgbImage, size: u32, rng: &mut R) -> Result<RgbImage> {
    check_crop(img, size)?;
    let (w, h) = img.dimensions();
    let x = rng.random_range(0..=w - size);
    let y = rng.random_range(0..=h - size);
    Ok(imageops::crop_imm(img, x, y, size, size).to_image())
}

/// Preprocessing for one image: optional shorter-side resize, optional square crop (centred,
/// or random for training), optional random horizontal flip with probability 1/2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Shorter side after resizing; `None` keeps the size.
    pub resize: Option<u32>,
    /// Side of the square crop; `None` keeps the whole (resized) image.
    pub crop: Option<u32>,
    /// Random crop position instead of the centre.
    #[serde(default)]
    pub random_crop: bool,
    /// Random horizontal flips.
    #[serde(default)]
    pub hflip: bool,
}

impl Transform {
    /// torchvision's evaluation preprocessing for `size` (224 -> resize 256, centre crop 224).
    pub fn eval(size: u32) -> Self {
        Self {
            resize: Some(size * 256 / 224),
            crop: Some(size),
            random_crop: false,
            hflip: false,
        }
    }

    /// Training augmentation: resize as [`Transform::eval`], random crop, random flip.
    pub fn train(size: u32) -> Self {
        Self {
            random_crop: true,
            hflip: true,
            ..Self::eval(size)
        }
    }

    /// Applies the transform; `rng` draws the crop position and the flip.
    pub fn apply<R: Rng>(&self, img: &RgbImage, rng: &mut R) -> Result<RgbImage> {
        let img = match self.resize {
            Some(side) => resize_shorter(img, side)?,
            None => img.clone(),
        };
        let mut img = match (self.crop, self.random_crop) {
            (Some(s), false) => center_crop(&img, s)?,
            (Some(s), true) => random_crop(&img, s, rng)?,
            (None, _) => img,
        };
        if self.hflip && rng.random_bool(0.5) {
            imageops::flip_horizontal_in_place(&mut img);
        }
        Ok(img)
    }
}

/// An image file as the data sets store it and inference reads it: decoded, its shorter side
/// resized to `size`, centre-cropped to `size x size`.
pub fn load_square(path: &Path, size: u32) -> Result<RgbImage> {
    center_crop(&resize_shorter(&load_rgb(path)?, size)?, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
    }

    #[test]
    fn resize_crop_and_flip() {
        let img = gradient(40, 20);
        let r = resize_shorter(&img, 10).unwrap();
        assert_eq!(r.dimensions(), (20, 10));
        // torchvision truncates the longer side: 37 x 23 to 10 -> 16 x 10
        assert_eq!(
            resize_shorter(&gradient(37, 23), 10).unwrap().dimensions(),
            (16, 10)
        );
        let c = center_crop(&img, 10).unwrap();
        assert_eq!(c.dimensions(), (10, 10));
        assert_eq!(c.get_pixel(0, 0).0, [15, 5, 7]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let xs: Vec<u8> = (0..50)
            .map(|_| random_crop(&img, 10, &mut rng).unwrap().get_pixel(0, 0).0[0])
            .collect();
        assert!(xs.iter().all(|&x| x <= 30));
        assert!(xs.iter().collect::<std::collections::BTreeSet<_>>().len() > 10);
        let t = Transform {
            resize: None,
            crop: None,
            random_crop: false,
            hflip: true,
        };
        let flips = (0..40)
            .filter(|_| t.apply(&img, &mut rng).unwrap().get_pixel(0, 0).0[0] == 39)
            .count();
        assert!((8..=32).contains(&flips), "{flips} flips of 40");
        let eval = Transform::eval(16).apply(&img, &mut rng).unwrap();
        assert_eq!(eval.dimensions(), (16, 16));
    }

    /// torchvision's numbers: `Resize(16)` of 37 x 23 is 25 x 16 (the longer side truncated),
    /// and `CenterCrop(16)` of 25 columns starts at column 4 (`round(4.5)` in Python is 4).
    #[test]
    fn a_file_loads_as_torchvision_resizes_and_crops_it() {
        let cols = RgbImage::from_fn(25, 16, |x, _| image::Rgb([x as u8, 0, 0]));
        let c = center_crop(&cols, 16).unwrap();
        assert_eq!(c.get_pixel(0, 0).0[0], 4);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        gradient(37, 23).save(&p).unwrap();
        let resized = resize_shorter(&gradient(37, 23), 16).unwrap();
        assert_eq!(resized.dimensions(), (25, 16));
        let want = imageops::crop_imm(&resized, 4, 0, 16, 16).to_image();
        assert_eq!(load_square(&p, 16).unwrap(), want);
    }

    #[test]
    fn bad_sizes_and_files_are_errors() {
        let img = gradient(8, 8);
        assert!(center_crop(&img, 9).is_err());
        assert!(resize_shorter(&img, 0).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.png");
        std::fs::write(&p, b"\x89PNG truncated").unwrap();
        assert!(matches!(load_rgb(&p), Err(Error::Image { .. })));
        assert!(load_square(&dir.path().join("none.png"), 8).is_err());
    }
}
