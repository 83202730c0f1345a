//! Flickr8k: 8,091 images with five captions each.
//!
//! Reads the images from the first of `Flicker8k_Dataset/`, `Flickr8k_Dataset/`, `Images/`,
//! `images/` under the raw directory, and the captions and splits from Karpathy's
//! `dataset_flickr8k.json` when present (its tokens and train/val/test split), else from
//! `Flickr8k.token.txt` (`image.jpg#k<TAB>caption`, tokenized with mm-text) and the official
//! `Flickr_8k.{trainImages,devImages,testImages}.txt`. Images are resized (shorter side to
//! `image_size`, centre crop); the vocabulary is built on the training split only and stored in
//! `/meta` `params.vocabulary`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mm_text::{Tokenizer, Vocab, VocabConfig};
use ndarray::{Array, IxDyn};
use serde::{Deserialize, Serialize};

use super::Report;
use crate::error::{Error, Result};
use crate::store::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};

/// Conversion settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flickr8kConfig {
    /// Output images are `image_size x image_size` RGB.
    pub image_size: u32,
    /// Words seen fewer times in the training captions map to `<unk>`.
    pub min_count: u64,
    /// Skip (and report) bad entries instead of stopping.
    pub skip_bad: bool,
}

impl Default for Flickr8kConfig {
    fn default() -> Self {
        Self {
            image_size: 224,
            min_count: 5,
            skip_bad: false,
        }
    }
}

/// One image's entry: file, split, tokenized captions.
#[derive(Debug, Clone)]
struct Entry {
    file: String,
    split: String,
    captions: Vec<Vec<String>>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadEntry {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn from_karpathy(path: &Path) -> Result<Vec<Entry>> {
    #[derive(Deserialize)]
    struct Sentence {
        tokens: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Image {
        #[serde(default)]
        filepath: Option<String>,
        filename: String,
        split: String,
        sentences: Vec<Sentence>,
    }
    #[derive(Deserialize)]
    struct Root {
        images: Vec<Image>,
    }
    let root: Root = serde_json::from_str(&read(path)?).map_err(|e| bad(path, e.to_string()))?;
    Ok(root
        .images
        .into_iter()
        .map(|i| Entry {
            file: match i.filepath {
                Some(dir) => format!("{dir}/{}", i.filename),
                None => i.filename,
            },
            split: match i.split.as_str() {
                "restval" => "train".into(),
                s => s.into(),
            },
            captions: i.sentences.into_iter().map(|s| s.tokens).collect(),
        })
        .collect())
}

fn from_token_file(raw: &Path) -> Result<Vec<Entry>> {
    let tok_path = raw.join("Flickr8k.token.txt");
    let tok = Tokenizer::default();
    let mut caps: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (i, line) in read(&tok_path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (id, text) = line
            .split_once('\t')
            .ok_or_else(|| bad(&tok_path, format!("line {}: no tab", i + 1)))?;
        let file = id.split('#').next().unwrap_or(id).to_owned();
        caps.entry(file).or_default().push(tok.words(text));
    }
    let mut split_of = BTreeMap::new();
    for (split, name) in [
        ("train", "Flickr_8k.trainImages.txt"),
        ("val", "Flickr_8k.devImages.txt"),
        ("test", "Flickr_8k.testImages.txt"),
    ] {
        let p = raw.join(name);
        for f in read(&p)?.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if split_of.insert(f.to_owned(), split).is_some() {
                return Err(bad(&p, format!("{f} is in two splits")));
            }
        }
    }
    Ok(split_of
        .into_iter()
        .map(|(file, split)| Entry {
            captions: caps.get(&file).cloned().unwrap_or_default(),
            file,
            split: split.into(),
        })
        .collect())
}

fn images_dir(raw: &Path) -> Result<PathBuf> {
    ["Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images"]
        .iter()
        .map(|d| raw.join(d))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            bad(
                raw,
                "no image folder (Flicker8k_Dataset/, Flickr8k_Dataset/, Images/ or images/)",
            )
        })
}

/// Decodes, resizes (shorter side to `size`) and centre-crops an image: `mm-image`'s pipeline,
/// the one inference uses, so a stored image and the same file at inference are the same pixels.
pub(crate) fn load_image(path: &Path, size: u32) -> std::result::Result<Vec<u8>, String> {
    mm_image::load_square(path, size)
        .map(image::RgbImage::into_raw)
        .map_err(|e| super::chain(&e))
}

/// Converts the Flickr8k tree at `raw` into `out`.
pub fn convert(
    raw: &Path,
    out: &Path,
    cfg: &Flickr8kConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    convert_captions(raw, out, cfg, CaptionSet::Flickr8k, progress)
}

