//! Fusing two vectors into one: concatenation, sum and low-rank bilinear (MLB) fusion, plus
//! [`Fusion`], which picks any of these (and [`HadamardFusion`]) by name from a config.

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use crate::error::{Error, Result, check_positive};
use crate::linear::{apply, linear};
use crate::pointwise::HadamardFusion;

/// An elementwise nonlinearity applied after a fusion's last layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `x`.
    Identity,
}

impl Activation {
    fn apply(self, x: Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.f_relu()?,
            Activation::Tanh => x.f_tanh()?,
            Activation::Identity => x,
        })
    }
}

/// [`Error::InvalidParameter`] unless all three sizes are positive.
fn check_dims(dim_a: i64, dim_b: i64, dim_out: i64) -> Result<()> {
    check_positive("dim_a", dim_a)?;
    check_positive("dim_b", dim_b)?;
    check_positive("dim_out", dim_out)
}

/// [`Error::Shape`] unless `a: [N, dim_a]` and `b: [N, dim_b]`.
fn check_pair(op: &'static str, a: &Tensor, b: &Tensor, dim_a: i64, dim_b: i64) -> Result<()> {
    let (sa, sb) = (a.size(), b.size());
    if sa.len() == 2 && sb.len() == 2 && sa[0] == sb[0] && sa[1] == dim_a && sb[1] == dim_b {
        Ok(())
    } else {
        Err(Error::shape(
            op,
            format!("[N, {dim_a}] and [N, {dim_b}]"),
            &[a, b],
        ))
    }
}

/// Concatenation fusion: `act(fc([a; b]))`, one `Linear` layer `fc` (`dim_a + dim_b ->
/// dim_out`) over the concatenated vectors.
#[derive(Debug)]
pub struct ConcatFusion {
    fc: nn::Linear,
    activation: Activation,
    dim_a: i64,
    dim_b: i64,
}

impl ConcatFusion {
    /// Layer `fc` under `p`.
    pub fn new(
        p: &nn::Path<'_>,
        dim_a: i64,
        dim_b: i64,
        dim_out: i64,
        activation: Activation,
    ) -> Result<Self> {
        check_dims(dim_a, dim_b, dim_out)?;
        Ok(Self {
            fc: linear(p, "fc", dim_a + dim_b, dim_out)?,
            activation,
            dim_a,
            dim_b,
        })
    }

    /// The fused vector.
    ///
    /// # Shapes
    /// `a: [N, dim_a]`, `b: [N, dim_b]` -> `[N, dim_out]`.
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        check_pair("ConcatFusion::forward", a, b, self.dim_a, self.dim_b)?;
        let ab = Tensor::f_cat(&[a, b], 1)?;
        self.activation.apply(apply(&ab, &self.fc)?)
    }
}

/// Sum fusion: `act(proj_a(a) + proj_b(b))`, two `Linear` layers into a common space.
#[derive(Debug)]
pub struct SumFusion {
    proj_a: nn::Linear,
    proj_b: nn::Linear,
    activation: Activation,
    dim_a: i64,
    dim_b: i64,
}

impl SumFusion {
    /// Layers `proj_a` (`dim_a -> dim_out`) and `proj_b` (`dim_b -> dim_out`) under `p`.
    pub fn new(
        p: &nn::Path<'_>,
        dim_a: i64,
        dim_b: i64,
        dim_out: i64,
        activation: Activation,
    ) -> Result<Self> {
        check_dims(dim_a, dim_b, dim_out)?;
        Ok(Self {
            proj_a: linear(p, "proj_a", dim_a, dim_out)?,
            proj_b: linear(p, "proj_b", dim_b, dim_out)?,
            activation,
            dim_a,
            dim_b,
        })
    }

    /// The fused vector.
    ///
    /// # Shapes
    /// `a: [N, dim_a]`, `b: [N, dim_b]` -> `[N, dim_out]`.
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        check_pair("SumFusion::forward", a, b, self.dim_a, self.dim_b)?;
        let sum = apply(a, &self.proj_a)?.f_add(&apply(b, &self.proj_b)?)?;
        self.activation.apply(sum)
    }
}

/// Low-rank bilinear fusion, MLB ([Kim et al. 2017, "Hadamard Product for Low-rank Bilinear
/// Pooling"](https://arxiv.org/abs/1610.04325), eq. 4 with `sigma = tanh`):
///
/// ```text
/// f = P (tanh(U a) * tanh(V b)) + p
/// ```
///
/// a bilinear form `a^T W_k b` per output `k` whose tensor `W` is restricted to rank `rank`.
/// Layers: `proj_a` (`U`, `dim_a -> rank`), `proj_b` (`V`, `dim_b -> rank`), `proj_out`
/// (`P`, `rank -> dim_out`). Dropout, which the paper applies before `P`, is left to the caller.
#[derive(Debug)]
pub struct LowRankBilinearFusion {
    proj_a: nn::Linear,
    proj_b: nn::Linear,
    proj_out: nn::Linear,
    dim_a: i64,
    dim_b: i64,
}

