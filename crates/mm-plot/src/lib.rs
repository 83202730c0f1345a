//! # mm-plot: pictures of results
//!
//! PNG pictures that the training engine (`loss.png`, the monitored metric), the tasks
//! (attention strips, retrieval galleries, answers) and the `mm` command (spectrograms) draw,
//! without depending on each other: curves on a shared axis, spectrogram strips with a
//! viridis-like colour map, an 8x8 bitmap font, and atomic PNG writes (a temporary file, then a
//! rename).
//!
//! ```
//! let img = mm_plot::line_plot(&[&[3.0, 2.0, 1.5, 1.2]], 200, 100)?;
//! assert_eq!(img.dimensions(), (200, 100));
//! # Ok::<(), mm_plot::Error>(())
//! ```
//!
//! ## Feature flags
//! None; no libtorch.

mod draw;
mod error;

pub use draw::{draw_text, line_plot, save_png_atomic, spectrogram_strip, text_width, titled};
pub use error::{Error, Result};
