//! Visual question answering: an image stream and a question stream, fused, classified over
//! the top-K answers (the lecture's VQA baseline).
//!
//! - **Image stream**: a backbone's pooled vector, L2-normalised.
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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use mm_data::Reader;
use mm_fusion::{Fusion, FusionConfig, FusionKind};
use mm_train::{Error, Metrics, Result, StepContext, Task, plot};
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
}

fn default_dropout() -> f64 {
    0.3
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
    attention: Option<mm_fusion::SoftAttention>,
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

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

fn load_split(r: &Reader, name: &str) -> Result<Split> {
    let params = &r.meta().params;
    let answers = word_list(params, "answers", "vocabulary")?;
    let qtypes = word_list(params, "question_types", "question_types")?;
    let idx: Vec<usize> = r
        .split(name)
        .map_err(Error::task)?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    if idx.is_empty() {
        return Err(bad(format!("split `{name}` is empty")));
    }
    let b = r.read_batch(&idx).map_err(Error::task)?;
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
    fn split(&self, name: &str) -> Result<&Split> {
        self.splits
            .get(name)
            .ok_or_else(|| bad(format!("no split `{name}`")))
    }

    /// Class logits for questions (token ids) about images (`uint8 [N, H, W, 3]`).
    fn logits(&self, images: &Tensor, questions: &[&[i64]], train: bool) -> Result<Tensor> {
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
                &(lens - 1).view([n, 1, 1]).expand([n, 1, h], false),
                false,
            )?
            .f_squeeze_dim(1)?;
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
                        let (b, c) = (map.size()[0], map.size()[1]);
                        let feats = map.f_view([b, c, -1])?.f_transpose(1, 2)?; // [N, L, C]
                        att.forward(&feats, &q, None).map_err(Error::task)?.context
                    }
                    None => cnn.pooled(&x, train).map_err(Error::task)?,
                };
                let v = mm_fusion::l2_normalize(&v).map_err(Error::task)?;
                f.forward(&v, &q).map_err(Error::task)?
            }
            (_, _, Some(lin)) => q.apply(lin).f_tanh()?,
            _ => return Err(bad("model without a fusion or a question projection")),
        };
        let h = fused
            .f_dropout(self.cfg.dropout, train)?
            .apply(&self.hidden)
            .f_tanh()?;
        Ok(h.f_dropout(self.cfg.dropout, train)?
            .apply(&self.classifier))
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
        let r = Reader::open(&cfg.data).map_err(Error::task)?;
        let words = word_list(&r.meta().params, "questions", "vocabulary")?;
        let mut splits = BTreeMap::new();
        for s in ["train", "val", "test"] {
            if r.split_names().map_err(Error::task)?.iter().any(|n| n == s) {
                splits.insert(s.to_string(), load_split(&r, s)?);
            }
        }
        if !splits.contains_key("train") {
            return Err(bad("no train split"));
        }
        if !splits.contains_key("val") {
            return Err(bad("no val split"));
        }
        if !splits.contains_key("test") {
            // VQA v2's test answers are not public: scores on val are the reported ones
            tracing::warn!("no test split: `test` evaluates on val");
            let val = &splits["val"];
            let copy = Split {
                images: val.images.shallow_clone(),
                questions: val.questions.clone(),
            };
            splits.insert("test".to_string(), copy);
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
                let fc = FusionConfig {
                    rank: cfg.rank,
                    ..FusionConfig::new(cfg.fusion, feat, cfg.hidden_dim, cfg.fused_dim)
                };
                let fusion = Fusion::new(&(&root / "fusion"), &fc).map_err(Error::task)?;
                let attention = if cfg.question_attention {
                    let ac = mm_fusion::SoftAttentionConfig {
                        feature_dim: feat,
                        hidden_dim: cfg.hidden_dim,
                        attention_dim: cfg.fused_dim,
                        gate: false,
                    };
                    let a = mm_fusion::SoftAttention::new(&(&root / "attention"), &ac);
                    Some(a.map_err(Error::task)?)
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
            // a run or checkpoint directory: its (best) checkpoint's model file
            let file = if w.is_dir() {
                let (_, ck) = mm_train::run::resolve_checkpoint(w)?;
                ck.join(mm_train::checkpoint::MODEL)
            } else {
                w.clone()
            };
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
            let t = t.replace(' ', "_");
            m.insert(format!("acc_{t}"), 100.0 * a / k as f64);
            m.insert(format!("prior_{t}"), 100.0 * b / k as f64);
        }
        Ok(m)
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
        let tokens: Vec<i64> = question
            .to_lowercase()
            .replace('?', " ?")
            .split_whitespace()
            .filter_map(|w| self.vocab.get(w).copied())
            .collect();
        if tokens.is_empty() {
            return Err(bad(format!(
                "`{question}`: no word of the question is in the vocabulary"
            )));
        }
        let pixels = crate::common::input_image(&self.split("test")?.images, image)?;
        let probs = self
            .logits(&pixels, &[&tokens], false)?
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
        // picture: the image x4 with the question and the answers
        let (h, w) = (pixels.size()[1] as u32, pixels.size()[2] as u32);
        let data = Vec::<u8>::try_from(&pixels.reshape([-1]))?;
        let scale = 4;
        let lines: Vec<String> = std::iter::once(format!("Q: {question}"))
            .chain(top.iter().map(|(a, p)| format!("{a}: {:.1}%", 100.0 * p)))
            .collect();
        let text_w = lines
            .iter()
            .map(|l| plot::text_width(l, 1))
            .max()
            .unwrap_or(0);
        let mut img = RgbImage::from_pixel(
            (w * scale).max(text_w + 8),
            h * scale + 14 * lines.len() as u32 + 8,
            Rgb([255, 255, 255]),
        );
        for y in 0..h * scale {
            for x in 0..w * scale {
                let o = (((y / scale) * w + x / scale) * 3) as usize;
                img.put_pixel(x, y, Rgb([data[o], data[o + 1], data[o + 2]]));
            }
        }
        for (k, l) in lines.iter().enumerate() {
            plot::draw_text(
                &mut img,
                4,
                h * scale + 4 + 14 * k as u32,
                l,
                Rgb([20, 20, 20]),
                1,
            );
        }
        let png = out_dir.join("vqa.png");
        plot::save_png_atomic(&img, &png)?;
        Ok(serde_json::json!({
            "question": question,
            "image": image,
            "answers": top.iter().map(|(a, p)| serde_json::json!({"answer": a, "probability": p})).collect::<Vec<_>>(),
            "picture": png,
        }))
    }
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
        },
    }
}
