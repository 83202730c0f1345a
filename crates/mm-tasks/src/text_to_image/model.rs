//! GAN-INT-CLS's networks (Reed et al. 2016, `reedscot/icml2016`), DCGAN-style at 64x64: a
//! sentence encoder, a generator fed `[z; compress(text)]`, and a matching-aware
//! discriminator that joins the compressed text to its 4x4 feature map.

use mm_train::Result;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::bad;

/// DCGAN's initialisation: convolutions `N(0, 0.02)`, batch-norm scales `N(1, 0.02)`.
fn conv_init() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

fn bn(p: nn::Path<'_>, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            ws_init: nn::Init::Randn {
                mean: 1.0,
                stdev: 0.02,
            },
            ..Default::default()
        },
    )
}

/// The sentence vector: the mean of learned word embeddings (trained end to end with the
/// discriminator).
#[derive(Debug)]
pub(super) struct TextEncoder {
    embed: nn::Embedding,
    pad: i64,
    device: Device,
}

impl TextEncoder {
    pub(super) fn new(p: &nn::Path<'_>, vocab: i64, dim: i64) -> Self {
        let embed = nn::embedding(
            p / "embed",
            vocab + 1,
            dim,
            nn::EmbeddingConfig {
                padding_idx: vocab,
                ..Default::default()
            },
        );
        Self {
            embed,
            pad: vocab,
            device: p.device(),
        }
    }

    /// The mean embedding of each text's tokens.
    ///
    /// # Shapes
    /// `texts.len() = B` (each non-empty) -> `[B, dim]`.
    pub(super) fn forward(&self, texts: &[&[i64]]) -> Result<Tensor> {
        let t = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        if t == 0 || texts.iter().any(|x| x.is_empty()) {
            return Err(bad("a text without known words"));
        }
        let mut ids = vec![self.pad; texts.len() * t];
        for (i, x) in texts.iter().enumerate() {
            ids[i * t..i * t + x.len()].copy_from_slice(x);
        }
        let ids = Tensor::from_slice(&ids)
            .f_view([texts.len() as i64, t as i64])?
            .f_to_device(self.device)?;
        let lens: Vec<f32> = texts.iter().map(|x| x.len() as f32).collect();
        let lens = Tensor::from_slice(&lens).f_to_device(self.device)?;
        Ok(ids
            .apply(&self.embed)
            .f_sum_dim_intlist(1, false, Kind::Float)?
            .f_div(&lens.f_unsqueeze(1)?)?)
    }
}

/// The compression of the sentence vector that the generator and the discriminator each
/// learn: `LeakyReLU(0.2)(W t)`, or zeros for an unconditional GAN.
#[derive(Debug)]
struct Compress {
    linear: nn::Linear,
    conditional: bool,
}

impl Compress {
    fn new(p: nn::Path<'_>, embed: i64, text: i64, conditional: bool) -> Self {
        Self {
            linear: nn::linear(p, embed, text, Default::default()),
            conditional,
        }
    }

    fn forward(&self, t: &Tensor) -> Result<Tensor> {
        Ok(if self.conditional {
            t.apply(&self.linear).leaky_relu_with(0.2)
        } else {
            Tensor::f_zeros(
                [t.size()[0], self.linear.ws.size()[0]],
                (t.kind(), t.device()),
            )?
        })
    }
}

/// DCGAN's generator with the text: `[z; compress(t)]` as a 1x1 map, then five transposed
/// convolutions 4x4 (1 -> 4 -> 8 -> 16 -> 32 -> 64 pixels; 8, 4, 2, 1 times `channels`, then
/// RGB) with batch norm and ReLU, `tanh` at the end.
#[derive(Debug)]
pub(super) struct Generator {
    compress: Compress,
    net: nn::SequentialT,
}

