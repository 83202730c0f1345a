//! The VQA model's forward pass: the question stream, the image stream (pooled, or the
//! question-guided attention over the feature map with one or more glimpses and the coordinate
//! grid it may append to each location), their fusion and the classifier.

use mm_train::{Error, Result};
use mm_vision::{IMAGENET_MEAN, IMAGENET_STD, normalize_batch};
use tch::nn::RNN;
use tch::{Device, Kind, Tensor, nn};

use super::{Vqa, VqaOutput, bad};

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

impl Vqa {
    /// Class logits for questions (token ids) about images (`uint8 [N, H, W, 3]`).
    pub(super) fn logits(
        &self,
        images: &Tensor,
        questions: &[&[i64]],
        train: bool,
    ) -> Result<Tensor> {
        Ok(self.forward(images, questions, train)?.logits)
    }

    /// The model on questions (token ids into the data set's question vocabulary, at least one
    /// each) about images (`uint8 [N, H, W, 3]`, one per question): class logits and, with
    /// question attention, where it looked. `train` switches dropout and batch statistics on.
    /// A question's result does not depend on the other questions in the batch.
    pub fn forward(&self, images: &Tensor, questions: &[&[i64]], train: bool) -> Result<VqaOutput> {
        self.forward_rows(images, None, questions, train)
    }

    /// [`Vqa::forward`] with each image encoded once: question `i` is about image `rows[i]` of
    /// `images` (by default, image `i`).
    pub(super) fn forward_rows(
        &self,
        images: &Tensor,
        rows: Option<&Tensor>,
        questions: &[&[i64]],
        train: bool,
    ) -> Result<VqaOutput> {
        let per_question = match rows {
            Some(r) => r.size()[0],
            None => images.size()[0],
        };
        if images.dim() != 4 || per_question != questions.len() as i64 {
            return Err(bad(format!(
                "{} questions need images [{0}, H, W, 3], got {:?}",
                questions.len(),
                images.size()
            )));
        }
        // the features of each question's image, from the features of `images`
        let rows = rows.map(|r| r.to_device(self.device));
        let per_q = |t: Tensor| -> Result<Tensor> {
            Ok(match &rows {
                Some(r) => t.f_index_select(0, r)?,
                None => t,
            })
        };
        let vocab = self.vocab.len() as i64;
        if questions
            .iter()
            .any(|q| q.is_empty() || q.iter().any(|&t| !(0..vocab).contains(&t)))
        {
            return Err(bad(format!(
                "every question needs at least one token, each in 0..{vocab}"
            )));
        }
        let n = questions.len() as i64;
        let max = questions.iter().map(|q| q.len()).max().unwrap_or(1).max(1) as i64;
        let mut ids = vec![0i64; (n * max) as usize];
        let mut lens = Vec::with_capacity(questions.len());
        for (i, q) in questions.iter().enumerate() {
            ids[i * max as usize..i * max as usize + q.len()].copy_from_slice(q);
            lens.push(q.len() as i64);
        }
        let ids = Tensor::from_slice(&ids)
            .view([n, max])
            .to_device(self.device);
        let lens = Tensor::from_slice(&lens).to_device(self.device);
        let emb = Tensor::f_embedding(&self.embed.ws, &ids, -1, false, false)?;
        let (out, _) = self.lstm.seq(&emb);
        let h = out.size()[2];
        let q = out
            .f_gather(
                1,
                &(&lens - 1).view([n, 1, 1]).expand([n, 1, h], false),
                false,
            )?
            .f_squeeze_dim(1)?;
        let (mut maps, mut words) = (None, None);
        let fused = match (&self.fusion, &self.cnn, &self.q_only) {
            (Some(f), Some(cnn), _) => {
                let mut x = normalize_batch(images, &IMAGENET_MEAN, &IMAGENET_STD, self.device)
                    .map_err(Error::task)?;
                if let Some(s) = self.cfg.image_size
                    && (x.size()[2] != s || x.size()[3] != s)
                {
                    x = x.f_upsample_bilinear2d([s, s], false, None, None)?;
                }
                let v = match &self.attention {
                    Some(att) => {
                        let map = per_q(
                            cnn.feature_map(&x, &cnn.last_stage(), train)
                                .map_err(Error::task)?,
                        )?;
                        let (v, m, w) = att.forward(&map, &out, &lens, &q)?;
                        (maps, words) = (Some(m), w);
                        if self.cfg.global_vector {
                            let g = map.f_mean_dim(&[2i64, 3][..], false, None::<Kind>)?;
                            let g = mm_fusion::l2_normalize(&g).map_err(Error::task)?;
                            Tensor::f_cat(&[v, g], -1)?
                        } else {
                            v
                        }
                    }
                    None => mm_fusion::l2_normalize(&per_q(
                        cnn.pooled(&x, train).map_err(Error::task)?,
                    )?)
                    .map_err(Error::task)?,
                };
                f.forward(&v, &q).map_err(Error::task)?
            }
            (_, _, Some(lin)) => q.apply(lin).f_tanh()?,
            _ => return Err(bad("model without a fusion or a question projection")),
        };
        let h = fused
            .f_dropout(self.cfg.dropout, train)?
            .apply(&self.hidden)
            .f_tanh()?;
        Ok(VqaOutput {
            logits: h
                .f_dropout(self.cfg.dropout, train)?
                .apply(&self.classifier),
            maps,
            words,
        })
    }
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
