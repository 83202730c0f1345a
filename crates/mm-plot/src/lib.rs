//! # mm-plot: pictures of results
//!
//! PNG pictures that the training engine (`loss.png`, the monitored metric), the tasks
//! (attention strips, retrieval galleries, answers) and the `mm` command (spectrograms) draw,
//! without depending on each other: line charts with axes, ticks, labels, a legend and
//! baseline/chance lines ([`line_chart`]) and spectrograms with time and frequency axes and a
//! colour bar ([`spectrogram_chart`]), both drawn with plotters and a compiled-in DejaVu Sans;
//! an 8x8 bitmap font for labels inside pictures, and atomic PNG writes (a temporary file, then
//! a rename).
//!
//! ```
//! let spec = mm_plot::ChartSpec {
//!     title: "loss by step".into(),
//!     x_label: "step".into(),
//!     y_label: "loss".into(),
//!     series: vec![mm_plot::Series {
//!         name: "train".into(),
//!         points: vec![(10.0, 3.0), (20.0, 2.0), (30.0, 1.5)],
//!     }],
//!     references: vec![],
//!     width: 400,
//!     height: 240,
//! };
//! assert_eq!(mm_plot::line_chart(&spec)?.dimensions(), (400, 240));
//! # Ok::<(), mm_plot::Error>(())
//! ```
//!
//! ## Feature flags
//! None; no libtorch.

mod chart;
mod draw;
mod error;
mod spectrogram;

pub use chart::{ChartSpec, Reference, Series, line_chart};
pub use draw::{draw_text, save_png_atomic, text_width};
pub use error::{Error, Result};
pub use spectrogram::{SpectrogramSpec, spectrogram_chart};
