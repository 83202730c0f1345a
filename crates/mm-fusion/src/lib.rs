//! # mm-fusion: bringing modalities together
//!
//! Everything here works on tensors and embeddings only; it imports no modality crate.
//!
//! - **Attention** that returns its weights: [`SoftAttention`] (the additive attention of Show,
//!   Attend and Tell, with its optional gate), [`scaled_dot_product_attention`],
//!   [`MultiHeadAttention`] (the parameters of `torch.nn.MultiheadAttention`), and
//!   [`audio_visual_attention`] of an audio vector over a visual feature map.
//! - **Fusion** of two vectors: [`HadamardFusion`], [`ConcatFusion`], [`SumFusion`] and
//!   [`LowRankBilinearFusion`] (MLB), or any of them by name through [`FusionConfig`] and
//!   [`Fusion`].
//! - **Joint embedding**: [`ProjectionHead`] (linear or MLP, then [`l2_normalize`]).
//! - **Losses** ([`contrastive_loss`], VSE++ [`triplet_loss`], CLIP [`info_nce_loss`] with a
//!   [`LearnableTemperature`], Hinton [`kl_distillation_loss`]).
//! - **Retrieval metrics**: recall at 1/5/10 and median/mean rank, image to text and text to
//!   image ([`Similarities`], [`RetrievalMetrics`]).
//!
//! ```
//! use mm_fusion::{
//!     captions_per_image, info_nce_loss, LearnableTemperature, ProjectionHead,
//!     ProjectionHeadConfig, Similarities,
//! };
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let head = |name: &str, in_dim| {
//!     let cfg = ProjectionHeadConfig { in_dim, out_dim: 16, hidden_dim: None };
//!     ProjectionHead::new(&(vs.root() / name), &cfg)
//! };
//! let (image_head, text_head) = (head("image", 512)?, head("text", 300)?);
//! let temperature = LearnableTemperature::new(&vs.root())?;
//!
//! let images = image_head.forward(&Tensor::randn([8, 512], (Kind::Float, Device::Cpu)))?;
//! let texts = text_head.forward(&Tensor::randn([8, 300], (Kind::Float, Device::Cpu)))?;
//! let loss = info_nce_loss(&images, &texts, &temperature.logit_scale()?)?;
//! assert_eq!(loss.size(), [0i64; 0]);
//!
//! let sims = Similarities::from_tensor(&images.matmul(&texts.tr()))?;
//! let metrics = sims.image_to_text(&captions_per_image(8, 1))?;
//! assert!((0.0..=100.0).contains(&metrics.r1));
//! # Ok::<(), mm_fusion::Error>(())
//! ```
//!
//! ## Feature flags
//! None: this crate always requires libtorch (except [`Similarities`], plain Rust over `f32`).
//!
//! ## Conventions
//! - Batch first: vectors are `[N, D]`, sequences and locations `[N, L, D]`; every `forward`
//!   documents its shapes in a `# Shapes` section.
//! - Shapes and configurations are checked before libtorch is called: a mismatch is
//!   [`Error::Shape`] or [`Error::InvalidParameter`], never a panic; what libtorch itself rejects
//!   (say, a dtype or device mismatch) comes back as [`Error::Torch`].
//! - Parameter names copy PyTorch's (`encoder_att.weight`, `in_proj_weight`, `fc.bias`), so
//!   converted state dicts load.
//! - Attention masks are bool with `true` = attend; a fully masked query gets zero weights.
//! - Losses return 0-dimensional tensors; each documents its reduction (VSE++'s triplet loss
//!   *sums* over the batch, the others average). Embedding losses expect L2-normalised inputs.
//! - Retrieval ranks are 1-based, ties count against the query, recalls are percentages.
//! - Golden tests (`tests/reference.rs`) compare with PyTorch through
//!   `tests/fixtures/reference.json`, written by `scripts/fusion_reference.py` (`--check` proves
//!   it current).

mod attention;
mod audio_visual;
mod embedding;
mod error;
mod fusion;
mod linear;
mod loss;
mod pointwise;
mod retrieval;

pub use attention::{
    AttentionOutput, MultiHeadAttention, MultiHeadAttentionConfig, MultiHeadAttentionOutput,
    SoftAttention, SoftAttentionConfig, SoftAttentionOutput, scaled_dot_product_attention,
};
pub use audio_visual::{AvAttention, MapNorm, audio_visual_attention};
pub use embedding::{ProjectionHead, ProjectionHeadConfig, l2_normalize};
pub use error::{Error, Result};
pub use fusion::{
    Activation, ConcatFusion, Fusion, FusionConfig, FusionKind, LowRankBilinearFusion, SumFusion,
};
pub use loss::{
    LearnableTemperature, Negatives, Teacher, contrastive_loss, info_nce_loss,
    kl_distillation_loss, triplet_loss,
};
pub use pointwise::HadamardFusion;
pub use retrieval::{RetrievalMetrics, Similarities, captions_per_image};
