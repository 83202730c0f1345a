//! The [`Backbone`] trait, the architectures behind it, and the factory that builds them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use crate::error::{Error, Result};
use crate::layers::Group;
use crate::{ResNet, SmallCnn, SmallCnnConfig, Vgg};

/// A backbone architecture, named as torchvision names its model constructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// ResNet-18 (basic blocks 2-2-2-2, 512-d).
    Resnet18,
    /// ResNet-34 (basic blocks 3-4-6-3, 512-d).
    Resnet34,
    /// ResNet-50 (bottlenecks 3-4-6-3, 2048-d).
    Resnet50,
    /// ResNet-101 (bottlenecks 3-4-23-3, 2048-d).
    Resnet101,
    /// VGG-16 (configuration D) without batch norm.
    Vgg16,
    /// VGG-16 with batch norm.
    Vgg16Bn,
    /// VGG-19 (configuration E) without batch norm.
    Vgg19,
    /// VGG-19 with batch norm.
    Vgg19Bn,
    /// [`SmallCnn`], sized for 64x64 SynthAV images.
    SmallCnn,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 9] = [
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
        Arch::Resnet101,
        Arch::Vgg16,
        Arch::Vgg16Bn,
        Arch::Vgg19,
        Arch::Vgg19Bn,
        Arch::SmallCnn,
    ];

    /// The name torchvision gives the constructor (`"resnet50"`, `"vgg16_bn"`), or `"small_cnn"`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
            Arch::Resnet101 => "resnet101",
            Arch::Vgg16 => "vgg16",
            Arch::Vgg16Bn => "vgg16_bn",
            Arch::Vgg19 => "vgg19",
            Arch::Vgg19Bn => "vgg19_bn",
            Arch::SmallCnn => "small_cnn",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::InvalidParameter {
                name: "arch",
                reason: format!(
                    "unknown backbone `{s}`; choose one of {}",
                    Arch::ALL.map(Arch::name).join(", ")
                ),
            })
    }
}

/// What to build: the architecture and whether it carries its classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// The architecture.
    pub arch: Arch,
    /// Classes of the torchvision classifier head (`fc` for ResNet, `classifier` for VGG);
    /// `None` builds the backbone without it (feature maps and pooled vectors only).
    #[serde(default)]
    pub num_classes: Option<i64>,
    /// Settings of [`Arch::SmallCnn`]; ignored by the other architectures.
    #[serde(default)]
    pub small: SmallCnnConfig,
}

impl BackboneConfig {
    /// `arch` without a classifier.
    pub fn headless(arch: Arch) -> Self {
        Self {
            arch,
            num_classes: None,
            small: SmallCnnConfig::default(),
        }
    }
}

/// A CNN that exposes its spatial feature map at any stage and a pooled vector.
///
/// Parameter names follow PyTorch's state-dict names (torchvision's for ResNet and VGG), so
/// weights converted from PyTorch load with [`crate::load_safetensors`].
///
/// `train` selects training behaviour (batch statistics, dropout) for stages that are
/// trainable; a frozen stage ([`Backbone::set_trainable`]) always runs in eval mode, its batch
/// norms using their running statistics.
pub trait Backbone: fmt::Debug + Send {
    /// The architecture.
    fn arch(&self) -> Arch;

    /// Stages whose output [`Backbone::feature_map`] can return, input to output.
    fn stages(&self) -> Vec<String>;

    /// Parameter groups that can be frozen: the stages plus the classifier (`fc` or
    /// `classifier`) when built.
    fn param_groups(&self) -> Vec<String>;

    /// Channels of `stage`'s feature map.
    fn channels(&self, stage: &str) -> Result<i64>;

    /// The spatial feature map after `stage`.
    ///
    /// # Shapes
    /// `xs: [N, C_in, H, W]` (`C_in = 3` except for a configured [`SmallCnn`]) ->
    /// `[N, channels(stage), H', W']`; e.g. ResNet `layer3` and VGG `block5` give 14x14 for
    /// 224x224 input, ResNet `layer4` 7x7.
    fn feature_map(&self, xs: &Tensor, stage: &str, train: bool) -> Result<Tensor>;

