//! Line charts with axes, ticks, axis labels, a legend and horizontal reference lines (a
//! baseline, chance), drawn with [plotters](https://docs.rs/plotters) into an RGB image.
//!
//! Text uses DejaVu Sans reduced to printable ASCII (`assets/DejaVuSans-ascii.ttf`, 20 KB,
//! compiled in), so charts look the same on every machine and need no system fonts;
//! characters outside it are drawn as boxes.

use image::RgbImage;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// The font family registered with plotters for every chart.
pub(crate) const FAMILY: &str = "mm-sans";

/// Colours of the series, in order (matplotlib's first "tab10" colours).
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Colours of the reference lines.
const REFERENCE: [RGBColor; 3] = [
    RGBColor(110, 110, 110),
    RGBColor(190, 150, 40),
    RGBColor(60, 170, 170),
];

pub(crate) fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            FAMILY,
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans-ascii.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(draw_err("the compiled-in font does not load"))
    }
}

pub(crate) fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::InvalidParameter {
        name: "chart",
        reason: e.to_string(),
    }
}

/// A tick label: whole numbers (steps, bands) without a trailing `.0`, others with up to three
/// decimals.
pub(crate) fn tick(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// Draws with `draw` into a white `w` x `h` picture through plotters' bitmap backend.
pub(crate) fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<RgbImage> {
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| draw_err("the pixel buffer has the wrong size"))
}

/// One curve: `(x, y)` points in order of x, and its name in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry (`train`, `val`).
    pub name: String,
    /// The points; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
}

/// A horizontal line at `y` across the chart (a baseline, chance), named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The legend entry (`prior`, `chance`).
    pub name: String,
    /// Where it is drawn.
    pub y: f64,
}

/// What [`line_chart`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// The caption above the chart.
    pub title: String,
    /// The x axis's label (`step`).
    pub x_label: String,
    /// The y axis's label (`loss`, `accuracy`).
    pub y_label: String,
    /// The curves (at least one with a finite point).
    pub series: Vec<Series>,
    /// Reference lines.
    pub references: Vec<Reference>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

/// Draws `spec`: axes with ticks and labels, a light grid, each series as a line (with point
/// markers when it has few points), the reference lines dashed, and a legend.
///
/// ```
/// use mm_plot::{ChartSpec, Reference, Series, line_chart};
/// let spec = ChartSpec {
///     title: "val accuracy".into(),
///     x_label: "step".into(),
///     y_label: "accuracy".into(),
///     series: vec![Series { name: "val".into(), points: vec![(10.0, 0.4), (20.0, 0.6), (30.0, 0.7)] }],
///     references: vec![Reference { name: "chance".into(), y: 0.25 }],
///     width: 480,
///     height: 300,
/// };
/// assert_eq!(line_chart(&spec)?.dimensions(), (480, 300));
/// # Ok::<(), mm_plot::Error>(())
/// ```
pub fn line_chart(spec: &ChartSpec) -> Result<RgbImage> {
    let (w, h) = (spec.width, spec.height);
    if !(160..=8192).contains(&w) || !(120..=8192).contains(&h) {
        return Err(Error::InvalidParameter {
            name: "width/height",
            reason: format!("{w}x{h}: need 160..=8192 by 120..=8192 pixels"),
        });
    }
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let points: Vec<(f64, f64)> = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied().filter(finite))
        .collect();
    if points.is_empty() {
        return Err(Error::InvalidParameter {
            name: "series",
            reason: "no finite point to draw".into(),
        });
    }
    register_font()?;
    let refs: Vec<&Reference> = spec.references.iter().filter(|r| r.y.is_finite()).collect();
    let (mut x0, mut x1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (mut y0, mut y1) = points
        .iter()
        .map(|p| p.1)
        .chain(refs.iter().map(|r| r.y))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = if y1 > y0 {
        0.06 * (y1 - y0)
    } else {
        0.5 * y0.abs().max(1.0)
    };
    (y0, y1) = (y0 - pad, y1 + pad);

    render(w, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&spec.title, (FAMILY, 16).into_font())
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_labels(8)
            .x_label_formatter(&|x| tick(*x))
            .y_labels(7)
            .draw()
            .map_err(draw_err)?;
        for (i, s) in spec.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(finite).collect();
            let few = pts.len() <= 40;
            chart
                .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(&s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            if few {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(draw_err)?;
            }
        }
        for (i, r) in refs.iter().enumerate() {
            let colour = REFERENCE[i % REFERENCE.len()];
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, r.y), (x1, r.y)],
                    6,
                    4,
                    colour.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(format!("{} ({:.4})", r.name, r.y))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        // the legend goes to the right-hand corner the curves leave emptier
        let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let upper = points.iter().filter(|p| p.0 > mx && p.1 > my).count();
        let lower = points.iter().filter(|p| p.0 > mx && p.1 <= my).count();
        let corner = if upper > lower {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        };
        chart
            .configure_series_labels()
            .position(corner)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FAMILY, 12))
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(series: Vec<Series>, references: Vec<Reference>) -> ChartSpec {
        ChartSpec {
            title: "val accuracy".into(),
            x_label: "step".into(),
            y_label: "accuracy".into(),
            series,
            references,
            width: 400,
            height: 260,
        }
    }

    /// Pixels of exactly `c`.
    fn count(img: &RgbImage, c: RGBColor) -> usize {
        img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
    }

    #[test]
    fn series_references_and_text_are_drawn() {
        let s = Series {
            name: "val".into(),
            points: (0..50)
                .map(|i| (f64::from(i) * 10.0, (f64::from(i) * 0.1).sin()))
                .collect(),
        };
        let img = line_chart(&spec(
            vec![s],
            vec![Reference {
                name: "chance".into(),
                y: 0.25,
            }],
        ))
        .unwrap();
        assert_eq!(img.dimensions(), (400, 260));
        // the series' colour, the reference's, and dark text/axis pixels are all there
        assert!(count(&img, PALETTE[0]) > 200, "{}", count(&img, PALETTE[0]));
        assert!(
            count(&img, REFERENCE[0]) > 100,
            "{}",
            count(&img, REFERENCE[0])
        );
        let dark = img.pixels().filter(|p| p.0.iter().all(|&v| v < 80)).count();
        assert!(dark > 300, "{dark}");
    }

    #[test]
    fn one_point_flat_series_and_bad_sizes() {
        let one = Series {
            name: "train".into(),
            points: vec![(5.0, 2.0), (6.0, f64::NAN)],
        };
        let img = line_chart(&spec(vec![one], vec![])).unwrap();
        assert!(count(&img, PALETTE[0]) > 10);
        let none = Series {
            name: "x".into(),
            points: vec![(1.0, f64::INFINITY)],
        };
        assert!(line_chart(&spec(vec![none], vec![])).is_err());
        let mut tiny = spec(
            vec![Series {
                name: "a".into(),
                points: vec![(0.0, 1.0)],
            }],
            vec![],
        );
        tiny.width = 10;
        assert!(line_chart(&tiny).is_err());
    }
}
