//! Inverse STFT with window-sum normalisation (`librosa.istft`) and Griffin-Lim phase
//! reconstruction (`librosa.griffinlim`).

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};
use crate::stft::{Stft, StftConfig, centred_window};
use crate::window::Symmetry;

/// An inverse STFT for spectra made with the same [`StftConfig`].
#[derive(Clone)]
pub struct Istft {
    n_fft: usize,
    hop_length: usize,
    center: bool,
    window: Vec<f32>,
    /// The squared window (periodic, `f64` as librosa's `window_sumsquare` squares it), centred.
    window_sq: Vec<f64>,
    ifft: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Istft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Istft")
            .field("n_fft", &self.n_fft)
            .field("hop_length", &self.hop_length)
            .field("center", &self.center)
            .finish_non_exhaustive()
    }
}

impl Istft {
    /// Validates `cfg` (as [`Stft::new`] does) and plans the inverse transform.
    pub fn new(cfg: &StftConfig) -> Result<Self> {
        let fwd = Stft::new(cfg)?;
        let (n_fft, win_length) = (fwd.n_fft(), fwd.win_length());
        let coeffs = cfg.window.coefficients(win_length, Symmetry::Periodic);
        let mut window_sq = vec![0.0f64; n_fft];
        let lpad = (n_fft - win_length) / 2;
        for (dst, c) in window_sq[lpad..lpad + win_length].iter_mut().zip(coeffs) {
            *dst = c * c;
        }
        Ok(Self {
            n_fft,
            hop_length: fwd.hop_length(),
            center: cfg.center,
            window: centred_window(cfg.window, win_length, n_fft),
            window_sq,
            ifft: RealFftPlanner::<f32>::new().plan_fft_inverse(n_fft),
        })
    }

    /// The signal whose STFT is `spec` (`[n_fft / 2 + 1, frames]`), of `length` samples if given
    /// (zero-padded or truncated, as librosa does), else of the length the frames span.
    pub fn process(
        &self,
        spec: ArrayView2<'_, Complex32>,
        length: Option<usize>,
    ) -> Result<Vec<f32>> {
        let bins = self.n_fft / 2 + 1;
        if spec.nrows() != bins || spec.ncols() == 0 {
            return Err(Error::Shape {
                name: "stft_matrix",
                expected: vec![bins, spec.ncols().max(1)],
                got: vec![spec.nrows(), spec.ncols()],
            });
        }
        if length == Some(0) {
            return Err(invalid("length", "must be positive"));
        }
        let (n_fft, hop) = (self.n_fft, self.hop_length);
        let half = if self.center { n_fft / 2 } else { 0 };
        let n_frames = match length {
            Some(len) => spec.ncols().min((len + 2 * half).div_ceil(hop)),
            None => spec.ncols(),
        };
        let full_len = n_fft + hop * (n_frames - 1);
        let out_len = match length {
            Some(len) => len,
            None => full_len
                .checked_sub(2 * half)
                .ok_or(Error::SignalTooShort {
                    needed: 2 * half + 1,
                    got: full_len,
                })?,
        };
        if out_len == 0 {
            return Err(Error::SignalTooShort {
                needed: 2 * half + 1,
                got: full_len,
            });
        }
        let mut full = vec![0.0f32; full_len];
        let mut buf = self.ifft.make_input_vec();
        let mut frame = self.ifft.make_output_vec();
        let mut scratch = self.ifft.make_scratch_vec();
        let scale = 1.0 / n_fft as f32;
        for t in 0..n_frames {
            for (b, c) in buf.iter_mut().zip(spec.column(t)) {
                *b = *c;
            }
            // numpy's irfft ignores the imaginary parts of the DC and Nyquist bins
            buf[0].im = 0.0;
            if n_fft % 2 == 0 {
                buf[bins - 1].im = 0.0;
            }
            self.ifft
                .process_with_scratch(&mut buf, &mut frame, &mut scratch)
                .map_err(|e| invalid("stft_matrix", e.to_string()))?;
            let dst = &mut full[t * hop..t * hop + n_fft];
            for ((d, &x), &w) in dst.iter_mut().zip(&frame).zip(&self.window) {
                *d += x * scale * w;
            }
        }
        // window_sumsquare over the same frames, accumulated in f32 as librosa does
        let mut wss = vec![0.0f32; full_len];
        for t in 0..n_frames {
            for (d, &w) in wss[t * hop..t * hop + n_fft]
                .iter_mut()
                .zip(&self.window_sq)
            {
                *d = (f64::from(*d) + w) as f32;
            }
        }
        let mut y = vec![0.0f32; out_len];
        for (i, v) in y.iter_mut().enumerate() {
            let j = i + half;
            if j < full_len {
                let w = wss[j];
                *v = if w > f32::MIN_POSITIVE {
                    full[j] / w
                } else {
                    full[j]
                };
            }
        }
        Ok(y)
    }
}

/// How Griffin-Lim starts its phase estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhaseInit {
    /// All phases zero (librosa's `init=None`): deterministic.
    Zero,
    /// Uniformly random phases from a seed (librosa's `init="random"`, with our own RNG).
    Random {
        /// The seed.
        seed: u64,
    },
}

/// Griffin-Lim parameters (librosa's defaults: 32 iterations, momentum 0.99, random init).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GriffinLimConfig {
    /// Iterations.
    pub n_iter: usize,
    /// Fast Griffin-Lim momentum (0 for the classic algorithm).
    pub momentum: f32,
    /// Initial phases.
    pub init: PhaseInit,
    /// Output length in samples (and the length every intermediate signal is cut to).
    pub length: Option<usize>,
}

