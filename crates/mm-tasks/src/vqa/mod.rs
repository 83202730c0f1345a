//! Visual question answering: an image stream and a question stream, fused, classified over
//! the top-K answers (the lecture's VQA baseline).
//!
//! - **Image stream**: a backbone's pooled vector, L2-normalised; or, with
//!   `question_attention`, soft attention over its last feature map queried by the question:
//!   one glimpse (queried by the last LSTM state) or several (each queried by its own attention
//!   over the question's words), optionally with each location's `(x, y)` appended
//!   (`coordinates`) and the whole map's mean vector passed beside the glimpses
//!   (`global_vector`). [`Vqa::forward`] returns the attention weights; `mm infer vqa` draws
//!   them.
//! - **Question stream**: word vectors (optionally skip-gram on the training questions, as in
//!   `retrieval`) into an LSTM; its last hidden state.
//! - **Fusion** (`mm-fusion`): `hadamard` (tanh projections multiplied pointwise, the VQA
//!   baseline's), `concat`, `sum` or `bilinear` (low-rank MLB); then dropout, a tanh hidden
//!   layer and a classifier over the `top_k` most frequent training answers.
//! - **Loss**: cross-entropy against the soft VQA target (`min(1, humans/3)` per answer,
//!   normalised), one-hot when there is one answer.
//! - `model = "question_only"` drops the image stream: the question-only baseline.
//!
//! Evaluation: the official VQA accuracy ([`accuracy`]) overall and per question type, and the
//! most-frequent-answer-per-question-type baseline (`prior_accuracy`) on the same split.

pub mod accuracy;
mod config;
mod data;
mod inference;
mod model;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use mm_fusion::{Fusion, FusionConfig};
use mm_train::{Error, Input, InputKind, Metrics, Result, StepContext, Task};
use mm_vision::{Backbone, backbone};
use tch::{Device, Kind, Tensor, nn};

use accuracy::{normalize_answer, vqa_accuracy};

pub use config::{VqaConfig, VqaModel, defaults};

use data::{Question, Split};
use model::Glimpses;

/// What [`Vqa::forward`] computes.
#[derive(Debug)]
pub struct VqaOutput {
    /// Class logits `[N, K]`, over [`Vqa::classes`].
    pub logits: Tensor,
    /// With `question_attention`: each glimpse's weights over the feature map, `[N, G, h, w]`
    /// (each glimpse's weights sum to 1).
    pub maps: Option<Tensor>,
    /// With several glimpses: each glimpse's weights over the question's words, `[N, G, T]`
    /// (`T` the longest question; zero past a question's end; each row sums to 1).
    pub words: Option<Tensor>,
}

/// The VQA task.
#[derive(Debug)]
pub struct Vqa {
    cfg: VqaConfig,
    vs: nn::VarStore,
    cnn: Option<Box<dyn Backbone>>,
    embed: nn::Embedding,
    lstm: nn::LSTM,
    fusion: Option<Fusion>,
    attention: Option<Glimpses>,
    q_only: Option<nn::Linear>,
    hidden: nn::Linear,
    classifier: nn::Linear,
    classes: Vec<String>,
    class_index: HashMap<String, i64>,
    vocab: HashMap<String, i64>,
    splits: BTreeMap<String, Split>,
    /// Most frequent (normalised) training answer per question type.
    prior: HashMap<String, String>,
    /// Samples evaluation and inference process at once ([`Task::set_eval_batch_size`]).
    eval_batch: usize,
    device: Device,
}

