//! `mm audio features`: librosa-compatible features of a WAV file, as `.npy`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mm_signal::{
    DbConfig, DbRef, FrameFeature, MelConfig, MelNorm, MelScale, MelSpectrogram, Mfcc, MfccConfig,
    PadMode, Precision, Spectrogram, SpectrumKind, Stft, StftConfig, WindowKind,
};
use ndarray::{Array2, Array3, Axis};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Feature {
    /// |STFT|, `[1 + n_fft/2, frames]`.
    StftMag,
    /// |STFT|^2.
    Power,
    /// Mel power spectrogram, `[n_mels, frames]`.
    Mel,
    /// Mel power in dB (`power_to_db`, ref 1, amin 1e-10, `--top-db`).
    LogMel,
    /// MFCC, `[n_mfcc, frames]`.
    Mfcc,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WindowArg {
    Hann,
    Hamming,
    Blackman,
    /// Rectangular (librosa's "boxcar").
    #[value(alias = "boxcar")]
    Rectangular,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PadArg {
    Constant,
    Edge,
    LinearRamp,
    Reflect,
    Symmetric,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MelNormArg {
    Slaney,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PrecisionArg {
    F32,
    F64,
}

/// Defaults are librosa's (`librosa.load` resamples to 22050 Hz unless told otherwise).
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The input audio file (WAV; FLAC, Ogg Vorbis or MP3 through symphonia).
    #[arg(long)]
    input: PathBuf,
    /// Which feature.
    #[arg(long, value_enum)]
    feature: Feature,
    /// Output `.npy` (float32).
    #[arg(long)]
    out: PathBuf,
    /// Analysis rate: the file is resampled to it when different; `native` keeps the file's.
    #[arg(long, default_value = "22050")]
    sample_rate: String,
    /// Mix channels down to mono (librosa's `mono=True`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mono: bool,
    /// FFT length.
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    /// Hop length (default `win_length / 4`).
    #[arg(long)]
    hop_length: Option<usize>,
    /// Window length (default `n_fft`).
    #[arg(long)]
    win_length: Option<usize>,
    /// Window.
    #[arg(long, value_enum, default_value = "hann")]
    window: WindowArg,
    /// Centre frames on `t * hop_length`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    center: bool,
    /// Padding when centring.
    #[arg(long, value_enum, default_value = "constant")]
    pad_mode: PadArg,
    /// Mel bands.
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    /// Lowest mel frequency (Hz).
    #[arg(long, default_value_t = 0.0)]
    fmin: f64,
    /// Highest mel frequency (Hz, default sample_rate / 2).
    #[arg(long)]
    fmax: Option<f64>,
    /// HTK mel scale instead of Slaney's.
    #[arg(long)]
    htk: bool,
    /// Mel filter normalisation.
    #[arg(long, value_enum, default_value = "slaney")]
    mel_norm: MelNormArg,
    /// MFCC coefficients.
    #[arg(long, default_value_t = 20)]
    n_mfcc: usize,
    /// MFCC liftering (0: none).
    #[arg(long, default_value_t = 0.0)]
    lifter: f32,
    /// dB floor below the maximum for log-mel and MFCC; negative disables it (librosa's
    /// `top_db=None`).
    #[arg(long, default_value_t = 80.0, allow_negative_numbers = true)]
    top_db: f32,
    /// The power that maps to 0 dB for log-mel and MFCC: a number (its absolute value is used)
    /// or `max` (librosa's `ref=np.max`, the maximum over every channel).
    #[arg(long = "ref", default_value = "1.0", allow_negative_numbers = true)]
    reference: String,
    /// Floor on the power before the logarithm (librosa's `amin`).
    #[arg(long, default_value_t = 1e-10)]
    amin: f32,
    /// FFT arithmetic (f64 reproduces librosa's rounding; f32 is faster).
    #[arg(long, value_enum, default_value = "f32")]
    precision: PrecisionArg,
    /// Also write a picture of the feature (dB for spectra) as PNG.
    #[arg(long)]
    png: Option<PathBuf>,
}

fn stft_config(a: &FeaturesArgs) -> StftConfig {
    StftConfig {
        n_fft: a.n_fft,
        hop_length: a.hop_length,
        win_length: a.win_length,
        window: match a.window {
            WindowArg::Hann => WindowKind::Hann,
            WindowArg::Hamming => WindowKind::Hamming,
            WindowArg::Blackman => WindowKind::Blackman,
            WindowArg::Rectangular => WindowKind::Rectangular,
        },
        center: a.center,
        pad_mode: match a.pad_mode {
            PadArg::Constant => PadMode::Constant,
            PadArg::Edge => PadMode::Edge,
            PadArg::LinearRamp => PadMode::LinearRamp,
            PadArg::Reflect => PadMode::Reflect,
            PadArg::Symmetric => PadMode::Symmetric,
        },
        precision: match a.precision {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        },
    }
}

fn mel_config(a: &FeaturesArgs, sr: u32) -> MelConfig {
    MelConfig {
        sample_rate_hz: f64::from(sr),
        n_fft: a.n_fft,
        n_mels: a.n_mels,
        fmin_hz: a.fmin,
        fmax_hz: a.fmax,
        scale: if a.htk {
            MelScale::Htk
        } else {
            MelScale::Slaney
        },
        norm: match a.mel_norm {
            MelNormArg::Slaney => MelNorm::Slaney,
            MelNormArg::None => MelNorm::None,
        },
    }
}

fn db_config(a: &FeaturesArgs) -> Result<DbConfig> {
    if a.top_db.is_nan() {
        bail!("--top-db must be a number (a negative one disables the floor)");
    }
    let reference = match a.reference.as_str() {
        "max" => DbRef::Max,
        s => match s.parse::<f32>() {
            Ok(r) if r.is_finite() => DbRef::Value(r),
            _ => bail!("--ref `{s}`: a finite number or `max`"),
        },
    };
    if !(a.amin > 0.0 && a.amin.is_finite()) {
        bail!("--amin must be positive and finite, got {}", a.amin);
    }
    Ok(DbConfig {
        reference,
        amin: a.amin,
        top_db: (a.top_db >= 0.0).then_some(a.top_db),
    })
}

/// Mel power in dB of each channel, `[channels, n_mels, frames]`. As librosa's `power_to_db`
/// on a multichannel array, `ref=max` and the `top_db` floor use the maximum over all channels.
fn log_mel(mel: &MelSpectrogram, db: &DbConfig, channels: &[Vec<f32>]) -> Result<Array3<f32>> {
    let mut m = compute(mel, channels)?;
    mm_signal::power_to_db_inplace(&mut m, db)?;
    Ok(m)
}

/// The feature of each channel, `[channels, rows, frames]`.
fn compute<F: FrameFeature>(f: &F, channels: &[Vec<f32>]) -> Result<Array3<f32>> {
    let views: Vec<&[f32]> = channels.iter().map(Vec::as_slice).collect();
    let per: Vec<Array2<f32>> = mm_signal::batch_ragged(f, &views)?;
    let views: Vec<_> = per.iter().map(|a| a.view()).collect();
    Ok(ndarray::stack(Axis(0), &views)?)
}

pub fn run(a: FeaturesArgs) -> Result<()> {
    let audio = mm_signal::read_audio(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let sr = match a.sample_rate.as_str() {
        "native" => audio.sample_rate,
        s => s
            .parse::<u32>()
            .ok()
            .filter(|&r| r > 0)
            .with_context(|| format!("--sample-rate `{s}`: a positive integer or `native`"))?,
    };
    let audio = audio
        .resampled(sr)
        .with_context(|| format!("resampling {} Hz -> {sr} Hz", audio.sample_rate))?;
    let channels: Vec<Vec<f32>> = if a.mono {
        vec![audio.to_mono()]
    } else {
        audio
            .samples
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect()
    };
    if channels.iter().all(Vec::is_empty) {
        bail!("{} holds no samples", a.input.display());
    }
    let stft = stft_config(&a);
    let len = channels.first().map_or(0, Vec::len);
    if a.center && a.n_fft > len {
        // librosa's UserWarning, word for word
        eprintln!(
            "warning: n_fft={} is too large for input signal of length={len}",
            a.n_fft
        );
    }
    let out = match a.feature {
        Feature::StftMag | Feature::Power => compute(
            &Spectrogram {
                stft: Stft::new(&stft)?,
                kind: if matches!(a.feature, Feature::Power) {
                    SpectrumKind::Power
                } else {
                    SpectrumKind::Magnitude
                },
            },
            &channels,
        )?,
        Feature::Mel => compute(&MelSpectrogram::new(&stft, &mel_config(&a, sr))?, &channels)?,
        Feature::LogMel => log_mel(
            &MelSpectrogram::new(&stft, &mel_config(&a, sr))?,
            &db_config(&a)?,
            &channels,
        )?,
        Feature::Mfcc => {
            let mfcc = Mfcc::new(
                &stft,
                &mel_config(&a, sr),
                &MfccConfig {
                    n_mfcc: a.n_mfcc,
                    lifter: a.lifter,
                    db: db_config(&a)?,
                },
            )?;
            let db = log_mel(mfcc.mel(), &mfcc.db(), &channels)?;
            let per = db
                .axis_iter(Axis(0))
                .map(|ch| mfcc.from_db_mel(ch))
                .collect::<mm_signal::Result<Vec<_>>>()?;
            let views: Vec<_> = per.iter().map(|c| c.view()).collect();
            ndarray::stack(Axis(0), &views)?
        }
    };
    // a finite input can still overflow f32 (power of samples near 1e19 and beyond): refuse to
    // write infinities or NaN as features
    let bad = out.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        anyhow::bail!(
            "{bad} of the {} feature values of {} are not finite (the signal overflows 32-bit \
             floats; is it scaled to [-1, 1]?); nothing written",
            out.len(),
            a.input.display()
        );
    }
    if let Some(png) = &a.png {
        write_png(&out, &a, sr, png)?;
    }
    let dims = out.shape().to_vec();
    if a.mono {
        write_npy_atomic(&a.out, &out.index_axis(Axis(0), 0).to_owned())?;
    } else {
        write_npy_atomic(&a.out, &out)?;
    }
    println!(
        "{:?} of {} ({} Hz{}): {:?} -> {}",
        a.feature,
        a.input.display(),
        sr,
        if sr != audio.sample_rate {
            ", resampled"
        } else {
            ""
        },
        if a.mono { &dims[1..] } else { &dims[..] },
        a.out.display()
    );
    Ok(())
}

fn write_npy_atomic<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    path: &Path,
    arr: &ndarray::Array<A, D>,
) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    let mut bytes = Vec::new();
    arr.write_npy(&mut bytes)?;
    // through a temporary and a rename, removed if the write fails
    mm_core::write_atomic(path, &bytes)?;
    Ok(())
}

/// The feature as a picture: dB for spectra, one panel per channel, with time and frequency
/// (or band, coefficient) axes and a colour bar.
fn write_png(out: &Array3<f32>, a: &FeaturesArgs, sr: u32, path: &Path) -> Result<()> {
    let feature = a.feature;
    let pictures: Vec<Array2<f32>> = out
        .axis_iter(Axis(0))
        .map(|ch| {
            let mut a = ch.to_owned();
            match feature {
                Feature::Power | Feature::Mel => {
                    mm_signal::power_to_db_inplace(&mut a, &DbConfig::default())?
                }
                Feature::StftMag => {
                    mm_signal::amplitude_to_db_inplace(&mut a, &DbConfig::amplitude())?
                }
                Feature::LogMel | Feature::Mfcc => {}
            }
            Ok(a)
        })
        .collect::<Result<_>>()?;
    let hop = a.hop_length.unwrap_or(a.win_length.unwrap_or(a.n_fft) / 4);
    let rows = out.shape()[1] as f64;
    let (row_label, top, value) = match feature {
        Feature::Power | Feature::StftMag => ("frequency (Hz)", f64::from(sr) / 2.0, "dB"),
        Feature::Mel | Feature::LogMel => ("mel band", rows, "dB"),
        Feature::Mfcc => ("coefficient", rows, "value"),
    };
    let many = pictures.len() > 1;
    let spec = mm_tasks::plot::SpectrogramSpec {
        title: format!(
            "{feature:?} of {}",
            a.input.file_name().unwrap_or_default().to_string_lossy()
        ),
        panels: pictures
            .iter()
            .enumerate()
            .map(|(c, p)| {
                (
                    if many {
                        format!("channel {c}")
                    } else {
                        String::new()
                    },
                    p.view(),
                )
            })
            .collect(),
        seconds_per_frame: hop as f64 / f64::from(sr),
        rows: (row_label.into(), top),
        value_label: value.into(),
        height: 300,
    };
    mm_tasks::plot::save_png_atomic(&mm_tasks::plot::spectrogram_chart(&spec)?, path)?;
    Ok(())
}
