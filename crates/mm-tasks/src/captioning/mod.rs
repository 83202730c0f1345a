//! Image captioning: Show, Attend and Tell (Xu et al. 2015), soft attention.
//!
//! - **Encoder**: an `mm-vision` backbone's feature map at a chosen stage, `L = H x W`
//!   annotation vectors of `D` channels (14x14x512 for VGG `block5` at 224 pixels; 8x8x128 for
//!   the small CNN on SynthAV), frozen or fine-tuned.
//! - **Decoder**: an LSTM cell whose initial state is `tanh` of linear maps of the mean
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use mm_data::Reader;
use mm_fusion::{SoftAttention, SoftAttentionConfig};
use mm_plot as plot;
use mm_train::{Error, Metrics, Result, StepContext, Task};
use mm_vision::{Backbone, BackboneConfig, IMAGENET_MEAN, IMAGENET_STD, backbone, normalize_batch};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// The `[task]` table of a captioning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptioningConfig {
    /// The data set (SynthAV, Flickr8k, COCO as `mm data convert` writes them).
    pub data: PathBuf,
    /// The encoder.
    pub backbone: BackboneConfig,
    /// The stage whose feature map is attended (`None`: the last).
    #[serde(default)]
    pub stage: Option<String>,
    /// torchvision-named weights for the backbone.
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
    /// Freeze the encoder.
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Resize images to this side first.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// Word embedding size `m`.
    pub embed_dim: i64,
    /// LSTM size `n`.
    pub decoder_dim: i64,
    /// Attention MLP size.
    pub attention_dim: i64,
    /// Dropout before the output layer.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// `lambda` of the doubly stochastic attention penalty.
    #[serde(default = "default_alpha_c")]
    pub alpha_c: f64,
    /// Longest generated caption (words).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Beam size for evaluation and inference (1: greedy).
    #[serde(default = "default_beam")]
    pub beam_size: usize,
    /// Length normalisation exponent of beam scores.
    #[serde(default)]
    pub length_alpha: f64,
    /// Weights that start this run: a captioning run or checkpoint directory (its best
    /// checkpoint) or model file. Every variable of the model must be found there (the same
    /// data set's vocabulary and the same sizes); loaded after `backbone_weights`.
    #[serde(default)]
    pub init_weights: Option<PathBuf>,
    /// The training objective.
    #[serde(default)]
    pub objective: Objective,
    /// Captions sampled per image and step under `objective = "scst"` (1 to [`MAX_SCST_SAMPLES`]).
    #[serde(default = "default_scst_samples")]
    pub scst_samples: usize,
    /// The reward baseline under `objective = "scst"`.
    #[serde(default)]
    pub scst_baseline: ScstBaseline,
}

/// What a captioning run minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Teacher-forced negative log-likelihood plus the doubly stochastic attention penalty.
    #[default]
    CrossEntropy,
    /// Self-critical sequence training: REINFORCE with CIDEr-D rewards of sampled captions.
    Scst,
}

/// The baseline subtracted from each sampled caption's reward under SCST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScstBaseline {
    /// The mean reward of the same image's other samples (needs `scst_samples >= 2`).
    #[default]
    SampleMean,
    /// The reward of the greedy caption (one extra decoding pass without gradients).
    Greedy,
}

fn default_dropout() -> f64 {
    0.5
}
fn default_alpha_c() -> f64 {
    1.0
}

/// The most SCST samples per image (Rennie et al. and Luo use 1-16).
pub const MAX_SCST_SAMPLES: usize = 64;

fn default_max_len() -> usize {
    20
}
fn default_beam() -> usize {
    3
}
fn default_scst_samples() -> usize {
    5
}

#[derive(Debug)]
struct Split {
    images: Tensor,
    captions: Vec<Vec<Vec<i64>>>,
}

/// The captioning task.
#[derive(Debug)]
pub struct Captioning {
    cfg: CaptioningConfig,
    vs: nn::VarStore,
    cnn: Box<dyn Backbone>,
    stage: String,
    embed: nn::Embedding,
    init_h: nn::Linear,
    init_c: nn::Linear,
    attention: SoftAttention,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    l_h: nn::Linear,
    l_z: nn::Linear,
    out: nn::Linear,
    words: Vec<String>,
    start: i64,
    end: i64,
    splits: BTreeMap<String, Split>,
    /// CIDEr-D over the training references (`objective = "scst"` only).
    reward: Option<mm_text::metrics::CiderD>,
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

/// One decoded caption: words (without `<start>`/`<end>`) and the attention map of each word.
#[derive(Debug, Clone)]
struct Decoded {
    tokens: Vec<i64>,
    alphas: Vec<Vec<f32>>,
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
        let map = self
            .cnn
            .feature_map(&x, &self.stage, train)
            .map_err(Error::task)?;
        let (n, d, h, w) = (map.size()[0], map.size()[1], map.size()[2], map.size()[3]);
        Ok((map.f_view([n, d, h * w])?.f_transpose(1, 2)?, (h, w)))
    }

