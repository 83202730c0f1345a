//! A small CNN sized for 64x64 images and spectrogram "images".

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use crate::backbone::{Arch, Backbone, Groups, check_input};
use crate::error::{Error, Result};
use crate::layers::{Conv, Group, bn, bn_fwd, conv, conv_fwd};

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
    conv: Conv,
    bn: nn::BatchNorm,
}

/// A plain VGG-style CNN: `widths.len()` stages, each halving the spatial size.
///
/// Stages (and parameter groups) are `stage1`..`stageS`. Parameter names are
/// `stages.{i}.conv.weight` and `stages.{i}.bn.{weight,bias,running_mean,running_var}`.
#[derive(Debug)]
pub struct SmallCnn {
    stages: Vec<Stage>,
    in_channels: i64,
    widths: Vec<i64>,
    groups: Groups,
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
        let mut groups = Groups::default();
        for (i, &w) in cfg.widths.iter().enumerate() {
            let s = &sp / i;
            let mut g = Group::default();
            let conv = conv(&s / "conv", &mut g, (c_in, w, 3), 1, 1, false);
            let bn = bn(&s / "bn", &mut g, w);
            groups.push(format!("stage{}", i + 1), g);
            stages.push(Stage { conv, bn });
            c_in = w;
        }
        Ok(Self {
            stages,
            in_channels: cfg.in_channels,
            widths: cfg.widths.clone(),
            groups,
        })
    }

    /// Channels of the last feature map (the last stage's width).
    pub fn out_channels(&self) -> i64 {
        self.widths.last().copied().unwrap_or_default()
    }

    fn run(&self, xs: &Tensor, last: usize, train: bool) -> Result<Tensor> {
        let min = 1i64 << self.stages.len();
        check_input(
            "SmallCnn::forward",
            xs,
            self.in_channels,
            min,
            &self.stages[0].conv.ws,
        )?;
        let mut h = xs.shallow_clone();
        for (i, st) in self.stages.iter().enumerate().take(last + 1) {
            let t = self.groups.train(i, train);
            let mut b = bn_fwd(&st.bn, &conv_fwd(&st.conv, &h)?, t)?;
            // in place, as PyTorch's ReLU(inplace=True): batch norm's backward needs its
            // input, not its output (one activation-sized buffer and pass less per stage)
            let _ = b.f_relu_()?;
            h = b.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
        }
        Ok(h)
    }
}

impl Backbone for SmallCnn {
    fn arch(&self) -> Arch {
        Arch::SmallCnn
    }

    fn stages(&self) -> Vec<String> {
        self.groups.names()
    }

    fn param_groups(&self) -> Vec<String> {
        self.groups.names()
    }

    fn channels(&self, stage: &str) -> Result<i64> {
        Ok(self.widths[self.groups.index(stage)?])
    }

    /// # Shapes
    /// `xs: [N, in_channels, H, W]` with `H, W >= 2^S` -> `[N, widths[k], H / 2^(k+1),
    /// W / 2^(k+1)]` for stage `k + 1` (floor division at each stage).
    fn feature_map(&self, xs: &Tensor, stage: &str, train: bool) -> Result<Tensor> {
        let i = self.groups.index(stage)?;
        self.run(xs, i, train)
    }

    fn pooled(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.run(xs, self.stages.len() - 1, train)?.f_mean_dim(
            &[2i64, 3][..],
            false,
            None::<Kind>,
        )?)
    }

    fn logits(&self, _xs: &Tensor, _train: bool) -> Result<Tensor> {
        Err(Error::NoClassifier {
            arch: Arch::SmallCnn,
        })
    }

    fn set_trainable(&mut self, group: &str, trainable: bool) -> Result<()> {
        self.groups.set(group, trainable)
    }

    fn is_trainable(&self, group: &str) -> Result<bool> {
        self.groups.get(group)
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
        let fm = net.feature_map(&x, "stage3", false).unwrap();
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
            net.feature_map(&x, "stage3", false),
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
