//! The question-guided attention over the feature map (one or more glimpses) and the
//! coordinate grid it may append to each location.

use mm_train::{Error, Result};
use tch::{Device, Kind, Tensor, nn};

/// Question-guided attention over the feature map: one or more glimpses.
#[derive(Debug)]
pub(super) struct Glimpses {
    /// Per glimpse, the map attention queried by that glimpse's question vector.
    pub(super) image: Vec<mm_fusion::SoftAttention>,
    /// With several glimpses: `W` (`H -> H`) and the per-glimpse `w_g` (`H -> G`) of the
    /// attention over the question's words.
    pub(super) words: Option<(nn::Linear, nn::Linear)>,
    pub(super) coordinates: bool,
}

impl Glimpses {
    /// The attended image vector `[N, G * (C (+ 2))]` and where the glimpses looked, for the
    /// map `[N, C, H, W]`, LSTM states `states` `[N, T, H]` with `lens` words, and the last state
    /// `last` `[N, H]`. Each glimpse's feature part is L2-normalised; coordinates are not.
    pub(super) fn forward(
        &self,
        map: &Tensor,
        states: &Tensor,
        lens: &Tensor,
        last: &Tensor,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let (b, c, h, w) = map.size4()?;
        let mut feats = map.f_view([b, c, -1])?.f_transpose(1, 2)?; // [N, L, C]
        if self.coordinates {
            let grid = coordinate_grid(h, w, map.device())?
                .f_unsqueeze(0)?
                .f_expand([b, h * w, 2], false)?
                .f_to_kind(feats.kind())?;
            feats = Tensor::f_cat(&[feats, grid], -1)?;
        }
        let mut word_weights = None;
        let queries: Vec<Tensor> = match &self.words {
            None => vec![last.shallow_clone()],
            Some((hid, out)) => {
                let t = states.size()[1];
                let pos = Tensor::f_arange(t, (Kind::Int64, states.device()))?.f_view([1, t])?;
                let pad = pos.f_ge_tensor(&lens.f_view([-1, 1])?)?.f_unsqueeze(-1)?; // [N, T, 1]
                let beta = states
                    .apply(hid)
                    .f_tanh()?
                    .apply(out)
                    .f_masked_fill(&pad, f64::NEG_INFINITY)?
                    .f_softmax(1, Kind::Float)?; // [N, T, G]
                let q = beta.f_transpose(1, 2)?.f_bmm(states)?; // [N, G, H]
                word_weights = Some(beta.f_transpose(1, 2)?);
                (0..self.image.len() as i64)
                    .map(|g| q.f_select(1, g))
                    .collect::<std::result::Result<_, _>>()?
            }
        };
        let mut vectors = Vec::with_capacity(self.image.len());
        let mut weights = Vec::with_capacity(self.image.len());
        for (att, q) in self.image.iter().zip(&queries) {
            let o = att.forward(&feats, q, None).map_err(Error::task)?;
            let v = if self.coordinates {
                let f =
                    mm_fusion::l2_normalize(&o.context.f_narrow(-1, 0, c)?).map_err(Error::task)?;
                Tensor::f_cat(&[f, o.context.f_narrow(-1, c, 2)?], -1)?
            } else {
                mm_fusion::l2_normalize(&o.context).map_err(Error::task)?
            };
            vectors.push(v);
            weights.push(o.weights);
        }
        let maps = Tensor::f_stack(&weights, 1)?.f_view([b, -1, h, w])?;
        Ok((Tensor::f_cat(&vectors, -1)?, maps, word_weights))
    }
}

/// Each location's `(x, y)` of an `h x w` map in row-major order, `[h * w, 2]`: from -1 (left,
/// top) to 1 (right, bottom), -1 along a side of one location.
pub(super) fn coordinate_grid(h: i64, w: i64, device: Device) -> Result<Tensor> {
    let opts = (Kind::Float, device);
    let xs = Tensor::f_linspace(-1.0, 1.0, w, opts)?;
    let ys = Tensor::f_linspace(-1.0, 1.0, h, opts)?;
    let grid = Tensor::f_stack(
        &[
            xs.f_view([1, w])?.f_expand([h, w], false)?,
            ys.f_view([h, 1])?.f_expand([h, w], false)?,
        ],
        -1,
    )?;
    Ok(grid.f_reshape([h * w, 2])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coordinate_grid_runs_left_to_right_and_top_to_bottom() {
        let g = coordinate_grid(3, 5, Device::Cpu).unwrap();
        assert_eq!(g.size(), [15, 2]);
        let v = Vec::<f32>::try_from(&g.reshape([-1])).unwrap();
        for r in 0..3 {
            for c in 0..5 {
                let k = 2 * (r * 5 + c);
                assert!(
                    (v[k] - (-1.0 + 0.5 * c as f32)).abs() < 1e-6,
                    "x at {r},{c}"
                );
                assert!((v[k + 1] - (-1.0 + r as f32)).abs() < 1e-6, "y at {r},{c}");
            }
        }
        let one = coordinate_grid(1, 1, Device::Cpu).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&one.reshape([-1])).unwrap(),
            [-1.0, -1.0]
        );
    }
}
