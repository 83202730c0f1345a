//! Converters from the layouts people download into the HDF5 layout of `docs/datasets.md`.
//!
//! Each converter reads a raw tree, checks every entry, and either stops at the first bad one
//! with an error naming the file or, with `skip_bad`, skips it and counts it in the
//! [`Report`]. The output is written atomically ([`crate::Writer`]): never half-written, never
//! silently smaller (the report says what was skipped and why).

pub mod av_folders;
pub mod esc50;
pub mod flickr8k;
pub mod vqa;

use std::path::PathBuf;

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Samples written.
    pub written: usize,
    /// Entries skipped (with `skip_bad`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The output file.
    pub out: PathBuf,
}

/// An error and its causes, as one line (`i/o on x.wav: No such file or directory`): a reason
/// kept as text must not drop the cause that says what went wrong.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Reads an audio file, resamples it to `sample_rate`, mixes it down to mono and pads or cuts
/// it to `n` samples; the error is a reason to report (an empty file is one).
pub fn load_clip(
    path: &std::path::Path,
    sample_rate: u32,
    n: usize,
) -> std::result::Result<Vec<f32>, String> {
    let mut y = mm_signal::read_audio(path)
        .and_then(|a| a.resampled(sample_rate))
        .map(|a| a.to_mono())
        .map_err(|e| chain(&e))?;
    if y.is_empty() {
        return Err("no samples".into());
    }
    y.resize(n, 0.0);
    Ok(y)
}

/// Log-mel features that converters store beside the raw audio (`--log-mel N`): 25 ms windows,
/// 10 ms hop, `n_mels` Slaney bands up to Nyquist, `power_to_db` with its defaults, computed with
/// mm-signal. The field is `log_mel`, `f32 [n_mels, frames]`.
#[derive(Debug, Clone)]
pub struct LogMel {
    feature: mm_signal::LogMelSpectrogram,
    n_mels: usize,
    frames: usize,
}

impl LogMel {
    /// Plans the features for clips of `samples` samples at `sample_rate`.
    pub fn new(sample_rate: u32, n_mels: usize, samples: usize) -> crate::Result<Self> {
        let sr = sample_rate as f32;
        let win = (0.025 * sr).round() as usize;
        let n_fft = win.next_power_of_two();
        let stft = mm_signal::StftConfig {
            n_fft,
            win_length: Some(win),
            hop_length: Some((0.01 * sr).round().max(1.0) as usize),
            ..Default::default()
        };
        let mel = mm_signal::MelConfig {
            sample_rate_hz: f64::from(sample_rate),
            n_fft,
            n_mels,
            ..Default::default()
        };
        let signal = |e: mm_signal::Error| crate::Error::InvalidParameter {
            name: "log_mel",
            reason: e.to_string(),
        };
        let feature = mm_signal::LogMelSpectrogram {
            mel: mm_signal::MelSpectrogram::new(&stft, &mel).map_err(signal)?,
            db: mm_signal::DbConfig::default(),
        };
        let frames = feature.mel.n_frames(samples).map_err(signal)?;
        Ok(Self {
            feature,
            n_mels,
            frames,
        })
    }

    /// The schema entry.
    pub fn field(&self) -> crate::FieldSpec {
        crate::FieldSpec {
            name: "log_mel".into(),
            dtype: crate::Dtype::F32,
            shape: vec![self.n_mels, self.frames],
            compress: false,
        }
    }

    /// The features of a clip (of the planned length).
    pub fn compute(&self, y: &[f32]) -> crate::Result<crate::Value> {
        use mm_signal::FrameFeature;
        let mut out = ndarray::Array2::<f32>::zeros((self.n_mels, self.frames));
        let mut scratch = self.feature.make_scratch();
        self.feature
            .process_into(y, out.view_mut(), &mut scratch)
            .map_err(|e| crate::Error::InvalidParameter {
                name: "log_mel",
                reason: e.to_string(),
            })?;
        Ok(crate::Value::F32(out.into_dyn()))
    }
}
