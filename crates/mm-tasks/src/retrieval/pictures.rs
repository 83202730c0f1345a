//! Pictures of retrieval results.

use image::{Rgb, RgbImage};
use mm_plot as plot;
use mm_train::Result;
use tch::Tensor;

/// A picture: each image (scaled x3) with its top captions and tags beside it.
pub(super) fn gallery(rows: &[(Tensor, Vec<String>)]) -> Result<RgbImage> {
    let scale = 3u32;
    let side = rows.first().map_or(64, |(t, _)| t.size()[0] as u32) * scale;
    let text_w = rows
        .iter()
        .flat_map(|(_, l)| l.iter())
        .map(|l| plot::text_width(l, 1))
        .max()
        .unwrap_or(0);
    let row_h = side.max(
        rows.iter()
            .map(|(_, l)| l.len() as u32 * 12)
            .max()
            .unwrap_or(0),
    ) + 8;
    let mut img = RgbImage::from_pixel(
        side + 16 + text_w + 8,
        row_h * rows.len() as u32,
        Rgb([255, 255, 255]),
    );
    for (r, (pix, lines)) in rows.iter().enumerate() {
        let (h, w) = (pix.size()[0] as u32, pix.size()[1] as u32);
        let data = Vec::<u8>::try_from(&pix.reshape([-1]))?;
        let y0 = r as u32 * row_h + 4;
        for y in 0..h * scale {
            for x in 0..w * scale {
                let o = (((y / scale) * w + x / scale) * 3) as usize;
                img.put_pixel(4 + x, y0 + y, Rgb([data[o], data[o + 1], data[o + 2]]));
            }
        }
        for (k, line) in lines.iter().enumerate() {
            let colour = if line.starts_with("tag") {
                Rgb([180, 60, 20])
            } else {
                Rgb([20, 20, 20])
            };
            plot::draw_text(&mut img, side + 16, y0 + k as u32 * 12, line, colour, 1);
        }
    }
    Ok(img)
}