impl Default for GriffinLimConfig {
    fn default() -> Self {
        Self {
            n_iter: 32,
            momentum: 0.99,
            init: PhaseInit::Random { seed: 0 },
            length: None,
        }
    }
}

/// Reconstructs a signal from a magnitude spectrogram `[bins, frames]` made with `stft`
/// (Perraudin et al.'s fast Griffin-Lim, exactly as `librosa.griffinlim`).
pub fn griffin_lim(
    magnitude: ArrayView2<'_, f32>,
    stft: &StftConfig,
    cfg: &GriffinLimConfig,
) -> Result<Vec<f32>> {
    if !(cfg.momentum.is_finite() && cfg.momentum >= 0.0) {
        return Err(invalid("momentum", "must be finite and non-negative"));
    }
    if magnitude.iter().any(|v| !v.is_finite()) {
        return Err(invalid("magnitude", "must be finite"));
    }
    let fwd = Stft::new(stft)?;
    let inv = Istft::new(stft)?;
    let mut angles: Array2<Complex32> = match cfg.init {
        PhaseInit::Zero => magnitude.mapv(|m| Complex32::new(m, 0.0)),
        PhaseInit::Random { seed } => {
            // SplitMix64: a small, well-known generator, enough for initial phases
            let mut state = seed;
            let mut next = move || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            };
            magnitude.mapv(|m| {
                let phi = 2.0 * std::f64::consts::PI * next();
                Complex32::from_polar(m, phi as f32)
            })
        }
    };
    let eps = f32::MIN_POSITIVE;
    let alpha = cfg.momentum / (1.0 + cfg.momentum);
    let mut tprev: Option<Array2<Complex32>> = None;
    for _ in 0..cfg.n_iter {
        let inverse = inv.process(angles.view(), cfg.length)?;
        let rebuilt = fwd.process(&inverse)?;
        if rebuilt.dim() != angles.dim() {
            return Err(Error::Shape {
                name: "rebuilt spectrogram (set `length`)",
                expected: vec![angles.nrows(), angles.ncols()],
                got: vec![rebuilt.nrows(), rebuilt.ncols()],
            });
        }
        angles.assign(&rebuilt);
        if let Some(prev) = &tprev {
            angles.zip_mut_with(prev, |a, p| *a -= p * alpha);
        }
        angles.zip_mut_with(&magnitude, |a, &m| *a = *a / (a.norm() + eps) * m);
        tprev = Some(rebuilt);
    }
    inv.process(angles.view(), cfg.length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowKind;
    use proptest::prelude::*;

    fn signal(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) + (i as f32 * 0.05).sin()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn istft_inverts_stft(
            len in 600usize..3000,
            n_fft in prop::sample::select(vec![128usize, 255, 256, 400]),
            hop_div in prop::sample::select(vec![2usize, 4]),
            center in any::<bool>(),
            window in prop::sample::select(vec![WindowKind::Hann, WindowKind::Hamming, WindowKind::Blackman]),
            seed in any::<u64>(),
        ) {
            let x = signal(len, seed);
            let cfg = StftConfig {
                n_fft,
                hop_length: Some(n_fft / hop_div),
                window,
                center,
                ..Default::default()
            };
            let spec = Stft::new(&cfg).unwrap().process(&x).unwrap();
            let y = Istft::new(&cfg).unwrap().process(spec.view(), Some(len)).unwrap();
            prop_assert_eq!(y.len(), len);
            // Where only a window's tail covers a sample (the ends), the inverse divides by a
            // vanishing window sum and amplifies rounding: compare where the sum of squared
            // windows is at least 5 % of its maximum (every sample but those ends).
            let w = window.coefficients(n_fft, crate::Symmetry::Periodic);
            let half = if center { n_fft / 2 } else { 0 };
            let hop = n_fft / hop_div;
            let mut wss = vec![0.0f64; len + 2 * half + n_fft];
            for t in 0..spec.ncols() {
                for (k, wk) in w.iter().enumerate() {
                    wss[t * hop + k] += wk * wk;
                }
            }
            let peak = wss.iter().cloned().fold(0.0, f64::max);
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let mut compared = 0;
            for i in 0..len {
                if wss[i + half] >= 0.05 * peak {
                    compared += 1;
                    prop_assert!((x[i] - y[i]).abs() <= 1e-5 * scale * 4.0, "i={} x={} y={}", i, x[i], y[i]);
                }
            }
            prop_assert!(compared >= len * 9 / 10 || !center, "compared {} of {}", compared, len);
            prop_assert!(compared >= len.saturating_sub(2 * n_fft), "compared {} of {}", compared, len);
        }
    }

    #[test]
    fn griffin_lim_recovers_a_consistent_magnitude() {
        let x: Vec<f32> = (0..4000)
            .map(|i| (i as f32 * 0.07).sin() + 0.5 * (i as f32 * 0.19).sin())
            .collect();
        let cfg = StftConfig {
            n_fft: 256,
            hop_length: Some(64),
            ..Default::default()
        };
        let stft = Stft::new(&cfg).unwrap();
        let mag = stft.magnitude(&x).unwrap();
        let spectral_error = |n_iter| {
            let y = griffin_lim(
                mag.view(),
                &cfg,
                &GriffinLimConfig {
                    n_iter,
                    length: Some(x.len()),
                    init: PhaseInit::Random { seed: 1 },
                    ..Default::default()
                },
            )
            .unwrap();
            let m2 = stft.magnitude(&y).unwrap();
            let num: f32 = (&m2 - &mag).mapv(|v| v * v).sum();
            (num / mag.mapv(|v| v * v).sum()).sqrt()
        };
        let (e1, e30) = (spectral_error(1), spectral_error(30));
        assert!(e30 < 0.5 * e1 && e30 < 0.1, "{e1} -> {e30}");
    }
}
