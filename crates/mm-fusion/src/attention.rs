//! Attention that returns its weights: the additive soft attention of Show, Attend and Tell,
//! scaled dot-product attention and multi-head attention.
//!
//! Masks are bool tensors with `true` = attend (the convention of
//! `torch.nn.functional.scaled_dot_product_attention`, *not* the `key_padding_mask` of
//! `torch.nn.MultiheadAttention`, where `true` means ignore). A query whose every key is masked
//! out gets all-zero weights and a zero output, as in PyTorch's `scaled_dot_product_attention`.
//! No dropout is applied to the weights.

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use crate::error::{Error, Result, check_bool_mask, check_positive};
use crate::linear::{apply, linear};

/// Softmax over the last dimension with masked-out entries (`mask == false`) set to zero; rows
/// with no unmasked entry become all zeros instead of NaN.
fn masked_softmax(scores: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    match mask {
        None => Ok(scores.f_softmax(-1, scores.kind())?),
        Some(mask) => {
            let drop = mask.f_logical_not()?;
            let filled = scores.f_masked_fill(&drop, f64::NEG_INFINITY)?;
            // exp(-inf - (-inf)) is NaN for fully masked rows: zero them (the backward of
            // masked_fill zeroes their gradient too).
            Ok(filled
                .f_softmax(-1, scores.kind())?
                .f_masked_fill(&drop, 0.0)?)
        }
    }
}

/// `true` when `shape` broadcasts to `target` (right-aligned, each dimension equal or 1, no more
/// dimensions than `target`).
fn broadcasts_to(shape: &[i64], target: &[i64]) -> bool {
    shape.len() <= target.len()
        && shape
            .iter()
            .rev()
            .zip(target.iter().rev())
            .all(|(&s, &t)| s == t || s == 1)
}

// ---------------------------------------------------------------------------------------------
// Soft attention

/// Configuration of [`SoftAttention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftAttentionConfig {
    /// Size `D` of each location's feature vector (the encoder dimension).
    pub feature_dim: i64,
    /// Size `H` of the hidden state that queries the features (the decoder dimension).
    pub hidden_dim: i64,
    /// Size `A` of the space in which features and hidden state are added.
    pub attention_dim: i64,
    /// Whether to multiply the context by the gating scalar `beta = sigmoid(f_beta(h))`
    /// (Show, Attend and Tell, section 4.2.1).
    #[serde(default)]
    pub gate: bool,
}

/// The result of [`SoftAttention::forward`].
#[derive(Debug)]
pub struct SoftAttentionOutput {
    /// The context vector `beta * sum_i alpha_i a_i`, `[N, D]`.
    pub context: Tensor,
    /// The attention weights `alpha`, `[N, L]`; each row sums to 1 (0 for a fully masked row).
    pub weights: Tensor,
    /// The gating scalar `beta`, `[N, 1]`, when [`SoftAttentionConfig::gate`] is set.
    pub gate: Option<Tensor>,
}

/// Additive ("soft", deterministic) attention of Show, Attend and Tell
/// ([Xu et al. 2015](https://arxiv.org/abs/1502.03044), section 4.2):
///
/// ```text
/// e_i   = w^T tanh(W_a a_i + W_h h)          (i = 1..L)
/// alpha = softmax(e)
/// beta  = sigmoid(f_beta(h))                 (optional gate, a scalar per sample)
/// z     = beta * sum_i alpha_i a_i
/// ```
///
/// Parameter names follow the widely used PyTorch port
/// (sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning, `Attention`): `encoder_att` (`W_a`,
/// `D -> A`), `decoder_att` (`W_h`, `H -> A`), `full_att` (`w`, `A -> 1`) and `f_beta`
/// (`H -> 1`). Two differences from that port, both following the paper: `tanh` rather than
/// `relu` before `full_att`, and `f_beta` gives one scalar per sample rather than one gate per
/// feature channel.
#[derive(Debug)]
pub struct SoftAttention {
    encoder_att: nn::Linear,
    decoder_att: nn::Linear,
    full_att: nn::Linear,
    f_beta: Option<nn::Linear>,
    cfg: SoftAttentionConfig,
}

