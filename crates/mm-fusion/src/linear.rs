//! Fallible `Linear` layers: creation and application that return [`Error::Torch`] instead of
//! panicking when libtorch objects (a dtype or device mismatch, say).

use tch::{Tensor, nn};

use crate::error::{Result, check_positive};

/// A `Linear` layer `in_dim -> out_dim` with parameters `name.weight` `[out_dim, in_dim]` and
/// `name.bias` `[out_dim]`, initialised like `torch.nn.Linear` (uniform in `±1/sqrt(in_dim)`).
pub(crate) fn linear(
    p: &nn::Path<'_>,
    name: &str,
    in_dim: i64,
    out_dim: i64,
) -> Result<nn::Linear> {
    check_positive("in_dim", in_dim)?;
    check_positive("out_dim", out_dim)?;
    let p = p / name;
    let bound = 1.0 / (in_dim as f64).sqrt();
    let init = nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    Ok(nn::Linear {
        ws: p.f_var("weight", &[out_dim, in_dim], init)?,
        bs: Some(p.f_var("bias", &[out_dim], init)?),
    })
}

/// `x W^T + b`, over the last dimension of `x`.
pub(crate) fn apply(x: &Tensor, l: &nn::Linear) -> Result<Tensor> {
    Ok(x.f_linear(&l.ws, l.bs.as_ref())?)
}
