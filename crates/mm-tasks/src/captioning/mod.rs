//! Image captioning: Show, Attend and Tell (Xu et al. 2015), soft attention.
//!
//! - **Encoder**: an `mm-vision` backbone's feature map at a chosen stage, `L = H x W`
//!   annotation vectors of `D` channels (14x14x512 for VGG `block5` at 224 pixels; 8x8x128 for
//!   the small CNN on SynthAV), frozen or fine-tuned.
//! - **Decoder** ([`crate::sat::SatDecoder`], shared with any task that decodes a feature map
//!   into a sequence): an LSTM cell whose initial state is `tanh` of linear maps of the mean
//!   annotation; at each step the `mm-fusion` soft attention over the annotations gives a
//!   context vector scaled by the gating scalar `beta = sigmoid(f_beta(h))`; the input is the
//!   previous word's embedding and the context; the **deep output layer** predicts the next
//!   word from `E y_{t-1} + L_h h_t + L_z z_t` (dropout, then a linear layer to the vocabulary).
//! - **Loss**: the paper's per-caption objective (equation 14), the caption's negative
//!   log-likelihood under teacher forcing plus the doubly stochastic attention penalty
//!   `lambda * sum_i (1 - sum_t alpha_ti)^2`, summed over the batch and divided by its number of
//!   words (so the cross-entropy part is the usual per-word mean, and the penalty keeps the
//!   paper's proportion to it). The popular PyTorch tutorial takes the **mean** over locations
//!   instead of the sum and adds it to the per-word mean, which changes that proportion by a
//!   factor of `L / T` (196 locations, about 12 words).
//! - **Self-critical sequence training** (`objective = "scst"`, Rennie et al. 2017), to
//!   fine-tune a cross-entropy model (`init_weights`) on the metric itself: for each training
//!   image `K` captions are sampled from the decoder (`scst_samples`), each is rewarded with its
//!   CIDEr-D against that image's references (document frequencies from the training
//!   references), and the loss is `-(r - b) * log p(caption)`, averaged over the sampled
//!   words. The baseline `b` is the mean reward of the image's other samples (Luo 2020,
//!   `scst_baseline = "sample_mean"`, the default) or the greedy caption's reward (the paper's,
//!   `"greedy"`). The attention penalty is not applied under SCST.
//! - **Inference**: greedy or beam search (`beam_size`), with length normalisation
//!   `score / length^length_alpha` (0: none), batched: the beams of many images step
//!   together ([`Captioning::caption`]; evaluation decodes 100 images at a time).
//! - **Metrics** (`mm_text::metrics`): BLEU-1..4 as coco-caption computes them, ROUGE-L and
//!   CIDEr-D; and the same for a nearest-neighbour baseline (the first caption of the training
//!   image nearest in the encoder's mean-annotation space), so the decoder's contribution shows.

mod config;
mod data;
mod pictures;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use mm_plot as plot;
use mm_train::{Error, Input, InputKind, Metrics, Result, StepContext, Task};
use mm_vision::{Backbone, IMAGENET_MEAN, IMAGENET_STD, backbone, normalize_batch};
use tch::{Device, Kind, Tensor, nn};

pub use config::{CaptioningConfig, MAX_SCST_SAMPLES, Objective, ScstBaseline, defaults};

use crate::sat::{SatConfig, SatDecoder};
use data::Split;

/// The captioning task.
#[derive(Debug)]
pub struct Captioning {
    cfg: CaptioningConfig,
    vs: nn::VarStore,
    cnn: Box<dyn Backbone>,
    stage: String,
    decoder: SatDecoder,
    words: Vec<String>,
    splits: BTreeMap<String, Split>,
    /// CIDEr-D over the training references (`objective = "scst"` only).
    reward: Option<mm_text::metrics::CiderD>,
    /// Samples evaluation and inference process at once ([`Task::set_eval_batch_size`]).
    eval_batch: usize,
    device: Device,
}

/// Metric-name prefixes: the model's captions, and the nearest-neighbour baseline's.
const MODEL_PREFIX: &str = "";
const NN_PREFIX: &str = "nn_";

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

impl Captioning {
    fn split(&self, name: &str) -> Result<&Split> {
        crate::common::split(&self.splits, name)
    }