    /// The globally average-pooled last feature map (ResNet's `avgpool` output).
    ///
    /// # Shapes
    /// `xs: [N, C_in, H, W]` -> `[N, channels(last stage)]`.
    fn pooled(&self, xs: &Tensor, train: bool) -> Result<Tensor>;

    /// The full torchvision forward: class logits.
    ///
    /// # Shapes
    /// `xs: [N, 3, H, W]` -> `[N, num_classes]`; an error when built without a classifier.
    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor>;

    /// Freezes (`false`) or unfreezes (`true`) one parameter group: its parameters stop or
    /// start requiring gradients, and its batch norms run in eval mode while frozen.
    fn set_trainable(&mut self, group: &str, trainable: bool) -> Result<()>;

    /// Whether `group` is trainable.
    fn is_trainable(&self, group: &str) -> Result<bool>;

    /// The last stage's name.
    fn last_stage(&self) -> String {
        self.stages().pop().unwrap_or_default()
    }

    /// Freezes or unfreezes every parameter group.
    fn set_all_trainable(&mut self, trainable: bool) -> Result<()> {
        for g in self.param_groups() {
            self.set_trainable(&g, trainable)?;
        }
        Ok(())
    }
}

/// Builds `cfg`'s backbone under `p` with torchvision's initialisation.
pub fn backbone(p: &nn::Path<'_>, cfg: &BackboneConfig) -> Result<Box<dyn Backbone>> {
    if let Some(n) = cfg.num_classes
        && n <= 0
    {
        return Err(Error::InvalidParameter {
            name: "num_classes",
            reason: format!("must be positive, got {n}"),
        });
    }
    Ok(match cfg.arch {
        Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50 | Arch::Resnet101 => {
            Box::new(ResNet::new(p, cfg.arch, cfg.num_classes)?)
        }
        Arch::Vgg16 | Arch::Vgg16Bn | Arch::Vgg19 | Arch::Vgg19Bn => {
            Box::new(Vgg::new(p, cfg.arch, cfg.num_classes)?)
        }
        Arch::SmallCnn => {
            if cfg.num_classes.is_some() {
                return Err(Error::InvalidParameter {
                    name: "num_classes",
                    reason: "small_cnn has no classifier head".into(),
                });
            }
            Box::new(SmallCnn::new(p, &cfg.small)?)
        }
    })
}

/// Named parameter groups with a trainable flag each; shared by the architectures.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    names: Vec<String>,
    groups: Vec<Group>,
    trainable: Vec<bool>,
}

impl Groups {
    pub(crate) fn push(&mut self, name: impl Into<String>, g: Group) {
        self.names.push(name.into());
        self.groups.push(g);
        self.trainable.push(true);
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    pub(crate) fn index(&self, name: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| Error::UnknownStage {
                name: name.to_owned(),
                known: self.names(),
            })
    }

    /// Whether group `i` runs in training mode when the caller asks for `train`.
    pub(crate) fn train(&self, i: usize, train: bool) -> bool {
        train && self.trainable[i]
    }

