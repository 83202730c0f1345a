//! # mm-signal: sound as data
//!
//! librosa's audio features in Rust: windows, STFT and inverse STFT, magnitude and power
//! spectrograms, mel filter banks and mel spectrograms, `power_to_db` / `amplitude_to_db`, MFCC,
//! deltas, Griffin-Lim, WAV input/output and resampling, batched over many clips with rayon,
//! and (feature `tch`) the same transforms on tensors on CPU or CUDA. No libtorch needed
//! without that feature.
//!
//! ```
//! use mm_signal::{DbConfig, MelConfig, MelSpectrogram, Mfcc, MfccConfig, StftConfig};
//! use mm_signal::power_to_db_inplace;
//!
//! let sr = 16_000.0;
//! let tone: Vec<f32> = (0..16_000)
//!     .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr as f32).sin())
//!     .collect();
//! // plans, windows and filter banks are built once, here
//! let stft = StftConfig { n_fft: 1024, hop_length: Some(256), ..Default::default() };
//! let mel = MelConfig { sample_rate_hz: sr, n_fft: 1024, n_mels: 64, ..Default::default() };
//! let mut log_mel = MelSpectrogram::new(&stft, &mel)?.process(&tone)?;
//! power_to_db_inplace(&mut log_mel, &DbConfig::default())?;
//! assert_eq!(log_mel.dim(), (64, 1 + 16_000 / 256));
//! let mfcc = Mfcc::new(&stft, &mel, &MfccConfig::default())?.process(&tone)?;
//! assert_eq!(mfcc.nrows(), 20);
//! # Ok::<(), mm_signal::Error>(())
//! ```
//!
//! ## Map to librosa
//! | librosa | here |
//! |---|---|
//! | `stft`, `istft` | [`Stft::process`], [`Istft::process`] |
//! | `np.abs(stft)`, `**2` | [`Stft::magnitude`], [`Stft::power`] |
//! | `filters.mel` | [`mel_filterbank`], [`MelFilterbank`] |
//! | `fft_frequencies` (`np.fft.rfftfreq`) | [`fft_frequencies`] |
//! | `feature.melspectrogram` | [`MelSpectrogram`] |
//! | `power_to_db`, `amplitude_to_db` (`ref`, `amin`, `top_db`) | [`power_to_db_inplace`], [`amplitude_to_db_inplace`], [`DbConfig`] |
//! | `feature.mfcc` (`n_mfcc`, `lifter`) | [`Mfcc`] |
//! | `feature.delta` (`width`, `order`) | [`delta`] |
//! | `griffinlim` | [`griffin_lim`] |
//! | `load(sr=...)`, `resample` | [`read_wav`], [`Audio::resampled`], [`resample`] |
//!
//! Every default is librosa's (0.11): `pad_mode="constant"`, periodic windows, `hop_length =
//! win_length // 4`, Slaney mel scale and normalisation, `power_to_db(ref=1.0, amin=1e-10,
//! top_db=80)`, 20 MFCCs with DCT-II `norm='ortho'`, deltas as Savitzky-Golay filters with
//! `mode='interp'`. Golden tests (`tests/librosa_golden.rs`, fixtures from
//! `scripts/librosa_golden.py`) check 64 cases against librosa; `scripts/librosa_sweep.py`
//! compares `mm audio features` with librosa over randomly drawn settings of the whole parameter
//! space (300 settings: worst errors in `docs/benchmarks.md`; its first 40 run in
//! `cargo xtask test`), and `tests/tensor_sweep.rs` the tensor path with this one.
//!
//! ## Deliberate differences
//! - The FFT runs in `f32` by default ([`Precision::F32`]); librosa's runs in `f64`. Spectra
//!   differ by about 1e-7 of their maximum, which shows only in the dB value of bins 60 dB or
//!   more below the maximum (up to ~1e-3 dB at 80 dB). [`Precision::F64`] reproduces librosa's
//!   rounding (golden tests: within 1e-5 dB).
//! - A mel filter that covers no FFT bin is an error ([`Error::EmptyMelFilter`]); librosa
//!   only warns ("Empty filters detected") and returns an all-zero row. As in librosa, a first
//!   band that starts at 0 Hz may be all zero without either.
//! - `fmin < 0` and `fmin >= fmax` are errors (librosa accepts both, the latter with empty
//!   filters); an `fmax` above Nyquist is accepted, as in librosa.
//! - [`Mfcc`] refuses `n_mfcc > n_mels`; librosa returns `n_mels` coefficients.
//! - Resampling ([`resample`]) is rubato's FFT resampler, not librosa's default soxr: features
//!   of resampled audio are close to librosa's, not equal.
//! - `pad_mode="empty"` (uninitialised memory) is not offered.
//! - Griffin-Lim's random initial phases come from our own seeded generator, not numpy's.
//! - librosa's `delta` fits its edge polynomials in `float32`; ours are exact in `f64`
//!   (differences ~1e-6 of the maximum).
//! - [`power_to_db_inplace`] evaluates `10 log10` with a vectorised series (error below 1e-4 dB).
//!
//! ## Performance
//! [`Stft`], [`MelSpectrogram`], [`Mfcc`] hold their FFT plan, window, sparse mel bank and DCT
//! matrix; they are `Send + Sync` and shared by rayon workers in [`batch`], [`batch_into`] and
//! [`batch_ragged`], each worker with its own scratch. The `process_into` methods write into a
//! caller's array without allocating. The mel spectrogram is fused with the STFT (no
//! `[bins, frames]` intermediate): spectra of 8 frames at a time are transposed in registers to
//! `[bins, 8]` and the sparse bank is applied to the block with one vector per bin. The real FFT
//! is rustfft's half-length complex FFT plus our own vectorised separation pass (bit-identical
//! to realfft's, about twice as fast overall at `n_fft = 2048`). Hot loops are compiled for
//! AVX2 as well and picked at run time.
//!
//! ## Conventions
//! - Layout `[bins, frames]` (librosa's); batches `[batch, bins, frames]`; frames centred at
//!   `t * hop_length` when `center` is true.
//! - The forward FFT is unnormalised; power is `|X|^2`; dB is `10 log10(S / ref)`.
//! - Integer WAV samples scale to `[-1, 1)` by `1 / 2^(bits - 1)` (soundfile's convention).
//!
//! ## Feature flags
//! - `formats` (default): FLAC, Ogg Vorbis and MP3 input through symphonia ([`read_audio`]).
//! - `tch`: [`tensor::TensorFeatures`], the transforms on `tch::Tensor` batches
//!   `[batch, samples]` on CPU or CUDA, matching the CPU path (f32 tolerance).

mod audio;
mod batch;
mod db;
mod delta;
mod error;
mod istft;
mod mel;
mod mfcc;
mod pad;
mod rfft;
mod simd;
mod stft;
#[cfg(feature = "tch")]
pub mod tensor;
mod window;

pub use audio::{
    Audio, WavEncoding, decode_audio, decode_audio_capped, read_audio, read_wav, read_wav_from,
    resample, write_wav,
};
pub use batch::{
    FrameFeature, LogMelSpectrogram, MfccScratch, Spectrogram, batch, batch_into, batch_ragged,
};
pub use db::{DbConfig, DbRef, amplitude_to_db_inplace, power_to_db_inplace};
pub use delta::delta;
pub use error::{Error, Result};
pub use istft::{GriffinLimConfig, Istft, PhaseInit, griffin_lim};
pub use mel::{
    MelConfig, MelFilterbank, MelNorm, MelScale, MelScratch, MelSpectrogram, fft_frequencies,
    mel_filterbank,
};
pub use mfcc::{Mfcc, MfccConfig, dct2_ortho};
pub use stft::{PadMode, Precision, SpectrumKind, Stft, StftConfig, StftScratch};
pub use window::{Symmetry, WindowKind};
