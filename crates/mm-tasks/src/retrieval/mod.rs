//! Image tagging and cross-modal retrieval: the lecture's joint embedding.
//!
//! An image encoder (an `mm-vision` backbone's pooled vector, projected) and a text encoder
//! (word embeddings, initialised from skip-gram vectors that `mm-text` trains on the training
//! captions, then a GRU or mean pooling, projected) map into one L2-normalised space, trained
//! with an `mm-fusion` metric-learning loss (VSE++ hardest negatives by default: the true pair
//! is pulled together, the hardest in-batch negative pushed away). Evaluation: Recall@1/5/10,
//! median and mean rank, image-to-text (an image's best-ranked caption counts) and
//! text-to-image, beside chance; on SynthAV also tag precision. Inference: captions and tags
//! for an image, images for a text query.
//!
//! Data: an mm HDF5 file with a `uint8 [H, W, 3]` image field, a ragged caption field (token
//! ids; several captions per image) whose vocabulary the file's `meta.params` names
//! (`decode.<field>` -> the key of a word list), and `train`/`val`/`test` splits: SynthAV, or
//! Flickr8k/COCO as `mm data convert` writes them.

mod config;
mod data;
mod model;
mod pictures;

pub(crate) use model::word2vec_init as word2vec_vectors;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mm_data::Reader;
use mm_fusion::Similarities;
use mm_plot as plot;
use mm_train::{Error, Input, InputKind, Metrics, Result, StepContext, Task};
use tch::{Device, Kind, Tensor, nn};

pub use config::{RetrievalConfig, defaults};
use model::JointModel;
pub use model::{LossKind, TextEncoderKind};

use data::{Split, load_split};

/// The retrieval task.
#[derive(Debug)]
pub struct Retrieval {
    cfg: RetrievalConfig,
    vs: nn::VarStore,
    model: JointModel,
    vocab: Vec<String>,
    index: HashMap<String, i64>,
    splits: BTreeMap<String, Split>,
    /// Candidate tags as token-id phrases: `colour shape` pairs when the data set names its
    /// colours and shapes (SynthAV), else the vocabulary's words outside the 25 most frequent.
    tags: Vec<(String, Vec<i64>)>,
    /// Whether `tags` are SynthAV's colour-shape pairs (which `objects` can check).
    colour_shape_tags: bool,
    /// Samples evaluation and inference process at once ([`Task::set_eval_batch_size`]).
    eval_batch: usize,
    device: Device,
}

