//! Scoring generated images: an attribute classifier trained on real images (which colours and
//! shapes are present, which scene), its accuracy on generated images against what the text
//! described, the Frechet distance between real and generated images in its feature space, and
//! the diversity of the images drawn for one text.

use mm_train::{Metrics, Result};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::data::Data;

/// The classifier's own seed: it is the same network for every run on the same data.
const SEED: i64 = 0x5eed;
/// Its batch size and learning rate (Adam).
const BATCH: usize = 64;
const LR: f64 = 1e-3;

/// A small CNN (three strided 4x4 convolutions, 32-64-128 channels, batch norm, LeakyReLU,
/// global mean) with three heads: colours and shapes present (multi-label), scene type.
#[derive(Debug)]
pub(super) struct Evaluator {
    _vs: nn::VarStore,
    trunk: nn::SequentialT,
    colours: nn::Linear,
    shapes: nn::Linear,
    scenes: nn::Linear,
}

/// What the classifier says about a batch of images.
pub(super) struct Judged {
    /// Pooled features `[B, 128]` (for the Frechet distance).
    pub(super) features: Tensor,
    /// Colour and shape presence, thresholded at probability 0.5 (`[B, C]`, `[B, S]`, 0/1).
    pub(super) colours: Tensor,
    pub(super) shapes: Tensor,
    /// The scene type `[B]`.
    pub(super) scenes: Tensor,
}

/// Images `uint8 [B, H, W, 3]` as `float [B, 3, H, W]` in `[-1, 1]`, the generator's range.
pub(super) fn to_unit(images: &Tensor, device: Device) -> Result<Tensor> {
    Ok(images
        .f_to_device(device)?
        .f_permute([0, 3, 1, 2])?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(127.5)?
        .f_sub_scalar(1.0)?)
}

impl Evaluator {
    fn new(device: Device, data: &Data) -> Self {
        let vs = nn::VarStore::new(device);
        let p = vs.root();
        let mut trunk = nn::seq_t();
        for (k, (i, o)) in [(3, 32), (32, 64), (64, 128)].into_iter().enumerate() {
            let cfg = nn::ConvConfig {
                stride: 2,
                padding: 1,
                ..Default::default()
            };
            trunk = trunk
                .add(nn::conv2d(&p / format!("c{k}"), i, o, 4, cfg))
                .add(nn::batch_norm2d(
                    &p / format!("bn{k}"),
                    o,
                    Default::default(),
                ))
                .add_fn(|x| x.maximum(&(x * 0.2)));
        }
        trunk = trunk.add_fn(|x| x.mean_dim(&[2i64, 3][..], false, Kind::Float));
        Self {
            colours: nn::linear(&p / "colours", 128, data.n_colours, Default::default()),
            shapes: nn::linear(&p / "shapes", 128, data.n_shapes, Default::default()),
            scenes: nn::linear(&p / "scenes", 128, data.n_scenes, Default::default()),
            trunk,
            _vs: vs,
        }
    }

    /// Trains the classifier on the real training images for `steps` steps (random batches,
    /// its own seed); libtorch's generator is left reseeded, which the engine does anyway
    /// before each training step.
    pub(super) fn train(data: &Data, steps: usize, device: Device) -> Result<Self> {
        // evaluation runs under `no_grad`; this training needs gradients
        tch::with_grad(|| Self::fit(data, steps, device))
    }

    fn fit(data: &Data, steps: usize, device: Device) -> Result<Self> {
        tch::manual_seed(SEED);
        let e = Self::new(device, data);
        let mut opt = nn::Adam::default().build(&e._vs, LR)?;
        let n = data.split("train")?.images.len() as i64;
        for _ in 0..steps {
            let k = Vec::<i64>::try_from(&Tensor::f_randint(
                n,
                [BATCH as i64],
                (Kind::Int64, Device::Cpu),
            )?)?;
            let mut k: Vec<usize> = k.into_iter().map(|i| i as usize).collect();
            k.sort_unstable();
            let x = to_unit(&data.images("train", &k)?, device)?;
            let (c, s, sc) = data.targets("train", &k)?;
            let h = e.trunk.forward_t(&x, true);
            let loss = h
                .apply(&e.colours)
                .f_binary_cross_entropy_with_logits::<Tensor>(
                    &c.f_to_device(device)?,
                    None,
                    None,
                    tch::Reduction::Mean,
                )?
                .f_add(
                    &h.apply(&e.shapes)
                        .f_binary_cross_entropy_with_logits::<Tensor>(
                            &s.f_to_device(device)?,
                            None,
                            None,
                            tch::Reduction::Mean,
                        )?,
                )?
                .f_add(
                    &h.apply(&e.scenes)
                        .f_log_softmax(-1, Kind::Float)?
                        .f_nll_loss::<Tensor>(
                            &sc.f_to_device(device)?,
                            None,
                            tch::Reduction::Mean,
                            -100,
                        )?,
                )?;
            opt.zero_grad();
            loss.f_backward()?;
            opt.step();
        }
        Ok(e)
    }

