//! A small CNN sized for 64x64 images and spectrogram "images".

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn;

use crate::error::{Error, Result};

/// `SmallCnn` settings: one conv-BN-ReLU-maxpool stage per entry of `widths`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallCnnConfig {
    /// Input channels (3 for RGB, 1 for a spectrogram).
    pub in_channels: i64,
    /// Output channels of each stage; each stage halves height and width.
    pub widths: Vec<i64>,
}

impl Default for SmallCnnConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            widths: vec![32, 64, 128],
        }
    }
}

/// One stage: 3x3 conv (no bias), batch norm, ReLU, 2x2 max pool.
#[derive(Debug)]
struct Stage {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

/// A plain VGG-style CNN: `widths.len()` stages, each halving the spatial size.
///
/// Parameter names are `stages.{i}.conv.weight` and `stages.{i}.bn.{weight,bias,running_mean,
/// running_var}`.
#[derive(Debug)]
pub struct SmallCnn {
    stages: Vec<Stage>,
    in_channels: i64,
    out_channels: i64,
}

impl SmallCnn {
    /// Builds the network under `p`.
    pub fn new(p: &nn::Path<'_>, cfg: &SmallCnnConfig) -> Result<Self> {
        if cfg.in_channels <= 0 {
            return Err(Error::InvalidParameter {
                name: "in_channels",
                reason: "must be positive".into(),
            });
        }
        if cfg.widths.is_empty() || cfg.widths.iter().any(|&w| w <= 0) {
            return Err(Error::InvalidParameter {
                name: "widths",
                reason: "need at least one stage, each of positive width".into(),
            });
        }
        let sp = p / "stages";
        let mut c_in = cfg.in_channels;
        let mut stages = Vec::with_capacity(cfg.widths.len());
        for (i, &w) in cfg.widths.iter().enumerate() {
            let s = &sp / i;
            let conv = nn::conv2d(
                &s / "conv",
                c_in,
                w,
                3,
                nn::ConvConfig {
                    padding: 1,
                    bias: false,
                    ..Default::default()
                },
            );
            let bn = nn::batch_norm2d(&s / "bn", w, Default::default());
            stages.push(Stage { conv, bn });
            c_in = w;
        }
        Ok(Self {
            stages,
            in_channels: cfg.in_channels,
            out_channels: c_in,
        })
    }

    /// Channels of the feature map (the last stage's width).
    pub fn out_channels(&self) -> i64 {
        self.out_channels
    }

    /// The spatial feature map.
    ///
    /// # Shapes
    /// `xs: [N, in_channels, H, W]` -> `[N, out_channels, H / 2^S, W / 2^S]` for `S` stages
    /// (floor division at each stage).
    pub fn feature_map(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let size = xs.size();
        let min = 1i64 << self.stages.len();
        if size.len() != 4 || size[1] != self.in_channels || size[2] < min || size[3] < min {
            return Err(Error::Shape {
                op: "SmallCnn::feature_map",
                expected: format!("[N, {}, H >= {min}, W >= {min}]", self.in_channels),
                got: size,
            });
        }
        let mut h = xs.shallow_clone();
        for st in &self.stages {
            h = h
                .apply(&st.conv)
                .apply_t(&st.bn, train)
                .relu()
                .max_pool2d_default(2);
        }
        Ok(h)
    }

    /// The globally average-pooled feature vector.
    ///
    /// # Shapes
    /// `xs: [N, in_channels, H, W]` -> `[N, out_channels]`.
    pub fn pooled(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self
            .feature_map(xs, train)?
            .mean_dim(&[2i64, 3][..], false, tch::Kind::Float))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = SmallCnn::new(&vs.root(), &SmallCnnConfig::default()).unwrap();
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let fm = net.feature_map(&x, false).unwrap();
        assert_eq!(fm.size(), vec![2, 128, 8, 8]);
        assert_eq!(net.pooled(&x, false).unwrap().size(), vec![2, 128]);
        let names: std::collections::BTreeSet<String> = vs.variables().keys().cloned().collect();
        assert!(names.contains("stages.0.conv.weight"));
        assert!(names.contains("stages.2.bn.running_var"));
        assert!(!names.contains("stages.0.conv.bias"));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = SmallCnn::new(&vs.root(), &SmallCnnConfig::default()).unwrap();
        let x = Tensor::zeros([2, 1, 64, 64], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.feature_map(&x, false),
            Err(Error::Shape { .. })
        ));
        let tiny = Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert!(matches!(net.pooled(&tiny, false), Err(Error::Shape { .. })));
        let bad = SmallCnn::new(
            &vs.root(),
            &SmallCnnConfig {
                in_channels: 1,
                widths: vec![],
            },
        );
        assert!(matches!(
            bad,
            Err(Error::InvalidParameter { name: "widths", .. })
        ));
    }
}
