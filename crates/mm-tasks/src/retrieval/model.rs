//! The joint embedding model: image and sentence encoders into one space, and its losses.

use mm_fusion::{
    LearnableTemperature, Negatives, ProjectionHead, ProjectionHeadConfig, contrastive_loss,
    info_nce_loss, triplet_loss,
};
use mm_train::{Error, Result};
use mm_vision::{Backbone, IMAGENET_MEAN, IMAGENET_STD, backbone, normalize_batch};
use serde::{Deserialize, Serialize};
use tch::nn::RNN;
use tch::{Device, Kind, Tensor, nn};

use super::RetrievalConfig;

/// How a sentence becomes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoderKind {
    /// Mean of the word vectors.
    Mean,
    /// A GRU's last hidden state (as VSE++).
    Gru,
}

/// The metric-learning loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// VSE++: hinge on the hardest in-batch negative, both directions.
    #[default]
    VseppHardest,
    /// VSE0: hinge summed over all in-batch negatives.
    VseppSum,
    /// Symmetric InfoNCE with a learnable temperature (CLIP).
    Infonce,
    /// Pairwise contrastive: true pairs pulled, each image with the next image's caption
    /// pushed beyond the margin.
    Contrastive,
}

fn mm_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::task(e)
}

/// Image encoder + sentence encoder + (for InfoNCE) a temperature.
#[derive(Debug)]
pub(super) struct JointModel {
    backbone: Box<dyn Backbone>,
    image_proj: ProjectionHead,
    image_size: Option<i64>,
    embed: nn::Embedding,
    gru: Option<nn::GRU>,
    text_proj: ProjectionHead,
    loss: LossKind,
    temperature: Option<LearnableTemperature>,
}

impl JointModel {
    pub(super) fn new(
        p: &nn::Path<'_>,
        cfg: &RetrievalConfig,
        vocab: i64,
        init: Option<&Tensor>,
    ) -> Result<Self> {
        crate::common::positive(&[
            ("embed_dim", cfg.embed_dim),
            ("word_dim", cfg.word_dim),
            ("hidden_dim", cfg.hidden_dim),
        ])?;
        if cfg.margin.is_nan() || cfg.margin < 0.0 {
            return Err(Error::InvalidParameter {
                name: "margin",
                reason: "must be >= 0".into(),
            });
        }
        let ip = p / "image";
        let mut backbone = backbone(&(&ip / "backbone"), &cfg.backbone).map_err(mm_err)?;
        if cfg.freeze_backbone {
            backbone.set_all_trainable(false).map_err(mm_err)?;
        }
        let feat = backbone.channels(&backbone.last_stage()).map_err(mm_err)?;
        let image_proj = ProjectionHead::new(
            &(&ip / "proj"),
            &ProjectionHeadConfig {
                in_dim: feat,
                out_dim: cfg.embed_dim,
                hidden_dim: None,
            },
        )
        .map_err(mm_err)?;
        let tp = p / "text";
        let embed = nn::embedding(&tp / "embed", vocab, cfg.word_dim, Default::default());
        if let Some(init) = init {
            tch::no_grad(|| embed.ws.shallow_clone().f_copy_(init))?;
        }
        let (gru, text_in) = match cfg.text_encoder {
            TextEncoderKind::Mean => (None, cfg.word_dim),
            TextEncoderKind::Gru => (
                Some(nn::gru(
                    &tp / "gru",
                    cfg.word_dim,
                    cfg.hidden_dim,
                    nn::RNNConfig {
                        batch_first: true,
                        ..Default::default()
                    },
                )),
                cfg.hidden_dim,
            ),
        };
        let text_proj = ProjectionHead::new(
            &(&tp / "proj"),
            &ProjectionHeadConfig {
                in_dim: text_in,
                out_dim: cfg.embed_dim,
                hidden_dim: None,
            },
        )
        .map_err(mm_err)?;
        let temperature = (cfg.loss == LossKind::Infonce)
            .then(|| LearnableTemperature::new(&(p / "temperature")))
            .transpose()
            .map_err(mm_err)?;
        Ok(Self {
            backbone,
            image_proj,
            image_size: cfg.image_size,
            embed,
            gru,
            text_proj,
            loss: cfg.loss,
            temperature,
        })
    }

    /// `uint8 [N, H, W, 3]` (any device) -> L2-normalised `[N, E]` on `device`.
    pub(super) fn embed_images(
        &self,
        images: &Tensor,
        device: Device,
        train: bool,
    ) -> Result<Tensor> {
        let mut x =
            normalize_batch(images, &IMAGENET_MEAN, &IMAGENET_STD, device).map_err(mm_err)?;
        if let Some(s) = self.image_size
            && (x.size()[2] != s || x.size()[3] != s)
        {
            x = x.f_upsample_bilinear2d([s, s], false, None, None)?;
        }
        let v = self.backbone.pooled(&x, train).map_err(mm_err)?;
        self.image_proj.forward(&v).map_err(mm_err)
    }

