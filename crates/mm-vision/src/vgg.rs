//! VGG-16/19, with and without batch norm, with torchvision's structure and state-dict names
//! (`features.{i}` counting every conv, batch norm, ReLU and max pool; `classifier.{0,3,6}`).

use tch::{Kind, Tensor, nn};

use crate::backbone::{Arch, Backbone, Groups, check_input};
use crate::error::{Error, Result};
use crate::layers::{Conv, Group, bn, bn_fwd, conv, conv_fwd, linear, linear_fwd};

/// torchvision's VGG: five blocks of 3x3 convolutions (+ batch norm) + ReLU, each followed by a
/// 2x2 max pool, then `avgpool` to 7x7 and the three-layer `classifier`.
///
/// Stages: `block1`..`block5` (the last ReLU of each block, before its pool: strides 1, 2, 4,
/// 8, 16; `block5` is Show, Attend and Tell's 14x14 `conv5` map at 224 pixels) and `pool5`
/// (after the last pool, stride 32). Parameter groups: the five blocks and `classifier` when
/// built with one. [`Backbone::pooled`] averages `pool5` globally (512-d); [`Vgg::fc7`] gives
/// the classic 4096-d features.
#[derive(Debug)]
pub struct Vgg {
    arch: Arch,
    blocks: Vec<Vec<(Conv, Option<nn::BatchNorm>)>>,
    classifier: Option<[nn::Linear; 3]>,
    groups: Groups,
}

const STAGES: [&str; 6] = ["block1", "block2", "block3", "block4", "block5", "pool5"];

impl Vgg {
    /// Builds `arch` (a VGG) under `p`, with a classifier of `num_classes` outputs if given.
    pub fn new(p: &nn::Path<'_>, arch: Arch, num_classes: Option<i64>) -> Result<Self> {
        let (convs_per_block, batch_norm): ([usize; 5], bool) = match arch {
            Arch::Vgg16 => ([2, 2, 3, 3, 3], false),
            Arch::Vgg16Bn => ([2, 2, 3, 3, 3], true),
            Arch::Vgg19 => ([2, 2, 4, 4, 4], false),
            Arch::Vgg19Bn => ([2, 2, 4, 4, 4], true),
            other => {
                return Err(Error::InvalidParameter {
                    name: "arch",
                    reason: format!("{other} is not a VGG"),
                });
            }
        };
        let fp = p / "features";
        let mut groups = Groups::default();
        let mut blocks = Vec::with_capacity(5);
        let (mut idx, mut c_in) = (0i64, 3i64);
        for (bi, &n) in convs_per_block.iter().enumerate() {
            let width = [64, 128, 256, 512, 512][bi];
            let mut g = Group::default();
            let mut layers = Vec::with_capacity(n);
            for _ in 0..n {
                let c = conv(&fp / idx, &mut g, (c_in, width, 3), 1, 1, true);
                let b = batch_norm.then(|| bn(&fp / (idx + 1), &mut g, width));
                idx += if batch_norm { 3 } else { 2 };
                layers.push((c, b));
                c_in = width;
            }
            idx += 1; // the max pool
            groups.push(STAGES[bi], g);
            blocks.push(layers);
        }
        let classifier = num_classes.map(|n| {
            let cp = p / "classifier";
            let mut g = Group::default();
            let fcs = [
                linear(&cp / 0, &mut g, 512 * 7 * 7, 4096, Some(0.01)),
                linear(&cp / 3, &mut g, 4096, 4096, Some(0.01)),
                linear(&cp / 6, &mut g, 4096, n, Some(0.01)),
            ];
            groups.push("classifier", g);
            fcs
        });
        Ok(Self {
            arch,
            blocks,
            classifier,
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

    /// Runs up to and including stage `last` (5 = `pool5`).
    fn run(&self, xs: &Tensor, last: usize, train: bool) -> Result<Tensor> {
        check_input("Vgg::forward", xs, 3, 32, &self.blocks[0][0].0.ws)?;
        let mut h = xs.shallow_clone();
        for (bi, layers) in self.blocks.iter().enumerate() {
            if bi > 0 {
                h = h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            }
            let t = self.groups.train(bi, train);
            for (c, b) in layers {
                h = conv_fwd(c, &h)?;
                if let Some(b) = b {
                    h = bn_fwd(b, &h, t)?;
                }
                let _ = h.f_relu_()?; // in place, as torchvision's ReLU(inplace=True)
            }
            if bi == last {
                return Ok(h);
            }
        }
        Ok(h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?)
    }

    fn head(&self) -> Result<&[nn::Linear; 3]> {
        self.classifier
            .as_ref()
            .ok_or(Error::NoClassifier { arch: self.arch })
    }

    /// The 4096-d output of the classifier's second ReLU (`classifier.4`), the "fc7" features
    /// of the captioning and retrieval literature.
    ///
    /// # Shapes
    /// `xs: [N, 3, H, W]` -> `[N, 4096]`; an error when built without a classifier.
    pub fn fc7(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let fc = self.head()?;
        let t = self.groups.train(self.groups.index("classifier")?, train);
        let h = self
            .run(xs, 5, train)?
            .f_adaptive_avg_pool2d([7, 7])?
            .f_flatten(1, -1)?;
        let h = linear_fwd(&fc[0], &h)?.f_relu()?.f_dropout(0.5, t)?;
        Ok(linear_fwd(&fc[1], &h)?.f_relu()?)
    }
}

impl Backbone for Vgg {
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
        let i = self.stage_index(stage)?;
        Ok([64, 128, 256, 512, 512, 512][i])
    }

    fn feature_map(&self, xs: &Tensor, stage: &str, train: bool) -> Result<Tensor> {
        let i = self.stage_index(stage)?;
        self.run(xs, i, train)
    }

    fn pooled(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self
            .run(xs, 5, train)?
            .f_mean_dim(&[2i64, 3][..], false, None::<Kind>)?)
    }

    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let fc = self.head()?;
        let t = self.groups.train(self.groups.index("classifier")?, train);
        let h = self.fc7(xs, train)?.f_dropout(0.5, t)?;
        linear_fwd(&fc[2], &h)
    }

    fn set_trainable(&mut self, group: &str, trainable: bool) -> Result<()> {
        self.groups.set(group, trainable)
    }

    fn is_trainable(&self, group: &str) -> Result<bool> {
        self.groups.get(group)
    }
}