    /// Annotations `[N, L, D]` of images `uint8 [N, H, W, 3]`, and the map's `(h, w)`.
    fn encode(&self, images: &Tensor, train: bool) -> Result<(Tensor, (i64, i64))> {
        let mut x = normalize_batch(images, &IMAGENET_MEAN, &IMAGENET_STD, self.device)
            .map_err(Error::task)?;
        if let Some(s) = self.cfg.image_size
            && (x.size()[2] != s || x.size()[3] != s)
        {
            x = x.f_upsample_bilinear2d([s, s], false, None, None)?;
        }
        // a frozen encoder runs in eval mode, as a torchvision feature extractor does: its
        // batch-norm statistics stay those of its weights (and equal cached features)
        let train = train && !self.cfg.freeze_backbone;
        let map = self
            .cnn
            .feature_map(&x, &self.stage, train)
            .map_err(Error::task)?;
        let (n, d, h, w) = (map.size()[0], map.size()[1], map.size()[2], map.size()[3]);
        Ok((map.f_view([n, d, h * w])?.f_transpose(1, 2)?, (h, w)))
    }

    /// Annotations `[N, L, D]` of cached feature maps `[N, D, h, w]` (`task.image_features`).
    fn annotations_of_features(&self, maps: &Tensor) -> Result<Tensor> {
        let (n, d, h, w) = maps.size4()?;
        Ok(maps
            .f_to_device(self.device)?
            .f_view([n, d, h * w])?
            .f_transpose(1, 2)?)
    }

    /// Annotations of samples `k` of split `name`: their cached features when the task has
    /// them, else their images through the encoder; read now.
    fn split_annotations(&self, name: &str, k: &[usize], train: bool) -> Result<Tensor> {
        let sp = self.split(name)?;
        match &sp.features {
            Some(f) => self.annotations_of_features(&f.read(k)?),
            None => Ok(self.encode(&sp.images.read(k)?, train)?.0),
        }
    }

    /// [`Self::split_annotations`] of a training batch, taking what
    /// [`Task::prefetch`] read ahead.
    fn train_annotations(&mut self, batch: &[usize]) -> Result<Tensor> {
        let train = self
            .splits
            .get_mut("train")
            .ok_or_else(|| bad("no training split"))?;
        match &mut train.features {
            Some(f) => {
                let maps = f.take(batch)?;
                self.annotations_of_features(&maps)
            }
            None => {
                let images = train.images.take(batch)?;
                Ok(self.encode(&images, true)?.0)
            }
        }
    }

    /// Captions of every sample of split `name`, `eval_batch` at a time.
    fn caption_split(&self, name: &str) -> Result<Vec<String>> {
        let n = self.split(name)?.images.len();
        let mut out = Vec::with_capacity(n);
        for s in (0..n).step_by(self.eval_batch) {
            let k: Vec<usize> = (s..(s + self.eval_batch).min(n)).collect();
            let f = self.split_annotations(name, &k, false)?;
            out.extend(
                self.decoder
                    .beam_search(&f)?
                    .iter()
                    .map(|d| self.sentence(&d.tokens)),
            );
        }
        Ok(out)
    }

    /// Captions (beam search, `beam_size` beams per image, at most `max_len` words) of
    /// images `uint8 [N, H, W, 3]`, decoded in batches of `batch` images; each image's
    /// caption does not depend on the others in its batch.
    pub fn caption(&self, images: &Tensor, batch: usize) -> Result<Vec<String>> {
        if images.dim() != 4 || images.size()[3] != 3 || batch == 0 {
            return Err(bad(format!(
                "captions need images [N, H, W, 3] and a positive batch, got {:?} and {batch}",
                images.size()
            )));
        }
        let n = images.size()[0];
        let mut out = Vec::with_capacity(n as usize);
        for s in (0..n).step_by(batch) {
            let (f, _) = self.encode(&images.narrow(0, s, (batch as i64).min(n - s)), false)?;
            out.extend(
                self.decoder
                    .beam_search(&f)?
                    .iter()
                    .map(|d| self.sentence(&d.tokens)),
            );
        }
        Ok(out)
    }

    fn sentence(&self, tokens: &[i64]) -> String {
        sentence_of(&self.words, tokens)
    }

    /// The teacher-forced loss of one caption per image of `batch` (drawn among its captions):
    /// per-word negative log-likelihood and the attention penalty ([`SatDecoder::teacher_forced_loss`]).
    fn cross_entropy_step(&mut self, batch: &[usize]) -> Result<Tensor> {
        let feats = self.train_annotations(batch)?;
        let train = &self.splits["train"];
        let caps = crate::common::draw_one(&train.captions, batch)?;
        self.decoder
            .teacher_forced_loss(&feats, &caps, self.cfg.alpha_c)
    }

