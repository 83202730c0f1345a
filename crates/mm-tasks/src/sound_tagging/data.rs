//! Clips to standardised log-mel spectrograms, split into train, val and test: the built-in
//! sound classes, or a data set of clips (ESC-50 as `mm data convert esc50` writes it), read
//! in chunks so that only the features stay in memory, never the audio.

use std::collections::BTreeMap;

use mm_data::Reader;
use mm_data::sound_classes;
use mm_signal::{DbConfig, MelConfig, MelSpectrogram, StftConfig, power_to_db_inplace};
use mm_train::{Error, Result};
use ndarray::Array2;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use super::config::{FeatureConfig, SoundTaggingConfig};

/// Clips read from a data set at once.
const CHUNK: usize = 128;
/// The seed of the validation hold-out.
const HOLDOUT_SEED: u64 = 0x7a1d;

/// One split: each clip's log-mel spectrogram (dB, `[n_mels, frames]`) and label.
#[derive(Debug, Default)]
pub(super) struct Split {
    pub(super) features: Vec<Array2<f32>>,
    pub(super) labels: Vec<i64>,
}

/// The data of a run.
#[derive(Debug)]
pub(super) struct Loaded {
    /// Class names, by label (empty names for labels without clips).
    pub(super) class_names: Vec<String>,
    pub(super) sample_rate: u32,
    /// Samples per clip (inference pads or cuts a file to this).
    pub(super) clip_len: usize,
    pub(super) splits: BTreeMap<String, Split>,
    /// Mean and standard deviation of the training features (dB).
    pub(super) mean: f64,
    pub(super) std: f64,
}

fn bad(name: &'static str, reason: String) -> Error {
    Error::InvalidParameter { name, reason }
}

/// The log-mel extractor of `f` at `sample_rate`.
pub(super) fn extractor(f: &FeatureConfig, sample_rate: u32) -> Result<MelSpectrogram> {
    MelSpectrogram::new(
        &StftConfig {
            n_fft: f.n_fft,
            hop_length: Some(f.hop_length),
            ..Default::default()
        },
        &MelConfig {
            sample_rate_hz: f64::from(sample_rate),
            n_fft: f.n_fft,
            n_mels: f.n_mels,
            ..Default::default()
        },
    )
    .map_err(Error::task)
}

/// Log-mel spectrograms (dB, top 80 dB) of `clips`, computed in parallel.
pub(super) fn log_mel(mel: &MelSpectrogram, clips: &[&[f32]]) -> Result<Vec<Array2<f32>>> {
    clips
        .par_iter()
        .map(|c| {
            let mut s = mel.process(c).map_err(Error::task)?;
            power_to_db_inplace(&mut s, &DbConfig::default()).map_err(Error::task)?;
            Ok(s)
        })
        .collect()
}

/// Moves a seeded `fraction` of `train` (at least one clip) into a new validation split.
fn hold_out(train: Split, fraction: f64) -> Result<(Split, Split)> {
    let n = train.labels.len();
    let n_val = ((n as f64 * fraction).round() as usize).max(1);
    if n_val >= n {
        return Err(bad(
            "task.val_holdout",
            format!("{n} training clips leave none for training after the hold-out"),
        ));
    }
    let all: Vec<u64> = (0..n as u64).collect();
    let order = mm_data::store::epoch_order(&all, true, HOLDOUT_SEED, 0);
    let mut is_val = vec![false; n];
    for &i in &order[..n_val] {
        is_val[i] = true;
    }
    let (mut tr, mut va) = (Split::default(), Split::default());
    for ((f, y), v) in train.features.into_iter().zip(train.labels).zip(is_val) {
        let s = if v { &mut va } else { &mut tr };
        s.features.push(f);
        s.labels.push(y);
    }
    Ok((tr, va))
}

/// The built-in classes: per class, the first clips train and the last `test_fraction` test.
fn built_in(cfg: &SoundTaggingConfig) -> Result<(Vec<String>, u32, usize, Split, Split)> {
    let c = &cfg.classes;
    let per_class = c.clips_per_class;
    let n_test = (per_class as f64 * cfg.test_fraction).round() as usize;
    if n_test == 0 || n_test >= per_class {
        return Err(bad(
            "task.test_fraction",
            format!(
                "leaves no clip of a class for training or for testing ({per_class} per class)"
            ),
        ));
    }
    let clips = sound_classes::generate(c).map_err(Error::task)?;
    let mel = extractor(&cfg.features, c.sample_rate_hz)?;
    let views: Vec<&[f32]> = clips.iter().map(|c| c.samples.as_slice()).collect();
    let feats = log_mel(&mel, &views)?;
    let (mut train, mut test) = (Split::default(), Split::default());
    for (i, (clip, f)) in clips.iter().zip(feats).enumerate() {
        let s = if i - clip.label * per_class < per_class - n_test {
            &mut train
        } else {
            &mut test
        };
        s.features.push(f);
        s.labels.push(clip.label as i64);
    }
    let names = (0..c.n_classes)
        .map(|k| sound_classes::class_name(c, k))
        .collect();
    let len = clips.first().map_or(0, |c| c.samples.len());
    Ok((names, c.sample_rate_hz, len, train, test))
}

