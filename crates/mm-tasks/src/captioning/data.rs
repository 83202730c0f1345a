//! The captioning splits, read from an mm HDF5 data set: each image's captions as token ids in
//! memory, the images themselves (or their cached encoder features) read batch by batch.

use std::collections::BTreeMap;

use mm_data::Reader;
use mm_train::{Error, Result};

use super::CaptioningConfig;
use crate::stream::FieldStream;

/// One split: the images (`uint8 [H, W, 3]` each, read on demand), their cached feature maps
/// (`task.image_features`, `[D, h, w]` each) when configured, and each image's captions (token
/// ids, without `<start>` and `<end>`).
#[derive(Debug)]
pub(super) struct Split {
    pub(super) images: FieldStream,
    pub(super) features: Option<FieldStream>,
    pub(super) captions: Vec<Vec<Vec<i64>>>,
}

/// The vocabulary (`<start>` and `<end>` added when the data set lacks them), their ids, and
/// the `train`, `val` and `test` splits.
pub(super) struct Loaded {
    pub(super) words: Vec<String>,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) splits: BTreeMap<String, Split>,
}

/// Checks that `cfg.image_features` was computed from this data set by the configured encoder:
/// the same sample count and splits, the backbone and stage, `channels` channels.
fn check_features(
    cfg: &CaptioningConfig,
    data: &Reader,
    arch: &str,
    stage: &str,
    channels: i64,
) -> Result<()> {
    let Some(path) = &cfg.image_features else {
        return Ok(());
    };
    let f = Reader::open(path).map_err(Error::task)?;
    let bad_file = |reason: String| Error::InvalidParameter {
        name: "image_features",
        reason: format!("{}: {reason}", path.display()),
    };
    if f.len() != data.len() {
        return Err(bad_file(format!(
            "{} samples, the data set {} has {}: features of another data set?",
            f.len(),
            cfg.data.display(),
            data.len()
        )));
    }
    for s in data.split_names().map_err(Error::task)? {
        let want = data.split(&s).map_err(Error::task)?;
        let got = f.split(&s).ok();
        if got.as_ref() != Some(&want) {
            return Err(bad_file(format!(
                "its split `{s}` differs from the data set's ({} vs {} samples)",
                got.map_or(0, |g| g.len()),
                want.len()
            )));
        }
    }
    let params = &f.meta().params;
    let (b, l) = (params["backbone"].as_str(), params["layer"].as_str());
    if b != Some(arch) || l != Some(stage) {
        return Err(bad_file(format!(
            "features of {} {}, the task's encoder is {arch} {stage}",
            b.unwrap_or("?"),
            l.unwrap_or("?")
        )));
    }
    let shape = f
        .schema()
        .fixed
        .iter()
        .find(|x| x.name == "features")
        .map(|x| x.shape.clone())
        .unwrap_or_default();
    if shape.len() != 3 || shape[0] as i64 != channels {
        return Err(bad_file(format!(
            "feature maps of shape {shape:?}; the decoder attends over [{channels}, h, w]"
        )));
    }
    Ok(())
}

/// Reads `cfg.data`'s captions: every split must have images, each with at least one caption.
/// `encoder` is the backbone's name, stage and channels, to check cached features against.
pub(super) fn load(cfg: &CaptioningConfig, encoder: (&str, &str, i64)) -> Result<Loaded> {
    let r = Reader::open(&cfg.data).map_err(Error::task)?;
    check_features(cfg, &r, encoder.0, encoder.1, encoder.2)?;
    let params = &r.meta().params;
    let mut words = crate::common::word_list(params, "captions", "vocabulary")?;
    let mut id = |w: &str| match words.iter().position(|x| x == w) {
        Some(i) => i as i64,
        None => {
            words.push(w.to_string());
            words.len() as i64 - 1
        }
    };
    let (start, end) = (id("<start>"), id("<end>"));
    let mut splits = BTreeMap::new();
    for s in ["train", "val", "test"] {
        let idx = crate::common::split_rows(&r, s)?;
        let b = r
            .read_batch_fields(&idx, &["captions"])
            .map_err(Error::task)?;
        let captions = crate::common::token_lists(&b, "captions", &[start, end], s)?;
        let images = FieldStream::open(&cfg.data, "image", idx.clone())?;
        let features = match &cfg.image_features {
            Some(f) => Some(FieldStream::open(f, "features", idx)?),
            None => None,
        };
        splits.insert(
            s.to_string(),
            Split {
                images,
                features,
                captions,
            },
        );
    }
    Ok(Loaded {
        words,
        start,
        end,
        splits,
    })
}
