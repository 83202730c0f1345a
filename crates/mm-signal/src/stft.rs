//! Short-time Fourier transform with librosa's semantics (`librosa.stft`).

use std::sync::Arc;

use ndarray::Array2;
use num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};
use crate::window::{Symmetry, WindowKind};

/// How the signal is extended at both ends when `center` is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    /// Zeros (librosa's default since 0.10).
    #[default]
    Constant,
    /// Mirror without repeating the edge sample (`numpy.pad(..., mode="reflect")`).
    Reflect,
}

/// STFT parameters; `None` fields take librosa's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StftConfig {
    /// FFT length; the spectrum has `n_fft / 2 + 1` bins.
    pub n_fft: usize,
    /// Samples between frame starts; default `win_length / 4`.
    pub hop_length: Option<usize>,
    /// Window length (`<= n_fft`), zero-padded to the centre of the frame; default `n_fft`.
    pub win_length: Option<usize>,
    /// Window shape (always periodic, as librosa's STFT uses it).
    pub window: WindowKind,
    /// Pad `n_fft / 2` samples at both ends so that frame `t` is centred at `t * hop_length`.
    pub center: bool,
    /// How to pad when `center` is true.
    pub pad_mode: PadMode,
}

impl Default for StftConfig {
    fn default() -> Self {
        Self {
            n_fft: 2048,
            hop_length: None,
            win_length: None,
            window: WindowKind::Hann,
            center: true,
            pad_mode: PadMode::Constant,
        }
    }
}

/// A validated STFT with its window and FFT plan precomputed; cheap to share across threads.
#[derive(Clone)]
pub struct Stft {
    n_fft: usize,
    hop_length: usize,
    center: bool,
    pad_mode: PadMode,
    /// The window, zero-padded to `n_fft` and centred.
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("n_fft", &self.n_fft)
            .field("hop_length", &self.hop_length)
            .field("center", &self.center)
            .field("pad_mode", &self.pad_mode)
            .finish_non_exhaustive()
    }
}

impl Stft {
    /// Validates `cfg` and plans the transform.
    pub fn new(cfg: &StftConfig) -> Result<Self> {
        if cfg.n_fft == 0 {
            return Err(invalid("n_fft", "must be positive"));
        }
        let win_length = cfg.win_length.unwrap_or(cfg.n_fft);
        if win_length == 0 || win_length > cfg.n_fft {
            return Err(invalid(
                "win_length",
                format!("must be in 1..={}, got {win_length}", cfg.n_fft),
            ));
        }
        let hop_length = cfg.hop_length.unwrap_or(win_length / 4);
        if hop_length == 0 {
            return Err(invalid("hop_length", "must be positive"));
        }
        let coeffs = cfg.window.coefficients(win_length, Symmetry::Periodic);
        let mut window = vec![0.0f32; cfg.n_fft];
        let lpad = (cfg.n_fft - win_length) / 2;
        for (dst, c) in window[lpad..lpad + win_length].iter_mut().zip(coeffs) {
            *dst = c as f32;
        }
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        Ok(Self {
            n_fft: cfg.n_fft,
            hop_length,
            center: cfg.center,
            pad_mode: cfg.pad_mode,
            window,
            fft,
        })
    }

    /// Number of frequency bins, `n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// The hop length in samples.
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// Number of frames for a signal of `len` samples (librosa's count), or an error when the
    /// signal is shorter than one frame.
    pub fn n_frames(&self, len: usize) -> Result<usize> {
        let padded = if self.center {
            len + 2 * (self.n_fft / 2)
        } else {
            len
        };
        if len == 0 || padded < self.n_fft {
            return Err(Error::SignalTooShort {
                needed: if self.center { 1 } else { self.n_fft },
                got: len,
            });
        }
        Ok(1 + (padded - self.n_fft) / self.hop_length)
    }

    /// Complex spectrum, layout `[bins, frames]` as librosa returns it.
    pub fn process(&self, signal: &[f32]) -> Result<Array2<Complex32>> {
        let n_frames = self.n_frames(signal.len())?;
        let padded = self.pad(signal);
        let mut out = Array2::<Complex32>::zeros((self.n_bins(), n_frames));
        let mut frame = self.fft.make_input_vec();
        let mut spec = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        for t in 0..n_frames {
            let start = t * self.hop_length;
            for ((dst, &x), &w) in frame
                .iter_mut()
                .zip(&padded[start..start + self.n_fft])
                .zip(&self.window)
            {
                *dst = x * w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spec, &mut scratch)
                .map_err(|e| invalid("n_fft", e.to_string()))?;
            for (k, c) in spec.iter().enumerate() {
                out[[k, t]] = *c;
            }
        }
        Ok(out)
    }

    /// Power spectrogram `|X|^2`, layout `[bins, frames]`.
    pub fn power(&self, signal: &[f32]) -> Result<Array2<f32>> {
        Ok(self.process(signal)?.mapv(|c| c.norm_sqr()))
    }

