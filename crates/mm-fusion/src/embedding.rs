//! Joint embedding: projecting each modality into a shared space where cosine similarity is a
//! dot product.

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use crate::error::{Error, Result, check_positive};
use crate::linear::{apply, linear};

/// `x / max(||x||_2, 1e-12)` along the last dimension, as
/// `torch.nn.functional.normalize(x, dim=-1)`: rows of unit Euclidean norm (a zero row stays
/// zero).
///
/// # Shapes
/// `x: [.., D]` with `D >= 1` -> the same shape.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    if x.dim() < 1 || x.size().last().copied().unwrap_or(0) < 1 {
        return Err(Error::shape("l2_normalize", "[.., D >= 1]", &[x]));
    }
    let norm = x
        .f_norm_scalaropt_dim(2.0, [-1i64], true)?
        .f_clamp_min(1e-12)?;
    Ok(x.f_div(&norm)?)
}

/// Configuration of [`ProjectionHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionHeadConfig {
    /// Size of the input features.
    pub in_dim: i64,
    /// Size of the joint embedding.
    pub out_dim: i64,
    /// With a size, a two-layer MLP `fc2(relu(fc1(x)))` instead of the single layer `fc(x)`.
    #[serde(default)]
    pub hidden_dim: Option<i64>,
}

/// Projection into a joint embedding space, followed by L2 normalisation: `l2norm(fc(x))` (the
/// `EncoderImagePrecomp` of [VSE++](https://github.com/fartashf/vsepp), whose layer is also
/// called `fc`), or with a hidden layer `l2norm(fc2(relu(fc1(x))))` (SimCLR's projection head).
#[derive(Debug)]
pub struct ProjectionHead {
    layers: Vec<nn::Linear>,
    in_dim: i64,
}

impl ProjectionHead {
    /// Layer `fc`, or `fc1` and `fc2`, under `p`.
    pub fn new(p: &nn::Path<'_>, cfg: &ProjectionHeadConfig) -> Result<Self> {
        check_positive("in_dim", cfg.in_dim)?;
        check_positive("out_dim", cfg.out_dim)?;
        let layers = match cfg.hidden_dim {
            None => vec![linear(p, "fc", cfg.in_dim, cfg.out_dim)?],
            Some(h) => {
                check_positive("hidden_dim", h)?;
                vec![
                    linear(p, "fc1", cfg.in_dim, h)?,
                    linear(p, "fc2", h, cfg.out_dim)?,
                ]
            }
        };
        Ok(Self {
            layers,
            in_dim: cfg.in_dim,
        })
    }

    /// The unit-norm embedding.
    ///
    /// # Shapes
    /// `x: [N, in_dim]` (or any `[.., in_dim]`) -> `[N, out_dim]`, each row of norm 1.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dim() < 1 || x.size().last() != Some(&self.in_dim) {
            return Err(Error::shape(
                "ProjectionHead::forward",
                format!("[N, {}]", self.in_dim),
                &[x],
            ));
        }
        let mut h = apply(x, &self.layers[0])?;
        for layer in &self.layers[1..] {
            h = apply(&h.f_relu()?, layer)?;
        }
        l2_normalize(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn outputs_have_unit_norm_and_torch_names() {
        tch::manual_seed(4);
        for hidden in [None, Some(7)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = ProjectionHeadConfig {
                in_dim: 5,
                out_dim: 3,
                hidden_dim: hidden,
            };
            let head = ProjectionHead::new(&vs.root(), &cfg).unwrap();
            let x = Tensor::randn([6, 5], (Kind::Float, Device::Cpu)) * 10.0;
            let y = head.forward(&x).unwrap();
            assert_eq!(y.size(), [6, 3]);
            let norms = y.norm_scalaropt_dim(2.0, [-1i64], false);
            assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-6);
            let mut names: Vec<String> = vs.variables().into_keys().collect();
            names.sort();
            let want: &[&str] = match hidden {
                None => &["fc.bias", "fc.weight"],
                Some(_) => &["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"],
            };
            assert_eq!(names, want);
            assert!(matches!(
                head.forward(&Tensor::zeros([6, 4], (Kind::Float, Device::Cpu))),
                Err(Error::Shape { .. })
            ));
        }
    }

    #[test]
    fn l2_normalize_matches_f_normalize_and_keeps_zero_rows() {
        let x = Tensor::from_slice(&[3.0f32, 4.0, 0.0, 0.0]).view([2, 2]);
        let y = l2_normalize(&x).unwrap();
        let want = Tensor::from_slice(&[0.6f32, 0.8, 0.0, 0.0]).view([2, 2]);
        assert!(y.allclose(&want, 1e-6, 1e-7, false));
        let empty = Tensor::zeros([2, 0], (Kind::Float, Device::Cpu));
        assert!(matches!(l2_normalize(&empty), Err(Error::Shape { .. })));
    }

    #[test]
    fn bad_configs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        for (i, o, h) in [(0, 3, None), (5, 0, None), (5, 3, Some(0))] {
            let cfg = ProjectionHeadConfig {
                in_dim: i,
                out_dim: o,
                hidden_dim: h,
            };
            assert!(matches!(
                ProjectionHead::new(&vs.root(), &cfg),
                Err(Error::InvalidParameter { .. })
            ));
        }
    }
}