/// Reads rows `rows` of a data set's `audio` and `label` in chunks, into features.
fn read_split(r: &Reader, mel: &MelSpectrogram, rows: &[u64]) -> Result<Split> {
    let mut s = Split::default();
    let rows: Vec<usize> = rows.iter().map(|&i| i as usize).collect();
    for chunk in rows.chunks(CHUNK) {
        let b = r
            .read_batch_fields(chunk, &["audio", "label"])
            .map_err(Error::task)?;
        let audio = b.tensor("audio", Device::Cpu).map_err(Error::task)?;
        let labels = b.tensor("label", Device::Cpu).map_err(Error::task)?;
        let audio = audio.f_to_kind(Kind::Float)?.f_contiguous()?;
        let n = audio.size()[0];
        let flat = Vec::<f32>::try_from(&audio.f_reshape([-1])?)?;
        let len = flat.len() / n.max(1) as usize;
        let views: Vec<&[f32]> = flat.chunks(len.max(1)).collect();
        s.features.extend(log_mel(mel, &views)?);
        s.labels.extend(Vec::<i64>::try_from(
            &labels.f_to_kind(Kind::Int64)?.f_reshape([-1])?,
        )?);
    }
    Ok(s)
}

/// A data set of clips: `fold` N tests on `foldN` and trains on the other folds, else the
/// file's `train` and `test` splits.
fn from_file(cfg: &SoundTaggingConfig) -> Result<(Vec<String>, u32, usize, Split, Split)> {
    let Some(path) = &cfg.data else {
        return Err(bad("task.data", "no data set".into()));
    };
    let r = Reader::open(path).map_err(Error::task)?;
    let audio = r
        .schema()
        .fixed
        .iter()
        .find(|f| f.name == "audio")
        .ok_or_else(|| {
            bad(
                "task.data",
                format!("{} has no `audio` field", path.display()),
            )
        })?;
    let clip_len = audio.shape.first().copied().unwrap_or(0);
    if audio.shape.len() != 1 || clip_len == 0 {
        return Err(bad(
            "task.data",
            format!(
                "`audio` must be mono clips [samples], got {:?}",
                audio.shape
            ),
        ));
    }
    if !r.schema().fixed.iter().any(|f| f.name == "label") {
        return Err(bad(
            "task.data",
            format!("{} has no `label` field", path.display()),
        ));
    }
    let params = &r.meta().params;
    let sample_rate = params["config"]["sample_rate"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| {
            bad(
                "task.data",
                "meta.params.config.sample_rate is missing: was the file written by `mm data convert esc50`?".into(),
            )
        })?;
    let names: Vec<String> = params["classes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let splits = r.split_names().map_err(Error::task)?;
    let (train_rows, test_rows) = match cfg.fold {
        Some(k) => {
            let mut train = Vec::new();
            let mut test = Vec::new();
            for f in 1..=5 {
                let name = format!("fold{f}");
                if !splits.contains(&name) {
                    return Err(bad(
                        "task.fold",
                        format!(
                            "{} has no split `{name}`; its splits are {splits:?}",
                            path.display()
                        ),
                    ));
                }
                let rows = r.split(&name).map_err(Error::task)?;
                if f == k {
                    test = rows
                } else {
                    train.extend(rows)
                }
            }
            (train, test)
        }
        None => (
            r.split("train").map_err(Error::task)?,
            r.split("test").map_err(Error::task)?,
        ),
    };
    if train_rows.is_empty() || test_rows.is_empty() {
        return Err(bad(
            "task.data",
            format!(
                "{}: {} training and {} test clips; both must be some",
                path.display(),
                train_rows.len(),
                test_rows.len()
            ),
        ));
    }
    let mel = extractor(&cfg.features, sample_rate)?;
    let train = read_split(&r, &mel, &train_rows)?;
    let test = read_split(&r, &mel, &test_rows)?;
    let n_labels = train
        .labels
        .iter()
        .chain(&test.labels)
        .copied()
        .max()
        .unwrap_or(0)
        + 1;
    if train.labels.iter().chain(&test.labels).any(|&y| y < 0) {
        return Err(bad("task.data", "a negative label".into()));
    }
    let mut names = names;
    names.resize(names.len().max(n_labels as usize), String::new());
    Ok((names, sample_rate, clip_len, train, test))
}

/// Loads the data `cfg` names, holds out validation clips, and measures the training
/// features' mean and standard deviation.
pub(super) fn load(cfg: &SoundTaggingConfig) -> Result<Loaded> {
    let (class_names, sample_rate, clip_len, train, test) = match cfg.data {
        Some(_) => from_file(cfg)?,
        None => built_in(cfg)?,
    };
    let (train, val) = hold_out(train, cfg.val_holdout)?;
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for v in train.features.iter().flat_map(|f| f.iter()) {
        let v = f64::from(*v);
        n += 1.0;
        sum += v;
        sq += v * v;
    }
    let mean = sum / n.max(1.0);
    let std = (sq / n.max(1.0) - mean * mean).max(1e-12).sqrt();
    Ok(Loaded {
        class_names,
        sample_rate,
        clip_len,
        splits: BTreeMap::from([
            ("train".to_string(), train),
            ("val".to_string(), val),
            ("test".to_string(), test),
        ]),
        mean,
        std,
    })
}

/// Spectrograms `[B, 1, n_mels, frames]`, standardised with `(mean, std)`.
pub(super) fn stack(specs: &[&Array2<f32>], mean: f64, std: f64, device: Device) -> Result<Tensor> {
    let Some(first) = specs.first() else {
        return Err(bad("batch", "an empty batch".into()));
    };
    let (b, f) = first.dim();
    if let Some(s) = specs.iter().find(|s| s.dim() != (b, f)) {
        return Err(bad(
            "batch",
            format!(
                "spectrograms of {:?} and {:?} frames cannot share a batch",
                (b, f),
                s.dim()
            ),
        ));
    }
    let mut flat: Vec<f32> = Vec::with_capacity(specs.len() * b * f);
    for s in specs {
        flat.extend(s.iter());
    }
    Ok(Tensor::from_slice(&flat)
        .f_view([specs.len() as i64, 1, b as i64, f as i64])?
        .f_sub_scalar(mean)?
        .f_div_scalar(std)?
        .f_to_device(device)?)
}
