//! Short-time Fourier transform with librosa's semantics (`librosa.stft`).

use std::sync::Arc;

use ndarray::{Array2, ArrayViewMut2};
use num_complex::{Complex32, Complex64};
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};
pub use crate::pad::PadMode;
use crate::pad::padded_at;
use crate::rfft::RealFft;
use crate::simd::{BLOCK, transpose_block};
use crate::window::{Symmetry, WindowKind};

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
    /// Arithmetic of the FFT (the output is `f32` either way).
    #[serde(default)]
    pub precision: Precision,
}

/// The arithmetic the FFT runs in.
///
/// librosa multiplies `float32` frames by a `float64` window, so its FFT runs in `float64` and
/// is rounded once to `complex64`. [`Precision::F32`] (the default) is about twice as fast and
/// its spectra differ from librosa's by ~1e-7 of their maximum, which only shows in the dB value
/// of bins far (60 dB or more) below the maximum; [`Precision::F64`] reproduces librosa's
/// rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Single precision: fastest.
    #[default]
    F32,
    /// Double precision, rounded to `f32` at the end, as librosa computes.
    F64,
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
            precision: Precision::F32,
        }
    }
}

/// A validated STFT with its window and FFT plan precomputed; cheap to clone and share across
/// threads (the plan is an `Arc`).
#[derive(Clone)]
pub struct Stft {
    cfg: StftConfig,
    n_fft: usize,
    hop_length: usize,
    win_length: usize,
    /// The window, zero-padded to `n_fft` and centred.
    window: Vec<f32>,
    fft: Engine,
}

/// The FFT plan in the chosen precision, with the window in the same precision.
#[derive(Clone)]
enum Engine {
    F32(RealFft),
    F64(Arc<dyn RealToComplex<f64>>, Vec<f64>),
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("n_fft", &self.n_fft)
            .field("hop_length", &self.hop_length)
            .field("win_length", &self.win_length)
            .field("center", &self.cfg.center)
            .field("pad_mode", &self.cfg.pad_mode)
            .finish_non_exhaustive()
    }
}

/// Reusable buffers for [`Stft::process_into`] and friends: no allocation per call.
#[derive(Debug, Clone)]
pub struct StftScratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex32>,
    fft: Vec<Complex32>,
    /// Spectra of up to [`BLOCK`] frames, frame after frame (`[BLOCK, bins]`; empty until
    /// first needed).
    tile: Vec<f32>,
    /// The same, transposed to `[bins, BLOCK]` (empty until first needed).
    block: Vec<f32>,
    /// Complex spectra of up to [`BLOCK`] frames, `[BLOCK, bins]` (empty until first needed).
    ctile: Vec<Complex32>,
    frame64: Vec<f64>,
    spectrum64: Vec<Complex64>,
    fft64: Vec<Complex64>,
}

/// Where the frames of one signal come from (librosa pads the head and the tail separately).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n_frames: usize,
    /// Frames `< head_frames` read the padded head segment `y[..head_len]`.
    head_frames: usize,
    head_len: usize,
    /// Frames `>= tail_frame` read the padded tail segment `y[tail_start..]`.
    tail_frame: usize,
    tail_start: usize,
    /// When head and tail overlap, every frame reads the whole padded signal.
    whole: bool,
}

/// Which real spectrum to compute from the complex one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumKind {
    /// `|X|`.
    Magnitude,
    /// `|X|^2`.
    Power,
}

impl SpectrumKind {
    #[inline]
    pub(crate) fn apply(self, c: Complex32) -> f32 {
        match self {
            SpectrumKind::Magnitude => c.norm(),
            SpectrumKind::Power => c.norm_sqr(),
        }
    }
}

impl Stft {
    /// Validates `cfg` and plans the transform.
    pub fn new(cfg: &StftConfig) -> Result<Self> {
        Self::with_planner(cfg, &mut FftPlanner::new())
    }

