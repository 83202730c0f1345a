//! ResNet-18/34/50/101 with torchvision's structure and state-dict names (torchvision's
//! "ResNet v1.5": the bottleneck's stride sits on its 3x3 convolution).

use tch::{Kind, Tensor, nn};

use crate::backbone::{Arch, Backbone, Groups, check_input};
use crate::error::{Error, Result};
use crate::layers::{Conv, Group, bn, bn_fwd, conv, conv_fwd, linear, linear_fwd};

/// A residual block: basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 with 4x expansion).
#[derive(Debug)]
struct Block {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl Block {
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        // in-place ReLU and residual add, as torchvision does (`inplace=True`, `out +=`):
        // the batch-norm outputs they overwrite are not needed by any backward
        let mut h = xs.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (c, b)) in self.convs.iter().enumerate() {
            h = bn_fwd(b, &conv_fwd(c, &h)?, train)?;
            if i != last {
                let _ = h.f_relu_()?;
            }
        }
        let identity = match &self.downsample {
            Some((c, b)) => bn_fwd(b, &conv_fwd(c, xs)?, train)?,
            None => xs.shallow_clone(),
        };
        let _ = h.f_add_(&identity)?;
        let _ = h.f_relu_()?;
        Ok(h)
    }
}

/// torchvision's ResNet: `conv1, bn1, relu, maxpool`, `layer1..layer4`, `avgpool`, `fc`.
///
/// Stages: `stem` (after the max pool, stride 4), `layer1` (4), `layer2` (8), `layer3` (16),
/// `layer4` (32). Parameter groups: the stages and `fc` when built with a classifier.
///
/// ```
/// use mm_vision::{Arch, Backbone, ResNet};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = ResNet::new(&vs.root(), Arch::Resnet18, None)?;
/// let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu));
/// assert_eq!(net.feature_map(&x, "layer3", false)?.size(), [1, 256, 14, 14]);
/// assert_eq!(net.pooled(&x, false)?.size(), [1, 512]);
/// # Ok::<(), mm_vision::Error>(())
/// ```
#[derive(Debug)]
pub struct ResNet {
    arch: Arch,
    conv1: Conv,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
    fc: Option<nn::Linear>,
    channels: [i64; 5],
    groups: Groups,
}

const STAGES: [&str; 5] = ["stem", "layer1", "layer2", "layer3", "layer4"];

