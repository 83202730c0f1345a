//! Mel scales and mel filter banks, as `librosa.filters.mel` builds them.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};
use crate::simd::BLOCK;
use crate::stft::{SpectrumKind, Stft, StftConfig, StftScratch, check_finite, write_block};
use rayon::prelude::*;

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

/// Mel filter bank parameters; `fmax: None` means the Nyquist frequency. As in librosa, an
/// `fmax` above Nyquist is accepted (the top filters then reach past the last FFT bin).
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
/// first, then normalisation). A filter that covers no FFT bin (too many mels for `n_fft`) is an
/// error where librosa warns ("Empty filters detected"); like librosa, a first band that starts
/// at 0 Hz may be all zero without either.
pub fn mel_filterbank(cfg: &MelConfig) -> Result<Array2<f32>> {
    Ok(MelFilterbank::new(cfg)?.dense)
}

/// A mel filter bank kept both dense (`[n_mels, bins]`, for callers) and sparse (each filter's
/// non-zero run, for applying it in `O(bins)` per frame instead of `O(n_mels * bins)`).
#[derive(Debug, Clone)]
pub struct MelFilterbank {
    dense: Array2<f32>,
    /// `(first bin, weights)` of each filter's non-zero run.
    runs: Vec<(usize, Vec<f32>)>,
}

impl MelFilterbank {
    /// Builds and validates the bank.
    pub fn new(cfg: &MelConfig) -> Result<Self> {
        let dense = build_dense(cfg)?;
        let mut runs = Vec::with_capacity(cfg.n_mels);
        for (band, row) in dense.rows().into_iter().enumerate() {
            let first = row.iter().position(|&w| w != 0.0);
            let last = row.iter().rposition(|&w| w != 0.0);
            match (first, last) {
                (Some(a), Some(b)) => runs.push((a, row.slice(ndarray::s![a..=b]).to_vec())),
                // librosa flags an all-zero filter only when its lower edge is above 0 Hz
                // (`mel_f[:-2] == 0` passes its check): the first band from 0 Hz stays a zero row
                _ if band == 0 && cfg.fmin_hz == 0.0 => runs.push((0, Vec::new())),
                _ => {
                    return Err(Error::EmptyMelFilter {
                        band,
                        n_mels: cfg.n_mels,
                        n_fft: cfg.n_fft,
                    });
                }
            }
        }
        Ok(Self { dense, runs })
    }

    /// The weights, `[n_mels, n_fft / 2 + 1]`.
    pub fn weights(&self) -> ArrayView2<'_, f32> {
        self.dense.view()
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.runs.len()
    }

    /// Number of FFT bins the bank expects.
    pub fn n_bins(&self) -> usize {
        self.dense.ncols()
    }

    /// Applies the bank to one spectrum frame (`bins` values) into `out` (`n_mels` values).
    #[inline]
    pub fn apply_frame(&self, spectrum: &[f32], out: &mut [f32]) {
        for ((start, w), o) in self.runs.iter().zip(out.iter_mut()) {
            *o = dot(w, &spectrum[*start..*start + w.len()]);
        }
    }

    /// Applies the bank to a spectrogram `[bins, frames]`, giving `[n_mels, frames]`.
    pub fn apply(&self, spec: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if spec.nrows() != self.n_bins() {
            return Err(Error::Shape {
                name: "spectrogram",
                expected: vec![self.n_bins(), spec.ncols()],
                got: vec![spec.nrows(), spec.ncols()],
            });
        }
        let frames = spec.ncols();
        let mut out = Array2::zeros((self.n_mels(), frames));
        // the fused path's kernel, on blocks of columns copied out of `spec`
        let mut block = vec![0.0f32; self.n_bins() * BLOCK];
        let mut tmp = Vec::new();
        let flat = spec.as_slice();
        for t0 in (0..frames).step_by(BLOCK) {
            let n = BLOCK.min(frames - t0);
            for (k, dst) in block.chunks_exact_mut(BLOCK).enumerate() {
                match flat {
                    Some(f) => dst[..n].copy_from_slice(&f[k * frames + t0..k * frames + t0 + n]),
                    None => {
                        for (j, d) in dst[..n].iter_mut().enumerate() {
                            *d = spec[[k, t0 + j]];
                        }
                    }
                }
            }
            self.apply_block(&block, n, t0, &mut out.view_mut(), &mut tmp);
        }
        Ok(out)
    }
}

