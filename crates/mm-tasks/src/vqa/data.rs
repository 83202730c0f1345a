//! The VQA splits, read from an mm HDF5 data set: images and their questions with every human
//! answer; without a test split (VQA v2), a seeded part of train held out for validation.

use std::collections::BTreeMap;

use mm_data::Reader;
use mm_train::{Error, Result};

use super::{VqaConfig, bad};
use crate::common::word_list;
use crate::stream::FieldStream;

/// One question.
#[derive(Debug, Clone)]
pub(super) struct Question {
    pub(super) image: usize,
    pub(super) tokens: Vec<i64>,
    pub(super) answers: Vec<String>,
    pub(super) qtype: String,
}

/// One split: its images (read from the data set batch by batch) and, in memory, their
/// questions (`Question::image` is a position in `images`).
#[derive(Debug)]
pub(super) struct Split {
    pub(super) images: FieldStream,
    pub(super) questions: Vec<Question>,
}

/// The seed of [`holdout`]: fixed, so that every run of a data set holds out the same images.
const HOLDOUT_SEED: u64 = 0x5EED_F00D;

/// Splits `train` (sample indices, one image each) into the images kept for training and a
/// seeded `fraction` held out for validation, each sorted.
fn holdout(train: &[usize], fraction: f64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::InvalidParameter {
            name: "val_holdout",
            reason: format!("must lie strictly between 0 and 1, got {fraction}"),
        });
    }
    if train.len() < 2 {
        return Err(bad(
            "no test split, and too few training images to hold some out",
        ));
    }
    let ids: Vec<u64> = train.iter().map(|&i| i as u64).collect();
    let order = mm_data::store::epoch_order(&ids, true, HOLDOUT_SEED, 0);
    let n = ((train.len() as f64 * fraction).round() as usize).clamp(1, train.len() - 1);
    let (mut held, mut kept) = (order[..n].to_vec(), order[n..].to_vec());
    held.sort_unstable();
    kept.sort_unstable();
    Ok((kept, held))
}

/// The sample indices of split `name`.
fn split_indices(r: &Reader, name: &str) -> Result<Vec<usize>> {
    Ok(r.split(name)
        .map_err(Error::task)?
        .into_iter()
        .map(|i| i as usize)
        .collect())
}

/// The samples `idx` (split `name`, for messages).
fn load_split(r: &Reader, name: &str, idx: &[usize]) -> Result<Split> {
    let params = &r.meta().params;
    let answers = word_list(params, "answers", "vocabulary")?;
    let qtypes = word_list(params, "question_types", "question_types")?;
    if idx.is_empty() {
        return Err(bad(format!("split `{name}` is empty")));
    }
    let fields = ["questions", "answers", "question_types"];
    let b = r.read_batch_fields(idx, &fields).map_err(Error::task)?;
    let images = FieldStream::open(r.path(), "image", idx.to_vec())?;
    let field = |f: &str| {
        b.ragged
            .get(f)
            .ok_or_else(|| bad(format!("no ragged field `{f}`")))
    };
    let (qs, ans, types) = (
        field("questions")?,
        field("answers")?,
        field("question_types")?,
    );
    let mut questions = Vec::new();
    for (i, ((q, a), t)) in qs.iter().zip(ans).zip(types).enumerate() {
        if q.len() != a.len() || q.len() != t.len() {
            return Err(bad(format!(
                "sample {}: questions, answers and types differ in number",
                idx[i]
            )));
        }
        for ((q, a), t) in q.iter().zip(a).zip(t) {
            let decode =
                |id: i32, list: &[String]| list.get(id as usize).cloned().unwrap_or_default();
            questions.push(Question {
                image: i,
                tokens: q.iter().map(|&w| w as i64).collect(),
                answers: a.iter().map(|&x| decode(x, &answers)).collect(),
                qtype: t.first().map(|&x| decode(x, &qtypes)).unwrap_or_default(),
            });
        }
    }
    if questions
        .iter()
        .any(|q| q.tokens.is_empty() || q.answers.is_empty())
    {
        return Err(bad(format!(
            "split `{name}` has a question without words or answers"
        )));
    }
    Ok(Split { images, questions })
}

/// The question vocabulary and the `train`, `val` and `test` splits of `cfg.data`. A data set
/// without a test split (VQA v2) reports on its `val` as `test` and holds out
/// `cfg.val_holdout` of the training images as `val`, to select the checkpoint.
pub(super) fn load(cfg: &VqaConfig) -> Result<(Vec<String>, BTreeMap<String, Split>)> {
    let r = Reader::open(&cfg.data).map_err(Error::task)?;
    let words = word_list(&r.meta().params, "questions", "vocabulary")?;
    let names = r.split_names().map_err(Error::task)?;
    // a split that is absent or empty (SynthAV with `test_fraction = 0`) is not there
    let has =
        |s: &str| names.iter().any(|n| n == s) && split_indices(&r, s).is_ok_and(|i| !i.is_empty());
    if !has("train") {
        return Err(bad("no train split"));
    }
    if !has("val") {
        return Err(bad("no val split"));
    }
    let mut splits = BTreeMap::new();
    if has("test") {
        for s in ["train", "val", "test"] {
            splits.insert(s.to_string(), load_split(&r, s, &split_indices(&r, s)?)?);
        }
    } else {
        // VQA v2: its test answers are not public, so `val` is the split papers report.
        // Selecting the checkpoint on it as well would report a score chosen on the
        // reported split: hold out a seeded part of train for that instead.
        let (kept, held) = holdout(&split_indices(&r, "train")?, cfg.val_holdout)?;
        tracing::info!(
            train = kept.len(),
            held_out = held.len(),
            "no test split: `val` is reported as `test`; held-out training images select \
             the checkpoint"
        );
        splits.insert("train".to_string(), load_split(&r, "train", &kept)?);
        splits.insert(
            "val".to_string(),
            load_split(&r, "train (held out)", &held)?,
        );
        let test = load_split(&r, "val", &split_indices(&r, "val")?)?;
        splits.insert("test".to_string(), test);
    }
    Ok((words, splits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_seeded_disjoint_and_refuses_what_cannot_be_split() {
        let train: Vec<usize> = (100..140).collect();
        let (kept, held) = holdout(&train, 0.1).unwrap();
        assert_eq!((kept.len(), held.len()), (36, 4));
        assert!(held.iter().all(|h| !kept.contains(h)));
        let mut all = [kept.clone(), held.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, train);
        assert!(kept.is_sorted() && held.is_sorted());
        assert_eq!(holdout(&train, 0.1).unwrap(), (kept, held));
        // at least one image each way
        let (k, h) = holdout(&[1, 2], 0.01).unwrap();
        assert_eq!((k.len(), h.len()), (1, 1));
        assert_ne!(k, h);
        assert_eq!(holdout(&[1, 2], 0.99).unwrap().0.len(), 1);
        for bad in [0.0, 1.0, f64::NAN, -0.1] {
            assert!(holdout(&train, bad).is_err(), "{bad}");
        }
        assert!(holdout(&[5], 0.5).is_err());
    }
}
