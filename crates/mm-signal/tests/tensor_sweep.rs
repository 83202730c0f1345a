//! Randomized parity sweep of the tensor (`tch`) path against the CPU path: the same seeded
//! settings space as `scripts/librosa_sweep.py` (odd and even `n_fft`, `win_length <= n_fft`,
//! hop, window, `center`, pad mode, mel scale and norm, `fmin`/`fmax` up to 1.1x Nyquist,
//! `n_mels`, `n_mfcc`, lifter, dB `ref`/`amin`/`top_db`, clips shorter than `n_fft`, batches of
//! 1-3 clips), on CUDA when there is one (the GPU bundle runs this test there) and otherwise on
//! the CPU. `MM_TENSOR_SWEEP=N` sets the number of settings (default 120); the worst error per
//! feature is printed (`cargo test -p mm-signal --features tch --test tensor_sweep --
//! --nocapture`).
//!
//! Tolerances: spectra and mel `max |d| <= 1e-5 max |cpu|`; log-mel `1e-2` dB and MFCC
//! `max(1e-2, 2e-6 max |cpu|)`, with the dB floor at most 80 dB (both paths run a float32 FFT,
//! whose rounding shows as ~1e-2 dB in bins 80 dB below the maximum; see `Precision`). Where the
//! tensor path cannot follow (`symmetric` and `linear_ramp` padding, `reflect` on a clip no
//! longer than `n_fft / 2`) it must fail with a typed error.
#![cfg(feature = "tch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_signal::tensor::TensorFeatures;
use mm_signal::{
    DbConfig, DbRef, Error, MelConfig, MelNorm, MelScale, MelSpectrogram, Mfcc, MfccConfig,
    PadMode, SpectrumKind, Stft, StftConfig, WindowKind, power_to_db_inplace,
};
use ndarray::Array2;
use tch::{Device, Tensor};

/// splitmix64: a small seeded generator, so that setting `i` is the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, i: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_add(1).wrapping_mul(0xD1B5))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.int(0, xs.len() - 1)]
    }
}

#[derive(Debug, Clone)]
struct Setting {
    sr: f64,
    batch: usize,
    len: usize,
    stft: StftConfig,
    mel: MelConfig,
    mfcc: MfccConfig,
}

fn draw(seed: u64, i: u64) -> Setting {
    let mut r = Rng::new(seed, i);
    let sr = r.pick(&[8000.0, 11025.0, 16000.0, 22050.0, 32000.0, 44100.0, 48000.0]);
    let n_fft = if r.unit() < 0.5 {
        1 << r.int(4, 11)
    } else {
        r.int(16, 2048)
    };
    let win_length = (r.unit() < 0.5).then(|| r.int((n_fft / 4).max(1), n_fft));
    let wl = win_length.unwrap_or(n_fft);
    let hop_length = if r.unit() < 0.4 && wl >= 4 {
        None
    } else {
        Some(r.int((wl / 8).max(1), wl))
    };
    let pad_mode = r.pick(&[
        PadMode::Constant,
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Reflect,
        PadMode::Edge,
        PadMode::Edge,
        PadMode::Symmetric,
        PadMode::LinearRamp,
    ]);
    let stft = StftConfig {
        n_fft,
        hop_length,
        win_length,
        window: r.pick(&[
            WindowKind::Hann,
            WindowKind::Hamming,
            WindowKind::Blackman,
            WindowKind::Rectangular,
        ]),
        center: r.unit() < 0.7,
        pad_mode,
        ..Default::default()
    };
    let len = if r.unit() < 0.15 {
        r.int(40, n_fft.max(41))
    } else {
        r.int(n_fft, (n_fft + 1).max((0.5 * sr) as usize))
    };
    let nyq = sr / 2.0;
    let fmin_hz = if r.unit() < 0.5 {
        0.0
    } else {
        r.unit() * 0.2 * nyq
    };
    let fmax_hz = (r.unit() < 0.5).then(|| fmin_hz + 0.3 * nyq + r.unit() * (0.8 * nyq - fmin_hz));
    let top = if r.unit() < 0.15 {
        128
    } else {
        (n_fft / 8).clamp(4, 128)
    };
    let n_mels = r.int(4, top);
    let mel = MelConfig {
        sample_rate_hz: sr,
        n_fft,
        n_mels,
        fmin_hz,
        fmax_hz,
        scale: if r.unit() < 0.5 {
            MelScale::Htk
        } else {
            MelScale::Slaney
        },
        norm: if r.unit() < 0.6 {
            MelNorm::Slaney
        } else {
            MelNorm::None
        },
    };
    let u = r.unit();
    let reference = if u < 0.5 {
        DbRef::Value(1.0)
    } else if u < 0.75 {
        DbRef::Max
    } else {
        DbRef::Value((1e-3 + r.unit() * 10.0) as f32)
    };
    let mfcc = MfccConfig {
        n_mfcc: r.int(1, n_mels.min(40)),
        lifter: if r.unit() < 0.5 {
            0.0
        } else {
            (0.5 + r.unit() * 39.5) as f32
        },
        db: DbConfig {
            reference,
            amin: r.pick(&[1e-10, 1e-8, 1e-5]),
            top_db: Some(if r.unit() < 0.5 {
                80.0
            } else {
                (10.0 + r.unit() * 70.0) as f32
            }),
        },
    };
    Setting {
        sr,
        batch: r.int(1, 3),
        len,
        stft,
        mel,
        mfcc,
    }
}