/// Dot product with 8 independent accumulators, so that the compiler can vectorise it (a single
/// running sum forces one addition after another).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The centre frequency of each FFT bin, `k * sample_rate / n_fft` for `k` in `0..=n_fft / 2`,
/// computed as librosa 0.11's `fft_frequencies` (`np.fft.rfftfreq(n_fft, 1 / sr)`). For an odd
/// `n_fft` the last bin lies below Nyquist.
pub fn fft_frequencies(sample_rate_hz: f64, n_fft: usize) -> Vec<f64> {
    // numpy: val = 1 / (n * d) with d = 1 / sr; results = arange(0, n // 2 + 1) * val
    let val = 1.0 / (n_fft as f64 * (1.0 / sample_rate_hz));
    (0..=n_fft / 2).map(|k| k as f64 * val).collect()
}

/// `np.linspace(start, stop, num)` with numpy's rounding: `i * step + start`, the last point
/// exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = num.saturating_sub(1).max(1) as f64;
    let step = (stop - start) / div;
    let mut y: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if num > 1 {
        y[num - 1] = stop;
    }
    y
}

fn build_dense(cfg: &MelConfig) -> Result<Array2<f32>> {
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
    // librosa accepts an fmax above Nyquist (the top filters then reach past the last bin)
    if !(cfg.fmin_hz >= 0.0 && cfg.fmin_hz < fmax && fmax.is_finite()) {
        return Err(invalid(
            "fmin_hz/fmax_hz",
            format!(
                "need 0 <= fmin < fmax (finite), got {} and {fmax}",
                cfg.fmin_hz
            ),
        ));
    }
    let fft_freqs = fft_frequencies(cfg.sample_rate_hz, cfg.n_fft);
    let mel_f: Vec<f64> = linspace(
        cfg.scale.hz_to_mel(cfg.fmin_hz),
        cfg.scale.hz_to_mel(fmax),
        cfg.n_mels + 2,
    )
    .into_iter()
    .map(|m| cfg.scale.mel_to_hz(m))
    .collect();
    let mut weights = Array2::<f32>::zeros((cfg.n_mels, fft_freqs.len()));
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

/// A mel spectrogram: STFT, `|X|^power` (power 1 or 2), then a mel filter bank, fused frame by
/// frame (no `[bins, frames]` intermediate).
#[derive(Debug, Clone)]
pub struct MelSpectrogram {
    stft: Stft,
    bank: MelFilterbank,
    kind: SpectrumKind,
}

/// Reusable buffers for [`MelSpectrogram::process_into`].
#[derive(Debug, Clone)]
pub struct MelScratch {
    stft: StftScratch,
    /// A block of mel frames, `[n_mels, BLOCK]`, for outputs whose rows are not one buffer.
    mel: Vec<f32>,
}

impl MelSpectrogram {
    /// Plans the STFT and builds the filter bank for power spectra (librosa's `power=2.0`);
    /// `mel.n_fft` must equal `stft.n_fft`.
    pub fn new(stft: &StftConfig, mel: &MelConfig) -> Result<Self> {
        Self::with_kind(stft, mel, SpectrumKind::Power)
    }

    /// Like [`MelSpectrogram::new`], choosing magnitude (`power=1.0`) or power spectra.
    pub fn with_kind(stft: &StftConfig, mel: &MelConfig, kind: SpectrumKind) -> Result<Self> {
        if stft.n_fft != mel.n_fft {
            return Err(invalid(
                "n_fft",
                format!("stft has {} but mel bank has {}", stft.n_fft, mel.n_fft),
            ));
        }
        Ok(Self {
            stft: Stft::new(stft)?,
            bank: MelFilterbank::new(mel)?,
            kind,
        })
    }

    /// The filter bank, `[n_mels, n_fft / 2 + 1]`.
    pub fn filterbank(&self) -> ArrayView2<'_, f32> {
        self.bank.weights()
    }

    /// The filter bank object.
    pub fn bank(&self) -> &MelFilterbank {
        &self.bank
    }

    /// The STFT in use.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.bank.n_mels()
    }

    /// Fresh buffers for [`MelSpectrogram::process_into`].
    pub fn make_scratch(&self) -> MelScratch {
        MelScratch {
            stft: self.stft.make_scratch(),
            mel: vec![0.0; self.n_mels() * BLOCK],
        }
    }

    /// Number of frames for a signal of `len` samples.
    pub fn n_frames(&self, len: usize) -> Result<usize> {
        self.stft.n_frames(len)
    }

    /// Mel spectrogram, layout `[n_mels, frames]`.
    pub fn process(&self, y: &[f32]) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((self.n_mels(), self.n_frames(y.len())?));
        self.process_into(y, out.view_mut(), &mut self.make_scratch())?;
        Ok(out)
    }

    /// Mel spectrogram into `out` (`[n_mels, frames]`), without allocating.
    pub fn process_into(
        &self,
        y: &[f32],
        out: ArrayViewMut2<'_, f32>,
        scratch: &mut MelScratch,
    ) -> Result<()> {
        let want = (self.n_mels(), self.n_frames(y.len())?);
        if out.dim() != want {
            return Err(Error::Shape {
                name: "out",
                expected: vec![want.0, want.1],
                got: vec![out.nrows(), out.ncols()],
            });
        }
        check_finite(y)?;
        self.frames_into(y, 0, out, scratch)
    }

    /// Like [`MelSpectrogram::process`], splitting the frames of one long signal across the
    /// current rayon pool (each worker with its own scratch). For many clips, prefer
    /// [`crate::batch`], which parallelises over clips.
    pub fn process_par(&self, y: &[f32]) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((self.n_mels(), self.n_frames(y.len())?));
        self.process_par_into(y, out.view_mut())?;
        Ok(out)
    }

    /// Like [`MelSpectrogram::process_par`], into `out` (`[n_mels, frames]`).
    pub fn process_par_into(&self, y: &[f32], mut out: ArrayViewMut2<'_, f32>) -> Result<()> {
        let frames = self.n_frames(y.len())?;
        if out.dim() != (self.n_mels(), frames) {
            return Err(Error::Shape {
                name: "out",
                expected: vec![self.n_mels(), frames],
                got: vec![out.nrows(), out.ncols()],
            });
        }
        check_finite(y)?;
        let workers = rayon::current_num_threads().max(1);
        let chunk = frames.div_ceil(workers).div_ceil(BLOCK).max(4) * BLOCK;
        let chunks: Vec<(usize, ArrayViewMut2<'_, f32>)> = out
            .axis_chunks_iter_mut(ndarray::Axis(1), chunk)
            .enumerate()
            .map(|(i, c)| (i * chunk, c))
            .collect();
        chunks.into_par_iter().try_for_each_init(
            || self.make_scratch(),
            |scratch, (t_start, c)| self.frames_into(y, t_start, c, scratch),
        )
    }

    /// Frames `t_start..t_start + out.ncols()` of `y` into `out` (no finiteness scan).
    fn frames_into(
        &self,
        y: &[f32],
        t_start: usize,
        mut out: ArrayViewMut2<'_, f32>,
        scratch: &mut MelScratch,
    ) -> Result<()> {
        let frames = out.ncols();
        self.stft.spectrum_blocks_unchecked(
            y,
            t_start..t_start + frames,
            self.kind,
            &mut scratch.stft,
            |t0, n, block| {
                self.bank
                    .apply_block(block, n, t0 - t_start, &mut out, &mut scratch.mel)
            },
        )
    }
}