    /// Token-id sentences -> L2-normalised `[N, E]` on `device`.
    pub(super) fn embed_text(
        &self,
        sents: &[&[i64]],
        device: Device,
        train: bool,
    ) -> Result<Tensor> {
        let n = sents.len() as i64;
        let max = sents.iter().map(|s| s.len()).max().unwrap_or(0).max(1) as i64;
        let mut ids = vec![0i64; (n * max) as usize];
        let mut lens = Vec::with_capacity(sents.len());
        for (i, s) in sents.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::InvalidParameter {
                    name: "sentence",
                    reason: "empty sentence".into(),
                });
            }
            ids[i * max as usize..i * max as usize + s.len()].copy_from_slice(s);
            lens.push(s.len() as i64);
        }
        let ids = Tensor::from_slice(&ids).view([n, max]).to_device(device);
        let lens_t = Tensor::from_slice(&lens).to_device(device);
        let emb = Tensor::f_embedding(&self.embed.ws, &ids, -1, false, false)?; // [N, L, D]
        let h = match &self.gru {
            None => {
                let mask = Tensor::arange(max, (Kind::Int64, device))
                    .unsqueeze(0)
                    .f_lt_tensor(&lens_t.unsqueeze(1))?
                    .to_kind(Kind::Float);
                (emb * mask.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float)
                    / lens_t.to_kind(Kind::Float).unsqueeze(1)
            }
            Some(gru) => {
                let (out, _) = gru.seq(&emb); // [N, L, H]
                let hdim = out.size()[2];
                let last = (lens_t - 1).view([n, 1, 1]).expand([n, 1, hdim], false);
                out.f_gather(1, &last, false)?.f_squeeze_dim(1)?
            }
        };
        let h = if train { h.f_dropout(0.1, true)? } else { h };
        self.text_proj.forward(&h).map_err(mm_err)
    }

    /// The configured loss on matched embeddings (row i of `im` goes with row i of `s`).
    pub(super) fn loss(
        &self,
        im: &Tensor,
        s: &Tensor,
        margin: f64,
        hardest_ok: bool,
    ) -> Result<Tensor> {
        match self.loss {
            LossKind::VseppHardest if hardest_ok => triplet_loss(im, s, margin, Negatives::Hardest),
            LossKind::VseppHardest => triplet_loss(im, s, margin, Negatives::Sum),
            LossKind::VseppSum => triplet_loss(im, s, margin, Negatives::Sum),
            LossKind::Infonce => {
                let t = self
                    .temperature
                    .as_ref()
                    .ok_or_else(|| Error::Config("no temperature".into()))?;
                info_nce_loss(im, s, &t.logit_scale().map_err(mm_err)?)
            }
            LossKind::Contrastive => {
                let n = im.size()[0];
                let shifted = s.f_roll([1], [0])?;
                let a = Tensor::f_cat(&[im, im], 0)?;
                let b = Tensor::f_cat(&[s, &shifted], 0)?;
                let same = Tensor::f_cat(
                    &[
                        Tensor::ones([n], (Kind::Float, im.device())),
                        Tensor::zeros([n], (Kind::Float, im.device())),
                    ],
                    0,
                )?;
                contrastive_loss(&a, &b, &same, margin)
            }
        }
        .map_err(mm_err)
    }

    pub(super) fn after_step(&mut self) -> Result<()> {
        if let Some(t) = &mut self.temperature {
            t.clamp_().map_err(mm_err)?;
        }
        Ok(())
    }
}

/// Word vectors `[V, dim]` for `vocab`: skip-gram (`mm-text`) trained on the training
/// captions; words it never saw keep small random vectors.
pub(crate) fn word2vec_init(
    captions: &[Vec<Vec<i64>>],
    vocab: &[String],
    dim: i64,
) -> Result<Tensor> {
    // a uniquely named scratch file, deleted when `file` drops (on every error path too)
    let mut file = tempfile::Builder::new()
        .prefix("mm-retrieval-captions-")
        .suffix(".txt")
        .tempfile()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let path = file.path().to_path_buf();
    let mut text = String::new();
    for caps in captions {
        for c in caps {
            let words: Vec<&str> = c
                .iter()
                .filter_map(|&i| vocab.get(i as usize).map(String::as_str))
                .collect();
            text.push_str(&words.join(" "));
            text.push('\n');
        }
    }
    std::io::Write::write_all(file.as_file_mut(), text.as_bytes()).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let cfg = mm_text::word2vec::Word2VecConfig {
        size: dim as usize,
        window: 5,
        negative: 5,
        sample: 0.0,
        min_count: 1,
        iter: 10,
        alpha: None,
        threads: 1,
        cbow: false,
        hs: false,
        seed: 1,
    };
    let trained =
        mm_text::word2vec::Word2Vec::new(&cfg).and_then(|w| w.train_file(&path, &mut |_| {}));
    drop(file);
    let emb = trained.map_err(mm_err)?;
    let init =
        (Tensor::randn([vocab.len() as i64, dim], (Kind::Float, Device::Cpu)) * 0.1).contiguous();
    let mut rows = Vec::<f32>::try_from(init.view([-1]))?;
    let mut found = 0;
    for (i, w) in vocab.iter().enumerate() {
        if let Some(v) = emb.get(w) {
            rows[i * dim as usize..(i + 1) * dim as usize]
                .copy_from_slice(v.as_slice().unwrap_or(&[]));
            found += 1;
        }
    }
    tracing::info!(
        found,
        vocab = vocab.len(),
        "word vectors from skip-gram on the training captions"
    );
    Ok(Tensor::from_slice(&rows).view([vocab.len() as i64, dim]))
}
