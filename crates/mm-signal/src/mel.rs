//! Mel scales and mel filter banks, as `librosa.filters.mel` builds them.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::stft::{Stft, StftConfig};

/// Which hertz-to-mel formula to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MelScale {
    /// Slaney's Auditory Toolbox: linear below 1 kHz (200/3 Hz per mel), logarithmic above
    /// (librosa's default, `htk=False`).
    #[default]
    Slaney,
    /// HTK: `2595 log10(1 + f / 700)` (librosa's `htk=True`).
    Htk,
}

/// How each triangular filter is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MelNorm {
    /// Divide each triangle by its width in hertz (`2 / (f[i+2] - f[i])`): constant energy per
    /// channel (librosa's default, `norm="slaney"`).
    #[default]
    Slaney,
    /// Triangles peak at 1 (`norm=None`).
    None,
}

impl MelScale {
    /// Hertz to mels.
    pub fn hz_to_mel(self, hz: f64) -> f64 {
        match self {
            MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
            MelScale::Slaney => {
                const F_SP: f64 = 200.0 / 3.0;
                const MIN_LOG_HZ: f64 = 1000.0;
                let min_log_mel = MIN_LOG_HZ / F_SP;
                let logstep = 6.4f64.ln() / 27.0;
                if hz >= MIN_LOG_HZ {
                    min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
                } else {
                    hz / F_SP
                }
            }
        }
    }

    /// Mels to hertz (the inverse of [`MelScale::hz_to_mel`]).
    pub fn mel_to_hz(self, mel: f64) -> f64 {
        match self {
            MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
            MelScale::Slaney => {
                const F_SP: f64 = 200.0 / 3.0;
                const MIN_LOG_HZ: f64 = 1000.0;
                let min_log_mel = MIN_LOG_HZ / F_SP;
                let logstep = 6.4f64.ln() / 27.0;
                if mel >= min_log_mel {
                    MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
                } else {
                    F_SP * mel
                }
            }
        }
    }
}

/// Mel filter bank parameters; `fmax: None` means the Nyquist frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelConfig {
    /// Sample rate of the analysed signal.
    pub sample_rate_hz: f64,
    /// FFT length of the spectra the bank applies to.
    pub n_fft: usize,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge in hertz.
    pub fmin_hz: f64,
    /// Highest band edge in hertz (default `sample_rate_hz / 2`).
    pub fmax_hz: Option<f64>,
    /// Mel formula.
    pub scale: MelScale,
    /// Filter normalisation.
    pub norm: MelNorm,
}

impl Default for MelConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: 22050.0,
            n_fft: 2048,
            n_mels: 128,
            fmin_hz: 0.0,
            fmax_hz: None,
            scale: MelScale::Slaney,
            norm: MelNorm::Slaney,
        }
    }
}

/// The `[n_mels, n_fft / 2 + 1]` filter bank, rounded to `f32` as librosa rounds it (triangles
/// first, then normalisation).
pub fn mel_filterbank(cfg: &MelConfig) -> Result<Array2<f32>> {
    if !(cfg.sample_rate_hz.is_finite() && cfg.sample_rate_hz > 0.0) {
        return Err(invalid("sample_rate_hz", "must be positive and finite"));
    }
    if cfg.n_fft == 0 {
        return Err(invalid("n_fft", "must be positive"));
    }
    if cfg.n_mels == 0 {
        return Err(invalid("n_mels", "must be positive"));
    }
    let nyquist = cfg.sample_rate_hz / 2.0;
    let fmax = cfg.fmax_hz.unwrap_or(nyquist);
    if !(cfg.fmin_hz >= 0.0 && cfg.fmin_hz < fmax && fmax <= nyquist) {
        return Err(invalid(
            "fmin_hz/fmax_hz",
            format!(
                "need 0 <= fmin < fmax <= {nyquist}, got {} and {fmax}",
                cfg.fmin_hz
            ),
        ));
    }
    let n_bins = cfg.n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| {
            if n_bins == 1 {
                0.0
            } else {
                nyquist * k as f64 / (n_bins - 1) as f64
            }
        })
        .collect();
    let (lo, hi) = (cfg.scale.hz_to_mel(cfg.fmin_hz), cfg.scale.hz_to_mel(fmax));
    let n_pts = cfg.n_mels + 2;
    let mel_f: Vec<f64> = (0..n_pts)
        .map(|i| {
            cfg.scale
                .mel_to_hz(lo + (hi - lo) * i as f64 / (n_pts - 1) as f64)
        })
        .collect();
    let mut weights = Array2::<f32>::zeros((cfg.n_mels, n_bins));
    for i in 0..cfg.n_mels {
        let (fd0, fd1) = (mel_f[i + 1] - mel_f[i], mel_f[i + 2] - mel_f[i + 1]);
        let enorm = match cfg.norm {
            MelNorm::Slaney => 2.0 / (mel_f[i + 2] - mel_f[i]),
            MelNorm::None => 1.0,
        };
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = -(mel_f[i] - f) / fd0;
            let upper = (mel_f[i + 2] - f) / fd1;
            let tri = lower.min(upper).max(0.0) as f32;
            weights[[i, k]] = (f64::from(tri) * enorm) as f32;
        }
    }
    Ok(weights)
}

