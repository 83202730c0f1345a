//! Properties that must hold for any input: Parseval, mel banks, and typed errors for every kind
//! of bad input the issue lists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_signal::{
    DbConfig, Error, MelConfig, MelNorm, MelScale, MelSpectrogram, Mfcc, MfccConfig, Stft,
    StftConfig, WindowKind, delta, mel_filterbank, power_to_db_inplace,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Parseval: for a rectangular window and non-overlapping frames, the energy of each frame
    /// equals the energy of its spectrum, `sum x^2 = (|X_0|^2 + 2 sum_k |X_k|^2 + |X_N/2|^2) / N`.
    #[test]
    fn parseval_holds_frame_by_frame(
        n_fft in 8usize..600,
        frames in 1usize..5,
        seed in any::<u64>(),
    ) {
        let mut s = seed | 1;
        let x: Vec<f32> = (0..n_fft * frames)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let stft = Stft::new(&StftConfig {
            n_fft,
            hop_length: Some(n_fft),
            window: WindowKind::Rectangular,
            center: false,
            ..Default::default()
        })
        .unwrap();
        let p = stft.power(&x).unwrap();
        prop_assert_eq!(p.ncols(), frames);
        for t in 0..frames {
            let time: f64 = x[t * n_fft..(t + 1) * n_fft].iter().map(|v| f64::from(*v).powi(2)).sum();
            let col = p.column(t);
            let mut freq = 0.0f64;
            for (k, v) in col.iter().enumerate() {
                let w = if k == 0 || (n_fft % 2 == 0 && k == n_fft / 2) { 1.0 } else { 2.0 };
                freq += w * f64::from(*v);
            }
            freq /= n_fft as f64;
            prop_assert!((time - freq).abs() <= 1e-4 * time.max(1e-3), "frame {}: {} vs {}", t, time, freq);
        }
    }

    /// Mel weights are non-negative, every filter is non-empty where the bank builds, and Slaney
    /// normalisation gives each filter unit area in hertz (up to the bin grid).
    #[test]
    fn mel_banks_are_non_negative_and_normalised(
        sr in prop::sample::select(vec![8000.0f64, 16000.0, 22050.0, 44100.0, 48000.0]),
        n_fft in prop::sample::select(vec![1024usize, 2048, 4096]),
        n_mels in 8usize..48,
        fmin_frac in 0.0f64..0.1,
        htk in any::<bool>(),
    ) {
        let cfg = MelConfig {
            sample_rate_hz: sr,
            n_fft,
            n_mels,
            fmin_hz: fmin_frac * sr / 2.0,
            fmax_hz: None,
            scale: if htk { MelScale::Htk } else { MelScale::Slaney },
            norm: MelNorm::Slaney,
        };
        match mel_filterbank(&cfg) {
            Ok(bank) => {
                prop_assert!(bank.iter().all(|&w| w >= 0.0));
                let df = sr / n_fft as f64;
                for row in bank.rows() {
                    prop_assert!(row.iter().any(|&w| w > 0.0));
                    let area: f64 = row.iter().map(|&w| f64::from(w) * df).sum();
                    // a triangle sampled on the bin grid: exact for wide filters, rough for
                    // filters a few bins wide
                    prop_assert!((area - 1.0).abs() < 0.5, "area {}", area);
                }
            }
            Err(Error::EmptyMelFilter { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn no_empty_filter_in_the_usual_configurations() {
    for (sr, n_fft, n_mels) in [
        (22050.0, 2048, 128), // librosa's defaults
        (44100.0, 2048, 128),
        (48000.0, 2048, 128),
        (16000.0, 512, 40),
        (16000.0, 512, 80),
        (16000.0, 400, 80), // Whisper/Kaldi-style
        (8000.0, 256, 40),
    ] {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            let cfg = MelConfig {
                sample_rate_hz: sr,
                n_fft,
                n_mels,
                scale,
                ..Default::default()
            };
            let bank = mel_filterbank(&cfg).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
            assert!(bank.rows().into_iter().all(|r| r.iter().any(|&w| w > 0.0)));
        }
    }
}

#[test]
fn every_bad_input_is_a_typed_error() {
    let stft = |cfg: StftConfig| Stft::new(&cfg);
    // empty audio
    let s = stft(StftConfig::default()).unwrap();
    assert!(matches!(s.power(&[]), Err(Error::EmptySignal)));
    // non-finite samples
    let mut y = vec![0.1f32; 4096];
    y[1234] = f32::NAN;
    assert!(matches!(s.power(&y), Err(Error::NonFinite { index: 1234 })));
    y[1234] = f32::INFINITY;
    assert!(matches!(
        s.magnitude(&y),
        Err(Error::NonFinite { index: 1234 })
    ));
    // hop_length = 0, win_length > n_fft, n_fft = 0
    for (cfg, name) in [
        (
            StftConfig {
                hop_length: Some(0),
                ..Default::default()
            },
            "hop_length",
        ),
        (
            StftConfig {
                n_fft: 512,
                win_length: Some(513),
                ..Default::default()
            },
            "win_length",
        ),
        (
            StftConfig {
                n_fft: 0,
                ..Default::default()
            },
            "n_fft",
        ),
    ] {
        match stft(cfg) {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // shorter than n_fft without centring
    let nc = stft(StftConfig {
        center: false,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        nc.power(&[0.0; 100]),
        Err(Error::SignalTooShort {
            needed: 2048,
            got: 100
        })
    ));
    // infinite fmax, fmin >= fmax, negative fmin (an fmax above Nyquist is librosa's and ours)
    for (fmin, fmax) in [
        (0.0, Some(f64::INFINITY)),
        (5000.0, Some(4000.0)),
        (-1.0, None),
    ] {
        let cfg = MelConfig {
            fmin_hz: fmin,
            fmax_hz: fmax,
            ..Default::default()
        };
        assert!(
            matches!(mel_filterbank(&cfg), Err(Error::InvalidParameter { .. })),
            "{fmin} {fmax:?}"
        );
    }
    // too many mels for n_fft
    let cfg = MelConfig {
        n_fft: 256,
        n_mels: 128,
        sample_rate_hz: 16000.0,
        ..Default::default()
    };
    assert!(matches!(
        mel_filterbank(&cfg),
        Err(Error::EmptyMelFilter { .. })
    ));
    // zero mels, bad sample rates
    assert!(
        mel_filterbank(&MelConfig {
            n_mels: 0,
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        mel_filterbank(&MelConfig {
            sample_rate_hz: f64::NAN,
            ..Default::default()
        })
        .is_err()
    );
    // n_fft disagreement, n_mfcc > n_mels
    assert!(
        MelSpectrogram::new(
            &StftConfig {
                n_fft: 1024,
                ..Default::default()
            },
            &MelConfig::default()
        )
        .is_err()
    );
    assert!(
        Mfcc::new(
            &StftConfig::default(),
            &MelConfig {
                n_mels: 10,
                ..Default::default()
            },
            &MfccConfig::default()
        )
        .is_err()
    );
    // dB parameters
    let mut a = ndarray::Array2::<f32>::ones((2, 2));
    assert!(
        power_to_db_inplace(
            &mut a,
            &DbConfig {
                amin: -1.0,
                ..Default::default()
            }
        )
        .is_err()
    );
    // delta width
    assert!(delta(a.view(), 3, 1).is_err());
}