    /// Like [`Stft::new`], sharing FFT plans through `planner` (rustfft's: the real FFT of
    /// `n_fft` points runs a complex FFT of `n_fft / 2` points).
    pub fn with_planner(cfg: &StftConfig, planner: &mut FftPlanner<f32>) -> Result<Self> {
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
            return Err(invalid(
                "hop_length",
                if cfg.hop_length.is_some() {
                    "must be positive".to_string()
                } else {
                    format!("the default win_length / 4 is 0 for win_length {win_length}; set it")
                },
            ));
        }
        let window = centred_window(cfg.window, win_length, cfg.n_fft);
        let fft = match cfg.precision {
            Precision::F32 => Engine::F32(RealFft::new(cfg.n_fft, planner)),
            Precision::F64 => {
                let coeffs = cfg.window.coefficients(win_length, Symmetry::Periodic);
                let mut w64 = vec![0.0f64; cfg.n_fft];
                let lpad = (cfg.n_fft - win_length) / 2;
                w64[lpad..lpad + win_length].copy_from_slice(&coeffs);
                Engine::F64(
                    RealFftPlanner::<f64>::new().plan_fft_forward(cfg.n_fft),
                    w64,
                )
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            n_fft: cfg.n_fft,
            hop_length,
            win_length,
            window,
            fft,
        })
    }

    /// The configuration this STFT was built from.
    pub fn config(&self) -> &StftConfig {
        &self.cfg
    }

    /// FFT length.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Number of frequency bins, `n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// The hop length in samples (resolved default included).
    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// The window length in samples (resolved default included).
    pub fn win_length(&self) -> usize {
        self.win_length
    }

    /// The analysis window, zero-padded to `n_fft` and centred.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// Fresh buffers for the allocation-free methods.
    pub fn make_scratch(&self) -> StftScratch {
        let bins = self.n_bins();
        // sized on first use: calls that never need them (complex spectra, a single frame)
        // allocate nothing for them
        let (tile, block, ctile) = (Vec::new(), Vec::new(), Vec::new());
        match &self.fft {
            Engine::F32(fft) => StftScratch {
                frame: vec![0.0; self.n_fft],
                spectrum: vec![Complex32::default(); bins],
                fft: vec![Complex32::default(); fft.scratch_len()],
                tile,
                block,
                ctile,
                frame64: Vec::new(),
                spectrum64: Vec::new(),
                fft64: Vec::new(),
            },
            Engine::F64(fft, _) => StftScratch {
                frame: Vec::new(),
                spectrum: vec![Complex32::default(); bins],
                fft: Vec::new(),
                tile,
                block,
                ctile,
                frame64: fft.make_input_vec(),
                spectrum64: fft.make_output_vec(),
                fft64: fft.make_scratch_vec(),
            },
        }
    }

    /// Number of frames for a signal of `len` samples (librosa's count), or an error when the
    /// signal is empty or (without centring) shorter than one frame.
    pub fn n_frames(&self, len: usize) -> Result<usize> {
        Ok(self.geometry(len)?.n_frames)
    }

    /// For a centred STFT with an index-valued pad mode (`reflect`, `symmetric`, `edge`): the
    /// index into the signal of each of the `n_fft / 2` samples padded after its end, as librosa
    /// 0.11 pads them. librosa pads the frames that reach past the end from the tail
    /// `y[tail_k * hop - n_fft // 2:]` alone, so when that tail holds no more than `n_fft / 2`
    /// samples a reflection repeats inside it instead of reaching further back into the signal.
    /// `None` when not centred or for `constant` and `linear_ramp` padding.
    #[cfg(feature = "tch")]
    pub(crate) fn right_pad_sources(&self, len: usize) -> Result<Option<Vec<usize>>> {
        let mode = self.cfg.pad_mode;
        if !self.cfg.center || matches!(mode, PadMode::Constant | PadMode::LinearRamp) {
            return Ok(None);
        }
        let g = self.geometry(len)?;
        let p = self.n_fft / 2;
        let (start, left) = if g.whole { (0, p) } else { (g.tail_start, 0) };
        // the positions of the segment, padded as numpy pads it, give the source indices
        let seg: Vec<f32> = (start..len).map(|i| i as f32).collect();
        let n = seg.len() as isize;
        Ok(Some(
            (0..p as isize)
                .map(|i| padded_at(&seg, n + i, left, p, mode) as usize)
                .collect(),
        ))
    }

    fn geometry(&self, len: usize) -> Result<Geometry> {
        if len == 0 {
            return Err(Error::EmptySignal);
        }
        let (n_fft, hop) = (self.n_fft, self.hop_length);
        if !self.cfg.center {
            if len < n_fft {
                return Err(Error::SignalTooShort {
                    needed: n_fft,
                    got: len,
                });
            }
            let n_frames = 1 + (len - n_fft) / hop;
            return Ok(Geometry {
                n_frames,
                head_frames: 0,
                head_len: 0,
                tail_frame: n_frames,
                tail_start: len,
                whole: false,
            });
        }
        let p = n_fft / 2;
        let n_frames = 1 + (len + 2 * p - n_fft) / hop;
        // librosa: start_k = ceil(p / hop); tail_k = (len + p - n_fft) // hop + 1 (floor division)
        let start_k = p.div_ceil(hop);
        let tail_k = (len as isize + p as isize - n_fft as isize).div_euclid(hop as isize) + 1;
        if tail_k <= start_k as isize {
            return Ok(Geometry {
                n_frames,
                head_frames: 0,
                head_len: len,
                tail_frame: n_frames,
                tail_start: 0,
                whole: true,
            });
        }
        let tail_k = tail_k as usize;
        let head_len = ((start_k - 1) * hop + n_fft + 1 - p).min(len);
        Ok(Geometry {
            n_frames,
            head_frames: start_k,
            head_len,
            tail_frame: tail_k,
            tail_start: tail_k * hop - p,
            whole: false,
        })
    }

    /// Writes frame `t` of `y`, multiplied by `window`, into `buf` (`n_fft` samples).
    #[inline]
    fn fill_frame<T>(&self, y: &[f32], g: &Geometry, t: usize, window: &[T], buf: &mut [T])
    where
        T: Copy + From<f32> + std::ops::Mul<Output = T>,
    {
        let p = if self.cfg.center { self.n_fft / 2 } else { 0 };
        let start = (t * self.hop_length) as isize - p as isize;
        let mode = self.cfg.pad_mode;
        if g.whole {
            for (i, (b, &w)) in buf.iter_mut().zip(window).enumerate() {
                *b = T::from(padded_at(y, start + i as isize, p, p, mode)) * w;
            }
        } else if t < g.head_frames {
            let seg = &y[..g.head_len];
            for (i, (b, &w)) in buf.iter_mut().zip(window).enumerate() {
                *b = T::from(padded_at(seg, start + i as isize, p, 0, mode)) * w;
            }
        } else if t >= g.tail_frame {
            let seg = &y[g.tail_start..];
            let off = start - g.tail_start as isize;
            for (i, (b, &w)) in buf.iter_mut().zip(window).enumerate() {
                *b = T::from(padded_at(seg, off + i as isize, 0, p, mode)) * w;
            }
        } else {
            let s = start as usize;
            for ((b, &x), &w) in buf.iter_mut().zip(&y[s..s + self.n_fft]).zip(window) {
                *b = T::from(x) * w;
            }
        }
    }

    /// Calls `f(t, spectrum)` for every frame `t` of `y`, in order, with the frame's
    /// `n_fft / 2 + 1` complex bins. Allocation-free; `y` must be finite.
    pub fn for_each_frame<F>(&self, y: &[f32], scratch: &mut StftScratch, f: F) -> Result<()>
    where
        F: FnMut(usize, &[Complex32]),
    {
        check_finite(y)?;
        let n = self.n_frames(y.len())?;
        self.frames_unchecked(y, 0..n, scratch, f)
    }

    /// Like [`Stft::for_each_frame`] for the frames in `frames` only, without the finiteness
    /// scan (the caller did it once for the whole signal).
    pub(crate) fn frames_unchecked<F>(
        &self,
        y: &[f32],
        frames: std::ops::Range<usize>,
        scratch: &mut StftScratch,
        mut f: F,
    ) -> Result<()>
    where
        F: FnMut(usize, &[Complex32]),
    {
        let g = self.geometry(y.len())?;
        self.check_scratch(scratch)?;
        let frames = frames.start..frames.end.min(g.n_frames);
        let fft_err = |e: realfft::FftError| invalid("scratch", e.to_string());
        match &self.fft {
            Engine::F32(fft) => {
                for t in frames {
                    self.fill_frame(y, &g, t, &self.window, &mut scratch.frame);
                    fft.complex(&mut scratch.frame, &mut scratch.spectrum, &mut scratch.fft)?;
                    f(t, &scratch.spectrum);
                }
            }
            Engine::F64(fft, window) => {
                for t in frames {
                    self.fill_frame(y, &g, t, window, &mut scratch.frame64);
                    fft.process_with_scratch(
                        &mut scratch.frame64,
                        &mut scratch.spectrum64,
                        &mut scratch.fft64,
                    )
                    .map_err(fft_err)?;
                    for (d, c) in scratch.spectrum.iter_mut().zip(&scratch.spectrum64) {
                        *d = Complex32::new(c.re as f32, c.im as f32);
                    }
                    f(t, &scratch.spectrum);
                }
            }
        }
        Ok(())
    }

    /// Calls `f(t0, n, block)` for the frames in `frames`, [`BLOCK`] at a time (`n <= BLOCK`
    /// frames from `t0`), with their magnitude or power spectra transposed to `[bins, BLOCK]`
    /// in `block` (lanes past `n` hold stale values): the layout in which a block of frames
    /// goes into `[bins, frames]` outputs and mel banks with whole-vector operations. No
    /// finiteness scan.
    pub(crate) fn spectrum_blocks_unchecked<F>(
        &self,
        y: &[f32],
        frames: std::ops::Range<usize>,
        kind: SpectrumKind,
        scratch: &mut StftScratch,
        mut f: F,
    ) -> Result<()>
    where
        F: FnMut(usize, usize, &[f32]),
    {
        let g = self.geometry(y.len())?;
        self.check_scratch(scratch)?;
        let bins = self.n_bins();
        let end = frames.end.min(g.n_frames);
        let StftScratch {
            frame,
            spectrum,
            fft,
            tile,
            block,
            frame64,
            spectrum64,
            fft64,
            ..
        } = scratch;
        tile.resize(BLOCK * bins, 0.0);
        block.resize(bins * BLOCK, 0.0);
        let mut t0 = frames.start;
        while t0 < end {
            let n = BLOCK.min(end - t0);
            for (j, row) in tile.chunks_exact_mut(bins).take(n).enumerate() {
                match &self.fft {
                    Engine::F32(plan) => {
                        self.fill_frame(y, &g, t0 + j, &self.window, frame);
                        plan.spectrum(frame, kind, row, fft, spectrum)?;
                    }
                    Engine::F64(plan, window) => {
                        self.fill_frame(y, &g, t0 + j, window, frame64);
                        plan.process_with_scratch(frame64, spectrum64, fft64)
                            .map_err(|e| invalid("scratch", e.to_string()))?;
                        for (o, c) in row.iter_mut().zip(spectrum64.iter()) {
                            *o = kind.apply(Complex32::new(c.re as f32, c.im as f32));
                        }
                    }
                }
            }
            transpose_block(tile, bins, n, block);
            f(t0, n, block);
            t0 += n;
        }
        Ok(())
    }

    fn check_scratch(&self, s: &StftScratch) -> Result<()> {
        let bins = self.n_bins();
        let (f32_lens, f64_lens) = match &self.fft {
            Engine::F32(fft) => ([self.n_fft, bins, fft.scratch_len()], [0, 0, 0]),
            Engine::F64(fft, _) => ([0, bins, 0], [self.n_fft, bins, fft.get_scratch_len()]),
        };
        for (name, got, expected) in [
            ("scratch.frame", s.frame.len(), f32_lens[0]),
            ("scratch.spectrum", s.spectrum.len(), f32_lens[1]),
            ("scratch.fft", s.fft.len(), f32_lens[2]),
            ("scratch.frame64", s.frame64.len(), f64_lens[0]),
            ("scratch.spectrum64", s.spectrum64.len(), f64_lens[1]),
            ("scratch.fft64", s.fft64.len(), f64_lens[2]),
        ] {
            if got != expected {
                return Err(Error::BufferLen {
                    name,
                    expected,
                    got,
                });
            }
        }
        Ok(())
    }

    /// Complex spectrum, layout `[bins, frames]` as librosa returns it.
    pub fn process(&self, y: &[f32]) -> Result<Array2<Complex32>> {
        let mut out = Array2::zeros((self.n_bins(), self.n_frames(y.len())?));
        self.process_into(y, out.view_mut(), &mut self.make_scratch())?;
        Ok(out)
    }

    /// Complex spectrum into `out` (`[bins, frames]`), without allocating.
    pub fn process_into(
        &self,
        y: &[f32],
        mut out: ArrayViewMut2<'_, Complex32>,
        scratch: &mut StftScratch,
    ) -> Result<()> {
        self.check_out(y.len(), out.dim())?;
        let (bins, frames) = out.dim();
        if frames >= BLOCK
            && let Some(flat) = out.as_slice_mut()
        {
            // [BLOCK] frames at a time, each row of the block written whole: writing one
            // column per frame touches a different cache line for every bin
            let mut tile = std::mem::take(&mut scratch.ctile);
            tile.resize(BLOCK * bins, Complex32::default());
            let result = self.for_each_frame(y, scratch, |t, spec| {
                let j = t % BLOCK;
                tile[j * bins..(j + 1) * bins].copy_from_slice(spec);
                if j + 1 == BLOCK || t + 1 == frames {
                    let t0 = t - j;
                    for (k, row) in flat.chunks_exact_mut(frames).enumerate() {
                        for (jj, o) in row[t0..=t].iter_mut().enumerate() {
                            *o = tile[jj * bins + k];
                        }
                    }
                }
            });
            scratch.ctile = tile;
            return result;
        }
        self.for_each_frame(y, scratch, |t, spec| {
            for (o, c) in out.column_mut(t).iter_mut().zip(spec) {
                *o = *c;
            }
        })
    }

    /// Magnitude or power spectrum into `out` (`[bins, frames]`), without allocating.
    pub fn spectrum_into(
        &self,
        y: &[f32],
        kind: SpectrumKind,
        mut out: ArrayViewMut2<'_, f32>,
        scratch: &mut StftScratch,
    ) -> Result<()> {
        self.check_out(y.len(), out.dim())?;
        let frames = out.ncols();
        if frames < BLOCK {
            // too few frames for a block to pay off
            return self.for_each_frame(y, scratch, |t, spec| {
                for (o, c) in out.column_mut(t).iter_mut().zip(spec) {
                    *o = kind.apply(*c);
                }
            });
        }
        check_finite(y)?;
        self.spectrum_blocks_unchecked(y, 0..frames, kind, scratch, |t0, n, block| {
            write_block(block, n, t0, &mut out);
        })
    }

    fn check_out(&self, len: usize, dim: (usize, usize)) -> Result<()> {
        let want = (self.n_bins(), self.n_frames(len)?);
        if dim != want {
            return Err(Error::Shape {
                name: "out",
                expected: vec![want.0, want.1],
                got: vec![dim.0, dim.1],
            });
        }
        Ok(())
    }

    /// Power spectrogram `|X|^2`, layout `[bins, frames]`.
    pub fn power(&self, y: &[f32]) -> Result<Array2<f32>> {
        self.spectrum(y, SpectrumKind::Power)
    }

    /// Magnitude spectrogram `|X|`, layout `[bins, frames]`.
    pub fn magnitude(&self, y: &[f32]) -> Result<Array2<f32>> {
        self.spectrum(y, SpectrumKind::Magnitude)
    }

    fn spectrum(&self, y: &[f32], kind: SpectrumKind) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((self.n_bins(), self.n_frames(y.len())?));
        self.spectrum_into(y, kind, out.view_mut(), &mut self.make_scratch())?;
        Ok(out)
    }
}

