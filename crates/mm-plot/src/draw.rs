//! PNG pictures of results: spectrograms and training curves, written atomically.

use std::path::Path;

use image::{Rgb, RgbImage};
use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// The viridis-like colour for `t` in `[0, 1]` (5-point piecewise-linear approximation).
fn colormap(t: f32) -> Rgb<u8> {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    let c = |k: usize| (STOPS[i][k] * (1.0 - f) + STOPS[i + 1][k] * f).round() as u8;
    Rgb([c(0), c(1), c(2)])
}

/// Saves `img` as PNG through a temporary file in the same directory, then renames it.
pub fn save_png_atomic(img: &RgbImage, path: &Path) -> Result<()> {
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Image {
                path: path.to_owned(),
                source,
            }
        })?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Renders spectrograms (`[bins, frames]`, e.g. dB) side by side, low frequencies at the
/// bottom, each scaled to its own min..max, `scale` pixels per cell, 4-pixel white gutters.
pub fn spectrogram_strip(specs: &[ArrayView2<'_, f32>], scale: u32) -> Result<RgbImage> {
    if specs.is_empty() || scale == 0 || specs.iter().any(|s| s.is_empty()) {
        return Err(Error::InvalidParameter {
            name: "specs",
            reason: "need at least one non-empty spectrogram and a positive scale".into(),
        });
    }
    let gutter = 4u32;
    let h = specs.iter().map(|s| s.nrows() as u32).max().unwrap_or(0) * scale;
    let w: u32 = specs
        .iter()
        .map(|s| s.ncols() as u32 * scale + gutter)
        .sum::<u32>()
        - gutter;
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let mut x0 = 0u32;
    for s in specs {
        let (lo, hi) = s
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let range = (hi - lo).max(f32::EPSILON);
        let rows = s.nrows() as u32;
        for ((bin, frame), &v) in s.indexed_iter() {
            let px = colormap((v - lo) / range);
            let y_top = (rows - 1 - bin as u32) * scale + (h - rows * scale);
            for dy in 0..scale {
                for dx in 0..scale {
                    img.put_pixel(x0 + frame as u32 * scale + dx, y_top + dy, px);
                }
            }
        }
        x0 += s.ncols() as u32 * scale + gutter;
    }
    Ok(img)
}

/// Draws ASCII `text` with its top-left corner at `(x, y)` in an 8x8 bitmap font scaled by
/// `scale` (other characters print as `?`); pixels outside the image are skipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, colour: Rgb<u8>, scale: u32) {
    let scale = scale.max(1);
    for (k, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() {
            ch as usize
        } else {
            '?' as usize
        };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let x0 = x + k as u32 * 8 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (px, py) = (x0 + col * scale + dx, y + row as u32 * scale + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Pixel width of `text` drawn by [`draw_text`] at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 8 * scale.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn spectrogram_strip_puts_high_values_bright_and_low_bins_at_the_bottom() {
        let mut s = Array2::<f32>::zeros((3, 2));
        s[[0, 0]] = 1.0; // lowest bin, first frame: brightest
        let img = spectrogram_strip(&[s.view(), s.view()], 2).unwrap();
        assert_eq!(img.dimensions(), (2 * 2 + 4 + 2 * 2, 6));
        assert_eq!(*img.get_pixel(0, 5), colormap(1.0));
        assert_eq!(*img.get_pixel(0, 0), colormap(0.0));
        assert_eq!(*img.get_pixel(5, 0), Rgb([255, 255, 255]));
        assert!(spectrogram_strip(&[], 1).is_err());
    }

    #[test]
    fn a_png_is_saved_atomically() {
        let img = RgbImage::from_pixel(64, 48, Rgb([31, 119, 180]));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        save_png_atomic(&img, &p).unwrap();
        assert_eq!(image::open(&p).unwrap().width(), 64);
        assert!(!dir.path().join("x.png.tmp").exists());
        // a folder that does not exist: an error naming the file, nothing left
        let q = dir.path().join("no/such/x.png");
        assert!(
            save_png_atomic(&img, &q)
                .unwrap_err()
                .to_string()
                .contains("x.png")
        );
    }

    #[test]
    fn text_is_drawn_where_asked_and_clipped() {
        let mut img = RgbImage::new(40, 10);
        let white = Rgb([255, 255, 255]);
        draw_text(&mut img, 0, 0, "I", white, 1);
        let lit: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| **p == white)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!lit.is_empty() && lit.iter().all(|&(x, y)| x < 8 && y < 8));
        draw_text(&mut img, 36, 5, "WWW", white, 2); // off the edge: no panic
        assert_eq!(text_width("abc", 2), 48);
    }
}