    fn init_state(&self, feats: &Tensor) -> Result<(Tensor, Tensor)> {
        let mean = feats.f_mean_dim(&[1i64][..], false, None::<Kind>)?;
        Ok((
            mean.apply(&self.init_h).f_tanh()?,
            mean.apply(&self.init_c).f_tanh()?,
        ))
    }

    /// One decoder step: log-probabilities of the next word `[N, V]`, the new state and the
    /// attention weights `[N, L]`. `proj` is `attention.project(feats)`, computed once.
    fn step(
        &self,
        feats: &Tensor,
        proj: &Tensor,
        prev: &Tensor,
        state: &(Tensor, Tensor),
        train: bool,
    ) -> Result<(Tensor, (Tensor, Tensor), Tensor)> {
        let att = self
            .attention
            .forward_projected(feats, proj, &state.0, None)
            .map_err(Error::task)?;
        let e = Tensor::f_embedding(&self.embed.ws, prev, -1, false, false)?;
        let input = Tensor::f_cat(&[&e, &att.context], 1)?;
        let (h, c) = Tensor::f_lstm_cell(
            &input,
            &[&state.0, &state.1],
            &self.w_ih,
            &self.w_hh,
            Some(&self.b_ih),
            Some(&self.b_hh),
        )?;
        let deep = (&e + h.apply(&self.l_h) + att.context.apply(&self.l_z))
            .f_dropout(self.cfg.dropout, train)?;
        let logp = deep.apply(&self.out).f_log_softmax(-1, Kind::Float)?;
        Ok((logp, (h, c), att.weights))
    }

