//! Layer constructors with torchvision's initialisation, and per-stage parameter groups.

use tch::Tensor;
use tch::nn::{self, Init};

/// torchvision's convolution init: Kaiming normal, fan-out, ReLU gain.
const CONV_INIT: Init = Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// The learnable tensors of one stage, so a stage can be frozen or fine-tuned as a unit.
#[derive(Debug, Default)]
pub(crate) struct Group {
    pub(crate) params: Vec<Tensor>,
}

impl Group {
    /// Sets `requires_grad` on every tensor of the group.
    pub(crate) fn set_requires_grad(&self, on: bool) {
        for p in &self.params {
            let _ = p.set_requires_grad(on);
        }
    }

    fn bn(&mut self, b: &nn::BatchNorm) {
        self.params.extend(b.ws.iter().map(Tensor::shallow_clone));
        self.params.extend(b.bs.iter().map(Tensor::shallow_clone));
    }

    fn linear(&mut self, l: &nn::Linear) {
        self.params.push(l.ws.shallow_clone());
        if let Some(b) = &l.bs {
            self.params.push(b.shallow_clone());
        }
    }
}

/// A square 2-d convolution (tch's `Conv2D` keeps its configuration private, and the
/// forward here must use the fallible op).
#[derive(Debug)]
pub(crate) struct Conv {
    pub(crate) ws: Tensor,
    pub(crate) bs: Option<Tensor>,
    stride: i64,
    padding: i64,
}

/// A `k x k` convolution named `p.{weight,bias}`, registered in `g`.
pub(crate) fn conv(
    p: nn::Path<'_>,
    g: &mut Group,
    (c_in, c_out, k): (i64, i64, i64),
    stride: i64,
    padding: i64,
    bias: bool,
) -> Conv {
    let ws = p.var("weight", &[c_out, c_in, k, k], CONV_INIT);
    let bs = bias.then(|| p.var("bias", &[c_out], Init::Const(0.0)));
    g.params.push(ws.shallow_clone());
    g.params.extend(bs.iter().map(Tensor::shallow_clone));
    Conv {
        ws,
        bs,
        stride,
        padding,
    }
}

/// A 2-d batch norm named `p.{weight,bias,running_mean,running_var}` (weight 1, bias 0, as
/// PyTorch initialises it), registered in `g`.
pub(crate) fn bn(p: nn::Path<'_>, g: &mut Group, c: i64) -> nn::BatchNorm {
    let b = nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            ws_init: Init::Const(1.0),
            bs_init: Init::Const(0.0),
            ..Default::default()
        },
    );
    g.bn(&b);
    b
}

/// A linear layer; `normal_std` selects `N(0, std)` weights with zero bias (VGG's init) instead
/// of PyTorch's default uniform init.
pub(crate) fn linear(
    p: nn::Path<'_>,
    g: &mut Group,
    d_in: i64,
    d_out: i64,
    normal_std: Option<f64>,
) -> nn::Linear {
    let cfg = match normal_std {
        Some(std) => nn::LinearConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        },
        None => nn::LinearConfig::default(),
    };
    let l = nn::linear(p, d_in, d_out, cfg);
    g.linear(&l);
    l
}

/// `conv(xs)` through the fallible op, so libtorch errors become [`crate::Error::Torch`].
pub(crate) fn conv_fwd(c: &Conv, xs: &Tensor) -> crate::Result<Tensor> {
    Ok(xs.f_conv2d(
        &c.ws,
        c.bs.as_ref(),
        [c.stride; 2],
        [c.padding; 2],
        [1i64; 2],
        1,
    )?)
}

/// `bn(xs)`: batch statistics when `train`, running statistics otherwise.
pub(crate) fn bn_fwd(b: &nn::BatchNorm, xs: &Tensor, train: bool) -> crate::Result<Tensor> {
    Ok(xs.f_batch_norm(
        b.ws.as_ref(),
        b.bs.as_ref(),
        Some(&b.running_mean),
        Some(&b.running_var),
        train,
        0.1,
        1e-5,
        false,
    )?)
}

/// `l(xs)` through the fallible op.
pub(crate) fn linear_fwd(l: &nn::Linear, xs: &Tensor) -> crate::Result<Tensor> {
    Ok(xs.f_linear(&l.ws, l.bs.as_ref())?)
}
