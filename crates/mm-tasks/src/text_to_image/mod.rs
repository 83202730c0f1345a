//! Text-to-image: a text-conditioned GAN (GAN-INT-CLS, Reed et al. 2016,
//! <https://github.com/reedscot/icml2016>), trained on the engine with two optimizer groups.
//!
//! - **Text**: the mean of learned word embeddings is the sentence vector `t` (trained end to
//!   end with the discriminator; a pretrained frozen encoder is not wired yet). The generator
//!   and the discriminator each compress it, `LeakyReLU(0.2)(W t)` to `text_dim` (128), as
//!   the reference does.
//! - **Generator** (`model.rs`): DCGAN at 64x64 fed `[z; compress(t)]`, `z ~ N(0, I)` of
//!   `noise_dim` (100).
//! - **Discriminator**: DCGAN's, with the compressed text replicated over its 4x4 map.
//! - **Losses** (binary cross-entropy on logits): the discriminator learns real image + right
//!   text = real, generated image + right text = fake and, with **CLS** (`cls = true`), real
//!   image + wrong text = fake, the last two weighted 1/2 as in the reference. The generator
//!   learns to make the discriminator call its image + text real and, with **INT** (`int =
//!   true`), also for the text vector `beta t1 + (1 - beta) t2` interpolated between two
//!   texts of the batch (`int_beta`, 0.5). `conditional = false` zeroes the text: an
//!   unconditional GAN, the lower bound. The four variants GAN, GAN-CLS, GAN-INT, GAN-INT-CLS
//!   are `cls` x `int`.
//! - **A step** updates the `discriminator` group (`d.` and `text.`), then the `generator`
//!   group (`g.`), each with its own Adam from `[train.optimizers.<group>]` (the reference's
//!   learning rate 2e-4 and betas 0.5, 0.999 by default). The generator's images of the
//!   discriminator's update are reused for its own, as PyTorch's DCGAN loop does.
//! - **Evaluation**: an attribute classifier trained on the real training images (colours
//!   present, shapes present, scene type; `metrics.rs`) judges the image generated for the
//!   first caption of each of the split's first `eval_texts` samples, against that sample's
//!   attributes: `colour_accuracy`, `shape_accuracy`, `scene_accuracy` and their mean
//!   `cond_accuracy`; the same for the real images (`real_*`, the upper bound) and for the
//!   training prior (`prior_*`). Also `frechet` (the Frechet distance between real and
//!   generated images in the classifier's feature space) and `diversity` (the mean pairwise
//!   RMS distance of `samples` images drawn for one text; 0 is mode collapse).
//! - **Inference**: `mm infer text-to-image --text "a large red circle in the forest"
//!   --samples 8` writes a PNG grid, one row per text; unknown words are dropped and reported,
//!   a text with none known is an error.

mod config;
mod data;
mod metrics;
mod model;
mod pictures;

use std::path::Path;

use mm_train::{Error, Input, InputKind, Metrics, ParamGroup, Result, StepContext, Task};
use tch::{Device, Kind, Tensor, nn};

pub use config::{TextToImageConfig, defaults};

use data::Data;
use metrics::{Evaluator, Judged, to_unit};
use model::{Discriminator, Generator, TextEncoder};

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

/// The seed of the codes `z` that evaluation and inference draw (the same images every time).
const EVAL_SEED: i64 = 0x1a7e;
/// Texts whose `samples` images the diversity metric compares.
const DIVERSITY_TEXTS: usize = 16;

/// What the discriminator's update of a step hands to the generator's: the images it
/// generated (with their graph) and the sentence vectors (detached).
#[derive(Debug)]
struct Pending {
    step: usize,
    fake: Tensor,
    text: Tensor,
}

/// The text-to-image task.
#[derive(Debug)]
pub struct TextToImage {
    cfg: TextToImageConfig,
    vs: nn::VarStore,
    text: TextEncoder,
    g: Generator,
    d: Discriminator,
    data: Data,
    pending: Option<Pending>,
    evaluator: Option<Evaluator>,
    eval_batch: usize,
    device: Device,
}

/// Binary cross-entropy of logits against a constant target.
fn bce(logits: &Tensor, target: f64) -> Result<Tensor> {
    Ok(logits.f_binary_cross_entropy_with_logits::<Tensor>(
        &logits.f_full_like(target)?,
        None,
        None,
        tch::Reduction::Mean,
    )?)
}

impl TextToImage {
    /// The sentence vectors of `texts` (zeros for an unconditional GAN).
    fn encode(&self, texts: &[&[i64]]) -> Result<Tensor> {
        self.text.forward(texts)
    }

