//! The transforms on `tch::Tensor` batches, on CPU or CUDA (feature `tch`), for feature
//! extraction inside training loops. Same definitions as the CPU path (librosa's), computed with
//! libtorch's `stft` and matrix products; the window, mel bank and DCT matrix live on the device,
//! built once.
//!
//! Pad modes: `constant`, `reflect` and `edge` (libtorch's `constant`, `reflect`, `replicate`);
//! `reflect` needs the signal longer than `n_fft / 2`, and pads the end as librosa 0.11 does
//! (from the last frames' tail alone, so a short tail reflects inside itself). `symmetric` and
//! `linear_ramp` are CPU-only. `tests/tensor_sweep.rs` compares this path with the CPU path over
//! a seeded sweep of settings.

use tch::{Device, Kind, Tensor};

use crate::db::{DbConfig, DbRef};
use crate::error::{Error, Result, invalid};
use crate::mel::{MelConfig, MelFilterbank};
use crate::mfcc::liftered_dct;
use crate::pad::PadMode;
use crate::stft::{SpectrumKind, Stft, StftConfig};
use crate::window::Symmetry;

/// Converts a libtorch error.
fn torch(e: tch::TchError) -> Error {
    Error::Torch(e.to_string())
}

/// STFT, spectra, mel, dB and MFCC of `[batch, samples]` tensors, with every constant precomputed
/// on `device`.
#[derive(Debug)]
pub struct TensorFeatures {
    stft: Stft,
    device: Device,
    window: Tensor,
    pad_mode: &'static str,
    mel: Option<Tensor>,
    dct: Option<Tensor>,
}

impl TensorFeatures {
    /// STFT-only features (`stft`, `spectrum`).
    pub fn new(stft: &StftConfig, device: Device) -> Result<Self> {
        let s = Stft::new(stft)?;
        let pad_mode = match stft.pad_mode {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "replicate",
            other => {
                return Err(invalid(
                    "pad_mode",
                    format!(
                        "`{}` is not available on tensors (CPU path only)",
                        other.name()
                    ),
                ));
            }
        };
        let w: Vec<f32> = stft
            .window
            .coefficients(s.win_length(), Symmetry::Periodic)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        Ok(Self {
            window: Tensor::from_slice(&w).to(device),
            stft: s,
            device,
            pad_mode,
            mel: None,
            dct: None,
        })
    }

    /// Adds a mel bank (for `mel`, `log_mel`, `mfcc`).
    pub fn with_mel(mut self, mel: &MelConfig) -> Result<Self> {
        if mel.n_fft != self.stft.n_fft() {
            return Err(invalid("n_fft", "stft and mel bank disagree"));
        }
        let bank = MelFilterbank::new(mel)?;
        let w = bank.weights();
        let flat: Vec<f32> = w.iter().copied().collect();
        self.mel = Some(
            Tensor::from_slice(&flat)
                .view([w.nrows() as i64, w.ncols() as i64])
                .to(self.device),
        );
        Ok(self)
    }

    /// Adds the DCT for `n_mfcc` coefficients (requires a mel bank).
    pub fn with_mfcc(self, n_mfcc: usize) -> Result<Self> {
        self.with_mfcc_lifter(n_mfcc, 0.0)
    }

    /// Adds the DCT for `n_mfcc` coefficients with librosa's `lifter` (0: none), as
    /// [`crate::Mfcc`] computes them (requires a mel bank).
    pub fn with_mfcc_lifter(mut self, n_mfcc: usize, lifter: f32) -> Result<Self> {
        let n_mels = self.mel_bank()?.size()[0] as usize;
        let d = liftered_dct(n_mfcc, n_mels, lifter)?;
        let flat: Vec<f32> = d.iter().copied().collect();
        self.dct = Some(
            Tensor::from_slice(&flat)
                .view([n_mfcc as i64, n_mels as i64])
                .to(self.device),
        );
        Ok(self)
    }

    fn mel_bank(&self) -> Result<&Tensor> {
        self.mel
            .as_ref()
            .ok_or_else(|| invalid("mel", "no mel bank: call with_mel first"))
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let size = x.size();
        if size.len() != 2 || x.kind() != Kind::Float {
            return Err(Error::Shape {
                name: "signal tensor (float32 [batch, samples])",
                expected: vec![0, 0],
                got: size.iter().map(|&d| d as usize).collect(),
            });
        }
        let len = size[1] as usize;
        self.stft.n_frames(len)?;
        if self.pad_mode == "reflect" && self.stft.config().center && len <= self.stft.n_fft() / 2 {
            return Err(Error::SignalTooShort {
                needed: self.stft.n_fft() / 2 + 1,
                got: len,
            });
        }
        let finite = x
            .f_isfinite()
            .and_then(|t| t.f_all())
            .and_then(|t| t.f_int64_value(&[]))
            .map_err(torch)?;
        if finite == 0 {
            return Err(invalid("signal", "holds a non-finite sample"));
        }
        Ok(())
    }

