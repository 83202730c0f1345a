//! Spectrogram strips: one test clip per class after training, one per input at inference.

use std::path::Path;

use mm_plot as plot;
use mm_train::Result;
use ndarray::Array2;

/// The most classes the summary strip shows (ESC-50 has 50).
pub(super) const MAX_CLASSES: usize = 12;

/// Writes `specs` (dB, `[n_mels, frames]`) side by side, 3 pixels per cell.
pub(super) fn strip(specs: &[&Array2<f32>], path: &Path) -> Result<()> {
    let views: Vec<_> = specs.iter().map(|s| s.view()).collect();
    plot::save_png_atomic(&plot::spectrogram_strip(&views, 3)?, path)?;
    Ok(())
}