impl Generator {
    pub(super) fn new(
        p: &nn::Path<'_>,
        noise: i64,
        embed: i64,
        text: i64,
        channels: i64,
        conditional: bool,
    ) -> Self {
        let compress = Compress::new(p / "compress", embed, text, conditional);
        let up = |stride: i64, padding: i64| nn::ConvTransposeConfig {
            stride,
            padding,
            bias: false,
            ws_init: conv_init(),
            ..Default::default()
        };
        let widths = [
            noise + text,
            8 * channels,
            4 * channels,
            2 * channels,
            channels,
        ];
        let q = p / "net";
        let mut net = nn::seq_t();
        for (k, w) in widths.windows(2).enumerate() {
            let (stride, padding) = if k == 0 { (1, 0) } else { (2, 1) };
            net = net
                .add(nn::conv_transpose2d(
                    &q / (3 * k),
                    w[0],
                    w[1],
                    4,
                    up(stride, padding),
                ))
                .add(bn(&q / (3 * k + 1), w[1]))
                .add_fn(|x| x.relu());
        }
        net = net
            .add(nn::conv_transpose2d(&q / 12, channels, 3, 4, up(2, 1)))
            .add_fn(|x| x.tanh());
        Self { compress, net }
    }

    /// Images for codes `z` and sentence vectors `t`.
    ///
    /// # Shapes
    /// `z: [B, noise]`, `t: [B, embed]` -> `[B, 3, 64, 64]` in `[-1, 1]`.
    pub(super) fn forward(&self, z: &Tensor, t: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.compress.forward(t)?;
        let x = Tensor::f_cat(&[z, &c], 1)?;
        let n = x.size()[1];
        Ok(self.net.forward_t(&x.f_view([-1, n, 1, 1])?, train))
    }
}

/// DCGAN's discriminator with the text: four strided 4x4 convolutions (64 -> 32 -> 16 -> 8
/// -> 4 pixels; 1, 2, 4, 8 times `channels`, batch norm after the first, LeakyReLU 0.2), the
/// compressed text replicated over the 4x4 map and concatenated, a 1x1 convolution with batch
/// norm and LeakyReLU, and a 4x4 convolution to one logit.
#[derive(Debug)]
pub(super) struct Discriminator {
    compress: Compress,
    image: nn::SequentialT,
    joint: nn::SequentialT,
    text: i64,
}

impl Discriminator {
    pub(super) fn new(
        p: &nn::Path<'_>,
        embed: i64,
        text: i64,
        channels: i64,
        conditional: bool,
    ) -> Self {
        let conv = |stride: i64, padding: i64| nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ws_init: conv_init(),
            ..Default::default()
        };
        let q = p / "image";
        let widths = [3, channels, 2 * channels, 4 * channels, 8 * channels];
        let mut image = nn::seq_t();
        for (k, w) in widths.windows(2).enumerate() {
            image = image.add(nn::conv2d(&q / (3 * k), w[0], w[1], 4, conv(2, 1)));
            if k > 0 {
                image = image.add(bn(&q / (3 * k + 1), w[1]));
            }
            image = image.add_fn(|x| x.leaky_relu_with(0.2));
        }
        let q = p / "joint";
        let joint = nn::seq_t()
            .add(nn::conv2d(
                &q / 0,
                8 * channels + text,
                8 * channels,
                1,
                conv(1, 0),
            ))
            .add(bn(&q / 1, 8 * channels))
            .add_fn(|x| x.leaky_relu_with(0.2))
            .add(nn::conv2d(&q / 3, 8 * channels, 1, 4, conv(1, 0)));
        Self {
            compress: Compress::new(p / "compress", embed, text, conditional),
            image,
            joint,
            text,
        }
    }

    /// Real-vs-fake logits of images `x` shown with sentence vectors `t`.
    ///
    /// # Shapes
    /// `x: [B, 3, 64, 64]`, `t: [B, embed]` -> `[B]`.
    pub(super) fn forward(&self, x: &Tensor, t: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.image.forward_t(x, train);
        let (b, _, mh, mw) = h.size4()?;
        let c = self
            .compress
            .forward(t)?
            .f_view([b, self.text, 1, 1])?
            .f_expand([b, self.text, mh, mw], false)?;
        Ok(self
            .joint
            .forward_t(&Tensor::f_cat(&[&h, &c], 1)?, train)
            .f_view([b])?)
    }
}

/// Tiny helper: `LeakyReLU(slope)` as tch spells it.
trait LeakyWith {
    fn leaky_relu_with(&self, slope: f64) -> Tensor;
}

impl LeakyWith for Tensor {
    fn leaky_relu_with(&self, slope: f64) -> Tensor {
        self.maximum(&(self * slope))
    }
}
