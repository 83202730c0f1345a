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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use mm_data::Reader;
use mm_fusion::{Fusion, FusionConfig, FusionKind};
use mm_plot as plot;
use mm_train::{Error, Metrics, Result, StepContext, Task};
use mm_vision::{Backbone, BackboneConfig, IMAGENET_MEAN, IMAGENET_STD, backbone, normalize_batch};
use serde::{Deserialize, Serialize};
use tch::nn::RNN;
use tch::{Device, Kind, Tensor, nn};

use crate::common::word_list;
use accuracy::{normalize_answer, vqa_accuracy};

/// Which streams the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VqaModel {
    /// Image and question, fused.
    #[default]
    Fused,
    /// The question alone (the baseline that shows what the image adds).
    QuestionOnly,
}

/// The `[task]` table of a VQA run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaConfig {
    /// The data set (SynthAV, or VQA v2 as `mm data convert vqa` writes it).
    pub data: PathBuf,
    /// The model.
    #[serde(default)]
    pub model: VqaModel,
    /// The image backbone.
    pub backbone: BackboneConfig,
    /// Weights for the backbone (a pretrained image stream): a safetensors file with
    /// torchvision's names, or a run or checkpoint directory of another task (its best
    /// checkpoint's model file), with [`VqaConfig::backbone_weights_prefix`] naming the part.
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
    /// Prefix of the backbone's names in `backbone_weights`, e.g. `"encoder."` for the image
    /// encoder of a captioning run; empty for a file with torchvision's names.
    #[serde(default)]
    pub backbone_weights_prefix: String,
    /// Attend over the backbone's last feature map with the question (Show-Attend-Tell soft
    /// attention from `mm-fusion`) instead of pooling it globally: the image vector becomes
    /// the question-weighted mean of the locations.
    #[serde(default)]
    pub question_attention: bool,
    /// Number of attention glimpses over the feature map (`question_attention = true`). With
    /// one, the question's last LSTM state queries the map. With more, each glimpse has its own
    /// attention over the question's words (`w_g^T tanh(W h_t)`, softmax over the words), whose
    /// weighted LSTM states query the map, so glimpses can follow different phrases ("the red
    /// square" and "the blue circle"); the glimpses' vectors are concatenated.
    #[serde(default = "default_glimpses")]
    pub glimpses: i64,
    /// Append each location's (x, y), in [-1, 1], to the feature map before attention, so an
    /// attended vector says where it looked (`question_attention = true`).
    #[serde(default)]
    pub coordinates: bool,
    /// Also pass the whole map's mean vector (L2-normalised) beside the glimpses
    /// (`question_attention = true`): what no attention has to find, such as how many
    /// objects there are.
    #[serde(default)]
    pub global_vector: bool,
    /// Freeze the backbone (no gradients, batch norms on running statistics).
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Resize images to this side first.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// Word vector size.
    pub word_dim: i64,
    /// Initialise word vectors with skip-gram on the training questions.
    #[serde(default)]
    pub word2vec_init: bool,
    /// LSTM hidden size.
    pub hidden_dim: i64,
    /// The fusion.
    pub fusion: FusionKind,
    /// Fused size.
    pub fused_dim: i64,
    /// Low-rank bilinear rank (`fusion = "bilinear"`).
    #[serde(default)]
    pub rank: Option<i64>,
    /// Answer classes: the most frequent training answers.
    pub top_k: usize,
    /// Dropout before the classifier.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// For a data set with no `test` split (VQA v2, whose test answers are not public): the
    /// part of `train`'s images held out, by a fixed seed, as the validation split that picks
    /// the checkpoint, while `val` becomes the reported `test` split. A checkpoint is never
    /// selected on the split that is reported.
    #[serde(default = "default_val_holdout")]
    pub val_holdout: f64,
}

fn default_dropout() -> f64 {
    0.3
}