impl SoftAttention {
    /// Layers `encoder_att`, `decoder_att`, `full_att` (and `f_beta` with the gate) under `p`.
    pub fn new(p: &nn::Path<'_>, cfg: &SoftAttentionConfig) -> Result<Self> {
        check_positive("feature_dim", cfg.feature_dim)?;
        check_positive("hidden_dim", cfg.hidden_dim)?;
        check_positive("attention_dim", cfg.attention_dim)?;
        Ok(Self {
            encoder_att: linear(p, "encoder_att", cfg.feature_dim, cfg.attention_dim)?,
            decoder_att: linear(p, "decoder_att", cfg.hidden_dim, cfg.attention_dim)?,
            full_att: linear(p, "full_att", cfg.attention_dim, 1)?,
            f_beta: if cfg.gate {
                Some(linear(p, "f_beta", cfg.hidden_dim, 1)?)
            } else {
                None
            },
            cfg: *cfg,
        })
    }

    /// The configuration this module was built with.
    pub fn config(&self) -> &SoftAttentionConfig {
        &self.cfg
    }

    /// Attends over the `L` locations of `features` with the query `hidden`.
    ///
    /// `mask` (bool, `true` = a valid location) excludes locations, e.g. padding.
    ///
    /// # Shapes
    /// `features: [N, L, D]`, `hidden: [N, H]`, `mask: [N, L]` -> context `[N, D]`, weights
    /// `[N, L]`, gate `[N, 1]`.
    pub fn forward(
        &self,
        features: &Tensor,
        hidden: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<SoftAttentionOutput> {
        let (f, h) = (features.size(), hidden.size());
        let (d, hd) = (self.cfg.feature_dim, self.cfg.hidden_dim);
        if f.len() != 3 || h.len() != 2 || f[0] != h[0] || f[2] != d || h[1] != hd || f[1] < 1 {
            return Err(Error::shape(
                "SoftAttention::forward",
                format!("features [N, L >= 1, {d}] and hidden [N, {hd}]"),
                &[features, hidden],
            ));
        }
        if let Some(m) = mask {
            check_bool_mask(m)?;
            if m.size() != [f[0], f[1]] {
                return Err(Error::shape(
                    "SoftAttention::forward",
                    format!("mask [N, L] = [{}, {}]", f[0], f[1]),
                    &[features, hidden, m],
                ));
            }
        }
        let att1 = self.project(features)?;
        self.attend(features, &att1, hidden, mask)
    }

    /// The annotations' projection `encoder_att(features)`, the part of the attention that
    /// does not depend on the query: a decoder computes it once per image and calls
    /// [`SoftAttention::forward_projected`] at every step.
    ///
    /// # Shapes
    /// `features: [N, L, D]` -> `[N, L, attention_dim]`.
    pub fn project(&self, features: &Tensor) -> Result<Tensor> {
        let f = features.size();
        if f.len() != 3 || f[2] != self.cfg.feature_dim {
            return Err(Error::shape(
                "SoftAttention::project",
                format!("features [N, L, {}]", self.cfg.feature_dim),
                &[features],
            ));
        }
        apply(features, &self.encoder_att)
    }

    /// [`SoftAttention::forward`] with `projected = self.project(features)` computed once.
    ///
    /// # Shapes
    /// As [`SoftAttention::forward`], with `projected: [N, L, attention_dim]`.
    pub fn forward_projected(
        &self,
        features: &Tensor,
        projected: &Tensor,
        hidden: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<SoftAttentionOutput> {
        let (f, p) = (features.size(), projected.size());
        if p.len() != 3 || f.len() != 3 || p[..2] != f[..2] || p[2] != self.cfg.attention_dim {
            return Err(Error::shape(
                "SoftAttention::forward_projected",
                format!(
                    "projected [N, L, {}] matching features",
                    self.cfg.attention_dim
                ),
                &[features, projected],
            ));
        }
        let (h, hd) = (hidden.size(), self.cfg.hidden_dim);
        if h.len() != 2 || h[0] != f[0] || h[1] != hd {
            return Err(Error::shape(
                "SoftAttention::forward_projected",
                format!("hidden [N, {hd}]"),
                &[features, hidden],
            ));
        }
        if let Some(m) = mask {
            check_bool_mask(m)?;
            if m.size() != [f[0], f[1]] {
                return Err(Error::shape(
                    "SoftAttention::forward_projected",
                    format!("mask [N, L] = [{}, {}]", f[0], f[1]),
                    &[features, m],
                ));
            }
        }
        self.attend(features, projected, hidden, mask)
    }

    fn attend(
        &self,
        features: &Tensor,
        att1: &Tensor,
        hidden: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<SoftAttentionOutput> {
        let att2 = apply(hidden, &self.decoder_att)?.f_unsqueeze(1)?; // [N, 1, A]
        let e = apply(&att1.f_add(&att2)?.f_tanh()?, &self.full_att)?.f_squeeze_dim(-1)?; // [N, L]
        let weights = masked_softmax(&e, mask)?;
        let context = weights
            .f_unsqueeze(1)?
            .f_matmul(features)?
            .f_squeeze_dim(1)?; // [N, D]
        let (context, gate) = match &self.f_beta {
            None => (context, None),
            Some(f_beta) => {
                let beta = apply(hidden, f_beta)?.f_sigmoid()?; // [N, 1]
                (context.f_mul(&beta)?, Some(beta))
            }
        };
        Ok(SoftAttentionOutput {
            context,
            weights,
            gate,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention

/// The result of [`scaled_dot_product_attention`].
#[derive(Debug)]
pub struct AttentionOutput {
    /// `weights · v`, `[N, Lq, Dv]`.
    pub output: Tensor,
    /// `softmax(q k^T / sqrt(D))`, `[N, Lq, Lk]`; each row sums to 1 (0 for a fully masked row).
    pub weights: Tensor,
}

/// `softmax(q k^T / sqrt(D)) v` ([Vaswani et al. 2017](https://arxiv.org/abs/1706.03762)),
/// returning the weights too. Same values as
/// `torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)`.
///
/// `mask` is bool with `true` = attend, and must broadcast to `[N, Lq, Lk]` (e.g. `[Lq, Lk]`
/// for a causal mask or `[N, 1, Lk]` for key padding).
///
/// # Shapes
/// `q: [N, Lq, D]`, `k: [N, Lk, D]`, `v: [N, Lk, Dv]` -> output `[N, Lq, Dv]`, weights
/// `[N, Lq, Lk]`. `N` may be any number of batch dimensions (including none), identical in `q`,
/// `k` and `v`, e.g. `[N, heads, L, D]`; `D >= 1`, `Lk >= 1`.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> Result<AttentionOutput> {
    let (sq, sk, sv) = (q.size(), k.size(), v.size());
    let r = sq.len();
    let ok = r >= 2
        && sk.len() == r
        && sv.len() == r
        && sq[..r - 2] == sk[..r - 2]
        && sq[..r - 2] == sv[..r - 2]
        && sq[r - 1] == sk[r - 1]
        && sq[r - 1] >= 1
        && sk[r - 2] == sv[r - 2]
        && sk[r - 2] >= 1;
    if !ok {
        return Err(Error::shape(
            "scaled_dot_product_attention",
            "q [N, Lq, D], k [N, Lk, D], v [N, Lk, Dv] with equal batch dimensions, D >= 1, Lk >= 1",
            &[q, k, v],
        ));
    }
    let mut target = sq[..r - 1].to_vec();
    target.push(sk[r - 2]);
    if let Some(m) = mask {
        check_bool_mask(m)?;
        if !broadcasts_to(&m.size(), &target) {
            return Err(Error::shape(
                "scaled_dot_product_attention",
                format!("a mask that broadcasts to {target:?}"),
                &[q, k, v, m],
            ));
        }
    }
    sdpa(q, k, v, mask)
}

/// [`scaled_dot_product_attention`] without the checks.
fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<AttentionOutput> {
    let d = q.size().last().copied().unwrap_or(1);
    let scores = q
        .f_matmul(&k.f_transpose(-2, -1)?)?
        .f_div_scalar((d as f64).sqrt())?;
    let weights = masked_softmax(&scores, mask)?;
    let output = weights.f_matmul(v)?;
    Ok(AttentionOutput { output, weights })
}

// ---------------------------------------------------------------------------------------------
// Multi-head attention

/// Configuration of [`MultiHeadAttention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttentionConfig {
    /// Model dimension `E` of queries, keys, values and output.
    pub embed_dim: i64,
    /// Number of heads; must divide `embed_dim`.
    pub num_heads: i64,
}

/// The result of [`MultiHeadAttention::forward`].
#[derive(Debug)]
pub struct MultiHeadAttentionOutput {
    /// The attended values after `out_proj`, `[N, Lq, E]`.
    pub output: Tensor,
    /// Attention weights averaged over heads, `[N, Lq, Lk]` (PyTorch's default
    /// `average_attn_weights=True`).
    pub weights: Tensor,
    /// Attention weights of every head, `[N, heads, Lq, Lk]` (`average_attn_weights=False`).
    pub head_weights: Tensor,
}

/// Multi-head attention with the parameters of `torch.nn.MultiheadAttention(embed_dim,
/// num_heads, batch_first=True)`: `in_proj_weight` `[3E, E]` and `in_proj_bias` `[3E]` (rows
/// for q, k, v in that order) and `out_proj.{weight,bias}`, so its state dict loads as is.
/// Initialised like PyTorch: Xavier-uniform `in_proj_weight`, zero biases.
#[derive(Debug)]
pub struct MultiHeadAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    cfg: MultiHeadAttentionConfig,
}

impl MultiHeadAttention {
    /// Parameters `in_proj_weight`, `in_proj_bias` and `out_proj` under `p`.
    ///
    /// [`Error::InvalidParameter`] unless `embed_dim` and `num_heads` are positive and
    /// `embed_dim % num_heads == 0`.
    pub fn new(p: &nn::Path<'_>, cfg: &MultiHeadAttentionConfig) -> Result<Self> {
        let (e, h) = (cfg.embed_dim, cfg.num_heads);
        check_positive("embed_dim", e)?;
        check_positive("num_heads", h)?;
        if e % h != 0 {
            return Err(Error::invalid(
                "num_heads",
                format!("must divide embed_dim = {e}, got {h}"),
            ));
        }
        let bound = (6.0 / (e + 3 * e) as f64).sqrt();
        let in_proj_weight = p.f_var(
            "in_proj_weight",
            &[3 * e, e],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let in_proj_bias = p.f_var("in_proj_bias", &[3 * e], nn::Init::Const(0.0))?;
        let mut out_proj = linear(p, "out_proj", e, e)?;
        if let Some(b) = out_proj.bs.as_mut() {
            let _ = tch::no_grad(|| b.f_zero_())?;
        }
        Ok(Self {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            cfg: *cfg,
        })
    }

    /// The configuration this module was built with.
    pub fn config(&self) -> &MultiHeadAttentionConfig {
        &self.cfg
    }

    /// Projects `x [N, L, E]` with rows `which*E .. (which+1)*E` of the input projection and
    /// splits the heads: `[N, heads, L, E/heads]`.
    fn project(&self, x: &Tensor, which: i64) -> Result<Tensor> {
        let (e, h) = (self.cfg.embed_dim, self.cfg.num_heads);
        let w = self.in_proj_weight.f_narrow(0, which * e, e)?;
        let b = self.in_proj_bias.f_narrow(0, which * e, e)?;
        let s = x.size();
        Ok(x.f_linear(&w, Some(&b))?
            .f_reshape([s[0], s[1], h, e / h])?
            .f_transpose(1, 2)?)
    }

    /// Attends from `query` over `key`/`value`.
    ///
    /// `mask` is bool with `true` = attend, shared by all heads, and must broadcast to
    /// `[N, Lq, Lk]` (`[Lq, Lk]` for a causal mask, `[N, 1, Lk]` for key padding). Note that
    /// `torch.nn.MultiheadAttention` takes the opposite (`true` = ignore) for its `attn_mask`.
    ///
    /// # Shapes
    /// `query: [N, Lq, E]`, `key: [N, Lk, E]`, `value: [N, Lk, E]` -> output `[N, Lq, E]`,
    /// weights `[N, Lq, Lk]`, head weights `[N, heads, Lq, Lk]`; `Lk >= 1`.
    pub fn forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<MultiHeadAttentionOutput> {
        let e = self.cfg.embed_dim;
        let (sq, sk, sv) = (query.size(), key.size(), value.size());
        let ok = sq.len() == 3
            && sk.len() == 3
            && sv.len() == 3
            && sq[0] == sk[0]
            && sq[0] == sv[0]
            && sk[1] == sv[1]
            && sk[1] >= 1
            && sq[2] == e
            && sk[2] == e
            && sv[2] == e;
        if !ok {
            return Err(Error::shape(
                "MultiHeadAttention::forward",
                format!("query [N, Lq, {e}], key [N, Lk, {e}], value [N, Lk, {e}], Lk >= 1"),
                &[query, key, value],
            ));
        }
        let mask = match mask {
            None => None,
            Some(m) => {
                check_bool_mask(m)?;
                if !broadcasts_to(&m.size(), &[sq[0], sq[1], sk[1]]) {
                    return Err(Error::shape(
                        "MultiHeadAttention::forward",
                        format!(
                            "a mask that broadcasts to [{}, {}, {}]",
                            sq[0], sq[1], sk[1]
                        ),
                        &[query, key, value, m],
                    ));
                }
                // [.., Lq, Lk] -> [.., 1, Lq, Lk]: the same mask for every head
                Some(m.f_unsqueeze(-3)?)
            }
        };
        let q = self.project(query, 0)?;
        let k = self.project(key, 1)?;
        let v = self.project(value, 2)?;
        let att = sdpa(&q, &k, &v, mask.as_ref())?; // output [N, heads, Lq, E/heads]
        let merged = att.output.f_transpose(1, 2)?.f_reshape([sq[0], sq[1], e])?;
        let output = apply(&merged, &self.out_proj)?;
        let weights = att.weights.f_mean_dim(1, false, att.weights.kind())?;
        Ok(MultiHeadAttentionOutput {
            output,
            weights,
            head_weights: att.weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn randn(s: &[i64]) -> Tensor {
        Tensor::randn(s, (Kind::Float, Device::Cpu))
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn soft_attention_weights_are_a_distribution_and_the_gate_scales_the_context() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SoftAttentionConfig {
            feature_dim: 6,
            hidden_dim: 5,
            attention_dim: 4,
            gate: true,
        };
        let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
        let (feats, hidden) = (randn(&[3, 7, 6]), randn(&[3, 5]));
        let out = att.forward(&feats, &hidden, None).unwrap();
        assert_eq!(out.weights.size(), [3, 7]);
        assert_eq!(out.context.size(), [3, 6]);
        let gate = out.gate.unwrap();
        assert_eq!(gate.size(), [3, 1]);
        let sums = out.weights.sum_dim_intlist(-1, false, Kind::Float);
        assert!(max_abs_diff(&sums, &Tensor::ones([3], (Kind::Float, Device::Cpu))) < 1e-6);
        let plain = out
            .weights
            .unsqueeze(-1)
            .f_mul(&feats)
            .unwrap()
            .sum_dim_intlist(1, false, Kind::Float);
        assert!(max_abs_diff(&out.context, &(plain * gate)) < 1e-6);
        // the projection computed once gives the same result, and is shape-checked
        let proj = att.project(&feats).unwrap();
        assert_eq!(proj.size(), [3, 7, 4]);
        let again = att.forward_projected(&feats, &proj, &hidden, None).unwrap();
        assert!(max_abs_diff(&again.context, &out.context) == 0.0);
        assert!(max_abs_diff(&again.weights, &out.weights) == 0.0);
        assert!(
            att.forward_projected(&feats, &feats, &hidden, None)
                .is_err()
        );
        assert!(att.project(&randn(&[3, 7, 5])).is_err());
        let names: Vec<String> = vs.variables().into_keys().collect();
        for n in [
            "encoder_att.weight",
            "decoder_att.bias",
            "full_att.weight",
            "f_beta.weight",
        ] {
            assert!(names.iter().any(|k| k == n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn soft_attention_mask_zeroes_masked_locations_and_fully_masked_rows() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SoftAttentionConfig {
            feature_dim: 3,
            hidden_dim: 2,
            attention_dim: 4,
            gate: false,
        };
        let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
        let mask = Tensor::from_slice(&[true, true, false, false, false, false]).view([2, 3]);
        let out = att
            .forward(&randn(&[2, 3, 3]), &randn(&[2, 2]), Some(&mask))
            .unwrap();
        assert!(out.gate.is_none());
        assert_eq!(out.weights.double_value(&[0, 2]), 0.0);
        assert!((out.weights.get(0).sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-6);
        assert_eq!(
            out.weights.get(1).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        assert_eq!(
            out.context.get(1).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
    }

    #[test]
    fn soft_attention_rejects_bad_shapes_and_configs() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = SoftAttentionConfig {
            feature_dim: 0,
            hidden_dim: 2,
            attention_dim: 4,
            gate: false,
        };
        assert!(matches!(
            SoftAttention::new(&vs.root(), &bad),
            Err(Error::InvalidParameter { .. })
        ));
        let cfg = SoftAttentionConfig {
            feature_dim: 3,
            ..bad
        };
        let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
        let (f, h) = (randn(&[2, 4, 3]), randn(&[2, 2]));
        for (f, h) in [
            (randn(&[2, 4, 5]), randn(&[2, 2])),
            (randn(&[2, 4, 3]), randn(&[3, 2])),
            (randn(&[2, 4, 3]), randn(&[2, 3])),
            (randn(&[4, 3]), randn(&[2, 2])),
            (randn(&[2, 0, 3]), randn(&[2, 2])),
        ] {
            assert!(matches!(
                att.forward(&f, &h, None),
                Err(Error::Shape { .. })
            ));
        }
        let wrong_len = Tensor::ones([2, 5], (Kind::Bool, Device::Cpu));
        assert!(matches!(
            att.forward(&f, &h, Some(&wrong_len)),
            Err(Error::Shape { .. })
        ));
        let float_mask = Tensor::ones([2, 4], (Kind::Float, Device::Cpu));
        assert!(matches!(
            att.forward(&f, &h, Some(&float_mask)),
            Err(Error::InvalidParameter { name: "mask", .. })
        ));
        // dtype mismatch is a libtorch error, returned, not a panic
        let f64_features = f.to_kind(Kind::Double);
        assert!(matches!(
            att.forward(&f64_features, &h, None),
            Err(Error::Torch(_))
        ));
    }

    #[test]
    fn sdpa_matches_the_formula_and_broadcasts_masks() {
        tch::manual_seed(2);
        let (q, k, v) = (randn(&[2, 3, 4]), randn(&[2, 5, 4]), randn(&[2, 5, 6]));
        let att = scaled_dot_product_attention(&q, &k, &v, None).unwrap();
        let w = (q.matmul(&k.transpose(1, 2)) / 2.0).softmax(-1, Kind::Float);
        assert!(max_abs_diff(&att.weights, &w) < 1e-6);
        assert!(max_abs_diff(&att.output, &w.matmul(&v)) < 1e-6);
        let causal = Tensor::ones([3, 5], (Kind::Bool, Device::Cpu)).tril(0);
        let m = scaled_dot_product_attention(&q, &k, &v, Some(&causal)).unwrap();
        assert_eq!(m.weights.double_value(&[1, 0, 1]), 0.0);
        assert!((m.weights.double_value(&[1, 0, 0]) - 1.0).abs() < 1e-6);
        // unbatched and 4-D inputs
        let u = scaled_dot_product_attention(&q.get(0), &k.get(0), &v.get(0), None).unwrap();
        assert!(max_abs_diff(&u.output, &att.output.get(0)) < 1e-6);
        let q4 = q.unsqueeze(1);
        let a4 = scaled_dot_product_attention(&q4, &k.unsqueeze(1), &v.unsqueeze(1), None).unwrap();
        assert_eq!(a4.output.size(), [2, 1, 3, 6]);
    }

    #[test]
    fn sdpa_rejects_bad_shapes() {
        let (q, k, v) = (randn(&[2, 3, 4]), randn(&[2, 5, 4]), randn(&[2, 5, 6]));
        let cases = [
            (randn(&[2, 3, 3]), randn(&[2, 5, 4]), randn(&[2, 5, 6])),
            (randn(&[2, 3, 4]), randn(&[2, 5, 4]), randn(&[2, 4, 6])),
            (randn(&[1, 3, 4]), randn(&[2, 5, 4]), randn(&[2, 5, 6])),
            (randn(&[4]), randn(&[4]), randn(&[4])),
            (randn(&[2, 3, 4]), randn(&[2, 0, 4]), randn(&[2, 0, 6])),
        ];
        for (q, k, v) in &cases {
            assert!(matches!(
                scaled_dot_product_attention(q, k, v, None),
                Err(Error::Shape { .. })
            ));
        }
        let bad_mask = Tensor::ones([3, 4], (Kind::Bool, Device::Cpu));
        assert!(matches!(
            scaled_dot_product_attention(&q, &k, &v, Some(&bad_mask)),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn mha_shapes_names_and_config_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = MultiHeadAttentionConfig {
            embed_dim: 6,
            num_heads: 4,
        };
        assert!(matches!(
            MultiHeadAttention::new(&vs.root(), &bad),
            Err(Error::InvalidParameter {
                name: "num_heads",
                ..
            })
        ));
        let cfg = MultiHeadAttentionConfig {
            embed_dim: 8,
            num_heads: 2,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new(&(vs.root() / "attn"), &cfg).unwrap();
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "attn.in_proj_bias",
                "attn.in_proj_weight",
                "attn.out_proj.bias",
                "attn.out_proj.weight"
            ]
        );
        let (q, kv) = (randn(&[2, 3, 8]), randn(&[2, 5, 8]));
        let out = mha.forward(&q, &kv, &kv, None).unwrap();
        assert_eq!(out.output.size(), [2, 3, 8]);
        assert_eq!(out.weights.size(), [2, 3, 5]);
        assert_eq!(out.head_weights.size(), [2, 2, 3, 5]);
        let sums = out.head_weights.sum_dim_intlist(-1, false, Kind::Float);
        assert!(max_abs_diff(&sums, &sums.ones_like()) < 1e-6);
        assert!(matches!(
            mha.forward(&q, &kv, &randn(&[2, 4, 8]), None),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            mha.forward(&randn(&[2, 3, 6]), &kv, &kv, None),
            Err(Error::Shape { .. })
        ));
        let pad = Tensor::ones([2, 1, 5], (Kind::Bool, Device::Cpu));
        assert!(mha.forward(&q, &kv, &kv, Some(&pad)).is_ok());
        let bad_pad = Tensor::ones([2, 2, 5], (Kind::Bool, Device::Cpu));
        assert!(matches!(
            mha.forward(&q, &kv, &kv, Some(&bad_pad)),
            Err(Error::Shape { .. })
        ));
    }
}