/// A mel spectrogram: power STFT followed by a mel filter bank, both precomputed.
#[derive(Debug, Clone)]
pub struct MelSpectrogram {
    stft: Stft,
    bank: Array2<f32>,
}

impl MelSpectrogram {
    /// Plans the STFT and builds the filter bank; `mel.n_fft` must equal `stft.n_fft`.
    pub fn new(stft: &StftConfig, mel: &MelConfig) -> Result<Self> {
        if stft.n_fft != mel.n_fft {
            return Err(invalid(
                "n_fft",
                format!("stft has {} but mel bank has {}", stft.n_fft, mel.n_fft),
            ));
        }
        Ok(Self {
            stft: Stft::new(stft)?,
            bank: mel_filterbank(mel)?,
        })
    }

    /// The filter bank, `[n_mels, n_fft / 2 + 1]`.
    pub fn filterbank(&self) -> ArrayView2<'_, f32> {
        self.bank.view()
    }

    /// The STFT in use.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Mel power spectrogram, layout `[n_mels, frames]`.
    pub fn process(&self, signal: &[f32]) -> Result<Array2<f32>> {
        let power = self.stft.power(signal)?;
        Ok(self.bank.dot(&power))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_round_trip_and_match_known_points() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0] {
                let back = scale.mel_to_hz(scale.hz_to_mel(hz));
                assert!((back - hz).abs() < 1e-9 * hz.max(1.0));
            }
        }
        // librosa.hz_to_mel(1000) == 15.0; with htk=True it is 2595 log10(1 + 1000/700) = 999.98553...
        assert!((MelScale::Slaney.hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((MelScale::Htk.hz_to_mel(1000.0) - 999.985_537_139_624_4).abs() < 1e-9);
    }

    #[test]
    fn slaney_norm_gives_each_filter_unit_area_in_hertz() {
        let cfg = MelConfig {
            sample_rate_hz: 16000.0,
            n_fft: 4096,
            n_mels: 40,
            ..Default::default()
        };
        let bank = mel_filterbank(&cfg).unwrap();
        let df = 8000.0 / 2048.0;
        for row in bank.rows() {
            // triangle area = height * width / 2 = (2 / width) * width / 2 = 1
            let area: f64 = row.iter().map(|&w| f64::from(w) * df).sum();
            assert!((area - 1.0).abs() < 0.02, "area {area}");
        }
        let plain = mel_filterbank(&MelConfig {
            norm: MelNorm::None,
            ..cfg
        })
        .unwrap();
        for row in plain.rows() {
            let peak = row.iter().cloned().fold(0.0f32, f32::max);
            assert!(peak > 0.9 && peak <= 1.0);
        }
    }

    #[test]
    fn invalid_ranges_are_errors() {
        let e = mel_filterbank(&MelConfig {
            fmax_hz: Some(30000.0),
            ..Default::default()
        });
        assert!(e.is_err());
        let e = MelSpectrogram::new(
            &StftConfig {
                n_fft: 512,
                ..Default::default()
            },
            &MelConfig::default(),
        );
        assert!(e.is_err());
    }
}