    pub(crate) fn set(&mut self, name: &str, on: bool) -> Result<()> {
        let i = self.index(name)?;
        self.groups[i].set_requires_grad(on);
        self.trainable[i] = on;
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Result<bool> {
        Ok(self.trainable[self.index(name)?])
    }
}

/// Checks an image batch against the network: 4-d, `channels` channels, at least `min_side`
/// pixels a side, on the parameters' device. Kind mismatches surface as [`Error::Torch`] from
/// the fallible ops the forwards use.
pub(crate) fn check_input(
    op: &'static str,
    xs: &Tensor,
    channels: i64,
    min_side: i64,
    like: &Tensor,
) -> Result<()> {
    let size = xs.size();
    if size.len() != 4 || size[1] != channels || size[2] < min_side || size[3] < min_side {
        return Err(Error::Shape {
            op,
            expected: format!("[N, {channels}, H >= {min_side}, W >= {min_side}]"),
            got: size,
        });
    }
    if xs.device() != like.device() || !xs.is_floating_point() {
        return Err(Error::InputKind {
            op,
            got: format!("{:?} on {:?}", xs.kind(), xs.device()),
            want: format!("a floating-point tensor on {:?}", like.device()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn names_parse_and_bad_configs_are_errors() {
        for a in Arch::ALL {
            assert_eq!(a.name().parse::<Arch>().unwrap(), a);
        }
        assert!("resnet152".parse::<Arch>().is_err());
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = BackboneConfig {
            num_classes: Some(0),
            ..BackboneConfig::headless(Arch::Resnet18)
        };
        assert!(matches!(
            backbone(&vs.root(), &bad),
            Err(Error::InvalidParameter { .. })
        ));
        let net = backbone(
            &(vs.root() / "r"),
            &BackboneConfig::headless(Arch::Resnet18),
        )
        .unwrap();
        let x = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.logits(&x, false),
            Err(Error::NoClassifier { .. })
        ));
        assert!(matches!(
            net.feature_map(&x, "layer5", false),
            Err(Error::UnknownStage { .. })
        ));
        let small = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.pooled(&small, false),
            Err(Error::Shape { .. })
        ));
        let ints = Tensor::zeros([1, 3, 32, 32], (Kind::Int64, Device::Cpu));
        assert!(matches!(
            net.pooled(&ints, false),
            Err(Error::InputKind { .. })
        ));
        let double = Tensor::zeros([1, 3, 32, 32], (Kind::Double, Device::Cpu));
        assert!(matches!(net.pooled(&double, false), Err(Error::Torch(_))));
        let toml: BackboneConfig = serde_json::from_str(r#"{"arch": "vgg16_bn"}"#).unwrap();
        assert_eq!(toml.arch, Arch::Vgg16Bn);
    }

    #[test]
    fn shapes_at_224_match_the_papers() {
        let vs = nn::VarStore::new(Device::Cpu);
        let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        let r50 = backbone(
            &(vs.root() / "r"),
            &BackboneConfig::headless(Arch::Resnet50),
        )
        .unwrap();
        assert_eq!(r50.channels("layer4").unwrap(), 2048);
        assert_eq!(
            r50.feature_map(&x, "layer3", false).unwrap().size(),
            [1, 1024, 14, 14]
        );
        let vgg = backbone(&(vs.root() / "v"), &BackboneConfig::headless(Arch::Vgg19)).unwrap();
        assert_eq!(
            vgg.feature_map(&x, "block5", false).unwrap().size(),
            [1, 512, 14, 14]
        );
        assert_eq!(vgg.pooled(&x, false).unwrap().size(), [1, 512]);
    }

    #[test]
    fn frozen_stages_get_no_gradients_and_keep_their_statistics() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = backbone(&vs.root(), &BackboneConfig::headless(Arch::Resnet18)).unwrap();
        net.set_trainable("stem", false).unwrap();
        net.set_trainable("layer1", false).unwrap();
        assert!(!net.is_trainable("layer1").unwrap() && net.is_trainable("layer2").unwrap());
        assert!(
            net.set_trainable("fc", false).is_err(),
            "headless: no fc group"
        );
        let vars = vs.variables();
        let before = |n: &str| vars[n].copy();
        let (m1, m2) = (
            before("layer1.0.bn1.running_mean"),
            before("layer2.0.bn1.running_mean"),
        );
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        net.pooled(&x, true).unwrap().sum(Kind::Float).backward();
        assert!(!vars["conv1.weight"].grad().defined());
        assert!(!vars["layer1.1.conv2.weight"].grad().defined());
        assert!(vars["layer2.0.conv1.weight"].grad().defined());
        assert!(
            vars["layer1.0.bn1.running_mean"].equal(&m1),
            "frozen BN statistics moved"
        );
        assert!(
            !vars["layer2.0.bn1.running_mean"].equal(&m2),
            "trainable BN statistics stayed"
        );
        net.set_all_trainable(true).unwrap();
        assert!(vars["conv1.weight"].requires_grad());
    }
}