    /// The self-critical loss: `-(r - b) log p` of sampled captions, averaged over their words.
    fn scst_step(&mut self, batch: &[usize]) -> Result<Tensor> {
        let feats = self.train_annotations(batch)?;
        let reward = self
            .reward
            .as_ref()
            .ok_or_else(|| bad("SCST needs the training references' CIDEr-D"))?;
        let k = self.cfg.scst_samples;
        // rows: image 0's k samples, image 1's, ...
        let expanded = feats.f_repeat_interleave_self_int(k as i64, 0, None)?;
        let (tokens, logp, mask) = self.decoder.rollout(&expanded, true, true)?;
        let score = |i: usize, t: &[i64]| reward.score(batch[i], &self.sentence(t));
        let r: Vec<f64> = tokens
            .iter()
            .enumerate()
            .map(|(row, t)| score(row / k, t))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::task)?;
        let baseline: Vec<f64> = match self.cfg.scst_baseline {
            ScstBaseline::SampleMean => r
                .chunks(k)
                .flat_map(|rs| {
                    let sum: f64 = rs.iter().sum();
                    rs.iter().map(move |x| (sum - x) / (k - 1) as f64)
                })
                .collect(),
            ScstBaseline::Greedy => {
                let (greedy, _, _) =
                    tch::no_grad(|| self.decoder.rollout(&feats.detach(), false, false))?;
                let g: Vec<f64> = greedy
                    .iter()
                    .enumerate()
                    .map(|(i, t)| score(i, t))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(Error::task)?;
                g.iter().flat_map(|&x| std::iter::repeat_n(x, k)).collect()
            }
        };
        let advantage: Vec<f32> = r
            .iter()
            .zip(&baseline)
            .map(|(a, b)| (a - b) as f32)
            .collect();
        tracing::debug!(
            reward = r.iter().sum::<f64>() / r.len() as f64,
            baseline = baseline.iter().sum::<f64>() / baseline.len() as f64,
            "scst step"
        );
        let advantage = Tensor::from_slice(&advantage)
            .to_device(self.device)
            .f_unsqueeze(0)?;
        Ok((logp * &mask * advantage)
            .f_sum(Kind::Float)?
            .f_neg()?
            .f_div(&mask.f_sum(Kind::Float)?)?)
    }

    /// Mean annotations (the nearest-neighbour baseline's space) of split `name`, in chunks.
    fn mean_annotations(&self, name: &str) -> Result<Tensor> {
        let n = self.split(name)?.images.len();
        crate::common::chunked_rows(n, self.eval_batch, |s, e| {
            let k: Vec<usize> = (s..e).collect();
            let f = self.split_annotations(name, &k, false)?;
            mm_fusion::l2_normalize(&f.f_mean_dim(&[1i64][..], false, None::<Kind>)?)
                .map_err(Error::task)
        })
    }
}

impl Task for Captioning {
    const NAME: &'static str = "captioning";
    type Config = CaptioningConfig;