    /// Complex STFT, `[batch, bins, frames]` (`Kind::ComplexFloat`).
    pub fn stft(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let x = x.to_device(self.device);
        // centre by padding here (tch always passes `align_to_window`, which libtorch only
        // accepts without its own centring)
        let x = if self.stft.config().center {
            let p = (self.stft.n_fft() / 2) as i64;
            let value = (self.pad_mode == "constant").then_some(0.0);
            let padded = x
                .unsqueeze(1)
                .f_pad([p, p], self.pad_mode, value)
                .map_err(torch)?
                .squeeze_dim(1);
            let len = x.size()[1];
            match self.stft.right_pad_sources(len as usize)? {
                // librosa reflects a short tail inside itself (see `right_pad_sources`): the
                // right pad is gathered from the samples it names
                Some(src) if self.pad_mode == "reflect" => {
                    let idx: Vec<i64> = src.into_iter().map(|i| i as i64).collect();
                    let idx = Tensor::from_slice(&idx).to(self.device);
                    let right = x.f_index_select(1, &idx).map_err(torch)?;
                    Tensor::f_cat(&[padded.narrow(1, 0, len + p), right], 1).map_err(torch)?
                }
                _ => padded,
            }
        } else {
            x
        };
        x.f_stft_center(
            self.stft.n_fft() as i64,
            self.stft.hop_length() as i64,
            self.stft.win_length() as i64,
            Some(&self.window),
            false,
            "constant",
            false,
            true,
            true,
            false,
        )
        .map_err(torch)
    }

    /// Magnitude or power spectrogram, `[batch, bins, frames]`.
    pub fn spectrum(&self, x: &Tensor, kind: SpectrumKind) -> Result<Tensor> {
        let s = self.stft(x)?;
        // re^2 + im^2 elementwise (a reduction over a trailing dimension of 2 is far slower)
        let (re, im) = (s.f_real().map_err(torch)?, s.f_imag().map_err(torch)?);
        let p = re.square() + im.square();
        Ok(match kind {
            SpectrumKind::Power => p,
            SpectrumKind::Magnitude => p.sqrt(),
        })
    }

    /// Mel power spectrogram, `[batch, n_mels, frames]`.
    pub fn mel(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.spectrum(x, SpectrumKind::Power)?;
        self.mel_bank()?.f_matmul(&p).map_err(torch)
    }

    /// Mel power in dB, clamped per clip at its maximum minus `top_db` (as the CPU path clamps
    /// each clip).
    pub fn log_mel(&self, x: &Tensor, db: &DbConfig) -> Result<Tensor> {
        power_to_db(&self.mel(x)?, db)
    }

    /// MFCC, `[batch, n_mfcc, frames]`.
    pub fn mfcc(&self, x: &Tensor, db: &DbConfig) -> Result<Tensor> {
        let d = self
            .dct
            .as_ref()
            .ok_or_else(|| invalid("mfcc", "no DCT: call with_mfcc first"))?;
        d.f_matmul(&self.log_mel(x, db)?).map_err(torch)
    }
}