impl LowRankBilinearFusion {
    /// Layers `proj_a`, `proj_b` and `proj_out` under `p`.
    pub fn new(p: &nn::Path<'_>, dim_a: i64, dim_b: i64, rank: i64, dim_out: i64) -> Result<Self> {
        check_dims(dim_a, dim_b, dim_out)?;
        check_positive("rank", rank)?;
        Ok(Self {
            proj_a: linear(p, "proj_a", dim_a, rank)?,
            proj_b: linear(p, "proj_b", dim_b, rank)?,
            proj_out: linear(p, "proj_out", rank, dim_out)?,
            dim_a,
            dim_b,
        })
    }

    /// The fused vector.
    ///
    /// # Shapes
    /// `a: [N, dim_a]`, `b: [N, dim_b]` -> `[N, dim_out]`.
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        check_pair(
            "LowRankBilinearFusion::forward",
            a,
            b,
            self.dim_a,
            self.dim_b,
        )?;
        let joint = apply(a, &self.proj_a)?
            .f_tanh()?
            .f_mul(&apply(b, &self.proj_b)?.f_tanh()?)?;
        apply(&joint, &self.proj_out)
    }
}

/// Which fusion a [`FusionConfig`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FusionKind {
    /// [`HadamardFusion`]: `tanh(W_a a) * tanh(W_b b)`.
    Hadamard,
    /// [`ConcatFusion`]: `act(W [a; b])`.
    Concat,
    /// [`SumFusion`]: `act(W_a a + W_b b)`.
    Sum,
    /// [`LowRankBilinearFusion`] (MLB): `P (tanh(U a) * tanh(V b))`.
    Bilinear,
}

/// Configuration of a [`Fusion`], e.g. from a task's TOML:
///
/// ```toml
/// kind = "bilinear"
/// dim_a = 512
/// dim_b = 300
/// dim_out = 1024
/// rank = 1200
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// Which fusion.
    pub kind: FusionKind,
    /// Size of the first input.
    pub dim_a: i64,
    /// Size of the second input.
    pub dim_b: i64,
    /// Size of the fused vector.
    pub dim_out: i64,
    /// Rank of [`FusionKind::Bilinear`] (default `dim_out`); an error for the other kinds.
    #[serde(default)]
    pub rank: Option<i64>,
    /// Activation of [`FusionKind::Concat`] (default [`Activation::Relu`]) and
    /// [`FusionKind::Sum`] (default [`Activation::Identity`]); an error for the other kinds,
    /// whose `tanh` is built in.
    #[serde(default)]
    pub activation: Option<Activation>,
}

impl FusionConfig {
    /// A config with the defaults for `rank` and `activation`.
    pub fn new(kind: FusionKind, dim_a: i64, dim_b: i64, dim_out: i64) -> Self {
        Self {
            kind,
            dim_a,
            dim_b,
            dim_out,
            rank: None,
            activation: None,
        }
    }
}

/// Any of the fusions, chosen at run time by [`FusionKind`].
#[derive(Debug)]
pub enum Fusion {
    /// See [`HadamardFusion`].
    Hadamard(HadamardFusion),
    /// See [`ConcatFusion`].
    Concat(ConcatFusion),
    /// See [`SumFusion`].
    Sum(SumFusion),
    /// See [`LowRankBilinearFusion`].
    Bilinear(LowRankBilinearFusion),
}

impl Fusion {
    /// The fusion `cfg.kind` with its layers directly under `p` (the parameter names of the
    /// chosen type).
    pub fn new(p: &nn::Path<'_>, cfg: &FusionConfig) -> Result<Self> {
        let FusionConfig {
            kind,
            dim_a,
            dim_b,
            dim_out,
            rank,
            activation,
        } = *cfg;
        if rank.is_some() && kind != FusionKind::Bilinear {
            return Err(Error::invalid(
                "rank",
                "only the bilinear fusion has a rank",
            ));
        }
        if activation.is_some() && matches!(kind, FusionKind::Hadamard | FusionKind::Bilinear) {
            return Err(Error::invalid(
                "activation",
                "only the concat and sum fusions take an activation",
            ));
        }
        Ok(match kind {
            FusionKind::Hadamard => {
                Fusion::Hadamard(HadamardFusion::new(p, dim_a, dim_b, dim_out)?)
            }
            FusionKind::Concat => Fusion::Concat(ConcatFusion::new(
                p,
                dim_a,
                dim_b,
                dim_out,
                activation.unwrap_or(Activation::Relu),
            )?),
            FusionKind::Sum => Fusion::Sum(SumFusion::new(
                p,
                dim_a,
                dim_b,
                dim_out,
                activation.unwrap_or(Activation::Identity),
            )?),
            FusionKind::Bilinear => Fusion::Bilinear(LowRankBilinearFusion::new(
                p,
                dim_a,
                dim_b,
                rank.unwrap_or(dim_out),
                dim_out,
            )?),
        })
    }

