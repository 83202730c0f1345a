//! The colour map, the 8x8 bitmap font for labels inside pictures, and atomic PNG writes.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};

/// The viridis-like colour for `t` in `[0, 1]` (5-point piecewise-linear approximation).
pub(crate) fn colormap(t: f32) -> Rgb<u8> {
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

    #[test]
    fn the_colour_map_runs_dark_to_bright() {
        assert_eq!(colormap(0.0), Rgb([68, 1, 84]));
        assert_eq!(colormap(1.0), Rgb([253, 231, 37]));
        assert_eq!(colormap(-3.0), colormap(0.0));
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
