//! Audio-visual pairs from folders: `<raw>/<clip>/frames/*.{jpg,png}` and `<raw>/<clip>/audio.wav`
//! (any rate and channel count). Each clip becomes a sample with `image` (its middle frame,
//! resized and centre-cropped) and `audio` (mono, resampled to `sample_rate`, padded or cut to
//! `seconds`); clip names are kept in `/meta` `params.clips`. Splits: a seeded shuffle of the
//! clips, 80 % train, 10 % val, 10 % test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array, IxDyn};
use serde::{Deserialize, Serialize};

use super::Report;
use super::flickr8k::load_image;
use crate::error::{Error, Result};
use crate::store::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer, epoch_order};

/// Conversion settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvFoldersConfig {
    /// Output image side.
    pub image_size: u32,
    /// Output sample rate.
    pub sample_rate: u32,
    /// Clip length in seconds (padded or cut).
    pub seconds: f32,
    /// Seed of the split shuffle.
    pub seed: u64,
    /// Also store `log_mel` features with this many bands (see [`super::LogMel`]).
    #[serde(default)]
    pub log_mel: Option<usize>,
    /// Skip (and report) bad clips instead of stopping.
    pub skip_bad: bool,
}

impl Default for AvFoldersConfig {
    fn default() -> Self {
        Self {
            image_size: 224,
            sample_rate: 16_000,
            seconds: 10.0,
            seed: 0,
            log_mel: None,
            skip_bad: false,
        }
    }
}

fn middle_frame(dir: &Path) -> std::result::Result<PathBuf, String> {
    let mut frames: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    frames.sort();
    frames
        .get(frames.len() / 2)
        .cloned()
        .ok_or_else(|| format!("no frames in {}", dir.display()))
}