    /// Beam search (beam 1 = greedy) for a batch of images' annotations `[B, L, D]`: each
    /// image keeps its own `k` beams, and the beams of all images step as one batch of
    /// `B * k` rows (a slot without a live beam scores minus infinity). Per image, as in the
    /// one-image search: the `k` best extensions of its live beams are kept, those ending in
    /// `<end>` are set aside as finished, and its search stops when `k` captions are finished
    /// or none is left live; the best finished caption (by `score / (len + 1)^length_alpha`)
    /// wins, or the best live one if none finished within `max_len` words.
    fn beam_batch(&self, feats: &Tensor) -> Result<Vec<Decoded>> {
        #[derive(Clone)]
        struct Beam {
            tokens: Vec<i64>,
            alphas: Vec<Vec<f32>>,
            score: f64,
        }
        let k = self.cfg.beam_size.max(1);
        let (nb, l) = (feats.size()[0], feats.size()[1] as usize);
        let images = nb as usize;
        let ki = k as i64;
        // row i * k + j: image i's slot j
        let rows = |t: &Tensor| t.f_repeat_interleave_self_int(ki, 0, None);
        let proj = self.attention.project(feats).map_err(Error::task)?;
        let (f, p) = (rows(feats)?, rows(&proj)?);
        let (h0, c0) = self.init_state(feats)?;
        let mut state = (rows(&h0)?, rows(&c0)?);
        let empty = Beam {
            tokens: vec![],
            alphas: vec![],
            score: 0.0,
        };
        let mut live: Vec<Vec<Beam>> = vec![vec![empty]; images];
        let mut done: Vec<Vec<Beam>> = vec![Vec::new(); images];
        let mut finished = vec![false; images];
        for _ in 0..self.cfg.max_len {
            let mut prev = vec![self.start; images * k];
            let mut base = vec![f32::NEG_INFINITY; images * k];
            for (i, beams) in live.iter().enumerate() {
                if finished[i] {
                    continue;
                }
                for (j, b) in beams.iter().enumerate() {
                    prev[i * k + j] = b.tokens.last().copied().unwrap_or(self.start);
                    base[i * k + j] = b.score as f32;
                }
            }
            let prev = Tensor::from_slice(&prev).to_device(self.device);
            let (logp, (h, c), alpha) = self.step(&f, &p, &prev, &state, false)?;
            let v = logp.size()[1];
            let scores = Tensor::from_slice(&base)
                .to_device(self.device)
                .f_unsqueeze(1)?
                + &logp;
            let (top, idx) = scores.f_view([nb, ki * v])?.f_topk(ki, -1, true, true)?;
            let top = Vec::<f32>::try_from(&top.to_device(Device::Cpu).reshape([-1]))?;
            let idx = Vec::<i64>::try_from(&idx.to_device(Device::Cpu).reshape([-1]))?;
            let alpha = Vec::<f32>::try_from(&alpha.to_device(Device::Cpu).reshape([-1]))?;
            // the row each new slot continues (free slots keep their own row)
            let mut src_rows: Vec<i64> = (0..(images * k) as i64).collect();
            for i in 0..images {
                if finished[i] {
                    continue;
                }
                let mut next = Vec::with_capacity(k);
                for j in i * k..(i + 1) * k {
                    let s = top[j];
                    if s == f32::NEG_INFINITY {
                        continue;
                    }
                    let (src, word) = ((idx[j] / v) as usize, idx[j] % v);
                    let row = i * k + src;
                    let old = &live[i][src];
                    let mut alphas = old.alphas.clone();
                    alphas.push(alpha[row * l..(row + 1) * l].to_vec());
                    let mut tokens = old.tokens.clone();
                    if word == self.end {
                        done[i].push(Beam {
                            tokens,
                            alphas,
                            score: s as f64,
                        });
                    } else {
                        tokens.push(word);
                        src_rows[i * k + next.len()] = row as i64;
                        next.push(Beam {
                            tokens,
                            alphas,
                            score: s as f64,
                        });
                    }
                }
                if next.is_empty() || done[i].len() >= k {
                    finished[i] = true;
                } else {
                    live[i] = next;
                }
            }
            if finished.iter().all(|&x| x) {
                break;
            }
            let src = Tensor::from_slice(&src_rows).to_device(self.device);
            state = (h.f_index_select(0, &src)?, c.f_index_select(0, &src)?);
        }
        let norm = |b: &Beam| b.score / ((b.tokens.len() + 1) as f64).powf(self.cfg.length_alpha);
        done.into_iter()
            .zip(live)
            .map(|(d, l)| {
                let pool = if d.is_empty() { l } else { d };
                let best = pool
                    .into_iter()
                    .max_by(|a, b| norm(a).total_cmp(&norm(b)))
                    .ok_or_else(|| bad("empty beam"))?;
                Ok(Decoded {
                    tokens: best.tokens,
                    alphas: best.alphas,
                })
            })
            .collect()
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
                self.beam_batch(&f)?
                    .iter()
                    .map(|d| self.sentence(&d.tokens)),
            );
        }
        Ok(out)
    }

    fn sentence(&self, tokens: &[i64]) -> String {
        sentence_of(&self.words, tokens)
    }

    /// Decodes annotations `feats` `[B, L, D]` word by word, each word sampled from the
    /// decoder's distribution (`sample`) or the most likely one, for at most `max_len` steps.
    /// Returns each row's words (without `<end>`), the log-probability of every emitted word
    /// `[T, B]` and its mask (1 up to and including the row's `<end>`).
    fn rollout(
        &self,
        feats: &Tensor,
        sample: bool,
        train: bool,
    ) -> Result<(Vec<Vec<i64>>, Tensor, Tensor)> {
        let b = feats.size()[0];
        let mut state = self.init_state(feats)?;
        let proj = self.attention.project(feats).map_err(Error::task)?;
        let mut prev = Tensor::f_full([b], self.start, (Kind::Int64, self.device))?;
        let mut alive = vec![true; b as usize];
        let mut tokens = vec![Vec::new(); b as usize];
        let (mut logps, mut masks) = (Vec::new(), Vec::new());
        for _ in 0..self.cfg.max_len {
            let (logp, s, _) = self.step(feats, &proj, &prev, &state, train)?;
            let word = if sample {
                logp.detach()
                    .f_exp()?
                    .f_multinomial(1, true)?
                    .f_squeeze_dim(1)?
            } else {
                logp.f_argmax(-1, false)?
            };
            let picked = logp
                .f_gather(1, &word.unsqueeze(1), false)?
                .f_squeeze_dim(1)?;
            let mask: Vec<f32> = alive.iter().map(|&a| f32::from(u8::from(a))).collect();
            for ((w, a), t) in Vec::<i64>::try_from(&word.to_device(Device::Cpu))?
                .into_iter()
                .zip(alive.iter_mut())
                .zip(tokens.iter_mut())
            {
                if *a {
                    if w == self.end {
                        *a = false;
                    } else {
                        t.push(w);
                    }
                }
            }
            logps.push(picked);
            masks.push(Tensor::from_slice(&mask).to_device(self.device));
            if !alive.iter().any(|&a| a) {
                break;
            }
            prev = word;
            state = s;
        }
        Ok((
            tokens,
            Tensor::f_stack(&logps, 0)?,
            Tensor::f_stack(&masks, 0)?,
        ))
    }

    /// The teacher-forced loss: per-word negative log-likelihood and the attention penalty.
    fn cross_entropy_step(&self, batch: &[usize]) -> Result<Tensor> {
        let train = &self.splits["train"];
        let idx = crate::common::batch_index(batch);
        let caps = crate::common::draw_one(&train.captions, batch)?;
        let (feats, _) = self.encode(&train.images.index_select(0, &idx), true)?;
        let nb = batch.len();
        let steps = caps.iter().map(|c| c.len() + 1).max().unwrap_or(1);
        // inputs: <start> w1 .. wn; targets: w1 .. wn <end>; mask for the padding
        let (mut inp, mut tgt, mut mask) = (
            vec![self.start; nb * steps],
            vec![0i64; nb * steps],
            vec![0f32; nb * steps],
        );
        for (i, c) in caps.iter().enumerate() {
            for t in 0..=c.len() {
                inp[t * nb + i] = if t == 0 { self.start } else { c[t - 1] };
                tgt[t * nb + i] = if t < c.len() { c[t] } else { self.end };
                mask[t * nb + i] = 1.0;
            }
        }
        let to = |v: Vec<i64>| {
            Tensor::from_slice(&v)
                .view([steps as i64, nb as i64])
                .to_device(self.device)
        };
        let (inp, tgt) = (to(inp), to(tgt));
        let mask = Tensor::from_slice(&mask)
            .view([steps as i64, nb as i64])
            .to_device(self.device);
        let mut state = self.init_state(&feats)?;
        let proj = self.attention.project(&feats).map_err(Error::task)?;
        let (mut nll, mut alphas) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for t in 0..steps as i64 {
            let (logp, s, alpha) = self.step(&feats, &proj, &inp.get(t), &state, true)?;
            let m = mask.get(t);
            let picked = logp
                .f_gather(1, &tgt.get(t).unsqueeze(1), false)?
                .f_squeeze_dim(1)?;
            nll.push((picked * &m).f_sum(Kind::Float)?);
            alphas.push(alpha * m.unsqueeze(1));
            state = s;
        }
        let nll = Tensor::f_stack(&nll, 0)?.f_sum(Kind::Float)?.f_neg()?;
        let alpha_sum = Tensor::f_stack(&alphas, 0)?.f_sum_dim_intlist(0, false, Kind::Float)?;
        let words = mask.f_sum(Kind::Float)?;
        // the paper's per-caption objective, -log P(y | x) + lambda * sum_i (1 - sum_t alpha_ti)^2,
        // summed over the batch and divided by the number of words: the word-mean
        // cross-entropy of PyTorch practice with the penalty in the paper's proportion to it
        let penalty = alpha_sum
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_pow_tensor_scalar(2.0)?
            .f_sum(Kind::Float)?;
        Ok((nll + penalty * self.cfg.alpha_c) / words)
    }

    /// The self-critical loss: `-(r - b) log p` of sampled captions, averaged over their words.
    fn scst_step(&self, batch: &[usize]) -> Result<Tensor> {
        let reward = self
            .reward
            .as_ref()
            .ok_or_else(|| bad("SCST needs the training references' CIDEr-D"))?;
        let train = &self.splits["train"];
        let idx = crate::common::batch_index(batch);
        let (feats, _) = self.encode(&train.images.index_select(0, &idx), true)?;
        let k = self.cfg.scst_samples;
        // rows: image 0's k samples, image 1's, ...
        let expanded = feats.f_repeat_interleave_self_int(k as i64, 0, None)?;
        let (tokens, logp, mask) = self.rollout(&expanded, true, true)?;
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
                let (greedy, _, _) = tch::no_grad(|| self.rollout(&feats.detach(), false, false))?;
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

    /// Mean annotations (the nearest-neighbour baseline's space) of `images`, in chunks.
    fn mean_annotations(&self, images: &Tensor) -> Result<Tensor> {
        let n = images.size()[0];
        let mut out = Vec::new();
        for s in (0..n).step_by(256) {
            let (f, _) = self.encode(&images.narrow(0, s, 256.min(n - s)), false)?;
            out.push(
                mm_fusion::l2_normalize(&f.f_mean_dim(&[1i64][..], false, None::<Kind>)?)
                    .map_err(Error::task)?,
            );
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }

    /// An attention strip: per word, the image (x3) with its attention map laid over it.
    fn strip(image: &Tensor, d: &Decoded, words: &[String], hw: (i64, i64)) -> Result<RgbImage> {
        let scale = 3u32;
        let (tw, th) = (
            image.size()[1] as u32 * scale,
            image.size()[0] as u32 * scale,
        );
        let n = d.tokens.len() + 1;
        let mut img = RgbImage::from_pixel((tw + 4) * n as u32, th + 16, Rgb([255, 255, 255]));
        for k in 0..n {
            let alpha = &d.alphas[k.min(d.alphas.len() - 1)];
            let panel =
                crate::common::attention_panel(image, alpha, (hw.0 as u32, hw.1 as u32), scale)?;
            let x0 = k as u32 * (tw + 4);
            image::imageops::replace(&mut img, &panel, x0 as i64, 0);
            let word = if k < d.tokens.len() {
                words.get(d.tokens[k] as usize).map_or("?", String::as_str)
            } else {
                "<end>"
            };
            plot::draw_text(&mut img, x0 + 2, th + 4, word, Rgb([20, 20, 20]), 1);
        }
        Ok(img)
    }
}

impl Task for Captioning {
    const NAME: &'static str = "captioning";
    type Config = CaptioningConfig;

    fn build(cfg: &CaptioningConfig, device: Device) -> Result<Self> {
        for (name, v) in [
            ("embed_dim", cfg.embed_dim),
            ("decoder_dim", cfg.decoder_dim),
            ("attention_dim", cfg.attention_dim),
        ] {
            if v <= 0 {
                return Err(Error::InvalidParameter {
                    name,
                    reason: format!("must be positive, got {v}"),
                });
            }
        }
        if cfg.max_len == 0 || !(0.0..1.0).contains(&cfg.dropout) || cfg.alpha_c < 0.0 {
            return Err(bad(
                "max_len must be positive, dropout in [0, 1), alpha_c >= 0",
            ));
        }
        if cfg.beam_size == 0 || !cfg.length_alpha.is_finite() {
            return Err(Error::InvalidParameter {
                name: "beam_size",
                reason: format!(
                    "beam_size must be at least 1 (1 is greedy) and length_alpha finite, got {} and {}",
                    cfg.beam_size, cfg.length_alpha
                ),
            });
        }
        let min_samples = match cfg.scst_baseline {
            ScstBaseline::SampleMean => 2,
            ScstBaseline::Greedy => 1,
        };
        if cfg.objective == Objective::Scst && cfg.scst_samples < min_samples {
            return Err(Error::InvalidParameter {
                name: "scst_samples",
                reason: format!(
                    "the {:?} baseline needs at least {min_samples} samples per image, got {}",
                    cfg.scst_baseline, cfg.scst_samples
                ),
            });
        }
        if cfg.objective == Objective::Scst && cfg.scst_samples > MAX_SCST_SAMPLES {
            // every sample is a rollout kept for backward: 1000 per image took a 24 GiB
            // machine's memory (the process was killed) instead of failing here
            return Err(Error::InvalidParameter {
                name: "scst_samples",
                reason: format!(
                    "at most {MAX_SCST_SAMPLES} (each is a decoder rollout kept for backward, \
                     so a batch becomes batch_size x scst_samples rows), got {}",
                    cfg.scst_samples
                ),
            });
        }
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
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut cnn = backbone(&(&root / "encoder"), &cfg.backbone).map_err(Error::task)?;
        if cfg.freeze_backbone {
            cnn.set_all_trainable(false).map_err(Error::task)?;
        }
        let stage = cfg.stage.clone().unwrap_or_else(|| cnn.last_stage());
        let d = cnn.channels(&stage).map_err(Error::task)?;
        let (m, n, v) = (cfg.embed_dim, cfg.decoder_dim, words.len() as i64);
        let dp = &root / "decoder";
        let embed = nn::embedding(&dp / "embed", v, m, Default::default());
        let init_h = nn::linear(&dp / "init_h", d, n, Default::default());
        let init_c = nn::linear(&dp / "init_c", d, n, Default::default());
        let attention = SoftAttention::new(
            &(&dp / "attention"),
            &SoftAttentionConfig {
                feature_dim: d,
                hidden_dim: n,
                attention_dim: cfg.attention_dim,
                gate: true,
            },
        )
        .map_err(Error::task)?;
        let bound = 1.0 / (n as f64).sqrt();
        let u = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let cell = &dp / "lstm";
        let w_ih = cell.var("weight_ih", &[4 * n, m + d], u);
        let w_hh = cell.var("weight_hh", &[4 * n, n], u);
        let b_ih = cell.var("bias_ih", &[4 * n], u);
        let b_hh = cell.var("bias_hh", &[4 * n], u);
        let l_h = nn::linear(&dp / "l_h", n, m, Default::default());
        let l_z = nn::linear(&dp / "l_z", d, m, Default::default());
        let out = nn::linear(&dp / "out", m, v, Default::default());
        if let Some(w) = &cfg.backbone_weights {
            let opts = mm_vision::LoadOptions {
                var_prefix: "encoder.".into(),
                ..Default::default()
            };
            mm_vision::load_safetensors(&mut vs, w, &opts).map_err(Error::task)?;
        }
        if let Some(w) = &cfg.init_weights {
            let file = crate::common::weights_file(w)?;
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
            embed,
            init_h,
            init_c,
            attention,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            l_h,
            l_z,
            out,
            words,
            start,
            end,
            splits,
            reward,
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
        self.splits["train"].captions.len()
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        match self.cfg.objective {
            Objective::CrossEntropy => self.cross_entropy_step(batch),
            Objective::Scst => self.scst_step(batch),
        }
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let sp = self.split(split)?;
        let hyps = self.caption(&sp.images, 100)?;
        let refs: Vec<Vec<String>> = sp
            .captions
            .iter()
            .map(|cs| cs.iter().map(|c| self.sentence(c)).collect())
            .collect();
        // nearest-neighbour baseline: the first caption of the closest training image
        let train = &self.splits["train"];
        let q = self.mean_annotations(&sp.images)?;
        let db = self.mean_annotations(&train.images)?;
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

    fn infer(&mut self, inputs: &[String], out_dir: &Path) -> Result<serde_json::Value> {
        if inputs.is_empty() {
            return Err(bad("give inputs: test:K or image files"));
        }
        let mut out = Vec::new();
        for (k, input) in inputs.iter().enumerate() {
            let pixels = crate::common::input_image(&self.split("test")?.images, input)?;
            let (f, hw) = self.encode(&pixels, false)?;
            let d = self
                .beam_batch(&f)?
                .pop()
                .ok_or_else(|| bad("no caption decoded"))?;
            let png = out_dir.join(format!("caption_{k}.png"));
            plot::save_png_atomic(&Self::strip(&pixels.get(0), &d, &self.words, hw)?, &png)?;
            out.push(serde_json::json!({ "image": input, "caption": self.sentence(&d.tokens), "attention": png }));
        }
        Ok(serde_json::Value::Array(out))
    }
}

/// The defaults of `mm train captioning`: SynthAV, small CNN (8x8 map), minutes on a CPU.
pub fn defaults() -> mm_train::RunConfig<CaptioningConfig> {
    use mm_train::{Autocast, Mode, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
    mm_train::RunConfig {
        train: TrainConfig {
            epochs: 60,
            max_steps: 0,
            batch_size: 64,
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
            monitor: "cider_d".into(),
            mode: Mode::Max,
            patience: 8,
            keep_last: 2,
            autocast: Autocast::Off,
        },
        task: CaptioningConfig {
            data: PathBuf::from("data/synthav.h5"),
            backbone: BackboneConfig::headless(mm_vision::Arch::SmallCnn),
            stage: None,
            backbone_weights: None,
            freeze_backbone: false,
            image_size: None,
            embed_dim: 64,
            decoder_dim: 512,
            attention_dim: 128,
            dropout: 0.1,
            alpha_c: 1.0,
            max_len: 20,
            beam_size: 3,
            length_alpha: 0.0,
            init_weights: None,
            objective: Objective::CrossEntropy,
            scst_samples: default_scst_samples(),
            scst_baseline: ScstBaseline::SampleMean,
        },
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
