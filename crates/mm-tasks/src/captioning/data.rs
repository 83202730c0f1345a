//! The captioning splits, read from an mm HDF5 data set: images and their captions as token ids.

use std::collections::BTreeMap;

use mm_data::Reader;
use mm_train::{Error, Result};
use tch::{Device, Tensor};

use super::{CaptioningConfig, bad};

/// One split: images `uint8 [N, H, W, 3]` and each image's captions (token ids, without
/// `<start>` and `<end>`).
#[derive(Debug)]
pub(super) struct Split {
    pub(super) images: Tensor,
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

/// Reads `cfg.data`: every split must have images, each with at least one caption.
pub(super) fn load(cfg: &CaptioningConfig) -> Result<Loaded> {
    let r = Reader::open(&cfg.data).map_err(Error::task)?;
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
        let idx: Vec<usize> = r
            .split(s)
            .map_err(Error::task)?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        if idx.is_empty() {
            return Err(bad(format!("split `{s}` is empty")));
        }
        let b = r
            .read_batch_fields(&idx, &["image", "captions"])
            .map_err(Error::task)?;
        let images = b.tensor("image", Device::Cpu).map_err(Error::task)?;
        let captions: Vec<Vec<Vec<i64>>> = b
            .ragged
            .get("captions")
            .ok_or_else(|| bad("no ragged field `captions`"))?
            .iter()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        c.iter()
                            .map(|&t| t as i64)
                            .filter(|&t| t != start && t != end)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        if captions
            .iter()
            .any(|c: &Vec<Vec<i64>>| c.is_empty() || c.iter().any(Vec::is_empty))
        {
            return Err(bad(format!("split `{s}` has an image without captions")));
        }
        splits.insert(s.to_string(), Split { images, captions });
    }
    Ok(Loaded {
        words,
        start,
        end,
        splits,
    })
}
