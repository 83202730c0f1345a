//! ESC-50 (Piczak 2015): `meta/esc50.csv` (`filename,fold,target,category,esc10,src_file,take`)
//! and `audio/*.wav` (5 s clips at 44.1 kHz), into mono clips at `sample_rate`, with the class
//! label, the fold, and splits `fold1`..`fold5` (the standard 5-fold cross-validation) plus
//! `train` (folds 1-4) and `test` (fold 5).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ndarray::{Array, IxDyn};
use serde::{Deserialize, Serialize};

use super::Report;
use crate::error::{Error, Result};
use crate::store::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};

/// Conversion settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Esc50Config {
    /// Output sample rate (clips are resampled).
    pub sample_rate: u32,
    /// Clip length in seconds: shorter clips are zero-padded, longer ones cut.
    pub seconds: f32,
    /// Also store `log_mel` features with this many bands (see [`super::LogMel`]).
    #[serde(default)]
    pub log_mel: Option<usize>,
    /// Skip (and report) bad entries instead of stopping.
    pub skip_bad: bool,
}

impl Default for Esc50Config {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            seconds: 5.0,
            log_mel: None,
            skip_bad: false,
        }
    }
}

struct Row {
    file: String,
    fold: i64,
    target: i64,
    category: String,
}

fn parse_csv(raw: &Path) -> Result<Vec<Row>> {
    let path = raw.join("meta/esc50.csv");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let bad = |line: usize, why: &str| Error::BadEntry {
        path: path.clone(),
        reason: format!("line {line}: {why}"),
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').collect())
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(fi), Some(fo), Some(ta), Some(ca)) =
        (col("filename"), col("fold"), col("target"), col("category"))
    else {
        return Err(bad(1, "header needs filename, fold, target, category"));
    };
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let get = |k: usize| {
            f.get(k)
                .map(|s| s.trim())
                .ok_or_else(|| bad(i + 1, "too few columns"))
        };
        let file = get(fi)?.to_owned();
        if !seen.insert(file.clone()) {
            return Err(bad(i + 1, &format!("duplicate file {file}")));
        }
        let fold: i64 = get(fo)?
            .parse()
            .map_err(|_| bad(i + 1, "fold is not a number"))?;
        let target: i64 = get(ta)?
            .parse()
            .map_err(|_| bad(i + 1, "target is not a number"))?;
        if !(1..=5).contains(&fold) || !(0..50).contains(&target) {
            return Err(bad(i + 1, "fold must be 1-5 and target 0-49"));
        }
        rows.push(Row {
            file,
            fold,
            target,
            category: get(ca)?.to_owned(),
        });
    }
    Ok(rows)
}