    /// Magnitude spectrogram `|X|`, layout `[bins, frames]`.
    pub fn magnitude(&self, signal: &[f32]) -> Result<Array2<f32>> {
        Ok(self.process(signal)?.mapv(|c| c.norm()))
    }

    fn pad(&self, signal: &[f32]) -> Vec<f32> {
        if !self.center {
            return signal.to_vec();
        }
        let p = self.n_fft / 2;
        let n = signal.len() as isize;
        let mut out = Vec::with_capacity(signal.len() + 2 * p);
        let at = |i: isize| -> f32 {
            match self.pad_mode {
                PadMode::Constant => {
                    if (0..n).contains(&i) {
                        signal[i as usize]
                    } else {
                        0.0
                    }
                }
                PadMode::Reflect => signal[reflect_index(i, n)],
            }
        };
        for i in -(p as isize)..n + p as isize {
            out.push(at(i));
        }
        out
    }
}

/// numpy's `reflect` index for position `i` of a signal of length `n > 0`, folding repeatedly.
fn reflect_index(i: isize, n: isize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dft_power(frame: &[f64]) -> Vec<f64> {
        let n = frame.len();
        (0..n / 2 + 1)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (t, &x) in frame.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                    re += x * a.cos();
                    im += x * a.sin();
                }
                re * re + im * im
            })
            .collect()
    }

    #[test]
    fn frame_count_matches_librosa_formula() {
        let stft = Stft::new(&StftConfig {
            n_fft: 512,
            hop_length: Some(128),
            ..Default::default()
        })
        .unwrap();
        // librosa: 1 + (len + 2 * (n_fft // 2) - n_fft) // hop
        for len in [1usize, 100, 511, 512, 1000, 22050] {
            assert_eq!(stft.n_frames(len).unwrap(), 1 + (len + 512 - 512) / 128);
        }
        let nc = Stft::new(&StftConfig {
            n_fft: 512,
            hop_length: Some(128),
            center: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(nc.n_frames(1000).unwrap(), 1 + (1000 - 512) / 128);
        assert_eq!(
            nc.n_frames(100),
            Err(Error::SignalTooShort {
                needed: 512,
                got: 100
            })
        );
    }

    #[test]
    fn matches_naive_dft_for_odd_and_even_sizes_and_short_windows() {
        let signal: Vec<f32> = (0..700)
            .map(|i| ((i as f32) * 0.37).sin() + 0.3 * ((i * i % 97) as f32 / 97.0))
            .collect();
        for (n_fft, win) in [(64usize, 64usize), (63, 63), (100, 60), (31, 20)] {
            for pad_mode in [PadMode::Constant, PadMode::Reflect] {
                let cfg = StftConfig {
                    n_fft,
                    hop_length: Some(17),
                    win_length: Some(win),
                    window: WindowKind::Hann,
                    center: true,
                    pad_mode,
                };
                let stft = Stft::new(&cfg).unwrap();
                let power = stft.power(&signal).unwrap();
                let padded = stft.pad(&signal);
                let w = &stft.window;
                for t in [0usize, 3, power.ncols() - 1] {
                    let frame: Vec<f64> = (0..n_fft)
                        .map(|i| f64::from(padded[t * 17 + i]) * f64::from(w[i]))
                        .collect();
                    let want = naive_dft_power(&frame);
                    let scale = want.iter().cloned().fold(0.0, f64::max);
                    for k in 0..want.len() {
                        let err = (f64::from(power[[k, t]]) - want[k]).abs();
                        assert!(err <= 1e-4 * scale, "n_fft={n_fft} t={t} k={k} err={err}");
                    }
                }
            }
        }
    }

    #[test]
    fn reflect_padding_is_numpys() {
        // numpy.pad([1, 2, 3], 4, mode="reflect") == [1 2 3 2 1 2 3 2 1 2 3]
        let n = 3;
        let got: Vec<usize> = (-4..7).map(|i| reflect_index(i, n)).collect();
        assert_eq!(got, vec![0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]);
    }

    #[test]
    fn bad_configs_are_errors() {
        let bad = |cfg: StftConfig| Stft::new(&cfg).unwrap_err();
        assert!(matches!(
            bad(StftConfig {
                n_fft: 0,
                ..Default::default()
            }),
            Error::InvalidParameter { name: "n_fft", .. }
        ));
        assert!(matches!(
            bad(StftConfig {
                n_fft: 8,
                win_length: Some(9),
                ..Default::default()
            }),
            Error::InvalidParameter {
                name: "win_length",
                ..
            }
        ));
        assert!(matches!(
            bad(StftConfig {
                n_fft: 8,
                hop_length: Some(0),
                ..Default::default()
            }),
            Error::InvalidParameter {
                name: "hop_length",
                ..
            }
        ));
    }
}
