//! Spectrograms (and masks, MFCCs: any `[rows, frames]` map) with a time axis, a frequency (or
//! band) axis, one panel per map, and a colour bar of the values, drawn with plotters.

use image::RgbImage;
use ndarray::ArrayView2;
use plotters::prelude::*;

use crate::chart::{FAMILY, draw_err, register_font, render, tick};
use crate::draw::colormap;
use crate::error::{Error, Result};

/// What [`spectrogram_chart`] draws: panels side by side on one colour scale.
#[derive(Debug, Clone)]
pub struct SpectrogramSpec<'a> {
    /// The caption above the panels.
    pub title: String,
    /// Each map `[rows, frames]` (row 0 at the bottom) with its panel title (a class, a
    /// channel; may be empty).
    pub panels: Vec<(String, ArrayView2<'a, f32>)>,
    /// Seconds between frames (hop / sample rate): the time axis.
    pub seconds_per_frame: f64,
    /// The vertical axis: its label and the value at the top edge of the last row, the rows
    /// spread evenly from 0 (`("frequency (Hz)", sr / 2)`, `("mel band", n_mels)`).
    pub rows: (String, f64),
    /// What the colours measure (`dB`).
    pub value_label: String,
    /// Pixel height of the picture (width follows from the panels' frames).
    pub height: u32,
}