/// `window` of `win_length` points (periodic), zero-padded to `n_fft` and centred as librosa's
/// `pad_center` does.
pub(crate) fn centred_window(kind: WindowKind, win_length: usize, n_fft: usize) -> Vec<f32> {
    let coeffs = kind.coefficients(win_length, Symmetry::Periodic);
    let mut window = vec![0.0f32; n_fft];
    let lpad = (n_fft - win_length) / 2;
    for (dst, c) in window[lpad..lpad + win_length].iter_mut().zip(coeffs) {
        *dst = c as f32;
    }
    window
}

/// `out[k, t0..t0 + n] = block[k * BLOCK..][..n]` for every row `k` of `out` (`block` holds
/// `out.nrows()` rows of [`BLOCK`]).
pub(crate) fn write_block(block: &[f32], n: usize, t0: usize, out: &mut ArrayViewMut2<'_, f32>) {
    let stride = out.strides()[0];
    // `as_slice_mut` succeeds only in standard layout
    if let Some(flat) = out.as_slice_mut() {
        let stride = stride as usize;
        for (k, src) in block.chunks_exact(BLOCK).enumerate() {
            flat[k * stride + t0..k * stride + t0 + n].copy_from_slice(&src[..n]);
        }
        return;
    }
    // e.g. one worker's columns of a shared output: rows are still slices when columns are
    // contiguous
    for (mut row, src) in out.rows_mut().into_iter().zip(block.chunks_exact(BLOCK)) {
        match row.as_slice_mut() {
            Some(r) => r[t0..t0 + n].copy_from_slice(&src[..n]),
            None => {
                for (j, v) in src[..n].iter().enumerate() {
                    row[t0 + j] = *v;
                }
            }
        }
    }
}

