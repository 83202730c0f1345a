//! Pointwise (Hadamard) fusion, as in the VQA baseline: `tanh(W_a a) * tanh(W_b b)`.

use tch::{Tensor, nn};

use crate::error::{Error, Result};
use crate::linear::{apply, linear};

/// Projects two vectors into a common space with `tanh` layers and multiplies them elementwise.
#[derive(Debug)]
pub struct HadamardFusion {
    proj_a: nn::Linear,
    proj_b: nn::Linear,
    dim_a: i64,
    dim_b: i64,
}

impl HadamardFusion {
    /// Layers `proj_a` (`dim_a -> dim_out`) and `proj_b` (`dim_b -> dim_out`) under `p`.
    pub fn new(p: &nn::Path<'_>, dim_a: i64, dim_b: i64, dim_out: i64) -> Result<Self> {
        if dim_a <= 0 || dim_b <= 0 || dim_out <= 0 {
            return Err(Error::InvalidParameter {
                name: "dim_a/dim_b/dim_out",
                reason: "must be positive".into(),
            });
        }
        Ok(Self {
            proj_a: linear(p, "proj_a", dim_a, dim_out)?,
            proj_b: linear(p, "proj_b", dim_b, dim_out)?,
            dim_a,
            dim_b,
        })
    }

    /// Size of the fused vector.
    pub fn dim_out(&self) -> i64 {
        self.proj_a.ws.size()[0]
    }

    /// The fused vector.
    ///
    /// # Shapes
    /// `a: [N, dim_a]`, `b: [N, dim_b]` -> `[N, dim_out]`.
    pub fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (sa, sb) = (a.size(), b.size());
        if sa.len() != 2
            || sb.len() != 2
            || sa[0] != sb[0]
            || sa[1] != self.dim_a
            || sb[1] != self.dim_b
        {
            return Err(Error::Shape {
                op: "HadamardFusion::forward",
                expected: format!("[N, {}] and [N, {}]", self.dim_a, self.dim_b),
                got: vec![sa, sb],
            });
        }
        Ok(apply(a, &self.proj_a)?
            .f_tanh()?
            .f_mul(&apply(b, &self.proj_b)?.f_tanh()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn output_is_the_product_of_the_two_projections() {
        let vs = nn::VarStore::new(Device::Cpu);
        let f = HadamardFusion::new(&vs.root(), 5, 3, 4).unwrap();
        let a = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
        let out = f.forward(&a, &b).unwrap();
        assert_eq!(out.size(), vec![2, 4]);
        let want = a.apply(&f.proj_a).tanh() * b.apply(&f.proj_b).tanh();
        assert!(out.allclose(&want, 1e-6, 1e-6, false));
        assert!(out.abs().max().double_value(&[]) < 1.0);
        assert!(f.forward(&b, &a).is_err());
    }
}