/// `[batch, len]` clips: sines, noise and a silent stretch.
fn signal(s: &Setting, seed: u64) -> Array2<f32> {
    let mut r = Rng::new(seed, 0x5151);
    let mut x = Array2::zeros((s.batch, s.len));
    for mut row in x.rows_mut() {
        let (f1, f2) = (30.0 + r.unit() * 0.45 * s.sr, 30.0 + r.unit() * 0.45 * s.sr);
        let (a, noise) = (0.1 + 0.8 * r.unit(), 0.001 + 0.05 * r.unit());
        let gap = r.int(0, s.len / 2);
        for (i, v) in row.iter_mut().enumerate() {
            let t = i as f64 / s.sr;
            let y = a
                * (0.5 * (std::f64::consts::TAU * f1 * t).sin()
                    + 0.3 * (std::f64::consts::TAU * f2 * t + 1.0).sin())
                + noise * (2.0 * r.unit() - 1.0);
            *v = if i >= gap && i < gap + s.len / 4 {
                0.0
            } else {
                y as f32
            };
        }
    }
    x
}

fn tensor(a: &Array2<f32>, device: Device) -> Tensor {
    let flat: Vec<f32> = a.iter().copied().collect();
    Tensor::from_slice(&flat)
        .view([a.nrows() as i64, a.ncols() as i64])
        .to(device)
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().flatten(0, -1)).unwrap()
}

/// `(max |a - b|, max |b|)`.
fn diff(a: &[f32], b: &[f32]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).fold(0f64, |m, (x, y)| {
        m.max((f64::from(*x) - f64::from(*y)).abs())
    });
    let s = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    (d, s)
}

/// The CPU path's feature of every clip, flattened `[batch, rows, frames]`.
fn cpu_batch(x: &Array2<f32>, f: impl Fn(&[f32]) -> Array2<f32>) -> Vec<f32> {
    x.rows()
        .into_iter()
        .flat_map(|r| f(r.as_slice().unwrap()).into_iter())
        .collect()
}

const FEATURES: [&str; 5] = ["magnitude", "power", "mel", "log-mel", "mfcc"];