/// Converts COCO captions with Karpathy's split: `dataset_coco.json` under `raw`, images at
/// `raw/<filepath>/<filename>` (`train2014/`, `val2014/`).
pub fn convert_coco(
    raw: &Path,
    out: &Path,
    cfg: &Flickr8kConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    convert_captions(raw, out, cfg, CaptionSet::Coco, progress)
}

/// Which caption data set a tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptionSet {
    Flickr8k,
    Coco,
}

fn convert_captions(
    raw: &Path,
    out: &Path,
    cfg: &Flickr8kConfig,
    set: CaptionSet,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    if !(16..=1024).contains(&cfg.image_size) {
        return Err(Error::InvalidParameter {
            name: "image_size",
            reason: "must be in 16..=1024".into(),
        });
    }
    let karpathy = raw.join(match set {
        CaptionSet::Flickr8k => "dataset_flickr8k.json",
        CaptionSet::Coco => "dataset_coco.json",
    });
    let entries = if karpathy.is_file() {
        from_karpathy(&karpathy)?
    } else if set == CaptionSet::Flickr8k {
        from_token_file(raw)?
    } else {
        return Err(Error::Io {
            path: karpathy,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "Karpathy's split file is needed",
            ),
        });
    };
    let mut seen = BTreeSet::new();
    for e in &entries {
        if !seen.insert(&e.file) {
            return Err(bad(raw, format!("duplicate image id {}", e.file)));
        }
    }
    let dir = match set {
        CaptionSet::Flickr8k => images_dir(raw)?,
        CaptionSet::Coco => raw.to_owned(),
    };
    let vocab = Vocab::build(
        entries
            .iter()
            .filter(|e| e.split == "train")
            .flat_map(|e| e.captions.iter()),
        &VocabConfig {
            min_count: cfg.min_count,
            ..Default::default()
        },
    )
    .map_err(|e| Error::InvalidParameter {
        name: "vocabulary",
        reason: e.to_string(),
    })?;
    let s = cfg.image_size as usize;
    let schema = Schema {
        fixed: vec![FieldSpec {
            name: "image".into(),
            dtype: Dtype::U8,
            shape: vec![s, s, 3],
            compress: true,
        }],
        ragged: vec!["captions".into()],
    };
    let words: Vec<&str> = (0..vocab.len())
        .filter_map(|i| vocab.word(i).ok())
        .collect();
    let meta = Meta {
        source: match set {
            CaptionSet::Flickr8k => "flickr8k",
            CaptionSet::Coco => "coco-karpathy",
        }
        .into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({
            "config": cfg,
            "vocabulary": words,
            "decode": {"captions": "vocabulary"},
            "captions_from": if karpathy.is_file() {
                karpathy.file_name().map(|f| f.to_string_lossy().into_owned())
            } else {
                Some("Flickr8k.token.txt".to_owned())
            },
        }),
    };
    let mut w = Writer::create(out, &schema, &meta)?;
    let mut report = Report::default();
    let mut splits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let fail = |report: &mut Report, path: PathBuf, why: String| -> Result<()> {
        if cfg.skip_bad {
            report.skipped.push((path, why));
            Ok(())
        } else {
            Err(bad(&path, why))
        }
    };
    for (k, e) in entries.iter().enumerate() {
        progress(k + 1, entries.len());
        let path = dir.join(&e.file);
        if e.captions.is_empty() {
            fail(&mut report, path, "no captions".into())?;
            continue;
        }
        let pixels = match load_image(&path, cfg.image_size) {
            Ok(p) => p,
            Err(why) => {
                fail(&mut report, path, why)?;
                continue;
            }
        };
        let mut sample = Sample::default();
        sample.fixed.insert(
            "image".into(),
            Value::U8(
                Array::from_shape_vec(IxDyn(&[s, s, 3]), pixels)
                    .map_err(|e| bad(&path, e.to_string()))?,
            ),
        );
        let ids: Vec<Vec<i32>> = e
            .captions
            .iter()
            .map(|c| vocab.encode(c).into_iter().map(|i| i as i32).collect())
            .collect();
        sample.ragged.insert("captions".into(), ids);
        splits
            .entry(e.split.clone())
            .or_default()
            .push(w.len() as u64);
        w.push(&sample)?;
    }
    report.written = w.len();
    report.out = w.finish(&splits)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reader;

    fn jpg(path: &Path, w: u32, h: u32, shade: u8) {
        let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([shade, (x % 256) as u8, 90]));
        img.save(path).unwrap();
    }

    /// The official layout: images, token file, split lists.
    fn tree(d: &Path) {
        std::fs::create_dir_all(d.join("Flicker8k_Dataset")).unwrap();
        let mut tokens = String::new();
        for (i, name) in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"].iter().enumerate() {
            jpg(
                &d.join("Flicker8k_Dataset").join(name),
                40 + 10 * i as u32,
                30,
                50 * i as u8,
            );
            for k in 0..5 {
                tokens.push_str(&format!("{name}#{k}\tA dog runs on the grass {k} .\n"));
            }
        }
        std::fs::write(d.join("Flickr8k.token.txt"), tokens).unwrap();
        std::fs::write(d.join("Flickr_8k.trainImages.txt"), "a.jpg\nb.jpg\n").unwrap();
        std::fs::write(d.join("Flickr_8k.devImages.txt"), "c.jpg\n").unwrap();
        std::fs::write(d.join("Flickr_8k.testImages.txt"), "d.jpg\n").unwrap();
    }

    fn cfg(skip_bad: bool) -> Flickr8kConfig {
        Flickr8kConfig {
            image_size: 24,
            min_count: 2,
            skip_bad,
        }
    }

    #[test]
    fn converts_the_official_layout_with_a_training_vocabulary() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d);
        let out = d.join("f8k.h5");
        let rep = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 4);
        let r = Reader::open(&out).unwrap();
        assert_eq!(r.split("train").unwrap().len(), 2);
        assert_eq!(r.split("val").unwrap().len(), 1);
        let s = r.get(0).unwrap();
        assert_eq!(s.ragged["captions"].len(), 5);
        if let Value::U8(img) = &s.fixed["image"] {
            assert_eq!(img.shape(), &[24, 24, 3]);
        } else {
            panic!("image");
        }
        // "dog" is in the training captions 10 times; the digits 0-4 only twice each
        let vocab: Vec<String> =
            serde_json::from_value(r.meta().params["vocabulary"].clone()).unwrap();
        assert!(vocab.contains(&"dog".to_owned()) && vocab.contains(&"grass".to_owned()));
        let dog = vocab.iter().position(|w| w == "dog").unwrap() as i32;
        assert_eq!(s.ragged["captions"][0][1], dog);
    }

    #[test]
    fn karpathy_json_wins_and_bad_entries_stop_or_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d);
        let json = serde_json::json!({"images": [
            {"filename": "a.jpg", "split": "train", "sentences": [{"tokens": ["a", "dog"]}]},
            {"filename": "b.jpg", "split": "restval", "sentences": [{"tokens": ["a", "cat"]}]},
            {"filename": "missing.jpg", "split": "test", "sentences": [{"tokens": ["x"]}]},
        ]});
        std::fs::write(d.join("dataset_flickr8k.json"), json.to_string()).unwrap();
        let out = d.join("f8k.h5");
        let e = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(&e, Error::BadEntry { path, .. } if path.ends_with("missing.jpg")),
            "{e}"
        );
        assert!(!out.exists());
        let rep = convert(d, &out, &cfg(true), &mut |_, _| {}).unwrap();
        assert_eq!((rep.written, rep.skipped.len()), (2, 1));
        let r = Reader::open(&out).unwrap();
        assert_eq!(r.split("train").unwrap(), vec![0, 1]);
        assert!(r.split("test").is_err());
        // duplicate ids are an error even with skip_bad
        let dup = serde_json::json!({"images": [
            {"filename": "a.jpg", "split": "train", "sentences": []},
            {"filename": "a.jpg", "split": "test", "sentences": []},
        ]});
        std::fs::write(d.join("dataset_flickr8k.json"), dup.to_string()).unwrap();
        assert!(
            convert(d, &out, &cfg(true), &mut |_, _| {})
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
    }

    #[test]
    fn coco_karpathy_reads_images_under_their_filepath() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("val2014")).unwrap();
        std::fs::create_dir_all(d.join("train2014")).unwrap();
        jpg(
            &d.join("train2014/COCO_train2014_000000000009.jpg"),
            64,
            48,
            10,
        );
        jpg(
            &d.join("val2014/COCO_val2014_000000000042.jpg"),
            48,
            64,
            200,
        );
        let json = serde_json::json!({"images": [
            {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "split": "train",
             "sentences": [{"tokens": ["a", "plate", "of", "food"]}, {"tokens": ["food", "on", "a", "plate"]}]},
            {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "split": "test",
             "sentences": [{"tokens": ["a", "plate"]}]},
        ]});
        std::fs::write(d.join("dataset_coco.json"), json.to_string()).unwrap();
        let out = d.join("coco.h5");
        let rep = convert_coco(d, &out, &cfg(false), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 2);
        let r = Reader::open(&out).unwrap();
        assert_eq!(r.meta().source, "coco-karpathy");
        assert_eq!(r.split("test").unwrap(), vec![1]);
        assert_eq!(r.get(0).unwrap().ragged["captions"].len(), 2);
        std::fs::remove_file(d.join("dataset_coco.json")).unwrap();
        assert!(matches!(
            convert_coco(d, &out, &cfg(false), &mut |_, _| {}),
            Err(Error::Io { .. })
        ));
    }
}