    /// The classifier's judgement of images `x` (`[B, 3, 64, 64]` in `[-1, 1]`).
    pub(super) fn judge(&self, x: &Tensor) -> Result<Judged> {
        let h = tch::no_grad(|| self.trunk.forward_t(x, false));
        Ok(Judged {
            colours: h.apply(&self.colours).f_gt(0.0)?.f_to_kind(Kind::Float)?,
            shapes: h.apply(&self.shapes).f_gt(0.0)?.f_to_kind(Kind::Float)?,
            scenes: h.apply(&self.scenes).f_argmax(-1, false)?,
            features: h,
        })
    }
}

impl Judged {
    /// Concatenates judgements of consecutive chunks.
    pub(super) fn cat(parts: &[Judged]) -> Result<Judged> {
        let cat = |f: &dyn Fn(&Judged) -> &Tensor| -> Result<Tensor> {
            Ok(Tensor::f_cat(&parts.iter().map(f).collect::<Vec<_>>(), 0)?)
        };
        Ok(Judged {
            features: cat(&|j| &j.features)?,
            colours: cat(&|j| &j.colours)?,
            shapes: cat(&|j| &j.shapes)?,
            scenes: cat(&|j| &j.scenes)?,
        })
    }

    /// Per-attribute accuracy against the targets (colours and shapes: the share of the
    /// presence labels right; scene: the share of scenes right), into `m` under `prefix`, with
    /// `cond_accuracy` their mean.
    pub(super) fn score(
        &self,
        (colours, shapes, scenes): &(Tensor, Tensor, Tensor),
        prefix: &str,
        m: &mut Metrics,
    ) -> Result<()> {
        let dev = self.colours.device();
        let acc = |a: &Tensor, b: &Tensor| -> Result<f64> {
            Ok(a.f_eq_tensor(&b.f_to_device(dev)?)?
                .f_to_kind(Kind::Float)?
                .f_mean(Kind::Float)?
                .f_double_value(&[])?)
        };
        let c = acc(&self.colours, colours)?;
        let s = acc(&self.shapes, shapes)?;
        let sc = acc(&self.scenes, scenes)?;
        m.insert(format!("{prefix}colour_accuracy"), c);
        m.insert(format!("{prefix}shape_accuracy"), s);
        m.insert(format!("{prefix}scene_accuracy"), sc);
        m.insert(format!("{prefix}cond_accuracy"), (c + s + sc) / 3.0);
        Ok(())
    }
}

/// The prior's accuracy: each presence label predicted as its majority value on the training
/// split, the most frequent training scene for every image.
pub(super) fn prior(
    data: &Data,
    targets: &(Tensor, Tensor, Tensor),
    m: &mut Metrics,
) -> Result<()> {
    let train = data.split("train")?;
    let all: Vec<usize> = (0..train.images.len()).collect();
    let (c, s, sc) = data.targets("train", &all)?;
    let majority = |t: &Tensor| -> Result<Tensor> {
        Ok(t.f_mean_dim(0, true, Kind::Float)?
            .f_gt(0.5)?
            .f_to_kind(Kind::Float)?)
    };
    let b = targets.0.size()[0];
    let counts = sc.f_bincount::<Tensor>(None, data.n_scenes)?;
    let top = counts.f_argmax(0, false)?.f_int64_value(&[])?;
    let judged = Judged {
        features: Tensor::f_zeros([b, 1], (Kind::Float, Device::Cpu))?,
        colours: majority(&c)?.f_expand([b, data.n_colours], false)?,
        shapes: majority(&s)?.f_expand([b, data.n_shapes], false)?,
        scenes: Tensor::f_full([b], top, (Kind::Int64, Device::Cpu))?,
    };
    judged.score(targets, "prior_", m)
}

