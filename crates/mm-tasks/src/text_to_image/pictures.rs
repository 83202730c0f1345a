//! The picture `mm infer text-to-image` writes: one row of generated images per text, the text
//! above its row.

use std::path::Path;

use image::{Rgb, RgbImage};
use mm_plot as plot;
use mm_train::Result;
use tch::{Device, Kind, Tensor};

/// Generated images `[B, 3, H, W]` in `[-1, 1]` as `uint8 [B, H, W, 3]` on the CPU.
pub(super) fn to_u8(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_add_scalar(1.0)?
        .f_mul_scalar(127.5)?
        .f_round()?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)?
        .f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_to_device(Device::Cpu)?)
}

/// Pixels shown per image pixel, and the gap between images.
const SCALE: u32 = 2;
const GAP: u32 = 4;
/// Height of a row's caption line.
const LABEL: u32 = 14;

/// Writes `rows` (each `uint8 [K, H, W, 3]`) as a grid, `labels[r]` above row `r`.
pub(super) fn save_grid(rows: &[Tensor], labels: &[&str], path: &Path) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let size = first.size();
    let (k, h, w) = (size[0] as u32, size[1] as u32, size[2] as u32);
    let (cw, ch) = (w * SCALE, h * SCALE);
    let width = GAP + k * (cw + GAP);
    let height = rows.len() as u32 * (LABEL + ch + GAP) + GAP;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (r, (row, label)) in rows.iter().zip(labels).enumerate() {
        let y0 = GAP + r as u32 * (LABEL + ch + GAP);
        plot::draw_text(&mut img, GAP, y0 + 2, label, Rgb([0, 0, 0]), 1);
        let px = Vec::<u8>::try_from(&row.f_reshape([-1])?)?;
        for i in 0..k {
            let x0 = GAP + i * (cw + GAP);
            for y in 0..ch {
                for x in 0..cw {
                    let o = (((i * h + y / SCALE) * w + x / SCALE) * 3) as usize;
                    img.put_pixel(x0 + x, y0 + LABEL + y, Rgb([px[o], px[o + 1], px[o + 2]]));
                }
            }
        }
    }
    plot::save_png_atomic(&img, path)?;
    Ok(())
}
