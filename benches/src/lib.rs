//! Benchmarks for the `mm` workspace: criterion benches in `benches/` (`cargo bench -p
//! mm-benches`) and the workloads shared with the side-by-side scripts, defined once here.
//! Results are recorded in `docs/benchmarks.md`.

use mm_signal::{MelConfig, MfccConfig, StftConfig};

/// W1 "music clip": one 30 s mono clip at 22050 Hz; STFT n_fft 2048, hop 512, Hann, centred;
/// power; 128 Slaney mels; dB; 20 MFCC.
pub mod w1 {
    use super::*;

    /// Sample rate.
    pub const SAMPLE_RATE: u32 = 22_050;
    /// Clip length in seconds.
    pub const SECONDS: usize = 30;

    /// The STFT.
    pub fn stft() -> StftConfig {
        StftConfig {
            n_fft: 2048,
            hop_length: Some(512),
            ..Default::default()
        }
    }

    /// The mel bank.
    pub fn mel() -> MelConfig {
        MelConfig {
            sample_rate_hz: f64::from(SAMPLE_RATE),
            n_fft: 2048,
            n_mels: 128,
            ..Default::default()
        }
    }

    /// The MFCC stage.
    pub fn mfcc() -> MfccConfig {
        MfccConfig::default()
    }
}

/// W2 "speech batch": 256 clips of 10 s at 16 kHz; n_fft 512, win 400, hop 160; 80 mels
/// 0-8000 Hz; log-mel.
pub mod w2 {
    use super::*;

    /// Sample rate.
    pub const SAMPLE_RATE: u32 = 16_000;
    /// Clips in the batch.
    pub const CLIPS: usize = 256;
    /// Clip length in seconds.
    pub const SECONDS: usize = 10;

    /// The STFT.
    pub fn stft() -> StftConfig {
        StftConfig {
            n_fft: 512,
            win_length: Some(400),
            hop_length: Some(160),
            ..Default::default()
        }
    }

    /// The mel bank.
    pub fn mel() -> MelConfig {
        MelConfig {
            sample_rate_hz: f64::from(SAMPLE_RATE),
            n_fft: 512,
            n_mels: 80,
            fmin_hz: 0.0,
            fmax_hz: Some(8000.0),
            ..Default::default()
        }
    }
}

/// A deterministic test signal (harmonic tones with vibrato plus a little noise), for benches
/// that do not read the side-by-side script's inputs.
pub fn test_signal(len: usize, sample_rate: u32, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let sr = sample_rate as f32;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let t = i as f32 / sr;
            let f = 220.0 * (1.0 + 0.01 * (std::f32::consts::TAU * 5.0 * t).sin());
            (1..=4)
                .map(|h| (std::f32::consts::TAU * f * h as f32 * t).sin() / h as f32)
                .sum::<f32>()
                * 0.3
                + 0.01 * noise
        })
        .collect()
}