fn task_err(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

impl Retrieval {
    fn split(&self, name: &str) -> Result<&Split> {
        crate::common::split(&self.splits, name)
    }

    /// Token ids of a sentence (lower-cased, split on whitespace); unknown words are skipped.
    pub fn encode_words(&self, text: &str) -> Vec<i64> {
        text.to_lowercase()
            .split_whitespace()
            .filter_map(|w| self.index.get(w).copied())
            .collect()
    }

    fn sentence(&self, ids: &[i64]) -> String {
        ids.iter()
            .map(|&i| self.vocab.get(i as usize).map_or("<?>", String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Embeddings (eval mode) of every image of `images`, read `eval_batch` at a time.
    fn embed_images(&self, images: &crate::stream::FieldStream) -> Result<Tensor> {
        crate::common::chunked_rows(images.len(), self.eval_batch, |s, e| {
            let chunk = images.read_range(s, e)?;
            self.model.embed_images(&chunk, self.device, false)
        })
    }

    fn embed_sentences(&self, sents: &[&[i64]], train: bool) -> Result<Tensor> {
        let mut out = Vec::new();
        for chunk in sents.chunks(if train { sents.len().max(1) } else { 512 }) {
            out.push(self.model.embed_text(chunk, self.device, train)?);
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }

    /// Every caption of `split`, flattened, with the image each belongs to.
    fn caption_list(split: &Split) -> (Vec<&[i64]>, Vec<usize>) {
        let mut sents = Vec::new();
        let mut owner = Vec::new();
        for (i, caps) in split.captions.iter().enumerate() {
            for c in caps {
                sents.push(c.as_slice());
                owner.push(i);
            }
        }
        (sents, owner)
    }

    /// `uint8 [1, H, W, 3]` from `input`: `SPLIT:K` (a data set image) or an image file.
    fn input_image(&self, input: &Input) -> Result<(Tensor, String)> {
        let pixels = crate::common::input_image(|s| Ok(&self.split(s)?.images), input)?;
        Ok((pixels, input.to_string()))
    }

    /// The training captions and their embeddings: the bank that tags are voted from.
    fn caption_bank(&self) -> Result<(Vec<&[i64]>, Tensor)> {
        let (sents, _) = Self::caption_list(&self.splits["train"]);
        let emb = self.embed_sentences(&sents, false)?;
        Ok((sents, emb))
    }

    /// Tags of each image: the phrases of its 10 nearest training captions, each caption's vote
    /// weighted by `softmax(similarity / 0.05)` over the 10; the best `k` with their weights.
    fn tag_images(
        &self,
        img_emb: &Tensor,
        bank: &(Vec<&[i64]>, Tensor),
        k: usize,
    ) -> Result<Vec<Vec<(String, f64)>>> {
        let (sents, emb) = bank;
        let knn = 10.min(sents.len() as i64);
        let (v, i) = img_emb
            .f_matmul(&emb.f_tr()?)?
            .f_topk(knn, -1, true, true)?;
        let w = (v / 0.05)
            .f_softmax(-1, Kind::Double)?
            .to_device(Device::Cpu);
        let w = Vec::<f64>::try_from(&w.reshape([-1]))?;
        let i = Vec::<i64>::try_from(&i.to_device(Device::Cpu).reshape([-1]))?;
        let knn = knn as usize;
        let mut out = Vec::new();
        for row in 0..img_emb.size()[0] as usize {
            let mut score = vec![0.0; self.tags.len()];
            for j in 0..knn {
                let cap = sents[i[row * knn + j] as usize];
                for (t, (_, phrase)) in self.tags.iter().enumerate() {
                    if cap
                        .windows(phrase.len())
                        .any(|win| win == phrase.as_slice())
                    {
                        score[t] += w[row * knn + j];
                    }
                }
            }
            let mut order: Vec<usize> = (0..self.tags.len()).collect();
            order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
            out.push(
                order
                    .into_iter()
                    .take(k)
                    .filter(|&t| score[t] > 0.0)
                    .map(|t| (self.tags[t].0.clone(), score[t]))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Whether `evaluate` scores tags on `split`: it has object annotations and the tags
    /// are SynthAV's colour-shape pairs.
    fn scores_tags(&self, split: &Split) -> bool {
        split.objects.is_some() && !self.tags.is_empty() && self.colour_shape_tags
    }

    /// Tag precision@1 on SynthAV (does the best tag name an object in the image?) and its
    /// chance level (a uniformly drawn tag).
    fn tag_precision(&self, split: &Split, img_emb: &Tensor) -> Result<Option<(f64, f64)>> {
        let Some(objects) = split.objects.as_ref().filter(|_| self.scores_tags(split)) else {
            return Ok(None);
        };
        let bank = self.caption_bank()?;
        let tags = self.tag_images(img_emb, &bank, 1)?;
        let obj = Vec::<i64>::try_from(&objects.reshape([-1]))?;
        let (n_shapes, n) = (mm_data::synthav::SHAPES.len(), tags.len());
        let (mut hits, mut chance) = (0usize, 0.0);
        for (i, best) in tags.iter().enumerate() {
            // tag t = colour * n_shapes + shape; object row: present, shape, colour, ...
            let truth: std::collections::BTreeSet<usize> = obj[i * 21..(i + 1) * 21]
                .chunks(7)
                .filter(|r| r[0] == 1)
                .map(|r| r[2] as usize * n_shapes + r[1] as usize)
                .collect();
            if let Some((name, _)) = best.first() {
                let t = self.tags.iter().position(|(n, _)| n == name);
                hits += usize::from(t.is_some_and(|t| truth.contains(&t)));
            }
            chance += truth.len() as f64 / self.tags.len() as f64;
        }
        Ok(Some((
            100.0 * hits as f64 / n as f64,
            100.0 * chance / n as f64,
        )))
    }
}

impl Task for Retrieval {
    const NAME: &'static str = "retrieval";
    type Config = RetrievalConfig;

    fn build(cfg: &RetrievalConfig, device: Device) -> Result<Self> {
        let r = Reader::open(&cfg.data).map_err(Error::task)?;
        let params = &r.meta().params;
        let vocab = crate::common::word_list(params, &cfg.captions_field, "vocabulary")?;
        let mut splits = BTreeMap::new();
        splits.insert(
            "train".to_string(),
            load_split(&r, cfg, "train", cfg.max_train)?,
        );
        for s in ["val", "test"] {
            splits.insert(s.to_string(), load_split(&r, cfg, s, None)?);
        }
        let index: HashMap<String, i64> = vocab
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as i64))
            .collect();
        let id = |w: &str| index.get(w).copied();
        let colours = params["colours"].as_array();
        let shapes = params["shapes"].as_array();
        let (tags, colour_shape_tags) = match (colours, shapes) {
            (Some(c), Some(sh)) => {
                let mut t = Vec::new();
                for c in c.iter().filter_map(|c| c.as_str()) {
                    for s in sh.iter().filter_map(|s| s.as_str()) {
                        if let (Some(a), Some(b)) = (id(c), id(s)) {
                            t.push((format!("{c} {s}"), vec![a, b]));
                        }
                    }
                }
                (t, true)
            }
            _ => (frequent_word_tags(&vocab, &splits["train"].captions), false),
        };
        let init = if cfg.word2vec_init {
            Some(model::word2vec_init(
                &splits["train"].captions,
                &vocab,
                cfg.word_dim,
            )?)
        } else {
            None
        };
        let mut vs = nn::VarStore::new(device);
        let model = JointModel::new(&vs.root(), cfg, vocab.len() as i64, init.as_ref())?;
        if let Some(w) = &cfg.backbone_weights {
            let opts = mm_vision::LoadOptions {
                var_prefix: "image.backbone.".into(),
                ..Default::default()
            };
            mm_vision::load_safetensors(&mut vs, w, &opts).map_err(Error::task)?;
        }
        Ok(Self {
            cfg: cfg.clone(),
            vs,
            model,
            vocab,
            index,
            splits,
            tags,
            colour_shape_tags,
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
        self.splits["train"].captions.len()
    }

    fn prefetch(&mut self, batch: &[usize]) -> Result<()> {
        match self.splits.get_mut("train") {
            Some(t) => t.images.prefetch(batch),
            None => Ok(()),
        }
    }

    fn train_step(&mut self, batch: &[usize], ctx: &StepContext) -> Result<Tensor> {
        let images = self
            .splits
            .get_mut("train")
            .ok_or_else(|| task_err("no training split"))?
            .images
            .take(batch)?;
        let train = &self.splits["train"];
        // one caption per image, drawn from libtorch's generator (seeded per step)
        let sents = crate::common::draw_one(&train.captions, batch)?;
        let im = self.model.embed_images(&images, self.device, true)?;
        let s = self.model.embed_text(&sents, self.device, true)?;
        // VSE++ from scratch: hardest negatives only after a warm-up on all negatives (with
        // random features the hardest negative is noise and training collapses)
        let hardest_ok = ctx.epoch >= self.cfg.sum_warmup_epochs;
        self.model.loss(&im, &s, self.cfg.margin, hardest_ok)
    }

    fn after_step(&mut self) -> Result<()> {
        self.model.after_step()
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let sp = self.split(split)?;
        let im = self.embed_images(&sp.images)?;
        let (sents, owner) = Self::caption_list(sp);
        let txt = self.embed_sentences(&sents, false)?;
        let sims = Similarities::from_tensor(&im.f_matmul(&txt.f_tr()?)?).map_err(Error::task)?;
        let i2t = sims.image_to_text(&owner).map_err(Error::task)?;
        let t2i = sims.text_to_image(&owner).map_err(Error::task)?;
        let n = sp.captions.len() as f64;
        let mut m = Metrics::new();
        for (dir, r) in [("i2t", i2t), ("t2i", t2i)] {
            m.insert(format!("r1_{dir}"), r.r1);
            m.insert(format!("r5_{dir}"), r.r5);
            m.insert(format!("r10_{dir}"), r.r10);
            m.insert(format!("medr_{dir}"), r.median_rank);
            m.insert(format!("meanr_{dir}"), r.mean_rank);
        }
        m.insert(
            "rsum".into(),
            i2t.r1 + i2t.r5 + i2t.r10 + t2i.r1 + t2i.r5 + t2i.r10,
        );
        // a random ranking puts one of an image's captions first with probability 1/N
        // (i2t), and a caption's image first with probability 1/N (t2i)
        m.insert("chance_r1".into(), 100.0 / n);
        if let Some((p, chance)) = self.tag_precision(sp, &im)? {
            m.insert("tag_p1".into(), p);
            m.insert("tag_p1_chance".into(), chance);
        }
        Ok(m)
    }

    fn metric_names(&self, split: &str) -> Result<Option<Vec<String>>> {
        let mut names: Vec<String> = ["i2t", "t2i"]
            .iter()
            .flat_map(|dir| ["r1", "r5", "r10", "medr", "meanr"].map(|m| format!("{m}_{dir}")))
            .chain(["rsum", "chance_r1"].map(String::from))
            .collect();
        if self.scores_tags(self.split(split)?) {
            names.extend(["tag_p1", "tag_p1_chance"].map(String::from));
        }
        Ok(Some(names))
    }

    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Image, InputKind::Sample, InputKind::Text]
    }

    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        let test = self.split("test")?;
        let (sents, _) = Self::caption_list(test);
        let txt = self.embed_sentences(&sents, false)?;
        let test_im = self.embed_images(&test.images)?;
        let bank = self.caption_bank()?;
        let top = |scores: &Tensor, k: i64| -> Result<Vec<(i64, f64)>> {
            let k = k.min(scores.size()[0]);
            let (v, i) = scores.f_topk(k, 0, true, true)?;
            let v = Vec::<f64>::try_from(&v.to_device(Device::Cpu).to_kind(Kind::Double))?;
            let i = Vec::<i64>::try_from(&i.to_device(Device::Cpu))?;
            Ok(i.into_iter().zip(v).collect())
        };
        let mut report = Vec::new();
        let mut rows = Vec::new();
        for input in inputs {
            if let Input::Text(q) = input {
                let ids = self.encode_words(q);
                if ids.is_empty() {
                    return Err(task_err(format!(
                        "`{q}`: no word of the query is in the vocabulary"
                    )));
                }
                let e = self.embed_sentences(&[&ids], false)?;
                let hits = top(&test_im.f_matmul(&e.f_tr()?)?.f_squeeze_dim(1)?, 5)?;
                for (k, &(i, _)) in hits.iter().enumerate().take(3) {
                    rows.push((
                        test.images.read(&[i as usize])?.get(0),
                        vec![
                            format!("query: {q}"),
                            format!("image #{} (test:{i})", k + 1),
                        ],
                    ));
                }
                report.push(serde_json::json!({ "query": q, "images": hits.iter().map(|(i, s)| serde_json::json!({"test": i, "score": s})).collect::<Vec<_>>() }));
            } else {
                let (pix, name) = self.input_image(input)?;
                let e = self.model.embed_images(&pix, self.device, false)?;
                let caps = top(&txt.f_matmul(&e.f_tr()?)?.f_squeeze_dim(1)?, 5)?;
                let captions: Vec<String> = caps
                    .iter()
                    .map(|&(i, _)| self.sentence(sents[i as usize]))
                    .collect();
                let tags: Vec<String> = self
                    .tag_images(&e, &bank, 3)?
                    .remove(0)
                    .into_iter()
                    .map(|(t, w)| format!("{t} ({w:.2})"))
                    .collect();
                let mut lines: Vec<String> =
                    captions.iter().take(3).map(|c| format!("- {c}")).collect();
                if !tags.is_empty() {
                    lines.push(format!("tags: {}", tags.join(", ")));
                }
                rows.push((pix.get(0), lines));
                report
                    .push(serde_json::json!({ "image": name, "captions": captions, "tags": tags }));
            }
        }
        let png = out_dir.join("retrieval.png");
        plot::save_png_atomic(&pictures::gallery(&rows)?, &png)?;
        Ok(serde_json::json!({ "results": report, "picture": png }))
    }
}

/// Tags for data sets without a colour/shape list: the words of the training captions outside
/// the 25 most frequent (which are function words in any caption corpus), alphabetic only.
fn frequent_word_tags(vocab: &[String], captions: &[Vec<Vec<i64>>]) -> Vec<(String, Vec<i64>)> {
    let mut freq = vec![0usize; vocab.len()];
    for w in captions.iter().flatten().flatten() {
        if let Some(f) = freq.get_mut(*w as usize) {
            *f += 1;
        }
    }
    let mut by_freq: Vec<usize> = (0..vocab.len()).collect();
    by_freq.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
    let common: std::collections::HashSet<usize> = by_freq.iter().take(25).copied().collect();
    (0..vocab.len())
        .filter(|w| {
            freq[*w] > 0 && !common.contains(w) && vocab[*w].chars().all(char::is_alphabetic)
        })
        .map(|w| (vocab[w].clone(), vec![w as i64]))
        .collect()
}
