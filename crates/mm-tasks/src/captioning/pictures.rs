//! Pictures of decoded captions.

use image::{Rgb, RgbImage};
use mm_plot as plot;
use mm_train::Result;
use tch::Tensor;

use crate::sat::Decoded;

/// An attention strip: per word, the image (x3) with its attention map laid over it.
pub(super) fn strip(
    image: &Tensor,
    d: &Decoded,
    words: &[String],
    hw: (i64, i64),
) -> Result<RgbImage> {
    let scale = 3u32;
    let (tw, th) = (
        image.size()[1] as u32 * scale,
        image.size()[0] as u32 * scale,
    );
    let n = d.tokens.len() + 1;
    let mut img = RgbImage::from_pixel((tw + 4) * n as u32, th + 16, Rgb([255, 255, 255]));
    for k in 0..n {
        let alpha = &d.alphas[k.min(d.alphas.len() - 1)];
        let panel =
            crate::common::attention_panel(image, alpha, (hw.0 as u32, hw.1 as u32), scale)?;
        let x0 = k as u32 * (tw + 4);
        image::imageops::replace(&mut img, &panel, x0 as i64, 0);
        let word = if k < d.tokens.len() {
            words.get(d.tokens[k] as usize).map_or("?", String::as_str)
        } else {
            "<end>"
        };
        plot::draw_text(&mut img, x0 + 2, th + 4, word, Rgb([20, 20, 20]), 1);
    }
    Ok(img)
}