impl MelFilterbank {
    /// `out[:, t0..t0 + n] = bank . block[:, ..n]`, where `block` is `[bins, BLOCK]`; `tmp`
    /// is resized and used when `out` is not in standard layout.
    fn apply_block(
        &self,
        block: &[f32],
        n: usize,
        t0: usize,
        out: &mut ArrayViewMut2<'_, f32>,
        tmp: &mut Vec<f32>,
    ) {
        let row_stride = out.strides()[0];
        // a standard-layout array: rows are slices of one contiguous buffer
        // `as_slice_mut` succeeds only in standard layout
        if let Some(flat) = out.as_slice_mut() {
            apply_block_kernel(&self.runs, block, n, t0, flat, row_stride as usize);
            return;
        }
        tmp.resize(self.n_mels() * BLOCK, 0.0);
        apply_block_kernel(&self.runs, block, BLOCK, 0, tmp, BLOCK);
        write_block(tmp, n, t0, out);
    }
}

/// `out[m * row_stride + t0 .. + n] = sum_i w_i * block[(start + i) * BLOCK .. + n]` for every
/// band's run: the hot loop of the fused mel spectrogram, compiled for AVX2 too and picked at
/// run time (the crate builds for baseline x86-64).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn apply_block_kernel(
    runs: &[(usize, Vec<f32>)],
    block: &[f32],
    n: usize,
    t0: usize,
    out: &mut [f32],
    row_stride: usize,
) {
    for (m, (start, w)) in runs.iter().enumerate() {
        // a whole block row (one AVX register) at a time in registers (lanes past `n` hold
        // stale values and are dropped), stored once per band
        let mut acc = [0.0f32; BLOCK];
        for (i, &wk) in w.iter().enumerate() {
            let p = &block[(start + i) * BLOCK..(start + i + 1) * BLOCK];
            for (o, v) in acc.iter_mut().zip(p) {
                *o += wk * v;
            }
        }
        out[m * row_stride + t0..m * row_stride + t0 + n].copy_from_slice(&acc[..n]);
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

    /// The blocked paths (fused, and the bank on a given spectrogram in either memory order)
    /// against the dense product `weights . power`, for frame counts around the block size.
    #[test]
    fn blocked_paths_equal_the_dense_product() {
        let stft_cfg = StftConfig {
            n_fft: 256,
            hop_length: Some(64),
            ..Default::default()
        };
        let mel_cfg = MelConfig {
            n_fft: 256,
            n_mels: 24,
            sample_rate_hz: 8000.0,
            ..Default::default()
        };
        let m = MelSpectrogram::new(&stft_cfg, &mel_cfg).unwrap();
        for len in [64 * 6, 64 * 7, 64 * 8, 64 * 9, 64 * 17 + 5] {
            let y: Vec<f32> = (0..len)
                .map(|i| (i as f32 * 0.21).sin() + 0.3 * (i as f32 * 0.047).cos())
                .collect();
            let power = m.stft().power(&y).unwrap();
            let want = m.filterbank().dot(&power);
            let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let fortran = power.t().as_standard_layout().into_owned();
            for (name, got) in [
                ("fused", m.process(&y).unwrap()),
                ("bank", m.bank().apply(power.view()).unwrap()),
                (
                    "bank, transposed layout",
                    m.bank().apply(fortran.t()).unwrap(),
                ),
            ] {
                assert_eq!(got.dim(), want.dim());
                let err = (&got - &want).iter().fold(0.0f32, |a, v| a.max(v.abs()));
                assert!(err <= 1e-6 * scale, "{name}, len {len}: {err} vs {scale}");
            }
        }
    }

    #[test]
    fn parallel_equals_sequential() {
        let y: Vec<f32> = (0..50_000)
            .map(|i| (i as f32 * 0.013).sin() + (i % 7) as f32 * 0.01)
            .collect();
        let m = MelSpectrogram::new(
            &StftConfig {
                n_fft: 512,
                hop_length: Some(100),
                ..Default::default()
            },
            &MelConfig {
                n_fft: 512,
                n_mels: 40,
                sample_rate_hz: 16000.0,
                ..Default::default()
            },
        )
        .unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let par = pool.install(|| m.process_par(&y)).unwrap();
        assert_eq!(par, m.process(&y).unwrap());
        let mut bad = y.clone();
        bad[49_999] = f32::NAN;
        assert!(matches!(
            m.process_par(&bad),
            Err(Error::NonFinite { index: 49_999 })
        ));
    }

    #[test]
    fn bins_are_rfftfreq_for_odd_and_even_n_fft() {
        // numpy: np.fft.rfftfreq(n, 1 / sr)
        let odd = fft_frequencies(44100.0, 1023);
        assert_eq!(odd.len(), 512);
        assert!((odd[511] - 511.0 * 44100.0 / 1023.0).abs() < 1e-9);
        assert!(odd[511] < 22050.0);
        let even = fft_frequencies(22050.0, 2048);
        assert_eq!(even.len(), 1025);
        assert_eq!(even[1024], 11025.0);
        assert_eq!(linspace(1.0, 2.0, 3), [1.0, 1.5, 2.0]);
        assert_eq!(linspace(1.0, 2.0, 1), [1.0]);
    }

    #[test]
    fn the_first_band_from_zero_hertz_may_be_empty_as_in_librosa() {
        // n_fft 16 at 32 kHz: bins every 2 kHz, the first band [0, ~170 Hz] covers none; librosa
        // returns a zero row without a warning, and so do we
        let cfg = MelConfig {
            sample_rate_hz: 32000.0,
            n_fft: 16,
            n_mels: 4,
            fmax_hz: Some(800.0),
            ..Default::default()
        };
        let err = MelFilterbank::new(&cfg).unwrap_err();
        // bands 1.. are empty too here, and they are an error
        assert!(
            matches!(err, Error::EmptyMelFilter { band: 1, .. }),
            "{err}"
        );
        let cfg = MelConfig {
            n_mels: 2,
            fmax_hz: Some(3000.0),
            ..cfg
        };
        let bank = MelFilterbank::new(&cfg).unwrap();
        assert!(bank.weights().row(0).iter().all(|&w| w == 0.0));
        assert!(bank.weights().row(1).iter().any(|&w| w > 0.0));
        let mut out = [1.0f32; 2];
        bank.apply_frame(&[1.0; 9], &mut out);
        assert_eq!(out[0], 0.0);
    }

    #[test]
    fn invalid_ranges_are_errors() {
        let e = mel_filterbank(&MelConfig {
            fmax_hz: Some(f64::INFINITY),
            ..Default::default()
        });
        assert!(e.is_err());
        // librosa accepts an fmax above Nyquist, and so do we
        let bank = mel_filterbank(&MelConfig {
            fmax_hz: Some(12000.0),
            n_mels: 40,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bank.dim(), (40, 1025));
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
