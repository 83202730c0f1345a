//! Mel-frequency cepstral coefficients, as `librosa.feature.mfcc` computes them: a DCT-II
//! (`norm='ortho'`) of the dB mel spectrogram, then optional liftering.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::db::{DbConfig, power_to_db_inplace, power_to_db_slice};
use crate::error::{Error, Result, invalid};
use crate::mel::{MelConfig, MelSpectrogram};
use crate::stft::StftConfig;

/// MFCC parameters beyond the STFT and mel bank (librosa's defaults: 20 coefficients, no
/// liftering, `power_to_db` with its defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct MfccConfig {
    /// Coefficients kept (`<= n_mels`).
    pub n_mfcc: usize,
    /// Liftering parameter `L`: coefficient `k` (from 1) is scaled by `1 + L/2 sin(pi k / L)`;
    /// 0 disables it.
    pub lifter: f32,
    /// dB conversion of the mel spectrogram.
    pub db: DbConfig,
}

impl Default for MfccConfig {
    fn default() -> Self {
        Self {
            n_mfcc: 20,
            lifter: 0.0,
            db: DbConfig::default(),
        }
    }
}

/// The orthonormal DCT-II matrix `[n_out, n_in]` (scipy's `dct(type=2, norm='ortho')`, first
/// `n_out` rows).
pub fn dct2_ortho(n_out: usize, n_in: usize) -> Array2<f32> {
    let mut m = Array2::zeros((n_out, n_in));
    let n = n_in as f64;
    for k in 0..n_out {
        let scale = if k == 0 {
            (1.0 / n).sqrt()
        } else {
            (2.0 / n).sqrt()
        };
        for i in 0..n_in {
            let angle = std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n);
            m[[k, i]] = (scale * angle.cos()) as f32;
        }
    }
    m
}

/// MFCC extraction with its mel spectrogram, DCT matrix and lifter precomputed.
#[derive(Debug, Clone)]
pub struct Mfcc {
    mel: MelSpectrogram,
    dct: Array2<f32>,
    cfg: MfccConfig,
}

/// The `[n_mfcc, n_mels]` DCT-II (`norm='ortho'`) with librosa's liftering folded into its rows
/// (`1 + (lifter / 2) sin(pi (k + 1) / lifter)` for coefficient `k`; none when `lifter` is 0).
pub(crate) fn liftered_dct(n_mfcc: usize, n_mels: usize, lifter: f32) -> Result<Array2<f32>> {
    if n_mfcc == 0 || n_mfcc > n_mels {
        return Err(invalid(
            "n_mfcc",
            format!("must be in 1..={n_mels} (n_mels), got {n_mfcc}"),
        ));
    }
    if !(lifter.is_finite() && lifter >= 0.0) {
        return Err(invalid("lifter", "must be finite and non-negative"));
    }
    let mut dct = dct2_ortho(n_mfcc, n_mels);
    if lifter > 0.0 {
        for (k, mut row) in dct.rows_mut().into_iter().enumerate() {
            let li = (std::f32::consts::PI * (k + 1) as f32 / lifter).sin();
            let s = 1.0 + (lifter / 2.0) * li;
            row.mapv_inplace(|v| v * s);
        }
    }
    Ok(dct)
}

impl Mfcc {
    /// Validates and precomputes.
    pub fn new(stft: &StftConfig, mel: &MelConfig, cfg: &MfccConfig) -> Result<Self> {
        let dct = liftered_dct(cfg.n_mfcc, mel.n_mels, cfg.lifter)?;
        Ok(Self {
            mel: MelSpectrogram::new(stft, mel)?,
            dct,
            cfg: cfg.clone(),
        })
    }

    /// The mel spectrogram stage.
    pub fn mel(&self) -> &MelSpectrogram {
        &self.mel
    }

    /// Number of coefficients.
    pub fn n_mfcc(&self) -> usize {
        self.cfg.n_mfcc
    }

    /// The dB conversion applied to the mel spectrogram.
    pub fn db(&self) -> DbConfig {
        self.cfg.db
    }

    /// MFCCs, layout `[n_mfcc, frames]`.
    pub fn process(&self, y: &[f32]) -> Result<Array2<f32>> {
        let mut s = self.mel.process(y)?;
        power_to_db_inplace(&mut s, &self.cfg.db)?;
        self.from_db_mel(s.view())
    }