/// The Frechet distance between Gaussians fitted to feature rows `a` and `b` (`[N, D]`):
/// `|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)`, in double precision.
pub(super) fn frechet(a: &Tensor, b: &Tensor) -> Result<f64> {
    let stats = |x: &Tensor| -> Result<(Tensor, Tensor)> {
        let x = x.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
        let mu = x.f_mean_dim(0, true, Kind::Double)?;
        let c = x.f_sub(&mu)?;
        let n = (x.size()[0] - 1).max(1) as f64;
        Ok((mu, c.f_tr()?.f_matmul(&c)?.f_div_scalar(n)?))
    };
    let ((ma, ca), (mb, cb)) = (stats(a)?, stats(b)?);
    let sqrt_psd = |m: &Tensor| -> Result<Tensor> {
        let (w, v) = m.f_linalg_eigh("L")?;
        let w = w.f_clamp_min(0.0)?.f_sqrt()?;
        Ok(v.f_mul(&w.f_unsqueeze(0)?)?.f_matmul(&v.f_tr()?)?)
    };
    let s = sqrt_psd(&ca)?;
    let inner = s.f_matmul(&cb)?.f_matmul(&s)?;
    let inner = inner.f_add(&inner.f_tr()?)?.f_div_scalar(2.0)?;
    let (w, _) = inner.f_linalg_eigh("L")?;
    let tr_sqrt = w
        .f_clamp_min(0.0)?
        .f_sqrt()?
        .f_sum(Kind::Double)?
        .f_double_value(&[])?;
    let d = ma
        .f_sub(&mb)?
        .f_square()?
        .f_sum(Kind::Double)?
        .f_double_value(&[])?;
    let tr = ca.f_trace()?.f_double_value(&[])? + cb.f_trace()?.f_double_value(&[])?;
    Ok(d + tr - 2.0 * tr_sqrt)
}

/// The mean pairwise distance (root mean square over pixels, images in `[-1, 1]`) between the
/// images of each group: `x` is `[G, K, 3, H, W]`, K images per group.
pub(super) fn diversity(x: &Tensor) -> Result<f64> {
    let (g, k) = (x.size()[0], x.size()[1]);
    let flat = x.f_reshape([g, k, -1])?.f_to_kind(Kind::Double)?;
    let d = flat.f_unsqueeze(2)?.f_sub(&flat.f_unsqueeze(1)?)?;
    let rms = d
        .f_square()?
        .f_mean_dim(-1, false, Kind::Double)?
        .f_sqrt()?;
    let pairs = (g * k * (k - 1)).max(1) as f64;
    Ok(rms.f_sum(Kind::Double)?.f_double_value(&[])? / pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_distance_of_equal_sets_is_zero_and_of_shifted_gaussians_is_the_shift() {
        tch::manual_seed(1);
        let a = Tensor::randn([4000, 3], (Kind::Double, Device::Cpu));
        assert!(frechet(&a, &a).unwrap().abs() < 1e-9);
        let b = &a + 2.0;
        // same covariance, means 2 apart in each of 3 dimensions: 12
        assert!((frechet(&a, &b).unwrap() - 12.0).abs() < 1e-6);
        // scaled by 3: tr(C + 9C - 2*3C) = 4 tr(C) = about 12
        let c = &a * 3.0;
        let f = frechet(&a, &c).unwrap();
        assert!((f - 12.0).abs() < 0.5, "{f}");
    }

    #[test]
    fn diversity_is_zero_for_copies_and_the_rms_distance_for_two() {
        let x = Tensor::ones([2, 3, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(diversity(&x).unwrap(), 0.0);
        let y = Tensor::cat(
            &[
                Tensor::zeros([1, 1, 3, 2, 2], (Kind::Float, Device::Cpu)),
                Tensor::ones([1, 1, 3, 2, 2], (Kind::Float, Device::Cpu)) * 0.5,
            ],
            1,
        );
        assert!((diversity(&y).unwrap() - 0.5).abs() < 1e-12);
    }
}
