//! # mm-signal: sound as data
//!
//! Windows, STFT, mel filter banks, mel spectrograms and decibel scaling with librosa's
//! semantics and defaults, in pure Rust (no libtorch needed).
//!
//! ```
//! use mm_signal::{MelConfig, MelSpectrogram, StftConfig, DbConfig, power_to_db_inplace};
//!
//! let sr = 16_000.0;
//! let tone: Vec<f32> = (0..16_000)
//!     .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr as f32).sin())
//!     .collect();
//! let stft = StftConfig { n_fft: 1024, hop_length: Some(256), ..Default::default() };
//! let mel = MelConfig { sample_rate_hz: sr, n_fft: 1024, n_mels: 64, ..Default::default() };
//! let mut spec = MelSpectrogram::new(&stft, &mel)?.process(&tone)?;
//! power_to_db_inplace(&mut spec, &DbConfig::default())?;
//! assert_eq!(spec.dim(), (64, 1 + 16_000 / 256));
//! # Ok::<(), mm_signal::Error>(())
//! ```
//!
//! ## Conventions
//! - Spectrogram layout is `[bins, frames]` (librosa's), frames centred at `t * hop_length`
//!   when `center` is true.
//! - Windows are periodic in the STFT (`fftbins=True`); the FFT is unnormalised.
//! - Power is `|X|^2`; dB is `10 log10(S / ref)` with librosa's `amin` and `top_db`.
//!
//! ## Feature flags
//! None yet; a `tch` feature for tensor batches is planned.

mod audio;
mod batch;
mod db;
mod delta;
mod error;
mod istft;
mod mel;
mod mfcc;
mod pad;
mod stft;
#[cfg(feature = "tch")]
pub mod tensor;
mod window;

pub use audio::{Audio, WavEncoding, read_wav, read_wav_from, resample, write_wav};
pub use batch::{
    FrameFeature, LogMelSpectrogram, MfccScratch, Spectrogram, batch, batch_into, batch_ragged,
};
pub use db::{DbConfig, DbRef, amplitude_to_db_inplace, power_to_db_inplace};
pub use delta::delta;
pub use error::{Error, Result};
pub use istft::{GriffinLimConfig, Istft, PhaseInit, griffin_lim};
pub use mel::{
    MelConfig, MelFilterbank, MelNorm, MelScale, MelScratch, MelSpectrogram, mel_filterbank,
};
pub use mfcc::{Mfcc, MfccConfig, dct2_ortho};
pub use stft::{PadMode, Precision, SpectrumKind, Stft, StftConfig, StftScratch};
pub use window::{Symmetry, WindowKind};