    /// Which fusion this is.
    pub fn kind(&self) -> FusionKind {
        match self {
            Fusion::Hadamard(_) => FusionKind::Hadamard,
            Fusion::Concat(_) => FusionKind::Concat,
            Fusion::Sum(_) => FusionKind::Sum,
            Fusion::Bilinear(_) => FusionKind::Bilinear,
        }
    }

    /// The fused vector.
    ///
    /// # Shapes
    /// `a: [N, dim_a]`, `b: [N, dim_b]` -> `[N, dim_out]`.
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            Fusion::Hadamard(f) => f.forward(a, b),
            Fusion::Concat(f) => f.forward(a, b),
            Fusion::Sum(f) => f.forward(a, b),
            Fusion::Bilinear(f) => f.forward(a, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn randn(s: &[i64]) -> Tensor {
        Tensor::randn(s, (Kind::Float, Device::Cpu))
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        a.allclose(b, 1e-5, 1e-6, false)
    }

    #[test]
    fn each_fusion_computes_its_formula() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let (a, b) = (randn(&[4, 5]), randn(&[4, 3]));

        let c = ConcatFusion::new(&(vs.root() / "c"), 5, 3, 6, Activation::Tanh).unwrap();
        let want = Tensor::cat(&[&a, &b], 1).apply(&c.fc).tanh();
        assert!(close(&c.forward(&a, &b).unwrap(), &want));

        let s = SumFusion::new(&(vs.root() / "s"), 5, 3, 6, Activation::Relu).unwrap();
        let want = (a.apply(&s.proj_a) + b.apply(&s.proj_b)).relu();
        assert!(close(&s.forward(&a, &b).unwrap(), &want));

        let m = LowRankBilinearFusion::new(&(vs.root() / "m"), 5, 3, 7, 6).unwrap();
        let want = (a.apply(&m.proj_a).tanh() * b.apply(&m.proj_b).tanh()).apply(&m.proj_out);
        let got = m.forward(&a, &b).unwrap();
        assert_eq!(got.size(), [4, 6]);
        assert!(close(&got, &want));
        assert_eq!(m.proj_a.ws.size(), [7, 5]);
    }

    #[test]
    fn fusion_is_picked_by_name_from_a_config() {
        let vs = nn::VarStore::new(Device::Cpu);
        let (a, b) = (randn(&[2, 5]), randn(&[2, 3]));
        for kind in ["hadamard", "concat", "sum", "bilinear"] {
            let json = format!(r#"{{"kind": "{kind}", "dim_a": 5, "dim_b": 3, "dim_out": 4}}"#);
            let cfg: FusionConfig = serde_json::from_str(&json).unwrap();
            let f = Fusion::new(&(vs.root() / kind), &cfg).unwrap();
            assert_eq!(serde_json::to_value(f.kind()).unwrap(), kind);
            assert_eq!(f.forward(&a, &b).unwrap().size(), [2, 4]);
            assert!(matches!(f.forward(&b, &a), Err(Error::Shape { .. })));
            assert!(matches!(
                f.forward(&a, &randn(&[3, 3])),
                Err(Error::Shape { .. })
            ));
        }
        let with_rank = r#"{"kind": "bilinear", "dim_a": 5, "dim_b": 3, "dim_out": 4, "rank": 9}"#;
        let cfg: FusionConfig = serde_json::from_str(with_rank).unwrap();
        let Fusion::Bilinear(m) = Fusion::new(&(vs.root() / "r"), &cfg).unwrap() else {
            panic!("not bilinear")
        };
        assert_eq!(m.proj_out.ws.size(), [4, 9]);
        let unknown = r#"{"kind": "sum", "dim_a": 5, "dim_b": 3, "dim_out": 4, "rnak": 9}"#;
        assert!(serde_json::from_str::<FusionConfig>(unknown).is_err());
    }

    #[test]
    fn bad_configs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let mut cfg = FusionConfig::new(FusionKind::Sum, 5, 3, 4);
        cfg.rank = Some(3);
        assert!(matches!(
            Fusion::new(&p, &cfg),
            Err(Error::InvalidParameter { name: "rank", .. })
        ));
        let mut cfg = FusionConfig::new(FusionKind::Hadamard, 5, 3, 4);
        cfg.activation = Some(Activation::Relu);
        assert!(matches!(
            Fusion::new(&p, &cfg),
            Err(Error::InvalidParameter {
                name: "activation",
                ..
            })
        ));
        for kind in [
            FusionKind::Hadamard,
            FusionKind::Concat,
            FusionKind::Sum,
            FusionKind::Bilinear,
        ] {
            for (da, db, dout) in [(0, 3, 4), (5, -1, 4), (5, 3, 0)] {
                assert!(matches!(
                    Fusion::new(&p, &FusionConfig::new(kind, da, db, dout)),
                    Err(Error::InvalidParameter { .. })
                ));
            }
        }
        let mut cfg = FusionConfig::new(FusionKind::Bilinear, 5, 3, 4);
        cfg.rank = Some(0);
        assert!(matches!(
            Fusion::new(&p, &cfg),
            Err(Error::InvalidParameter { name: "rank", .. })
        ));
    }
}