/// A question type as it appears in metric names (`acc_what_color`).
fn metric_type(qtype: &str) -> String {
    qtype.replace(' ', "_")
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

impl Vqa {
    /// The answer classes, in logit order: the `top_k` most frequent normalised training
    /// answers.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    fn split(&self, name: &str) -> Result<&Split> {
        crate::common::split(&self.splits, name)
    }

    /// Soft targets `[N, K]`: `min(1, humans/3)` per class, normalised (rows without a known
    /// answer are all zero and contribute nothing).
    fn targets(&self, qs: &[&Question]) -> Tensor {
        let k = self.classes.len();
        let mut t = vec![0f32; qs.len() * k];
        for (i, q) in qs.iter().enumerate() {
            let row = &mut t[i * k..(i + 1) * k];
            let scale = if q.answers.len() == 1 { 3.0 } else { 1.0 };
            for a in &q.answers {
                if let Some(&c) = self.class_index.get(&normalize_answer(a)) {
                    row[c as usize] += scale;
                }
            }
            row.iter_mut().for_each(|x| *x = (*x / 3.0).min(1.0));
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|x| *x /= sum);
            }
        }
        Tensor::from_slice(&t)
            .view([qs.len() as i64, k as i64])
            .to_device(self.device)
    }

    /// Predicted class ids for every question of `split`, in chunks.
    fn predict(&self, split: &Split) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(split.questions.len());
        for chunk in split.questions.chunks(self.eval_batch) {
            // each image of the chunk through the CNN once, however many questions ask about it
            let mut row_of: HashMap<usize, i64> = HashMap::new();
            let mut uniq: Vec<i64> = Vec::new();
            let rows: Vec<i64> = chunk
                .iter()
                .map(|q| {
                    *row_of.entry(q.image).or_insert_with(|| {
                        uniq.push(q.image as i64);
                        uniq.len() as i64 - 1
                    })
                })
                .collect();
            let qs: Vec<&[i64]> = chunk.iter().map(|q| q.tokens.as_slice()).collect();
            let uniq: Vec<usize> = uniq.iter().map(|&i| i as usize).collect();
            let images = split.images.read(&uniq)?;
            let l = self
                .forward_rows(&images, Some(&Tensor::from_slice(&rows)), &qs, false)?
                .logits;
            out.extend(Vec::<i64>::try_from(
                &l.f_argmax(-1, false)?.to_device(Device::Cpu),
            )?);
        }
        Ok(out)
    }
}

impl Task for Vqa {
    const NAME: &'static str = "vqa";
    type Config = VqaConfig;

