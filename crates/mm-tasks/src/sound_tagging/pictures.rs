//! Spectrogram strips: one test clip per class after training, one per input at inference.

use std::path::Path;

use mm_plot as plot;
use mm_train::Result;
use ndarray::Array2;

/// The most classes the summary strip shows (ESC-50 has 50).
pub(super) const MAX_CLASSES: usize = 12;

/// Writes `specs` (dB, `[n_mels, frames]`, each with its panel title: a class, an input) side by
/// side on one colour scale, with time (`frame_s` seconds per frame) and mel-band axes.
pub(super) fn strip(specs: &[(&str, &Array2<f32>)], frame_s: f64, path: &Path) -> Result<()> {
    let n_mels = specs.first().map_or(1, |(_, s)| s.nrows());
    let spec = plot::SpectrogramSpec {
        title: "log-mel spectrograms".into(),
        panels: specs
            .iter()
            .map(|(name, s)| (name.to_string(), s.view()))
            .collect(),
        seconds_per_frame: frame_s,
        rows: ("mel band".into(), n_mels as f64),
        value_label: "dB".into(),
        height: 260,
    };
    plot::save_png_atomic(&plot::spectrogram_chart(&spec)?, path)?;
    Ok(())
}