    /// Images generated for sentence vectors `t` with codes drawn from libtorch's generator,
    /// in eval mode, as `uint8 [B, 64, 64, 3]` on the CPU and `[B, 3, 64, 64]` in `[-1, 1]`.
    fn generate(&self, t: &Tensor) -> Result<Tensor> {
        let z = Tensor::f_randn(
            [t.size()[0], self.cfg.noise_dim],
            (Kind::Float, self.device),
        )?;
        self.g.forward(&z, t, false)
    }

    /// Token ids of a free text: lower-cased words, unknown ones left out; the known words and
    /// the unknown ones.
    fn tokenize<'a>(&self, text: &'a str) -> (Vec<i64>, Vec<&'a str>) {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for w in text.split_whitespace() {
            match self.data.vocab.get(&w.to_lowercase()) {
                Some(&id) => known.push(id),
                None => unknown.push(w),
            }
        }
        (known, unknown)
    }
}

impl Task for TextToImage {
    const NAME: &'static str = "text-to-image";
    type Config = TextToImageConfig;

    fn build(cfg: &TextToImageConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let data = data::load(cfg)?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let text = TextEncoder::new(&(&root / "text"), data.words.len() as i64, cfg.embed_dim);
        let g = Generator::new(
            &(&root / "g"),
            cfg.noise_dim,
            cfg.embed_dim,
            cfg.text_dim,
            cfg.gen_channels,
            cfg.conditional,
        );
        let d = Discriminator::new(
            &(&root / "d"),
            cfg.embed_dim,
            cfg.text_dim,
            cfg.disc_channels,
            cfg.conditional,
        );
        Ok(Self {
            cfg: cfg.clone(),
            vs,
            text,
            g,
            d,
            data,
            pending: None,
            evaluator: None,
            eval_batch: 64,
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
        self.data.splits.get("train").map_or(0, |s| s.images.len())
    }

    fn prefetch(&mut self, batch: &[usize]) -> Result<()> {
        match self.data.splits.get_mut("train") {
            Some(t) => t.images.prefetch(batch),
            None => Ok(()),
        }
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::new("discriminator", &["d.", "text."]),
            ParamGroup::new("generator", &["g."]),
        ]
    }

    fn train_step(&mut self, batch: &[usize], ctx: &StepContext) -> Result<Tensor> {
        match ctx.group {
            Some("discriminator") => {
                let train = self.data.split("train")?;
                let texts = crate::common::draw_one(&train.captions, batch)?;
                let t = self.encode(&texts)?;
                let t_detached = t.f_detach()?;
                let z = Tensor::f_randn(
                    [batch.len() as i64, self.cfg.noise_dim],
                    (Kind::Float, self.device),
                )?;
                let fake = self.g.forward(&z, &t_detached, true)?;
                let real = self
                    .data
                    .splits
                    .get_mut("train")
                    .ok_or_else(|| bad("no training split"))?
                    .images
                    .take(batch)?;
                let real = to_unit(&real, self.device)?;
                let right = bce(&self.d.forward(&real, &t, true)?, 1.0)?;
                let fake_right = bce(&self.d.forward(&fake.f_detach()?, &t, true)?, 0.0)?;
                let loss = if self.cfg.cls {
                    // the wrong text of each image: the next image's
                    let wrong = t.f_roll([1], [0])?;
                    let real_wrong = bce(&self.d.forward(&real, &wrong, true)?, 0.0)?;
                    right.f_add(&real_wrong.f_add(&fake_right)?.f_mul_scalar(0.5)?)?
                } else {
                    right.f_add(&fake_right)?
                };
                self.pending = Some(Pending {
                    step: ctx.step,
                    fake,
                    text: t_detached,
                });
                Ok(loss)
            }
            Some("generator") => {
                let Some(p) = self.pending.as_ref().filter(|p| p.step == ctx.step) else {
                    return Err(bad(
                        "the generator's update needs the discriminator's of the same step first",
                    ));
                };
                // the first update reuses the discriminator's images (PyTorch's DCGAN loop);
                // a repeated one draws new codes
                let text = p.text.shallow_clone();
                let fake = if ctx.repeat == 0 {
                    p.fake.shallow_clone()
                } else {
                    let z = Tensor::f_randn(
                        [batch.len() as i64, self.cfg.noise_dim],
                        (Kind::Float, self.device),
                    )?;
                    self.g.forward(&z, &text, true)?
                };
                let p = Pending {
                    step: ctx.step,
                    fake,
                    text,
                };
                let mut loss = bce(&self.d.forward(&p.fake, &p.text, true)?, 1.0)?;
                if self.cfg.int {
                    let beta = self.cfg.int_beta;
                    let t_int = p
                        .text
                        .f_mul_scalar(beta)?
                        .f_add(&p.text.f_roll([1], [0])?.f_mul_scalar(1.0 - beta)?)?;
                    let z = Tensor::f_randn(
                        [batch.len() as i64, self.cfg.noise_dim],
                        (Kind::Float, self.device),
                    )?;
                    let fake_int = self.g.forward(&z, &t_int, true)?;
                    loss = loss.f_add(&bce(&self.d.forward(&fake_int, &t_int, true)?, 1.0)?)?;
                }
                Ok(loss)
            }
            other => Err(bad(format!(
                "text-to-image updates groups `discriminator` and `generator`, not {other:?}"
            ))),
        }
    }

    fn metric_names(&self, _split: &str) -> Result<Option<Vec<String>>> {
        let mut names = vec!["diversity".to_string(), "frechet".to_string()];
        for prefix in ["", "prior_", "real_"] {
            for m in ["colour", "cond", "scene", "shape"] {
                names.push(format!("{prefix}{m}_accuracy"));
            }
        }
        names.sort();
        Ok(Some(names))
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        if self.evaluator.is_none() {
            self.evaluator = Some(Evaluator::train(
                &self.data,
                self.cfg.evaluator_steps,
                self.device,
            )?);
        }
        let Some(ev) = &self.evaluator else {
            return Err(bad("no evaluator"));
        };
        let s = self.data.split(split)?;
        let n = self.cfg.eval_texts.min(s.images.len());
        let all: Vec<usize> = (0..n).collect();
        tch::manual_seed(EVAL_SEED);
        let (mut real, mut fake) = (Vec::new(), Vec::new());
        for chunk in all.chunks(self.eval_batch.max(1)) {
            let texts: Vec<&[i64]> = chunk.iter().map(|&k| s.captions[k][0].as_slice()).collect();
            let t = self.encode(&texts)?;
            fake.push(ev.judge(&self.generate(&t)?)?);
            real.push(ev.judge(&to_unit(&self.data.images(split, chunk)?, self.device)?)?);
        }
        let (real, fake) = (Judged::cat(&real)?, Judged::cat(&fake)?);
        let targets = self.data.targets(split, &all)?;
        let mut m = Metrics::new();
        fake.score(&targets, "", &mut m)?;
        real.score(&targets, "real_", &mut m)?;
        metrics::prior(&self.data, &targets, &mut m)?;
        m.insert(
            "frechet".into(),
            metrics::frechet(&real.features, &fake.features)?,
        );
        // diversity: `samples` images for each of the first texts
        let k = self.cfg.samples.max(2) as i64;
        let texts: Vec<&[i64]> = (0..n.min(DIVERSITY_TEXTS))
            .flat_map(|i| std::iter::repeat_n(s.captions[i][0].as_slice(), k as usize))
            .collect();
        let mut images = Vec::new();
        for chunk in texts.chunks(self.eval_batch.max(1)) {
            images.push(self.generate(&self.encode(chunk)?)?);
        }
        let images = Tensor::f_cat(&images, 0)?;
        let shape = images.size();
        m.insert(
            "diversity".into(),
            metrics::diversity(&images.f_view([-1, k, shape[1], shape[2], shape[3]])?)?,
        );
        Ok(m)
    }

    fn set_eval_batch_size(&mut self, n: usize) {
        self.eval_batch = n;
    }

    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Text]
    }

    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        let texts: Vec<&str> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        if texts.is_empty() {
            return Err(bad("give at least one --text \"...\""));
        }
        let mut report = Vec::new();
        let mut tokens = Vec::new();
        for text in &texts {
            let (known, unknown) = self.tokenize(text);
            let words = known.len() + unknown.len();
            let rate = unknown.len() as f64 / words.max(1) as f64;
            if known.is_empty() {
                return Err(bad(format!(
                    "`{text}`: none of its {words} words is in the vocabulary (unknown-word rate {:.0} %)",
                    100.0 * rate
                )));
            }
            report.push(serde_json::json!({
                "text": text,
                "unknown_words": unknown,
                "unknown_rate": rate,
            }));
            tokens.push(known);
        }
        let k = self.cfg.samples;
        tch::manual_seed(EVAL_SEED);
        let mut rows = Vec::new();
        for t in &tokens {
            let v = self.encode(&vec![t.as_slice(); k])?;
            rows.push(pictures::to_u8(&self.generate(&v)?)?);
        }
        let path = out_dir.join("text_to_image.png");
        pictures::save_grid(&rows, &texts, &path)?;
        Ok(serde_json::json!({
            "texts": report,
            "samples": k,
            "grid": path,
        }))
    }
}