impl ResNet {
    /// Builds `arch` (a ResNet) under `p`, with an `fc` of `num_classes` outputs if given.
    pub fn new(p: &nn::Path<'_>, arch: Arch, num_classes: Option<i64>) -> Result<Self> {
        let (bottleneck, depths): (bool, [usize; 4]) = match arch {
            Arch::Resnet18 => (false, [2, 2, 2, 2]),
            Arch::Resnet34 => (false, [3, 4, 6, 3]),
            Arch::Resnet50 => (true, [3, 4, 6, 3]),
            Arch::Resnet101 => (true, [3, 4, 23, 3]),
            other => {
                return Err(Error::InvalidParameter {
                    name: "arch",
                    reason: format!("{other} is not a ResNet"),
                });
            }
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut groups = Groups::default();
        let mut g = Group::default();
        let conv1 = conv(p / "conv1", &mut g, (3, 64, 7), 2, 3, false);
        let bn1 = bn(p / "bn1", &mut g, 64);
        groups.push(STAGES[0], g);
        let mut channels = [64; 5];
        let mut c_in = 64;
        let mut layers = Vec::with_capacity(4);
        for (li, &depth) in depths.iter().enumerate() {
            let width = 64 << li;
            let mut g = Group::default();
            let lp = p / format!("layer{}", li + 1);
            let mut blocks = Vec::with_capacity(depth);
            for bi in 0..depth {
                let stride = if bi == 0 && li > 0 { 2 } else { 1 };
                let bp = &lp / bi;
                let c_out = width * expansion;
                let convs = if bottleneck {
                    vec![
                        (
                            conv(&bp / "conv1", &mut g, (c_in, width, 1), 1, 0, false),
                            bn(&bp / "bn1", &mut g, width),
                        ),
                        (
                            conv(&bp / "conv2", &mut g, (width, width, 3), stride, 1, false),
                            bn(&bp / "bn2", &mut g, width),
                        ),
                        (
                            conv(&bp / "conv3", &mut g, (width, c_out, 1), 1, 0, false),
                            bn(&bp / "bn3", &mut g, c_out),
                        ),
                    ]
                } else {
                    vec![
                        (
                            conv(&bp / "conv1", &mut g, (c_in, width, 3), stride, 1, false),
                            bn(&bp / "bn1", &mut g, width),
                        ),
                        (
                            conv(&bp / "conv2", &mut g, (width, width, 3), 1, 1, false),
                            bn(&bp / "bn2", &mut g, width),
                        ),
                    ]
                };
                let downsample = (stride != 1 || c_in != c_out).then(|| {
                    let dp = &bp / "downsample";
                    (
                        conv(&dp / 0, &mut g, (c_in, c_out, 1), stride, 0, false),
                        bn(&dp / 1, &mut g, c_out),
                    )
                });
                blocks.push(Block { convs, downsample });
                c_in = c_out;
            }
            channels[li + 1] = c_in;
            groups.push(STAGES[li + 1], g);
            layers.push(blocks);
        }
        let fc = num_classes.map(|n| {
            let mut g = Group::default();
            let fc = linear(p / "fc", &mut g, c_in, n, None);
            groups.push("fc", g);
            fc
        });
        Ok(Self {
            arch,
            conv1,
            bn1,
            layers,
            fc,
            channels,
            groups,
        })
    }

    fn stage_index(&self, stage: &str) -> Result<usize> {
        STAGES
            .iter()
            .position(|s| *s == stage)
            .ok_or_else(|| Error::UnknownStage {
                name: stage.to_owned(),
                known: self.stages(),
            })
    }

    /// Runs the stages up to and including `last`.
    fn run(&self, xs: &Tensor, last: usize, train: bool) -> Result<Tensor> {
        check_input("ResNet::forward", xs, 3, 32, &self.conv1.ws)?;
        let t = self.groups.train(0, train);
        let mut h = bn_fwd(&self.bn1, &conv_fwd(&self.conv1, xs)?, t)?;
        let _ = h.f_relu_()?;
        let mut h = h.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        for (li, blocks) in self.layers.iter().enumerate().take(last) {
            let t = self.groups.train(li + 1, train);
            for b in blocks {
                h = b.forward(&h, t)?;
            }
        }
        Ok(h)
    }
}

impl Backbone for ResNet {
    fn arch(&self) -> Arch {
        self.arch
    }

    fn stages(&self) -> Vec<String> {
        STAGES.iter().map(|s| s.to_string()).collect()
    }

    fn param_groups(&self) -> Vec<String> {
        self.groups.names()
    }

    fn channels(&self, stage: &str) -> Result<i64> {
        Ok(self.channels[self.stage_index(stage)?])
    }

    fn feature_map(&self, xs: &Tensor, stage: &str, train: bool) -> Result<Tensor> {
        let i = self.stage_index(stage)?;
        self.run(xs, i, train)
    }

    fn pooled(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self
            .run(xs, 4, train)?
            .f_mean_dim(&[2i64, 3][..], false, None::<Kind>)?)
    }

    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let fc = self
            .fc
            .as_ref()
            .ok_or(Error::NoClassifier { arch: self.arch })?;
        linear_fwd(fc, &self.pooled(xs, train)?)
    }

    fn set_trainable(&mut self, group: &str, trainable: bool) -> Result<()> {
        self.groups.set(group, trainable)
    }

    fn is_trainable(&self, group: &str) -> Result<bool> {
        self.groups.get(group)
    }
}