/// Converts the folder tree at `raw` into `out`.
pub fn convert(
    raw: &Path,
    out: &Path,
    cfg: &AvFoldersConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    if !(16..=1024).contains(&cfg.image_size)
        || cfg.sample_rate < 1000
        || !(cfg.seconds > 0.0 && cfg.seconds <= 600.0)
    {
        return Err(Error::InvalidParameter {
            name: "image_size/sample_rate/seconds",
            reason: "need 16..=1024, >= 1000 and (0, 600]".into(),
        });
    }
    let mut clips: Vec<String> = std::fs::read_dir(raw)
        .map_err(|source| Error::Io {
            path: raw.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    clips.sort();
    if clips.is_empty() {
        return Err(Error::BadEntry {
            path: raw.to_owned(),
            reason: "no clip folders".into(),
        });
    }
    let (s, n) = (
        cfg.image_size as usize,
        (cfg.sample_rate as f32 * cfg.seconds).round() as usize,
    );
    let schema = Schema {
        fixed: vec![
            FieldSpec {
                name: "image".into(),
                dtype: Dtype::U8,
                shape: vec![s, s, 3],
                compress: true,
            },
            FieldSpec {
                name: "audio".into(),
                dtype: Dtype::F32,
                shape: vec![n],
                compress: false,
            },
        ],
        ragged: vec![],
    };
    let log_mel = match cfg.log_mel {
        Some(bands) => Some(super::LogMel::new(cfg.sample_rate, bands, n)?),
        None => None,
    };
    let mut schema = schema;
    if let Some(lm) = &log_mel {
        schema.fixed.push(lm.field());
    }
    let mut report = Report::default();
    let mut kept = Vec::new();
    let mut samples = Vec::new();
    for (k, clip) in clips.iter().enumerate() {
        progress(k + 1, clips.len());
        let dir = raw.join(clip);
        let loaded = middle_frame(&dir.join("frames"))
            .and_then(|f| {
                load_image(&f, cfg.image_size).map_err(|e| format!("{}: {e}", f.display()))
            })
            .and_then(|img| {
                super::load_clip(&dir.join("audio.wav"), cfg.sample_rate, n).map(|y| (img, y))
            });
        let (img, y) = match loaded {
            Ok(v) => v,
            Err(why) if cfg.skip_bad => {
                report.skipped.push((dir, why));
                continue;
            }
            Err(why) => {
                return Err(Error::BadEntry {
                    path: dir,
                    reason: why,
                });
            }
        };
        let features = match &log_mel {
            Some(lm) => Some(lm.compute(&y)?),
            None => None,
        };
        let mut sample = Sample::default();
        sample.fixed.insert(
            "image".into(),
            Value::U8(Array::from_shape_vec(IxDyn(&[s, s, 3]), img).unwrap_or_default()),
        );
        sample.fixed.insert(
            "audio".into(),
            Value::F32(Array::from_shape_vec(IxDyn(&[n]), y).unwrap_or_default()),
        );
        if let Some(f) = features {
            sample.fixed.insert("log_mel".into(), f);
        }
        samples.push(sample);
        kept.push(clip.clone());
    }
    let meta = Meta {
        source: "av-folders".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({"config": cfg, "clips": kept}),
    };
    let mut w = Writer::create(out, &schema, &meta)?;
    for sample in &samples {
        w.push(sample)?;
    }
    let order = epoch_order(
        &(0..kept.len() as u64).collect::<Vec<_>>(),
        true,
        cfg.seed,
        0,
    );
    let (n_val, n_test) = (kept.len() / 10, kept.len() / 10);
    let n_train = kept.len() - n_val - n_test;
    let mut splits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (rank, &i) in order.iter().enumerate() {
        let name = if rank < n_train {
            "train"
        } else if rank < n_train + n_val {
            "val"
        } else {
            "test"
        };
        splits.entry(name.into()).or_default().push(i as u64);
    }
    for v in splits.values_mut() {
        v.sort_unstable();
    }
    report.written = w.len();
    report.out = w.finish(&splits)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reader;

    fn clip(raw: &Path, name: &str, frames: usize, rate: u32) {
        let d = raw.join(name).join("frames");
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..frames {
            image::RgbImage::from_pixel(40, 30, image::Rgb([(f * 60) as u8, 10, 10]))
                .save(d.join(format!("{f:04}.png")))
                .unwrap();
        }
        let y = ndarray::Array2::from_shape_fn((2, rate as usize / 2), |(c, t)| {
            0.3 * ((t as f32) * 0.01 * (c + 1) as f32).sin()
        });
        mm_signal::write_wav(
            &raw.join(name).join("audio.wav"),
            &mm_signal::Audio {
                samples: y,
                sample_rate: rate,
            },
            mm_signal::WavEncoding::Pcm16,
        )
        .unwrap();
    }

    fn cfg(skip_bad: bool) -> AvFoldersConfig {
        AvFoldersConfig {
            image_size: 16,
            sample_rate: 8000,
            seconds: 1.0,
            seed: 1,
            log_mel: Some(20),
            skip_bad,
        }
    }

    /// The one image pipeline: the frame a converted data set stores is, pixel for pixel, what
    /// inference makes of the same file (`mm_image::load_square`, which `mm infer` and `mm
    /// vision features` use through `mm_vision::image`).
    #[test]
    fn a_stored_frame_is_the_same_pixels_as_the_file_at_inference() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        for i in 0..3 {
            clip(&raw, &format!("clip{i}"), 3, 8000);
        }
        // a frame whose resize and crop rounding show: 37 x 23, a gradient both ways
        let frame = raw.join("clip0/frames/0001.png");
        image::RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x * y) % 251) as u8])
        })
        .save(&frame)
        .unwrap();
        let out = raw.with_extension("h5");
        convert(&raw, &out, &cfg(false), &mut |_, _| {}).unwrap();
        let r = Reader::open(&out).unwrap();
        let want = mm_image::load_square(&frame, 16).unwrap().into_raw();
        let stored: Vec<Vec<u8>> = (0..3)
            .map(|i| match &r.get(i).unwrap().fixed["image"] {
                Value::U8(img) => img.iter().copied().collect(),
                _ => panic!("image field"),
            })
            .collect();
        assert!(
            stored.contains(&want),
            "no stored frame equals the inference pixels"
        );
    }

    #[test]
    fn clips_become_middle_frames_and_resampled_audio() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        for i in 0..10 {
            clip(&raw, &format!("clip{i:02}"), 3, 22050);
        }
        let out = raw.with_extension("h5");
        let rep = convert(&raw, &out, &cfg(false), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 10);
        let r = Reader::open(&out).unwrap();
        let sizes: Vec<usize> = ["train", "val", "test"]
            .iter()
            .map(|s| r.split(s).unwrap().len())
            .collect();
        assert_eq!(sizes, [8, 1, 1]);
        let s = r.get(0).unwrap();
        match (&s.fixed["image"], &s.fixed["audio"]) {
            (Value::U8(img), Value::F32(a)) => {
                // the middle of 3 frames is frame 1: red 60
                assert!(
                    (i32::from(img[[8, 8, 0]]) - 60).abs() <= 3,
                    "{}",
                    img[[8, 8, 0]]
                );
                assert_eq!(a.len(), 8000);
                assert!(a.iter().take(3900).any(|v| v.abs() > 0.1));
                assert!(a.iter().skip(4100).all(|v| v.abs() < 1e-3));
                // 8000 samples, hop 80: 101 frames of 20 bands
                if let Value::F32(lm) = &s.fixed["log_mel"] {
                    assert_eq!(lm.shape(), &[20, 101]);
                } else {
                    panic!("log_mel");
                }
            }
            _ => panic!("fields"),
        }
    }

    #[test]
    fn clips_without_frames_or_audio_stop_or_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        clip(&raw, "good", 2, 16000);
        clip(&raw, "noframes", 0, 16000);
        clip(&raw, "noaudio", 2, 16000);
        std::fs::remove_file(raw.join("noaudio/audio.wav")).unwrap();
        let out = raw.with_extension("h5");
        let e = convert(&raw, &out, &cfg(false), &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, Error::BadEntry { .. }), "{e}");
        let rep = convert(&raw, &out, &cfg(true), &mut |_, _| {}).unwrap();
        assert_eq!((rep.written, rep.skipped.len()), (1, 2));
        assert!(out.is_file());
    }
}