/// An error if any sample is NaN or infinite (librosa's `valid_audio`).
pub(crate) fn check_finite(y: &[f32]) -> Result<()> {
    // branch-free per chunk so that the scan vectorises
    let finite = |c: &[f32]| c.iter().fold(true, |ok, x| ok & x.is_finite());
    if y.chunks(256).all(finite) {
        Ok(())
    } else {
        let index = y.iter().position(|x| !x.is_finite()).unwrap_or(0);
        Err(Error::NonFinite { index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

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
        assert!(matches!(
            nc.n_frames(100),
            Err(Error::SignalTooShort {
                needed: 512,
                got: 100
            })
        ));
    }

    #[test]
    fn matches_naive_dft_for_odd_and_even_sizes_and_short_windows() {
        let signal: Vec<f32> = (0..700)
            .map(|i| ((i as f32) * 0.37).sin() + 0.3 * ((i * i % 97) as f32 / 97.0))
            .collect();
        for (n_fft, win) in [(64usize, 64usize), (63, 63), (100, 60), (31, 20)] {
            for pad_mode in PadMode::ALL {
                let cfg = StftConfig {
                    n_fft,
                    hop_length: Some(17),
                    win_length: Some(win),
                    window: WindowKind::Hann,
                    center: true,
                    pad_mode,
                    ..Default::default()
                };
                let stft = Stft::new(&cfg).unwrap();
                let power = stft.power(&signal).unwrap();
                let p = (n_fft / 2) as isize;
                let padded: Vec<f32> = (-p..signal.len() as isize + p)
                    .map(|i| padded_at(&signal, i, p as usize, p as usize, pad_mode))
                    .collect();
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

    /// The blocked complex path gives the frame-by-frame spectra, and the blocked power and
    /// magnitude paths give `|X|^2` and `|X|` of the complex STFT in every frame, for both
    /// precisions, odd and even `n_fft`, frame counts around the block
    /// size, and an output in either memory order.
    #[test]
    fn spectra_equal_the_complex_stft_in_every_frame() {
        for precision in [Precision::F32, Precision::F64] {
            for (n_fft, len) in [
                (63usize, 40),
                (64, 16 * 7),
                (64, 16 * 8),
                (63, 16 * 9),
                (64, 1000),
            ] {
                let stft = Stft::new(&StftConfig {
                    n_fft,
                    hop_length: Some(16),
                    precision,
                    ..Default::default()
                })
                .unwrap();
                let y: Vec<f32> = (0..len).map(|i| (i as f32 * 0.3).sin() + 0.2).collect();
                let c = stft.process(&y).unwrap();
                // the blocked complex path against frame-by-frame columns, and the column
                // path (an output not in standard layout)
                let mut cols = Array2::zeros(c.dim());
                stft.for_each_frame(&y, &mut stft.make_scratch(), |t, spec| {
                    cols.column_mut(t).assign(&ndarray::ArrayView1::from(spec));
                })
                .unwrap();
                assert_eq!(c, cols, "{precision:?} {n_fft} {len} complex");
                let mut fortran_c = Array2::zeros(c.dim().f());
                stft.process_into(&y, fortran_c.view_mut(), &mut stft.make_scratch())
                    .unwrap();
                assert_eq!(c, fortran_c, "{precision:?} {n_fft} {len} complex, F order");
                for (kind, want) in [
                    (SpectrumKind::Power, c.mapv(|c| c.norm_sqr())),
                    (SpectrumKind::Magnitude, c.mapv(|c| c.norm())),
                ] {
                    let mut fortran = Array2::zeros(want.dim().f());
                    let mut scratch = stft.make_scratch();
                    stft.spectrum_into(&y, kind, fortran.view_mut(), &mut scratch)
                        .unwrap();
                    let got = stft.spectrum(&y, kind).unwrap();
                    let scale = want.iter().fold(0.0f32, |a, v| a.max(*v));
                    for out in [&got, &fortran] {
                        let err = (out - &want).iter().fold(0.0f32, |a, v| a.max(v.abs()));
                        assert!(err <= 1e-6 * scale, "{precision:?} {n_fft} {len} {kind:?}");
                    }
                }
            }
        }
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