#[test]
fn tensor_path_matches_the_cpu_path_over_a_seeded_sweep() {
    let n: u64 = std::env::var("MM_TENSOR_SWEEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let device = Device::cuda_if_available();
    let mut worst = [(0f64, 0u64); 5];
    let mut compared = [0usize; 5];
    let (mut refused, mut both_failed) = (0, 0);
    let mut failures = Vec::new();
    for i in 0..n {
        let s = draw(7, i);
        let x = signal(&s, i);
        let cpu_stft = match Stft::new(&s.stft) {
            Ok(st) => st,
            Err(e) => panic!("setting {i}: the sweep drew an invalid STFT ({e}): {s:?}"),
        };
        let tf = match TensorFeatures::new(&s.stft, device) {
            Ok(tf) => tf,
            Err(Error::InvalidParameter {
                name: "pad_mode", ..
            }) if matches!(s.stft.pad_mode, PadMode::Symmetric | PadMode::LinearRamp) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("setting {i}: {e} ({s:?})"),
        };
        let xt = tensor(&x, device);
        let cpu_frames = cpu_stft.n_frames(s.len);
        let t_power = tf.spectrum(&xt, SpectrumKind::Power);
        let t_mag = tf.spectrum(&xt, SpectrumKind::Magnitude);
        match (&cpu_frames, &t_power) {
            (Ok(_), Ok(_)) => {}
            (Err(_), Err(_)) => {
                both_failed += 1;
                continue;
            }
            (Ok(_), Err(Error::SignalTooShort { .. }))
                if s.stft.pad_mode == PadMode::Reflect
                    && s.stft.center
                    && s.len <= s.stft.n_fft / 2 =>
            {
                refused += 1;
                continue;
            }
            (c, t) => {
                failures.push(format!("setting {i}: cpu {c:?}, tensor {t:?} ({s:?})"));
                continue;
            }
        }
        let bank_ok = MelSpectrogram::new(&s.stft, &s.mel);
        let tfm = match (bank_ok, tf.with_mel(&s.mel)) {
            (Ok(_), Ok(t)) => Some(t.with_mfcc_lifter(s.mfcc.n_mfcc, s.mfcc.lifter).unwrap()),
            (Err(Error::EmptyMelFilter { .. }), Err(Error::EmptyMelFilter { .. })) => None,
            (a, b) => panic!("setting {i}: mel banks disagree: {a:?} / {b:?}"),
        };
        let mut outs: Vec<(usize, Vec<f32>, Vec<f32>)> = vec![
            (
                0,
                to_vec(&t_mag.unwrap()),
                cpu_batch(&x, |y| cpu_stft.magnitude(y).unwrap()),
            ),
            (
                1,
                to_vec(&t_power.unwrap()),
                cpu_batch(&x, |y| cpu_stft.power(y).unwrap()),
            ),
        ];
        if let Some(tfm) = &tfm {
            let mel = MelSpectrogram::new(&s.stft, &s.mel).unwrap();
            let mfcc = Mfcc::new(&s.stft, &s.mel, &s.mfcc).unwrap();
            let db = s.mfcc.db;
            outs.push((
                2,
                to_vec(&tfm.mel(&xt).unwrap()),
                cpu_batch(&x, |y| mel.process(y).unwrap()),
            ));
            outs.push((
                3,
                to_vec(&tfm.log_mel(&xt, &db).unwrap()),
                cpu_batch(&x, |y| {
                    let mut m = mel.process(y).unwrap();
                    power_to_db_inplace(&mut m, &db).unwrap();
                    m
                }),
            ));
            outs.push((
                4,
                to_vec(&tfm.mfcc(&xt, &db).unwrap()),
                cpu_batch(&x, |y| mfcc.process(y).unwrap()),
            ));
        }
        for (k, got, want) in outs {
            let (d, scale) = diff(&got, &want);
            let (err, tol) = match k {
                0..=2 => (if scale > 0.0 { d / scale } else { d }, 1e-5),
                3 => (d, 1e-2),
                _ => (d, 1e-2f64.max(2e-6 * scale)),
            };
            compared[k] += 1;
            if err > worst[k].0 {
                worst[k] = (err, i);
            }
            if err.is_nan() || err > tol {
                failures.push(format!(
                    "setting {i}: {} error {err:.3e} over {tol:.0e} ({s:?})",
                    FEATURES[k]
                ));
            }
        }
    }
    println!(
        "{n} settings on {device:?}: {refused} refused by the tensor path as documented, \
         {both_failed} refused by both paths"
    );
    for (k, f) in FEATURES.iter().enumerate() {
        println!(
            "{f:10} compared {:4}  worst {:.3e} (setting {})",
            compared[k], worst[k].0, worst[k].1
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (k, f) in FEATURES.iter().enumerate() {
        assert!(
            compared[k] as u64 >= n / 3,
            "{f} compared in {} of {n} settings only",
            compared[k]
        );
    }
}