    fn build(cfg: &CaptioningConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut cnn = backbone(&(&root / "encoder"), &cfg.backbone).map_err(Error::task)?;
        if cfg.freeze_backbone {
            cnn.set_all_trainable(false).map_err(Error::task)?;
        }
        let stage = cfg.stage.clone().unwrap_or_else(|| cnn.last_stage());
        let channels = cnn.channels(&stage).map_err(Error::task)?;
        let data::Loaded {
            words,
            start,
            end,
            splits,
        } = data::load(cfg, (cfg.backbone.arch.name(), &stage, channels))?;
        let decoder = SatDecoder::new(
            &(&root / "decoder"),
            &SatConfig {
                feature_dim: cnn.channels(&stage).map_err(Error::task)?,
                vocab: words.len() as i64,
                embed_dim: cfg.embed_dim,
                decoder_dim: cfg.decoder_dim,
                attention_dim: cfg.attention_dim,
                dropout: cfg.dropout,
                max_len: cfg.max_len,
                beam_size: cfg.beam_size,
                length_alpha: cfg.length_alpha,
                start,
                end,
            },
        )?;
        if let Some(w) = &cfg.backbone_weights {
            let opts = mm_vision::LoadOptions {
                var_prefix: "encoder.".into(),
                ..Default::default()
            };
            mm_vision::load_safetensors(&mut vs, w, &opts).map_err(Error::task)?;
        }
        if let Some(w) = &cfg.init_weights {
            let file = mm_train::run::weights_file(w)?;
            mm_vision::load_safetensors(&mut vs, &file, &Default::default())
                .map_err(Error::task)?;
        }
        let reward = match cfg.objective {
            Objective::CrossEntropy => None,
            Objective::Scst => {
                if cfg.init_weights.is_none() {
                    tracing::warn!(
                        "objective = \"scst\" without task.init_weights: sampling from an \
                         untrained decoder rarely finds a reward; start from a cross-entropy run"
                    );
                }
                let refs: Vec<Vec<String>> = splits["train"]
                    .captions
                    .iter()
                    .map(|cs| cs.iter().map(|c| sentence_of(&words, c)).collect())
                    .collect();
                Some(mm_text::metrics::CiderD::new(&refs).map_err(Error::task)?)
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            vs,
            cnn,
            stage,
            decoder,
            words,
            splits,
            reward,
            eval_batch: 100,
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
        let train = self
            .splits
            .get_mut("train")
            .ok_or_else(|| bad("no training split"))?;
        match &mut train.features {
            Some(f) => f.prefetch(batch),
            None => train.images.prefetch(batch),
        }
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        match self.cfg.objective {
            Objective::CrossEntropy => self.cross_entropy_step(batch),
            Objective::Scst => self.scst_step(batch),
        }
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let hyps = self.caption_split(split)?;
        let sp = self.split(split)?;
        let refs: Vec<Vec<String>> = sp
            .captions
            .iter()
            .map(|cs| cs.iter().map(|c| self.sentence(c)).collect())
            .collect();
        // nearest-neighbour baseline: the first caption of the closest training image
        let train = &self.splits["train"];
        let q = self.mean_annotations(split)?;
        let db = self.mean_annotations("train")?;
        let nn_idx = Vec::<i64>::try_from(
            &q.f_matmul(&db.f_tr()?)?
                .f_argmax(-1, false)?
                .to_device(Device::Cpu),
        )?;
        let nn_hyps: Vec<String> = nn_idx
            .iter()
            .map(|&j| self.sentence(&train.captions[j as usize][0]))
            .collect();
        let mut m = Metrics::new();
        for (prefix, h) in [(MODEL_PREFIX, &hyps), (NN_PREFIX, &nn_hyps)] {
            let b = mm_text::metrics::coco_bleu(h, &refs).map_err(Error::task)?;
            for k in 0..4 {
                m.insert(format!("{prefix}bleu{}", k + 1), 100.0 * b.corpus[k]);
            }
            m.insert(
                format!("{prefix}cider_d"),
                100.0 * mm_text::metrics::cider_d(h, &refs).map_err(Error::task)?.0,
            );
            m.insert(
                format!("{prefix}rouge_l"),
                100.0 * mm_text::metrics::rouge_l(h, &refs).map_err(Error::task)?.0,
            );
        }
        Ok(m)
    }

    fn metric_names(&self, split: &str) -> Result<Option<Vec<String>>> {
        self.split(split)?;
        let per = ["bleu1", "bleu2", "bleu3", "bleu4", "cider_d", "rouge_l"];
        Ok(Some(
            [MODEL_PREFIX, NN_PREFIX]
                .iter()
                .flat_map(|p| per.map(|m| format!("{p}{m}")))
                .collect(),
        ))
    }

    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Image, InputKind::Sample]
    }

    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        let mut out = Vec::new();
        for (k, input) in inputs.iter().enumerate() {
            let pixels = crate::common::input_image(|s| Ok(&self.split(s)?.images), input)?;
            let (f, hw) = self.encode(&pixels, false)?;
            let d = self
                .decoder
                .beam_search(&f)?
                .pop()
                .ok_or_else(|| bad("no caption decoded"))?;
            let png = out_dir.join(format!("caption_{k}.png"));
            plot::save_png_atomic(&pictures::strip(&pixels.get(0), &d, &self.words, hw)?, &png)?;
            out.push(serde_json::json!({ "image": input.to_string(), "caption": self.sentence(&d.tokens), "attention": png }));
        }
        Ok(serde_json::Value::Array(out))
    }
}

/// Words of `tokens` joined by spaces (`<?>` for an id outside the vocabulary).
fn sentence_of(words: &[String], tokens: &[i64]) -> String {
    tokens
        .iter()
        .map(|&t| words.get(t as usize).map_or("<?>", String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