/// Converts the ESC-50 tree at `raw` into `out`.
pub fn convert(
    raw: &Path,
    out: &Path,
    cfg: &Esc50Config,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    if !(cfg.seconds > 0.0 && cfg.seconds <= 60.0) || cfg.sample_rate < 1000 {
        return Err(Error::InvalidParameter {
            name: "seconds/sample_rate",
            reason: "need 0 < seconds <= 60 and sample_rate >= 1000".into(),
        });
    }
    let rows = parse_csv(raw)?;
    let n = (cfg.sample_rate as f32 * cfg.seconds).round() as usize;
    let mut classes: BTreeMap<i64, String> = BTreeMap::new();
    for r in &rows {
        classes
            .entry(r.target)
            .or_insert_with(|| r.category.clone());
    }
    let schema = Schema {
        fixed: vec![
            FieldSpec {
                name: "audio".into(),
                dtype: Dtype::F32,
                shape: vec![n],
                compress: false,
            },
            FieldSpec {
                name: "label".into(),
                dtype: Dtype::I64,
                shape: vec![],
                compress: false,
            },
            FieldSpec {
                name: "fold".into(),
                dtype: Dtype::I64,
                shape: vec![],
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
    let meta = Meta {
        source: "esc50".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({
            "config": cfg,
            "classes": (0..50).map(|t| classes.get(&t).cloned().unwrap_or_default()).collect::<Vec<_>>(),
            "raw": raw.display().to_string(),
        }),
    };
    let mut w = Writer::create(out, &schema, &meta)?;
    let mut report = Report::default();
    let mut folds: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for (k, r) in rows.iter().enumerate() {
        let path = raw.join("audio").join(&r.file);
        let y = match super::load_clip(&path, cfg.sample_rate, n) {
            Ok(y) => y,
            Err(why) if cfg.skip_bad => {
                report.skipped.push((path, why));
                continue;
            }
            Err(why) => return Err(Error::BadEntry { path, reason: why }),
        };
        let features = match &log_mel {
            Some(lm) => Some(lm.compute(&y)?),
            None => None,
        };
        let mut s = Sample::default();
        s.fixed.insert(
            "audio".into(),
            Value::F32(Array::from_shape_vec(IxDyn(&[n]), y).unwrap_or_default()),
        );
        s.fixed.insert(
            "label".into(),
            Value::I64(ndarray::arr0(r.target).into_dyn()),
        );
        s.fixed
            .insert("fold".into(), Value::I64(ndarray::arr0(r.fold).into_dyn()));
        if let Some(f) = features {
            s.fixed.insert("log_mel".into(), f);
        }
        folds.entry(r.fold).or_default().push(w.len() as u64);
        w.push(&s)?;
        progress(k + 1, rows.len());
    }
    let mut splits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for f in 1..=5 {
        splits.insert(
            format!("fold{f}"),
            folds.get(&f).cloned().unwrap_or_default(),
        );
    }
    splits.insert(
        "train".into(),
        (1..=4)
            .flat_map(|f| folds.get(&f).cloned().unwrap_or_default())
            .collect(),
    );
    splits.insert("test".into(), folds.get(&5).cloned().unwrap_or_default());
    report.written = w.len();
    report.out = w.finish(&splits)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reader;

    /// A tiny ESC-50 tree: 6 clips over 3 classes and 3 folds, 0.2 s at 44.1 kHz.
    fn tree(dir: &Path, extra_csv: &str) {
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        std::fs::create_dir_all(dir.join("audio")).unwrap();
        let mut csv = String::from("filename,fold,target,category,esc10,src_file,take\n");
        for i in 0..6 {
            let (fold, target) = (i % 3 + 3, i % 3 * 10);
            let name = format!("{fold}-{i}-A-{target}.wav");
            csv.push_str(&format!(
                "{name},{fold},{target},class{target},False,{i},A\n"
            ));
            let y: Vec<f32> = (0..8820)
                .map(|t| 0.5 * (t as f32 * 0.02 * (target + 1) as f32).sin())
                .collect();
            mm_signal::write_wav(
                &dir.join("audio").join(name),
                &mm_signal::Audio {
                    samples: ndarray::Array2::from_shape_vec((1, y.len()), y).unwrap(),
                    sample_rate: 44100,
                },
                mm_signal::WavEncoding::Pcm16,
            )
            .unwrap();
        }
        csv.push_str(extra_csv);
        std::fs::write(dir.join("meta/esc50.csv"), csv).unwrap();
    }

    fn cfg(skip_bad: bool) -> Esc50Config {
        Esc50Config {
            sample_rate: 16000,
            seconds: 0.25,
            log_mel: None,
            skip_bad,
        }
    }

    #[test]
    fn optional_log_mel_features_match_mm_signal_on_the_stored_audio() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d, "");
        let out = d.join("esc50.h5");
        let c = Esc50Config {
            log_mel: Some(32),
            ..cfg(false)
        };
        convert(d, &out, &c, &mut |_, _| {}).unwrap();
        let s = Reader::open(&out).unwrap().get(2).unwrap();
        let (Value::F32(audio), Value::F32(lm)) = (&s.fixed["audio"], &s.fixed["log_mel"]) else {
            panic!("fields");
        };
        // 4000 samples, hop 160: 26 frames
        assert_eq!(lm.shape(), &[32, 26]);
        let want = super::super::LogMel::new(16000, 32, 4000)
            .unwrap()
            .compute(audio.as_slice().unwrap())
            .unwrap();
        assert_eq!(Value::F32(lm.clone()), want);
    }

    #[test]
    fn converts_with_labels_folds_and_splits() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d, "");
        let out = d.join("esc50.h5");
        let rep = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 6);
        assert!(rep.skipped.is_empty());
        let r = Reader::open(&out).unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r.split("fold5").unwrap(), vec![2, 5]);
        assert_eq!(r.split("test").unwrap(), vec![2, 5]);
        assert_eq!(r.split("train").unwrap().len(), 4);
        let s = r.get(1).unwrap();
        assert_eq!(s.fixed["label"], Value::I64(ndarray::arr0(10).into_dyn()));
        assert_eq!(s.fixed["fold"], Value::I64(ndarray::arr0(4).into_dyn()));
        if let Value::F32(a) = &s.fixed["audio"] {
            // 0.2 s resampled to 16 kHz, zero-padded to 0.25 s
            assert_eq!(a.len(), 4000);
            assert!(a.iter().take(3000).any(|v| v.abs() > 0.3));
            assert!(a.iter().skip(3300).all(|v| v.abs() < 1e-3));
        } else {
            panic!("audio");
        }
        assert_eq!(r.meta().params["classes"][10], "class10");
    }

    #[test]
    fn bad_entries_stop_or_are_skipped_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d, "missing.wav,1,3,class3,False,9,A\n");
        std::fs::write(d.join("audio/3-0-A-0.wav"), b"RIFF garbage").unwrap();
        let out = d.join("esc50.h5");
        let e = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(&e, Error::BadEntry { path, .. } if path.ends_with("3-0-A-0.wav")),
            "{e}"
        );
        assert!(!out.exists() && !out.with_extension("h5.tmp").exists());
        let rep = convert(d, &out, &cfg(true), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 5);
        assert_eq!(rep.skipped.len(), 2);
        // the reason keeps its cause (the OS error), not only "i/o on ..."
        assert!(
            rep.skipped
                .iter()
                .any(|(p, why)| p.ends_with("missing.wav") && why.contains("No such file")),
            "{:?}",
            rep.skipped
        );
        assert_eq!(Reader::open(&out).unwrap().len(), 5);
        // a malformed CSV names its line
        std::fs::write(
            d.join("meta/esc50.csv"),
            "filename,fold,target,category\nx.wav,9,1,c\n",
        )
        .unwrap();
        let e = convert(d, &out, &cfg(true), &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