    /// Like [`Mfcc::process`], with the STFT and mel stage split across the rayon pool (see
    /// [`MelSpectrogram::process_par`]).
    pub fn process_par(&self, y: &[f32]) -> Result<Array2<f32>> {
        let mut s = self.mel.process_par(y)?;
        match s.as_slice_mut() {
            Some(v) => power_to_db_slice(v, &self.cfg.db, true)?,
            None => power_to_db_inplace(&mut s, &self.cfg.db)?,
        }
        // the DCT on column chunks, one per thread
        let mut out = Array2::zeros((self.cfg.n_mfcc, s.ncols()));
        let chunk = s.ncols().div_ceil(rayon::current_num_threads()).max(64);
        let parts: Vec<_> = out
            .axis_chunks_iter_mut(Axis(1), chunk)
            .zip(s.axis_chunks_iter(Axis(1), chunk))
            .collect();
        parts.into_par_iter().for_each(|(mut o, m)| {
            ndarray::linalg::general_mat_mul(1.0, &self.dct, &m, 0.0, &mut o);
        });
        Ok(out)
    }

    /// MFCCs of a dB mel spectrogram `[n_mels, frames]` (librosa's `mfcc(S=...)`).
    pub fn from_db_mel(&self, s: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((self.cfg.n_mfcc, s.ncols()));
        self.from_db_mel_into(s, out.view_mut())?;
        Ok(out)
    }

    /// Like [`Mfcc::from_db_mel`], into `out` (`[n_mfcc, frames]`).
    pub fn from_db_mel_into(
        &self,
        s: ArrayView2<'_, f32>,
        mut out: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        if s.nrows() != self.dct.ncols() {
            return Err(Error::Shape {
                name: "mel spectrogram",
                expected: vec![self.dct.ncols(), s.ncols()],
                got: vec![s.nrows(), s.ncols()],
            });
        }
        if out.dim() != (self.cfg.n_mfcc, s.ncols()) {
            return Err(Error::Shape {
                name: "out",
                expected: vec![self.cfg.n_mfcc, s.ncols()],
                got: vec![out.nrows(), out.ncols()],
            });
        }
        ndarray::linalg::general_mat_mul(1.0, &self.dct, &s, 0.0, &mut out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_equals_sequential() {
        let y: Vec<f32> = (0..64_000)
            .map(|i| (i as f32 * 0.011).sin() * (1.0 + (i % 13) as f32 * 0.05))
            .collect();
        let stft = StftConfig {
            n_fft: 512,
            hop_length: Some(128),
            ..Default::default()
        };
        let mel = MelConfig {
            n_fft: 512,
            n_mels: 40,
            sample_rate_hz: 16000.0,
            ..Default::default()
        };
        let m = Mfcc::new(&stft, &mel, &MfccConfig::default()).unwrap();
        let want = m.process(&y).unwrap();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| m.process_par(&y)).unwrap();
            let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let err = (&got - &want).iter().fold(0.0f32, |a, v| a.max(v.abs()));
            assert!(err <= 1e-5 * scale, "{threads} threads: {err} vs {scale}");
        }
    }

    #[test]
    fn dct_is_orthonormal() {
        let d = dct2_ortho(16, 16);
        let eye = d.dot(&d.t());
        for i in 0..16 {
            for j in 0..16 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((eye[[i, j]] - want).abs() < 1e-5);
            }
        }
        // a constant input has only a DC coefficient, sqrt(N) * value
        let x = ndarray::Array1::from_elem(16, 2.0f32);
        let c = d.dot(&x);
        assert!((c[0] - 8.0).abs() < 1e-5 && c.iter().skip(1).all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn validation() {
        let mel = MelConfig {
            n_mels: 10,
            n_fft: 512,
            sample_rate_hz: 16000.0,
            ..Default::default()
        };
        let stft = StftConfig {
            n_fft: 512,
            ..Default::default()
        };
        let bad = |cfg: MfccConfig| Mfcc::new(&stft, &mel, &cfg).is_err();
        assert!(bad(MfccConfig {
            n_mfcc: 11,
            ..Default::default()
        }));
        assert!(bad(MfccConfig {
            lifter: -1.0,
            ..Default::default()
        }));
        assert!(!bad(MfccConfig {
            n_mfcc: 10,
            lifter: 22.0,
            ..Default::default()
        }));
    }
}
