//! VQA v2: COCO images, `v2_OpenEnded_mscoco_{train,val}2014_questions.json` and
//! `v2_mscoco_{train,val}2014_annotations.json`, one sample per image.
//!
//! Per image: `image`, and per question (ragged, in the same order) its token ids
//! (`questions`), the ten human answers (`answers`, ids into `params.answers`), and
//! `question_types` / `answer_types` (ids into `params.question_types` / `params.answer_types`).
//! Answers are stored lower-cased and trimmed, not otherwise normalised, so that the official
//! accuracy (which normalises) can be computed from them; `params.answers` is sorted by how often
//! each answer is the `multiple_choice_answer` in train, so a top-K classifier uses ids `< K`.
//! Splits: `train` (train2014) and `val` (val2014), for the splits present.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mm_text::{Tokenizer, Vocab, VocabConfig};
use ndarray::{Array, IxDyn};
use serde::Deserialize;

use super::Report;
use super::flickr8k::{Flickr8kConfig, load_image};
use crate::error::{Error, Result};
use crate::store::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};

#[derive(Deserialize)]
struct Questions {
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    image_id: u64,
    question: String,
    question_id: u64,
}

#[derive(Deserialize)]
struct Annotations {
    annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
struct Annotation {
    question_id: u64,
    answers: Vec<Answer>,
    multiple_choice_answer: String,
    answer_type: String,
    question_type: String,
}

#[derive(Deserialize)]
struct Answer {
    answer: String,
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::BadEntry {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

struct Split {
    name: &'static str,
    questions: Vec<Question>,
    annotations: HashMap<u64, Annotation>,
}

/// Converts the VQA v2 tree at `raw` into `out` (image size, skip_bad as for captions;
/// `min_count` applies to question words).
pub fn convert(
    raw: &Path,
    out: &Path,
    cfg: &Flickr8kConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    let mut splits = Vec::new();
    for name in ["train", "val"] {
        let q = raw.join(format!("v2_OpenEnded_mscoco_{name}2014_questions.json"));
        if !q.is_file() {
            continue;
        }
        let a = raw.join(format!("v2_mscoco_{name}2014_annotations.json"));
        let questions: Questions = load(&q)?;
        let annotations: Annotations = load(&a)?;
        let annotations = annotations
            .annotations
            .into_iter()
            .map(|x| (x.question_id, x))
            .collect();
        splits.push(Split {
            name,
            questions: questions.questions,
            annotations,
        });
    }
    if splits.is_empty() {
        return Err(Error::BadEntry {
            path: raw.to_owned(),
            reason: "no v2_OpenEnded_mscoco_{train,val}2014_questions.json".into(),
        });
    }
    let tok = Tokenizer::default();
    let train_questions = splits
        .iter()
        .filter(|s| s.name == "train")
        .flat_map(|s| s.questions.iter().map(|q| tok.words(&q.question)));
    let qvocab = Vocab::build(
        train_questions,
        &VocabConfig {
            min_count: cfg.min_count,
            ..Default::default()
        },
    )
    .map_err(|e| Error::InvalidParameter {
        name: "vocabulary",
        reason: e.to_string(),
    })?;
    // answer table: by frequency as the train multiple-choice answer, then every other answer
    let clean = |s: &str| s.trim().to_lowercase();
    let mut freq: HashMap<String, usize> = HashMap::new();
    for s in &splits {
        for a in s.annotations.values() {
            let n = usize::from(s.name == "train");
            *freq.entry(clean(&a.multiple_choice_answer)).or_default() += n;
            for h in &a.answers {
                freq.entry(clean(&h.answer)).or_default();
            }
        }
    }
    let mut answers: Vec<(String, usize)> = freq.into_iter().collect();
    answers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let answer_id: HashMap<&str, i32> = answers
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (a.as_str(), i as i32))
        .collect();
    let mut qtypes: Vec<String> = Vec::new();
    let mut atypes: Vec<String> = Vec::new();
    let id_of = |table: &mut Vec<String>, v: &str| -> i32 {
        match table.iter().position(|x| x == v) {
            Some(i) => i as i32,
            None => {
                table.push(v.to_owned());
                table.len() as i32 - 1
            }
        }
    };
    let s = cfg.image_size as usize;
    let schema = Schema {
        fixed: vec![FieldSpec {
            name: "image".into(),
            dtype: Dtype::U8,
            shape: vec![s, s, 3],
            compress: true,
        }],
        ragged: vec![
            "questions".into(),
            "answers".into(),
            "question_types".into(),
            "answer_types".into(),
            "question_ids".into(),
        ],
    };
    // group questions by image, per split, in a stable order
    let mut work: Vec<(&'static str, u64, Vec<&Question>)> = Vec::new();
    for sp in &splits {
        let mut by_image: BTreeMap<u64, Vec<&Question>> = BTreeMap::new();
        for q in &sp.questions {
            by_image.entry(q.image_id).or_default().push(q);
        }
        work.extend(by_image.into_iter().map(|(img, qs)| (sp.name, img, qs)));
    }
    let mut samples: Vec<(Sample, &'static str)> = Vec::new();
    let mut report = Report::default();
    for (k, (split, image_id, qs)) in work.iter().enumerate() {
        progress(k + 1, work.len());
        let path = raw.join(format!("{split}2014/COCO_{split}2014_{image_id:012}.jpg"));
        let fail = |report: &mut Report, why: String| -> Result<()> {
            if cfg.skip_bad {
                report.skipped.push((path.clone(), why));
                Ok(())
            } else {
                Err(Error::BadEntry {
                    path: path.clone(),
                    reason: why,
                })
            }
        };
        let sp =
            splits
                .iter()
                .find(|x| x.name == *split)
                .ok_or_else(|| Error::InvalidParameter {
                    name: "split",
                    reason: (*split).into(),
                })?;
        // questions, answers, question types, answer types, question ids
        let mut rows: [Vec<Vec<i32>>; 5] = Default::default();
        let mut missing = None;
        for q in qs {
            let Some(a) = sp.annotations.get(&q.question_id) else {
                missing = Some(q.question_id);
                break;
            };
            rows[0].push(
                qvocab
                    .encode(tok.words(&q.question))
                    .into_iter()
                    .map(|i| i as i32)
                    .collect(),
            );
            rows[1].push(
                a.answers
                    .iter()
                    .map(|h| answer_id[clean(&h.answer).as_str()])
                    .collect(),
            );
            rows[2].push(vec![id_of(&mut qtypes, &a.question_type)]);
            rows[3].push(vec![id_of(&mut atypes, &a.answer_type)]);
            rows[4].push(vec![q.question_id as i32]);
        }
        if let Some(qid) = missing {
            fail(&mut report, format!("question {qid} has no annotation"))?;
            continue;
        }
        let pixels = match load_image(&path, cfg.image_size) {
            Ok(p) => p,
            Err(why) => {
                fail(&mut report, why)?;
                continue;
            }
        };
        let mut sample = Sample::default();
        sample.fixed.insert(
            "image".into(),
            Value::U8(
                Array::from_shape_vec(IxDyn(&[s, s, 3]), pixels).map_err(|e| Error::BadEntry {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            ),
        );
        for (name, v) in [
            "questions",
            "answers",
            "question_types",
            "answer_types",
            "question_ids",
        ]
        .into_iter()
        .zip(rows)
        {
            sample.ragged.insert(name.into(), v);
        }
        samples.push((sample, split));
    }
    let words: Vec<&str> = (0..qvocab.len())
        .filter_map(|i| qvocab.word(i).ok())
        .collect();
    let meta = Meta {
        source: "vqa-v2".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({
            "config": cfg,
            "vocabulary": words,
            "decode": {"questions": "vocabulary", "answers": "answers", "question_types": "question_types", "answer_types": "answer_types"},
            "answers": answers.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            "question_types": qtypes,
            "answer_types": atypes,
        }),
    };
    let mut w = Writer::create(out, &schema, &meta)?;
    let mut split_idx: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (sample, split) in &samples {
        split_idx
            .entry((*split).to_owned())
            .or_default()
            .push(w.len() as u64);
        w.push(sample)?;
    }
    report.written = w.len();
    report.out = w.finish(&split_idx)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reader;

    fn tree(d: &Path) {
        for (split, ids) in [("train", vec![1u64, 2]), ("val", vec![7u64])] {
            std::fs::create_dir_all(d.join(format!("{split}2014"))).unwrap();
            let mut qs = Vec::new();
            let mut anns = Vec::new();
            for &img in &ids {
                image::RgbImage::from_pixel(32, 24, image::Rgb([(img * 30) as u8, 0, 0]))
                    .save(d.join(format!("{split}2014/COCO_{split}2014_{img:012}.jpg")))
                    .unwrap();
                for k in 0..2u64 {
                    let qid = img * 10 + k;
                    qs.push(serde_json::json!({"image_id": img, "question": format!("What color is the cat {k}?"), "question_id": qid}));
                    let mc = if k == 0 { "red" } else { "2" };
                    let answers: Vec<_> = (0..10).map(|h| serde_json::json!({"answer": if h < 7 { mc } else { "Blue " }, "answer_confidence": "yes", "answer_id": h + 1})).collect();
                    anns.push(serde_json::json!({"question_id": qid, "image_id": img, "answers": answers,
                        "multiple_choice_answer": mc, "answer_type": if k == 0 { "other" } else { "number" },
                        "question_type": "what color is the"}));
                }
            }
            std::fs::write(
                d.join(format!("v2_OpenEnded_mscoco_{split}2014_questions.json")),
                serde_json::json!({"questions": qs}).to_string(),
            )
            .unwrap();
            std::fs::write(
                d.join(format!("v2_mscoco_{split}2014_annotations.json")),
                serde_json::json!({"annotations": anns}).to_string(),
            )
            .unwrap();
        }
    }

    fn cfg(skip_bad: bool) -> Flickr8kConfig {
        Flickr8kConfig {
            image_size: 16,
            min_count: 1,
            skip_bad,
        }
    }

    #[test]
    fn one_sample_per_image_with_ten_answers_per_question() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d);
        let out = d.join("vqa.h5");
        let rep = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap();
        assert_eq!(rep.written, 3);
        let r = Reader::open(&out).unwrap();
        assert_eq!(r.split("train").unwrap(), vec![0, 1]);
        assert_eq!(r.split("val").unwrap(), vec![2]);
        let p = &r.meta().params;
        let answers: Vec<String> = serde_json::from_value(p["answers"].clone()).unwrap();
        // "2" and "red" are each the train multiple-choice answer twice; "blue" never
        assert_eq!(answers, ["2", "red", "blue"]);
        let s = r.get(0).unwrap();
        assert_eq!(s.ragged["questions"].len(), 2);
        let a0: Vec<&str> = s.ragged["answers"][0]
            .iter()
            .map(|&i| answers[i as usize].as_str())
            .collect();
        assert_eq!(a0.len(), 10);
        assert_eq!(a0.iter().filter(|a| **a == "red").count(), 7);
        assert_eq!(a0.iter().filter(|a| **a == "blue").count(), 3);
        assert_eq!(s.ragged["question_ids"][1], vec![11]);
        assert_eq!(
            p["answer_types"][s.ragged["answer_types"][1][0] as usize],
            "number"
        );
    }

    #[test]
    fn missing_images_and_annotations_stop_or_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        tree(d);
        std::fs::remove_file(d.join("val2014/COCO_val2014_000000000007.jpg")).unwrap();
        let out = d.join("vqa.h5");
        let e = convert(d, &out, &cfg(false), &mut |_, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("COCO_val2014_000000000007.jpg"),
            "{e}"
        );
        assert!(!out.exists());
        let rep = convert(d, &out, &cfg(true), &mut |_, _| {}).unwrap();
        assert_eq!((rep.written, rep.skipped.len()), (2, 1));
        std::fs::write(
            d.join("v2_mscoco_train2014_annotations.json"),
            "{\"annotations\": [",
        )
        .unwrap();
        assert!(matches!(
            convert(d, &out, &cfg(true), &mut |_, _| {}),
            Err(Error::BadEntry { .. })
        ));
    }
}