fn default_val_holdout() -> f64 {
    0.1
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

fn default_glimpses() -> i64 {
    1
}

/// Question-guided attention over the feature map: one or more glimpses.
#[derive(Debug)]
struct Glimpses {
    /// Per glimpse, the map attention queried by that glimpse's question vector.
    image: Vec<mm_fusion::SoftAttention>,
    /// With several glimpses: `W` (`H -> H`) and the per-glimpse `w_g` (`H -> G`) of the
    /// attention over the question's words.
    words: Option<(nn::Linear, nn::Linear)>,
    coordinates: bool,
}

impl Glimpses {
    /// The attended image vector `[N, G * (C (+ 2))]` and where the glimpses looked, for the
    /// map `[N, C, H, W]`, LSTM states `states` `[N, T, H]` with `lens` words, and the last state
    /// `last` `[N, H]`. Each glimpse's feature part is L2-normalised; coordinates are not.
    fn forward(
        &self,
        map: &Tensor,
        states: &Tensor,
        lens: &Tensor,
        last: &Tensor,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let (b, c, h, w) = map.size4()?;
        let mut feats = map.f_view([b, c, -1])?.f_transpose(1, 2)?; // [N, L, C]
        if self.coordinates {
            let grid = coordinate_grid(h, w, map.device())?
                .f_unsqueeze(0)?
                .f_expand([b, h * w, 2], false)?
                .f_to_kind(feats.kind())?;
            feats = Tensor::f_cat(&[feats, grid], -1)?;
        }
        let mut word_weights = None;
        let queries: Vec<Tensor> = match &self.words {
            None => vec![last.shallow_clone()],
            Some((hid, out)) => {
                let t = states.size()[1];
                let pos = Tensor::f_arange(t, (Kind::Int64, states.device()))?.f_view([1, t])?;
                let pad = pos.f_ge_tensor(&lens.f_view([-1, 1])?)?.f_unsqueeze(-1)?; // [N, T, 1]
                let beta = states
                    .apply(hid)
                    .f_tanh()?
                    .apply(out)
                    .f_masked_fill(&pad, f64::NEG_INFINITY)?
                    .f_softmax(1, Kind::Float)?; // [N, T, G]
                let q = beta.f_transpose(1, 2)?.f_bmm(states)?; // [N, G, H]
                word_weights = Some(beta.f_transpose(1, 2)?);
                (0..self.image.len() as i64)
                    .map(|g| q.f_select(1, g))
                    .collect::<std::result::Result<_, _>>()?
            }
        };
        let mut vectors = Vec::with_capacity(self.image.len());
        let mut weights = Vec::with_capacity(self.image.len());
        for (att, q) in self.image.iter().zip(&queries) {
            let o = att.forward(&feats, q, None).map_err(Error::task)?;
            let v = if self.coordinates {
                let f =
                    mm_fusion::l2_normalize(&o.context.f_narrow(-1, 0, c)?).map_err(Error::task)?;
                Tensor::f_cat(&[f, o.context.f_narrow(-1, c, 2)?], -1)?
            } else {
                mm_fusion::l2_normalize(&o.context).map_err(Error::task)?
            };
            vectors.push(v);
            weights.push(o.weights);
        }
        let maps = Tensor::f_stack(&weights, 1)?.f_view([b, -1, h, w])?;
        Ok((Tensor::f_cat(&vectors, -1)?, maps, word_weights))
    }
}

/// Each location's `(x, y)` of an `h x w` map in row-major order, `[h * w, 2]`: from -1 (left,
/// top) to 1 (right, bottom), -1 along a side of one location.
fn coordinate_grid(h: i64, w: i64, device: Device) -> Result<Tensor> {
    let opts = (Kind::Float, device);
    let xs = Tensor::f_linspace(-1.0, 1.0, w, opts)?;
    let ys = Tensor::f_linspace(-1.0, 1.0, h, opts)?;
    let grid = Tensor::f_stack(
        &[
            xs.f_view([1, w])?.f_expand([h, w], false)?,
            ys.f_view([h, 1])?.f_expand([h, w], false)?,
        ],
        -1,
    )?;
    Ok(grid.f_reshape([h * w, 2])?)
}

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

/// One question.
#[derive(Debug, Clone)]
struct Question {
    image: usize,
    tokens: Vec<i64>,
    answers: Vec<String>,
    qtype: String,
}

#[derive(Debug)]
struct Split {
    images: Tensor,
    questions: Vec<Question>,
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
    let fields = ["image", "questions", "answers", "question_types"];
    let b = r.read_batch_fields(idx, &fields).map_err(Error::task)?;
    let images = b.tensor("image", Device::Cpu).map_err(Error::task)?;
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

impl Vqa {
    /// The answer classes, in logit order: the `top_k` most frequent normalised training
    /// answers.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    fn split(&self, name: &str) -> Result<&Split> {
        crate::common::split(&self.splits, name)
    }

    /// Class logits for questions (token ids) about images (`uint8 [N, H, W, 3]`).
    fn logits(&self, images: &Tensor, questions: &[&[i64]], train: bool) -> Result<Tensor> {
        Ok(self.forward(images, questions, train)?.logits)
    }

    /// The model on questions (token ids into the data set's question vocabulary, at least one
    /// each) about images (`uint8 [N, H, W, 3]`, one per question): class logits and, with
    /// question attention, where it looked. `train` switches dropout and batch statistics on.
    /// A question's result does not depend on the other questions in the batch.
    pub fn forward(&self, images: &Tensor, questions: &[&[i64]], train: bool) -> Result<VqaOutput> {
        if images.dim() != 4 || images.size()[0] != questions.len() as i64 {
            return Err(bad(format!(
                "{} questions need images [{0}, H, W, 3], got {:?}",
                questions.len(),
                images.size()
            )));
        }
        let vocab = self.vocab.len() as i64;
        if questions
            .iter()
            .any(|q| q.is_empty() || q.iter().any(|&t| !(0..vocab).contains(&t)))
        {
            return Err(bad(format!(
                "every question needs at least one token, each in 0..{vocab}"
            )));
        }
        let n = questions.len() as i64;
        let max = questions.iter().map(|q| q.len()).max().unwrap_or(1).max(1) as i64;
        let mut ids = vec![0i64; (n * max) as usize];
        let mut lens = Vec::with_capacity(questions.len());
        for (i, q) in questions.iter().enumerate() {
            ids[i * max as usize..i * max as usize + q.len()].copy_from_slice(q);
            lens.push(q.len() as i64);
        }
        let ids = Tensor::from_slice(&ids)
            .view([n, max])
            .to_device(self.device);
        let lens = Tensor::from_slice(&lens).to_device(self.device);
        let emb = Tensor::f_embedding(&self.embed.ws, &ids, -1, false, false)?;
        let (out, _) = self.lstm.seq(&emb);
        let h = out.size()[2];
        let q = out
            .f_gather(
                1,
                &(&lens - 1).view([n, 1, 1]).expand([n, 1, h], false),
                false,
            )?
            .f_squeeze_dim(1)?;
        let (mut maps, mut words) = (None, None);
        let fused = match (&self.fusion, &self.cnn, &self.q_only) {
            (Some(f), Some(cnn), _) => {
                let mut x = normalize_batch(images, &IMAGENET_MEAN, &IMAGENET_STD, self.device)
                    .map_err(Error::task)?;
                if let Some(s) = self.cfg.image_size
                    && (x.size()[2] != s || x.size()[3] != s)
                {
                    x = x.f_upsample_bilinear2d([s, s], false, None, None)?;
                }
                let v = match &self.attention {
                    Some(att) => {
                        let map = cnn
                            .feature_map(&x, &cnn.last_stage(), train)
                            .map_err(Error::task)?;
                        let (v, m, w) = att.forward(&map, &out, &lens, &q)?;
                        (maps, words) = (Some(m), w);
                        if self.cfg.global_vector {
                            let g = map.f_mean_dim(&[2i64, 3][..], false, None::<Kind>)?;
                            let g = mm_fusion::l2_normalize(&g).map_err(Error::task)?;
                            Tensor::f_cat(&[v, g], -1)?
                        } else {
                            v
                        }
                    }
                    None => mm_fusion::l2_normalize(&cnn.pooled(&x, train).map_err(Error::task)?)
                        .map_err(Error::task)?,
                };
                f.forward(&v, &q).map_err(Error::task)?
            }
            (_, _, Some(lin)) => q.apply(lin).f_tanh()?,
            _ => return Err(bad("model without a fusion or a question projection")),
        };
        let h = fused
            .f_dropout(self.cfg.dropout, train)?
            .apply(&self.hidden)
            .f_tanh()?;
        Ok(VqaOutput {
            logits: h
                .f_dropout(self.cfg.dropout, train)?
                .apply(&self.classifier),
            maps,
            words,
        })
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
        for chunk in split.questions.chunks(256) {
            let img = Tensor::from_slice(&chunk.iter().map(|q| q.image as i64).collect::<Vec<_>>());
            let qs: Vec<&[i64]> = chunk.iter().map(|q| q.tokens.as_slice()).collect();
            let l = self.logits(&split.images.index_select(0, &img), &qs, false)?;
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
        for (name, v) in [
            ("word_dim", cfg.word_dim),
            ("hidden_dim", cfg.hidden_dim),
            ("fused_dim", cfg.fused_dim),
        ] {
            if v <= 0 {
                return Err(Error::InvalidParameter {
                    name,
                    reason: format!("must be positive, got {v}"),
                });
            }
        }
        if cfg.top_k == 0 || !(0.0..1.0).contains(&cfg.dropout) {
            return Err(bad("top_k must be positive and dropout in [0, 1)"));
        }
        if cfg.glimpses < 1 {
            return Err(Error::InvalidParameter {
                name: "glimpses",
                reason: format!("must be at least 1, got {}", cfg.glimpses),
            });
        }
        if (cfg.glimpses > 1 || cfg.coordinates || cfg.global_vector) && !cfg.question_attention {
            return Err(bad(
                "glimpses > 1, coordinates and global_vector need question_attention = true",
            ));
        }
        let r = Reader::open(&cfg.data).map_err(Error::task)?;
        let words = word_list(&r.meta().params, "questions", "vocabulary")?;
        let names = r.split_names().map_err(Error::task)?;
        // a split that is absent or empty (SynthAV with `test_fraction = 0`) is not there
        let has = |s: &str| {
            names.iter().any(|n| n == s) && split_indices(&r, s).is_ok_and(|i| !i.is_empty())
        };
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
            let file = crate::common::weights_file(w)?;
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
            device,
        })
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

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        let train = &self.splits["train"];
        let qs: Vec<&Question> = batch.iter().map(|&i| &train.questions[i]).collect();
        let img = crate::common::batch_index(&qs.iter().map(|q| q.image).collect::<Vec<_>>());
        let tokens: Vec<&[i64]> = qs.iter().map(|q| q.tokens.as_slice()).collect();
        let logits = self.logits(&train.images.index_select(0, &img), &tokens, true)?;
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

    fn infer(&mut self, inputs: &[String], out_dir: &Path) -> Result<serde_json::Value> {
        let image = inputs
            .iter()
            .find_map(|i| i.strip_prefix("image:"))
            .ok_or_else(|| bad("give --image IMG (or test:K)"))?;
        let question = inputs
            .iter()
            .find_map(|i| i.strip_prefix("question:"))
            .ok_or_else(|| bad("give --question \"...\""))?;
        let lower = question.to_lowercase();
        let (kept, tokens): (Vec<&str>, Vec<i64>) = question_words(&lower)
            .into_iter()
            .filter_map(|w| self.vocab.get(w).map(|&id| (w, id)))
            .unzip();
        if tokens.is_empty() {
            return Err(bad(format!(
                "`{question}`: no word of the question is in the vocabulary"
            )));
        }
        let pixels = crate::common::input_image(&self.split("test")?.images, image)?;
        let looked = self.forward(&pixels, &[&tokens], false)?;
        let probs = looked
            .logits
            .f_softmax(-1, Kind::Float)?
            .to_device(Device::Cpu);
        let (v, i) = probs.f_topk(5.min(self.classes.len() as i64), -1, true, true)?;
        let v = Vec::<f32>::try_from(&v.reshape([-1]))?;
        let i = Vec::<i64>::try_from(&i.reshape([-1]))?;
        let top: Vec<(String, f32)> = i
            .iter()
            .zip(&v)
            .map(|(&c, &p)| (self.classes[c as usize].clone(), p))
            .collect();
        // picture: the image x4, then each glimpse's attention; the question, the answers and
        // the word each glimpse read most
        let scale = 4;
        let shown = pixels.get(0);
        let ones = vec![1f32];
        let mut panels = vec![crate::common::attention_panel(
            &shown,
            &ones,
            (1, 1),
            scale,
        )?];
        let mut glimpses = Vec::new();
        // per glimpse, the word it read most
        let mut read = Vec::new();
        if let Some(maps) = &looked.maps {
            let maps = maps.to_device(Device::Cpu);
            let (_, g, mh, mw) = maps.size4()?;
            for k in 0..g {
                let alpha = Vec::<f32>::try_from(&maps.get(0).get(k).reshape([-1]))?;
                let dims = (mh as u32, mw as u32);
                panels.push(crate::common::attention_panel(&shown, &alpha, dims, scale)?);
                let peak = argmax(&alpha).0 as i64;
                let words = match &looked.words {
                    Some(w) => {
                        let w = Vec::<f32>::try_from(&w.get(0).get(k).to_device(Device::Cpu))?;
                        let (i, p) = argmax(&w);
                        read.push(format!(
                            "glimpse {}: \"{}\" {:.0}%",
                            k + 1,
                            kept.get(i).copied().unwrap_or("?"),
                            100.0 * p
                        ));
                        kept.iter()
                            .zip(w)
                            .map(|(&t, x)| serde_json::json!([t, x]))
                            .collect()
                    }
                    None => vec![],
                };
                glimpses.push(serde_json::json!({
                    "peak": [peak / mw, peak % mw],
                    "map_size": [mh, mw],
                    "words": words,
                }));
            }
        }
        let lines: Vec<String> = std::iter::once(format!("Q: {question}"))
            .chain(top.iter().map(|(a, p)| format!("{a}: {:.1}%", 100.0 * p)))
            .chain(read)
            .collect();
        let text_w = lines
            .iter()
            .map(|l| plot::text_width(l, 1))
            .max()
            .unwrap_or(0);
        let (pw, ph) = panels[0].dimensions();
        let row_w = (pw + 4) * panels.len() as u32;
        let mut img = RgbImage::from_pixel(
            row_w.max(text_w + 8),
            ph + 14 * lines.len() as u32 + 8,
            Rgb([255, 255, 255]),
        );
        for (k, p) in panels.iter().enumerate() {
            image::imageops::replace(&mut img, p, k as i64 * (pw + 4) as i64, 0);
        }
        for (k, l) in lines.iter().enumerate() {
            plot::draw_text(&mut img, 4, ph + 4 + 14 * k as u32, l, Rgb([20, 20, 20]), 1);
        }
        let png = out_dir.join("vqa.png");
        plot::save_png_atomic(&img, &png)?;
        Ok(serde_json::json!({
            "question": question,
            "image": image,
            "answers": top.iter().map(|(a, p)| serde_json::json!({"answer": a, "probability": p})).collect::<Vec<_>>(),
            "glimpses": glimpses,
            "picture": png,
        }))
    }
}

/// The index and value of the largest entry (`(0, 0.0)` for none).
fn argmax(xs: &[f32]) -> (usize, f32) {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or((0, 0.0), |(i, &x)| (i, x))
}

/// A question's words as the data sets tokenise them: lower case, `?` a word of its own.
fn question_words(question: &str) -> Vec<&str> {
    question
        .split_whitespace()
        .flat_map(|w| match w.strip_suffix('?') {
            Some("") => vec!["?"],
            Some(w) => vec![w, "?"],
            None => vec![w],
        })
        .collect()
}

/// The defaults of `mm train vqa`: SynthAV, small CNN, Hadamard fusion; minutes on a CPU.
pub fn defaults() -> mm_train::RunConfig<VqaConfig> {
    use mm_train::{Autocast, Mode, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 25,
            max_steps: 0,
            batch_size: 128,
            drop_last: false,
            eval_every: 0,
            log_every: 10,
            seed: 0,
            optimizer: OptimizerConfig::adam(2e-3),
            schedule: ScheduleConfig {
                kind: ScheduleKind::Cosine,
                warmup_steps: 20,
                min_factor: 0.05,
                ..Default::default()
            },
            lr_groups: vec![],
            clip_grad_norm: 5.0,
            monitor: "accuracy".into(),
            mode: Mode::Max,
            patience: 8,
            keep_last: 2,
            autocast: Autocast::Off,
        },
        task: VqaConfig {
            data: PathBuf::from("data/synthav.h5"),
            model: VqaModel::Fused,
            backbone: BackboneConfig::headless(mm_vision::Arch::SmallCnn),
            question_attention: false,
            glimpses: 1,
            coordinates: false,
            global_vector: false,
            backbone_weights: None,
            backbone_weights_prefix: String::new(),
            freeze_backbone: false,
            image_size: None,
            word_dim: 64,
            word2vec_init: false,
            hidden_dim: 128,
            fusion: FusionKind::Hadamard,
            fused_dim: 256,
            rank: None,
            top_k: 1000,
            dropout: 0.3,
            val_holdout: 0.1,
        },
    }
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
            ["train", "val", "test"].map(|s| task.splits[s].images.size()[0])
        };
        // 50 scenes: 40 train, 10 val, no test -> 36 train, 4 held out, val's 10 reported
        assert_eq!(sizes(0.0), [36, 4, 10]);
        // 50 scenes: 30 train, 10 val, 10 test
        assert_eq!(sizes(0.2), [30, 10, 10]);
    }

    #[test]
    fn the_coordinate_grid_runs_left_to_right_and_top_to_bottom() {
        let g = coordinate_grid(3, 5, Device::Cpu).unwrap();
        assert_eq!(g.size(), [15, 2]);
        let v = Vec::<f32>::try_from(&g.reshape([-1])).unwrap();
        for r in 0..3 {
            for c in 0..5 {
                let k = 2 * (r * 5 + c);
                assert!(
                    (v[k] - (-1.0 + 0.5 * c as f32)).abs() < 1e-6,
                    "x at {r},{c}"
                );
                assert!((v[k + 1] - (-1.0 + r as f32)).abs() < 1e-6, "y at {r},{c}");
            }
        }
        let one = coordinate_grid(1, 1, Device::Cpu).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&one.reshape([-1])).unwrap(),
            [-1.0, -1.0]
        );
    }

    #[test]
    fn question_words_split_off_the_question_mark() {
        assert_eq!(
            question_words("is it red? yes ?"),
            ["is", "it", "red", "?", "yes", "?"]
        );
        assert_eq!(question_words("  "), Vec::<&str>::new());
    }
}