/// Draws `spec`: per panel, the map in a viridis-like colour scale over axes in seconds and in
/// the row unit, then a colour bar with the value scale (shared by all panels: min to max of
/// their finite values).
///
/// ```
/// let m = ndarray::Array2::from_shape_fn((40, 100), |(r, t)| (r * t) as f32 % 17.0);
/// let spec = mm_plot::SpectrogramSpec {
///     title: "log-mel".into(),
///     panels: vec![("dog".into(), m.view())],
///     seconds_per_frame: 0.01,
///     rows: ("mel band".into(), 40.0),
///     value_label: "dB".into(),
///     height: 260,
/// };
/// let img = mm_plot::spectrogram_chart(&spec)?;
/// assert_eq!(img.height(), 260);
/// # Ok::<(), mm_plot::Error>(())
/// ```
pub fn spectrogram_chart(spec: &SpectrogramSpec<'_>) -> Result<RgbImage> {
    if spec.panels.is_empty() || spec.panels.iter().any(|(_, m)| m.is_empty()) {
        return Err(Error::InvalidParameter {
            name: "panels",
            reason: "need at least one non-empty map".into(),
        });
    }
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(spec.seconds_per_frame) || !positive(spec.rows.1) {
        return Err(Error::InvalidParameter {
            name: "seconds_per_frame/rows",
            reason: "the time step and the top of the vertical axis must be positive".into(),
        });
    }
    let h = spec.height;
    if !(160..=4096).contains(&h) {
        return Err(Error::InvalidParameter {
            name: "height",
            reason: format!("{h}: need 160..=4096 pixels"),
        });
    }
    let (lo, hi) = spec
        .panels
        .iter()
        .flat_map(|(_, m)| m.iter().copied().filter(|v| v.is_finite()))
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return Err(Error::InvalidParameter {
            name: "panels",
            reason: "no finite value".into(),
        });
    }
    let range = (hi - lo).max(f32::EPSILON);
    register_font()?;
    // each panel about as wide as its frames (2 px per frame for short clips), plus its axes
    // about 0.6 em per character of DejaVu Sans
    let text_w = |s: &str, size: u32| (s.chars().count() as u32 * size * 6).div_ceil(10);
    let widths: Vec<u32> = spec
        .panels
        .iter()
        .map(|(name, m)| {
            let plot = (m.ncols() as u32 * if m.ncols() < 150 { 2 } else { 1 }).clamp(80, 1600);
            (plot + 70).max(text_w(name, 13) + 24)
        })
        .collect();
    let bar_w = 110;
    let w = (widths.iter().sum::<u32>() + bar_w).max(text_w(&spec.title, 16) + 20);
    render(w, h, |root| {
        let root = root.titled(&spec.title, (FAMILY, 16)).map_err(draw_err)?;
        let (panels_area, bar_area) = root.split_horizontally(w - bar_w);
        let bar_area = bar_area.margin(0, 0, 14, 0);
        let mut x = 0u32;
        for ((name, m), pw) in spec.panels.iter().zip(&widths) {
            let (area, _) = panels_area.split_horizontally(x + pw);
            let (_, area) = area.split_horizontally(x);
            x += pw;
            let duration = m.ncols() as f64 * spec.seconds_per_frame;
            let mut chart = ChartBuilder::on(&area)
                .caption(name, (FAMILY, 13))
                .margin(4)
                .x_label_area_size(34)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..duration, 0.0..spec.rows.1)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("time (s)")
                .y_desc(&spec.rows.0)
                .label_style((FAMILY, 11))
                .axis_desc_style((FAMILY, 12))
                .x_labels(5)
                .y_labels(6)
                .x_label_formatter(&|x| tick(*x))
                .y_label_formatter(&|y| tick(*y))
                .draw()
                .map_err(draw_err)?;
            // paint the map pixel by pixel into the plotting area (row 0 at the bottom)
            let plot = chart.plotting_area().strip_coord_spec();
            let (aw, ah) = plot.dim_in_pixel();
            let (rows, cols) = m.dim();
            for py in 0..ah {
                let r = ((ah - 1 - py) as usize * rows / ah.max(1) as usize).min(rows - 1);
                for px in 0..aw {
                    let c = (px as usize * cols / aw.max(1) as usize).min(cols - 1);
                    let v = m[[r, c]];
                    let rgb = if v.is_finite() {
                        colormap((v - lo) / range).0
                    } else {
                        [255, 255, 255]
                    };
                    plot.draw_pixel((px as i32, py as i32), &RGBColor(rgb[0], rgb[1], rgb[2]))
                        .map_err(draw_err)?;
                }
            }
        }
        // the colour bar: a gradient from lo (bottom) to hi (top) with the value scale
        let mut bar = ChartBuilder::on(&bar_area)
            .margin_top(22)
            .margin_bottom(38)
            .margin_right(4)
            .set_label_area_size(LabelAreaPosition::Right, 64)
            .build_cartesian_2d(0.0..1.0, f64::from(lo)..f64::from(lo + range))
            .map_err(draw_err)?;
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(&spec.value_label)
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .y_labels(6)
            .y_label_formatter(&|y| tick(*y))
            .draw()
            .map_err(draw_err)?;
        let steps = 128;
        bar.draw_series((0..steps).map(|k| {
            let (a, b) = (k as f32 / steps as f32, (k + 1) as f32 / steps as f32);
            let c = colormap((a + b) / 2.0);
            Rectangle::new(
                [
                    (0.0, f64::from(lo + a * range)),
                    (1.0, f64::from(lo + b * range)),
                ],
                RGBColor(c[0], c[1], c[2]).filled(),
            )
        }))
        .map_err(draw_err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(m: ArrayView2<'_, f32>) -> SpectrogramSpec<'_> {
        SpectrogramSpec {
            title: "t".into(),
            panels: vec![("a".into(), m)],
            seconds_per_frame: 0.01,
            rows: ("mel band".into(), 8.0),
            value_label: "dB".into(),
            height: 240,
        }
    }

    /// Row 0 is the lowest frequency: a map loud in its low rows is bright at the bottom of the
    /// panel and dark at the top.
    #[test]
    fn low_rows_are_drawn_at_the_bottom() {
        let m = ndarray::Array2::from_shape_fn((8, 50), |(r, _)| if r < 4 { 0.0 } else { -80.0 });
        let img = spectrogram_chart(&spec(m.view())).unwrap();
        let mean_y = |c: image::Rgb<u8>| {
            let ys: Vec<u32> = img
                .enumerate_pixels()
                .filter(|(_, _, p)| **p == c)
                .map(|(_, y, _)| y)
                .collect();
            assert!(ys.len() > 500, "{} pixels of {c:?}", ys.len());
            ys.iter().map(|&y| f64::from(y)).sum::<f64>() / ys.len() as f64
        };
        assert!(mean_y(colormap(1.0)) > mean_y(colormap(0.0)) + 30.0);
    }

    #[test]
    fn empty_non_finite_and_bad_sizes_are_errors() {
        let m = ndarray::Array2::<f32>::from_elem((4, 4), f32::NAN);
        assert!(spectrogram_chart(&spec(m.view())).is_err());
        let e = ndarray::Array2::<f32>::zeros((0, 4));
        assert!(spectrogram_chart(&spec(e.view())).is_err());
        let ok = ndarray::Array2::<f32>::zeros((4, 4));
        let mut s = spec(ok.view());
        s.height = 10;
        assert!(spectrogram_chart(&s).is_err());
        s.height = 200;
        s.seconds_per_frame = 0.0;
        assert!(spectrogram_chart(&s).is_err());
    }
}