/// `power_to_db` of a `[batch, ...]` tensor, each item clamped at its own maximum minus
/// `top_db` (a reference of [`DbRef::Max`] is also per item).
pub fn power_to_db(s: &Tensor, db: &DbConfig) -> Result<Tensor> {
    if db.amin.is_nan() || db.amin <= 0.0 {
        return Err(invalid("amin", "must be positive"));
    }
    let dims: Vec<i64> = (1..s.dim() as i64).collect();
    let log = s.clamp_min(f64::from(db.amin)).log10() * 10.0;
    let log = match db.reference {
        DbRef::Value(r) => log - 10.0 * f64::from(r.abs().max(db.amin)).log10(),
        DbRef::Max => {
            let m = s.amax(&dims[..], true).clamp_min(f64::from(db.amin));
            log - m.log10() * 10.0
        }
    };
    Ok(match db.top_db {
        Some(t) if t >= 0.0 => {
            let floor = log.amax(&dims[..], true) - f64::from(t);
            log.maximum(&floor)
        }
        Some(_) => return Err(invalid("top_db", "must be non-negative")),
        None => log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogMelSpectrogram, MelSpectrogram, Mfcc, MfccConfig, batch, power_to_db_inplace};
    use ndarray::Array2;

    fn clips() -> Array2<f32> {
        Array2::from_shape_fn((3, 6000), |(c, i)| {
            let t = i as f32 / 16000.0;
            (std::f32::consts::TAU * 300.0 * (c + 1) as f32 * t).sin() * 0.5
                + 0.05 * (((i * 7919 + c * 31) % 97) as f32 / 97.0 - 0.5)
        })
    }

    fn tensor(a: &Array2<f32>) -> Tensor {
        let flat: Vec<f32> = a.iter().copied().collect();
        Tensor::from_slice(&flat).view([a.nrows() as i64, a.ncols() as i64])
    }

    fn to_vec(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().flatten(0, -1)).unwrap()
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    #[test]
    fn reflect_pads_a_short_tail_as_librosa_does() {
        // 1000 samples, hop 100, n_fft 128: librosa pads the last frame from y[936:] (64
        // samples) alone, which a whole-signal reflection does not reproduce (1.8e-3 of the
        // maximum off in the last frame before the fix)
        let x = Array2::from_shape_fn((2, 1000), |(c, i)| {
            ((i * 7919 + c * 104_729) % 1009) as f32 / 1009.0 - 0.5
        });
        let stft = StftConfig {
            n_fft: 128,
            hop_length: Some(100),
            window: crate::WindowKind::Hamming,
            pad_mode: PadMode::Reflect,
            ..Default::default()
        };
        let cpu = Stft::new(&stft).unwrap();
        let want: Vec<f32> = x
            .rows()
            .into_iter()
            .flat_map(|r| cpu.magnitude(r.as_slice().unwrap()).unwrap().into_iter())
            .collect();
        let tf = TensorFeatures::new(&stft, Device::Cpu).unwrap();
        let got = to_vec(&tf.spectrum(&tensor(&x), SpectrumKind::Magnitude).unwrap());
        assert!(max_rel(&got, &want) < 1e-5, "{}", max_rel(&got, &want));
    }

    #[test]
    fn tensor_path_matches_the_cpu_path() {
        let x = clips();
        for pad_mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
            let stft = StftConfig {
                n_fft: 512,
                win_length: Some(400),
                hop_length: Some(160),
                pad_mode,
                ..Default::default()
            };
            let mel = MelConfig {
                sample_rate_hz: 16000.0,
                n_fft: 512,
                n_mels: 40,
                ..Default::default()
            };
            let tf = TensorFeatures::new(&stft, Device::Cpu)
                .unwrap()
                .with_mel(&mel)
                .unwrap()
                .with_mfcc(13)
                .unwrap();
            let xt = tensor(&x);
            // power
            let cpu_power = batch(
                &crate::Spectrogram {
                    stft: Stft::new(&stft).unwrap(),
                    kind: SpectrumKind::Power,
                },
                x.view(),
            )
            .unwrap();
            let t_power = tf.spectrum(&xt, SpectrumKind::Power).unwrap();
            assert_eq!(t_power.size(), vec![3, 257, cpu_power.dim().2 as i64]);
            let cp: Vec<f32> = cpu_power.iter().copied().collect();
            assert!(max_rel(&to_vec(&t_power), &cp) < 1e-5, "{pad_mode:?} power");
            // log-mel, clamped per clip
            let lm = LogMelSpectrogram {
                mel: MelSpectrogram::new(&stft, &mel).unwrap(),
                db: DbConfig::default(),
            };
            let cpu_lm: Vec<f32> = batch(&lm, x.view()).unwrap().iter().copied().collect();
            let t_lm = to_vec(&tf.log_mel(&xt, &DbConfig::default()).unwrap());
            let err = t_lm
                .iter()
                .zip(&cpu_lm)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-3, "{pad_mode:?} log-mel error {err} dB");
            // mfcc
            let m = Mfcc::new(
                &stft,
                &mel,
                &MfccConfig {
                    n_mfcc: 13,
                    ..Default::default()
                },
            )
            .unwrap();
            let cpu_mfcc: Vec<f32> = batch(&m, x.view()).unwrap().iter().copied().collect();
            let t_mfcc = to_vec(&tf.mfcc(&xt, &DbConfig::default()).unwrap());
            let err = t_mfcc
                .iter()
                .zip(&cpu_mfcc)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 2e-3, "{pad_mode:?} mfcc error {err}");
        }
        let mut one = batch(
            &MelSpectrogram::new(
                &StftConfig {
                    n_fft: 256,
                    ..Default::default()
                },
                &MelConfig {
                    n_fft: 256,
                    n_mels: 20,
                    sample_rate_hz: 16000.0,
                    ..Default::default()
                },
            )
            .unwrap(),
            x.view(),
        )
        .unwrap();
        power_to_db_inplace(&mut one, &DbConfig::default()).unwrap();
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let stft = StftConfig {
            n_fft: 256,
            ..Default::default()
        };
        let tf = TensorFeatures::new(&stft, Device::Cpu).unwrap();
        let int = Tensor::zeros([2, 1000], (Kind::Int64, Device::Cpu));
        assert!(matches!(tf.stft(&int), Err(Error::Shape { .. })));
        let one_d = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
        assert!(matches!(tf.stft(&one_d), Err(Error::Shape { .. })));
        let nan = Tensor::full([1, 1000], f64::NAN, (Kind::Float, Device::Cpu));
        assert!(tf.stft(&nan).is_err());
        let empty = Tensor::zeros([1, 0], (Kind::Float, Device::Cpu));
        assert!(matches!(tf.stft(&empty), Err(Error::EmptySignal)));
        assert!(
            tf.mel(&Tensor::zeros([1, 1000], (Kind::Float, Device::Cpu)))
                .is_err()
        );
        let sym = StftConfig {
            pad_mode: PadMode::Symmetric,
            ..stft
        };
        assert!(TensorFeatures::new(&sym, Device::Cpu).is_err());
    }
}