    fn build(cfg: &VqaConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let (words, splits) = data::load(cfg)?;
        let train = &splits["train"];
        // answer classes: the top-K normalised training answers (all human answers counted)
        let mut freq: HashMap<String, usize> = HashMap::new();
        let mut by_type: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for q in &train.questions {
            for a in &q.answers {
                let a = normalize_answer(a);
                *freq.entry(a.clone()).or_default() += 1;
                *by_type
                    .entry(q.qtype.clone())
                    .or_default()
                    .entry(a)
                    .or_default() += 1;
            }
        }
        let mut classes: Vec<(String, usize)> = freq.into_iter().collect();
        classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        classes.truncate(cfg.top_k);
        let classes: Vec<String> = classes.into_iter().map(|(a, _)| a).collect();
        let class_index = classes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), i as i64))
            .collect();
        let prior = by_type
            .into_iter()
            .map(|(t, m)| {
                let best = m
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|x| x.0)
                    .unwrap_or_default();
                (t, best)
            })
            .collect();
        let init = if cfg.word2vec_init {
            let caps: Vec<Vec<Vec<i64>>> =
                vec![train.questions.iter().map(|q| q.tokens.clone()).collect()];
            Some(crate::retrieval::word2vec_vectors(
                &caps,
                &words,
                cfg.word_dim,
            )?)
        } else {
            None
        };
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let embed = nn::embedding(
            &root / "question" / "embed",
            words.len() as i64,
            cfg.word_dim,
            Default::default(),
        );
        if let Some(init) = &init {
            tch::no_grad(|| embed.ws.shallow_clone().f_copy_(init))?;
        }
        let lstm = nn::lstm(
            &root / "question" / "lstm",
            cfg.word_dim,
            cfg.hidden_dim,
            nn::RNNConfig {
                batch_first: true,
                ..Default::default()
            },
        );
        let (cnn, fusion, attention, q_only) = match cfg.model {
            VqaModel::Fused => {
                let mut cnn = backbone(&(&root / "image" / "backbone"), &cfg.backbone)
                    .map_err(Error::task)?;
                if cfg.freeze_backbone {
                    cnn.set_all_trainable(false).map_err(Error::task)?;
                }
                let feat = cnn.channels(&cnn.last_stage()).map_err(Error::task)?;
                // each location's vector: its channels, and (x, y) with `coordinates`
                let loc = feat + if cfg.coordinates { 2 } else { 0 };
                let image_dim = match cfg.question_attention {
                    true => cfg.glimpses * loc + if cfg.global_vector { feat } else { 0 },
                    false => feat,
                };
                let fc = FusionConfig {
                    rank: cfg.rank,
                    ..FusionConfig::new(cfg.fusion, image_dim, cfg.hidden_dim, cfg.fused_dim)
                };
                let fusion = Fusion::new(&(&root / "fusion"), &fc).map_err(Error::task)?;
                let attention = if cfg.question_attention {
                    let ac = mm_fusion::SoftAttentionConfig {
                        feature_dim: loc,
                        hidden_dim: cfg.hidden_dim,
                        attention_dim: cfg.fused_dim,
                        gate: false,
                    };
                    // glimpse 0 keeps the single-glimpse model's names
                    let image = (0..cfg.glimpses)
                        .map(|g| {
                            let p = match g {
                                0 => &root / "attention",
                                g => &root / format!("attention{g}"),
                            };
                            mm_fusion::SoftAttention::new(&p, &ac).map_err(Error::task)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let words = (cfg.glimpses > 1).then(|| {
                        let p = &root / "question" / "glimpses";
                        let (hd, g) = (cfg.hidden_dim, cfg.glimpses);
                        (
                            nn::linear(&p / "hidden", hd, hd, Default::default()),
                            nn::linear(&p / "out", hd, g, Default::default()),
                        )
                    });
                    let g = Glimpses {
                        image,
                        words,
                        coordinates: cfg.coordinates,
                    };
                    Some(g)
                } else {
                    None
                };
                (Some(cnn), Some(fusion), attention, None)
            }
            VqaModel::QuestionOnly => (
                None,
                None,
                None,
                Some(nn::linear(
                    &root / "question" / "proj",
                    cfg.hidden_dim,
                    cfg.fused_dim,
                    Default::default(),
                )),
            ),
        };
        let hidden = nn::linear(
            &root / "classifier" / "hidden",
            cfg.fused_dim,
            cfg.fused_dim,
            Default::default(),
        );
        let classifier = nn::linear(
            &root / "classifier" / "out",
            cfg.fused_dim,
            classes.len() as i64,
            Default::default(),
        );
        if let Some(w) = &cfg.backbone_weights {
            let file = mm_train::run::weights_file(w)?;
            let opts = mm_vision::LoadOptions {
                prefix: cfg.backbone_weights_prefix.clone(),
                var_prefix: "image.backbone.".into(),
                ..Default::default()
            };
            mm_vision::load_safetensors(&mut vs, &file, &opts).map_err(Error::task)?;
        }
        let vocab = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as i64))
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            vs,
            cnn,
            embed,
            lstm,
            fusion,
            attention,
            q_only,
            hidden,
            classifier,
            classes,
            class_index,
            vocab,
            splits,
            prior,
            eval_batch: 256,
            device,
        })
    }

    fn set_eval_batch_size(&mut self, n: usize) {
        self.eval_batch = n.max(1);
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn train_size(&self) -> usize {
        self.splits["train"].questions.len()
    }

    fn prefetch(&mut self, batch: &[usize]) -> Result<()> {
        let train = self
            .splits
            .get_mut("train")
            .ok_or_else(|| bad("no training split"))?;
        let img: Vec<usize> = batch.iter().map(|&i| train.questions[i].image).collect();
        train.images.prefetch(&img)
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        let train = self
            .splits
            .get_mut("train")
            .ok_or_else(|| bad("no training split"))?;
        // one image row per question, as the prefetch asked for them
        let img: Vec<usize> = batch.iter().map(|&i| train.questions[i].image).collect();
        let images = train.images.take(&img)?;
        let train = &self.splits["train"];
        let qs: Vec<&Question> = batch.iter().map(|&i| &train.questions[i]).collect();
        let tokens: Vec<&[i64]> = qs.iter().map(|q| q.tokens.as_slice()).collect();
        let logits = self.logits(&images, &tokens, true)?;
        let target = self.targets(&qs);
        let per = -(logits.f_log_softmax(-1, Kind::Float)? * &target).f_sum_dim_intlist(
            -1,
            false,
            Kind::Float,
        )?;
        Ok(per.f_mean(Kind::Float)?)
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let sp = self.split(split)?;
        let pred = self.predict(sp)?;
        let mut m = Metrics::new();
        let mut by_type: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
        let (mut acc, mut prior) = (0.0, 0.0);
        for (q, &p) in sp.questions.iter().zip(&pred) {
            let a = vqa_accuracy(&self.classes[p as usize], &q.answers);
            let b = vqa_accuracy(
                self.prior.get(&q.qtype).map_or("", String::as_str),
                &q.answers,
            );
            acc += a;
            prior += b;
            let e = by_type.entry(q.qtype.as_str()).or_default();
            e.0 += a;
            e.1 += b;
            e.2 += 1;
        }
        let n = sp.questions.len() as f64;
        m.insert("accuracy".into(), 100.0 * acc / n);
        m.insert("prior_accuracy".into(), 100.0 * prior / n);
        for (t, (a, b, k)) in by_type {
            let t = metric_type(t);
            m.insert(format!("acc_{t}"), 100.0 * a / k as f64);
            m.insert(format!("prior_{t}"), 100.0 * b / k as f64);
        }
        Ok(m)
    }

    fn metric_names(&self, split: &str) -> Result<Option<Vec<String>>> {
        let types: BTreeSet<String> = self
            .split(split)?
            .questions
            .iter()
            .map(|q| metric_type(&q.qtype))
            .collect();
        let mut names = vec!["accuracy".to_string(), "prior_accuracy".to_string()];
        for t in types {
            names.push(format!("acc_{t}"));
            names.push(format!("prior_{t}"));
        }
        Ok(Some(names))
    }
    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Image, InputKind::Sample, InputKind::Text]
    }

    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        self.answer(inputs, out_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluation in chunks of `train.eval_batch_size`: the chunk bounds memory, not results.
    #[test]
    fn the_eval_batch_size_changes_no_metric() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sv.h5");
        let sv = mm_data::synthav::SynthAvConfig {
            scenes: 40,
            seed: 4,
            ..Default::default()
        };
        mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
        let mut cfg = defaults().task;
        cfg.data = data;
        tch::manual_seed(0);
        let mut task = Vqa::build(&cfg, Device::Cpu).unwrap();
        let whole = task.evaluate("val").unwrap();
        task.set_eval_batch_size(3);
        assert_eq!(task.eval_batch, 3);
        let chunked = task.evaluate("val").unwrap();
        for (k, v) in &whole {
            assert!((v - chunked[k]).abs() < 1e-9, "{k}: {v} vs {}", chunked[k]);
        }
        // each image goes through the CNN once per chunk: the same answers as one image row
        // per question
        let val = &task.splits["val"];
        assert!(val.questions.len() > val.images.len());
        let rows: Vec<usize> = val.questions.iter().map(|q| q.image).collect();
        let qs: Vec<&[i64]> = val.questions.iter().map(|q| q.tokens.as_slice()).collect();
        let per_question = task
            .logits(&val.images.read(&rows).unwrap(), &qs, false)
            .unwrap()
            .argmax(-1, false);
        let per_question = Vec::<i64>::try_from(&per_question).unwrap();
        assert_eq!(task.predict(val).unwrap(), per_question);
    }

    /// A data set without a test split (as VQA v2): `val` becomes `test`, and a seeded tenth
    /// of the training images selects the checkpoint; with a test split, nothing moves.
    #[test]
    fn without_a_test_split_val_is_reported_and_training_images_select() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = |test_fraction: f64| {
            let data = dir.path().join(format!("sv{test_fraction}.h5"));
            let sv = mm_data::synthav::SynthAvConfig {
                scenes: 50,
                seed: 3,
                val_fraction: 0.2,
                test_fraction,
                ..Default::default()
            };
            mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
            let mut cfg = defaults().task;
            cfg.data = data;
            let task = Vqa::build(&cfg, Device::Cpu).unwrap();
            ["train", "val", "test"].map(|s| task.splits[s].images.len())
        };
        // 50 scenes: 40 train, 10 val, no test -> 36 train, 4 held out, val's 10 reported
        assert_eq!(sizes(0.0), [36, 4, 10]);
        // 50 scenes: 30 train, 10 val, 10 test
        assert_eq!(sizes(0.2), [30, 10, 10]);
    }
}
