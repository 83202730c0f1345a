//! The classifier: `mm-vision`'s [`SmallCnn`] on one-channel spectrogram "images", pooled,
//! then a linear layer over the classes.

use mm_train::{Error, Result};
use mm_vision::{Backbone, SmallCnn, SmallCnnConfig};
use tch::{Tensor, nn};

/// CNN features, then a linear layer.
#[derive(Debug)]
pub(super) struct Classifier {
    cnn: SmallCnn,
    head: nn::Linear,
}

impl Classifier {
    pub(super) fn new(p: &nn::Path<'_>, cfg: &SmallCnnConfig, classes: i64) -> Result<Self> {
        let cnn = SmallCnn::new(&(p / "cnn"), cfg).map_err(Error::task)?;
        let head = nn::linear(p / "head", cnn.out_channels(), classes, Default::default());
        Ok(Self { cnn, head })
    }

    /// Class logits of standardised spectrograms.
    ///
    /// # Shapes
    /// `x: [B, 1, n_mels, frames]` -> `[B, classes]`.
    pub(super) fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self
            .cnn
            .pooled(x, train)
            .map_err(Error::task)?
            .apply(&self.head))
    }
}
