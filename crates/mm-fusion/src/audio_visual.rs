//! Attention between an audio embedding and a visual feature map (sound source localization's
//! "where is the sound coming from" map).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// How similarity scores become an attention map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MapNorm {
    /// Softmax over locations: weights sum to 1 (one source per image).
    #[default]
    Softmax,
    /// Independent sigmoid per location: weights in (0, 1) (any number of sources).
    Sigmoid,
}

/// The result of [`audio_visual_attention`].
#[derive(Debug)]
pub struct AvAttention {
    /// The attention map, `[N, H, W]`.
    pub weights: Tensor,
    /// The attended visual vector `sum_hw weights * map`, `[N, D]` (weights renormalised to sum
    /// to 1 for [`MapNorm::Sigmoid`]).
    pub attended: Tensor,
}

/// Dot-product attention of an audio vector over a visual feature map, scaled by `1/sqrt(D)`.
///
/// # Shapes
/// `audio: [N, D]`, `visual: [N, D, H, W]` -> weights `[N, H, W]`, attended `[N, D]`.
pub fn audio_visual_attention(
    audio: &Tensor,
    visual: &Tensor,
    norm: MapNorm,
) -> Result<AvAttention> {
    let (a, v) = (audio.size(), visual.size());
    if a.len() != 2 || v.len() != 4 || a[0] != v[0] || a[1] != v[1] {
        return Err(Error::Shape {
            op: "audio_visual_attention",
            expected: "audio [N, D] and visual [N, D, H, W]".into(),
            got: vec![a, v],
        });
    }
    let (n, d, h, w) = (v[0], v[1], v[2], v[3]);
    let flat = visual.view([n, d, h * w]);
    let scores = audio.unsqueeze(1).matmul(&flat).squeeze_dim(1) / (d as f64).sqrt(); // [N, HW]
    let weights = match norm {
        MapNorm::Softmax => scores.softmax(-1, Kind::Float),
        MapNorm::Sigmoid => scores.sigmoid(),
    };
    let pool = match norm {
        MapNorm::Softmax => weights.shallow_clone(),
        MapNorm::Sigmoid => {
            &weights
                / weights
                    .sum_dim_intlist(-1, true, Kind::Float)
                    .clamp_min(1e-12)
        }
    };
    let attended = flat.matmul(&pool.unsqueeze(-1)).squeeze_dim(-1);
    Ok(AvAttention {
        weights: weights.view([n, h, w]),
        attended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn weights_are_a_distribution_and_find_the_matching_location() {
        tch::manual_seed(0);
        let (n, d, h, w) = (3, 8, 4, 5);
        let visual = Tensor::randn([n, d, h, w], (Kind::Float, Device::Cpu)) * 0.1;
        // plant the audio vector at location (2, 3) of every map
        let audio = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
        visual
            .narrow(2, 2, 1)
            .narrow(3, 3, 1)
            .copy_(&(audio.view([n, d, 1, 1]) * 3.0));
        let att = audio_visual_attention(&audio, &visual, MapNorm::Softmax).unwrap();
        assert_eq!(att.weights.size(), vec![n, h, w]);
        assert_eq!(att.attended.size(), vec![n, d]);
        let sums = att
            .weights
            .sum_dim_intlist(&[1i64, 2][..], false, Kind::Float);
        assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
        let argmax = att.weights.view([n, h * w]).argmax(-1, false);
        for i in 0..n {
            assert_eq!(argmax.int64_value(&[i]), 2 * w + 3);
        }
        let sig = audio_visual_attention(&audio, &visual, MapNorm::Sigmoid).unwrap();
        let (lo, hi) = (
            sig.weights.min().double_value(&[]),
            sig.weights.max().double_value(&[]),
        );
        assert!(lo > 0.0 && hi < 1.0);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let a = Tensor::zeros([2, 8], (Kind::Float, Device::Cpu));
        let v = Tensor::zeros([2, 4, 3, 3], (Kind::Float, Device::Cpu));
        assert!(matches!(
            audio_visual_attention(&a, &v, MapNorm::Softmax),
            Err(Error::Shape { .. })
        ));
    }
}
