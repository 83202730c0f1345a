//! Losses for joint embeddings and distillation. Each returns a scalar (0-dimensional) tensor.
//!
//! The embedding losses expect L2-normalised embeddings (see [`crate::ProjectionHead`] and
//! [`crate::l2_normalize`]) and do not normalise themselves; the dot products they take are then
//! cosine similarities. Nothing is detached: compute a fixed teacher or target under
//! `tch::no_grad`.

use tch::{Kind, Reduction, Tensor, nn};

use crate::error::{Error, Result};

/// [`Error::Shape`] unless `a: [N, D]` and `b: [N, D]` with `N, D >= 1`.
fn check_paired(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(i64, i64)> {
    let (sa, sb) = (a.size(), b.size());
    if sa.len() == 2 && sa == sb && sa[0] >= 1 && sa[1] >= 1 {
        Ok((sa[0], sa[1]))
    } else {
        Err(Error::shape(
            op,
            "[N, D] and [N, D] with N, D >= 1",
            &[a, b],
        ))
    }
}

/// [`Error::InvalidParameter`] unless `margin` is finite and `>= 0`.
fn check_margin(margin: f64) -> Result<()> {
    if margin.is_finite() && margin >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "margin",
            format!("must be finite and >= 0, got {margin}"),
        ))
    }
}

/// The pairwise contrastive loss of [Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction
/// by Learning an Invariant Mapping"](https://doi.org/10.1109/CVPR.2006.100), eq. 4 without its
/// factors `1/2`:
///
/// ```text
/// d_i  = ||a_i - b_i||_2                                    (Euclidean distance)
/// l_i  = d_i^2                         if same_i            (pull similar pairs together)
///        max(0, margin - d_i)^2        otherwise            (push others beyond the margin)
/// loss = mean_i l_i
/// ```
///
/// `same` is 1/`true` for a similar pair and 0/`false` otherwise (bool, integer or float; a
/// fractional value interpolates the two terms). `d_i` is computed as
/// `sqrt(max(d_i^2, 1e-12))`, so identical negatives have a finite (zero) gradient.
///
/// # Shapes
/// `a: [N, D]`, `b: [N, D]`, `same: [N]` -> `[]`.
pub fn contrastive_loss(a: &Tensor, b: &Tensor, same: &Tensor, margin: f64) -> Result<Tensor> {
    let (n, _) = check_paired("contrastive_loss", a, b)?;
    if same.size() != [n] {
        return Err(Error::shape(
            "contrastive_loss",
            format!("a [N, D], b [N, D] and same [N] = [{n}]"),
            &[a, b, same],
        ));
    }
    check_margin(margin)?;
    let same = same.f_to_kind(a.kind())?;
    let d2 = a
        .f_sub(b)?
        .f_square()?
        .f_sum_dim_intlist(-1, false, a.kind())?;
    let d = d2.f_clamp_min(1e-12)?.f_sqrt()?;
    let push = d
        .f_neg()?
        .f_add_scalar(margin)?
        .f_clamp_min(0.0)?
        .f_square()?;
    let per_pair = same
        .f_mul(&d2)?
        .f_add(&same.f_neg()?.f_add_scalar(1.0)?.f_mul(&push)?)?;
    Ok(per_pair.f_mean(a.kind())?)
}

/// Which negatives [`triplet_loss`] sums over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Negatives {
    /// The hardest negative of each query only (VSE++, `max_violation=True`).
    Hardest,
    /// Every negative (VSE0, `max_violation=False`).
    Sum,
}

/// The hinge-based triplet ranking loss of VSE++ ([Faghri et al. 2018, "VSE++: Improving
/// Visual-Semantic Embeddings with Hard Negatives"](https://arxiv.org/abs/1707.05612)), the same
/// values as `ContrastiveLoss(margin, measure='cosine', max_violation)` in
/// [`vsepp/model.py`](https://github.com/fartashf/vsepp/blob/master/model.py):
///
/// ```text
/// S       = im s^T                               scores; S_ii are the positive pairs
/// cost_s  = max(0, margin + S_ij - S_ii)         image i vs caption negatives j  (j != i)
/// cost_im = max(0, margin + S_ij - S_jj)         caption j vs image negatives i  (i != j)
/// Hardest: loss = sum_i max_j cost_s_ij + sum_j max_i cost_im_ij
/// Sum:     loss = sum_ij cost_s_ij + sum_ij cost_im_ij
/// ```
///
/// Reduction: a **sum** over the batch, as in the reference code (not a mean), so the loss and
/// its gradient grow with `N`. The diagonal is excluded (its cost is set to 0 before the max).
///
/// # Shapes
/// `im: [N, D]`, `s: [N, D]` -> `[]`; row `i` of `im` and of `s` are a positive pair.
pub fn triplet_loss(im: &Tensor, s: &Tensor, margin: f64, negatives: Negatives) -> Result<Tensor> {
    let (n, _) = check_paired("triplet_loss", im, s)?;
    check_margin(margin)?;
    let kind = im.kind();
    let scores = im.f_matmul(&s.f_transpose(0, 1)?)?; // [N, N]
    let diagonal = scores.f_diagonal(0, 0, 1)?.f_reshape([n, 1])?;
    let eye = Tensor::f_eye(n, (Kind::Bool, im.device()))?;
    let cost_s = scores
        .f_sub(&diagonal)?
        .f_add_scalar(margin)?
        .f_clamp_min(0.0)?
        .f_masked_fill(&eye, 0.0)?;
    let cost_im = scores
        .f_sub(&diagonal.f_transpose(0, 1)?)?
        .f_add_scalar(margin)?
        .f_clamp_min(0.0)?
        .f_masked_fill(&eye, 0.0)?;
    let (cost_s, cost_im) = match negatives {
        Negatives::Hardest => (cost_s.f_amax(1, false)?, cost_im.f_amax(0, false)?),
        Negatives::Sum => (cost_s, cost_im),
    };
    Ok(cost_s.f_sum(kind)?.f_add(&cost_im.f_sum(kind)?)?)
}

/// The symmetric InfoNCE loss of CLIP ([Radford et al. 2021](https://arxiv.org/abs/2103.00020),
/// figure 3):
///
/// ```text
/// logits = exp(logit_scale) * a b^T
/// loss   = (CE(logits, arange(N)) + CE(logits^T, arange(N))) / 2
/// ```
///
/// with `CE` the mean cross-entropy over the `N` rows: row `i` of `a` and of `b` are the
/// positive pair, every other row of the batch a negative. `logit_scale` is the *log* of the
/// inverse temperature (see [`LearnableTemperature`]); gradients flow into it.
///
/// # Shapes
/// `a: [N, D]`, `b: [N, D]`, `logit_scale: []` (or any single element) -> `[]`.
pub fn info_nce_loss(a: &Tensor, b: &Tensor, logit_scale: &Tensor) -> Result<Tensor> {
    let (n, _) = check_paired("info_nce_loss", a, b)?;
    if logit_scale.numel() != 1 {
        return Err(Error::shape(
            "info_nce_loss",
            "a [N, D], b [N, D] and a single-element logit_scale",
            &[a, b, logit_scale],
        ));
    }
    let scale = logit_scale.f_reshape([] as [i64; 0])?.f_exp()?;
    let logits = a.f_matmul(&b.f_transpose(0, 1)?)?.f_mul(&scale)?;
    let labels = Tensor::f_arange(n, (Kind::Int64, a.device()))?;
    let ce =
        |x: &Tensor| x.f_cross_entropy_loss(&labels, None::<&Tensor>, Reduction::Mean, -100, 0.0);
    let l_a = ce(&logits)?;
    let l_b = ce(&logits.f_transpose(0, 1)?)?;
    Ok(l_a.f_add(&l_b)?.f_div_scalar(2.0)?)
}

/// CLIP's learnable temperature: a parameter `logit_scale` (a 0-dimensional tensor) initialised
/// to `ln(1 / 0.07)`, with the logits scaled by `exp(logit_scale)` capped at 100.
#[derive(Debug)]
pub struct LearnableTemperature {
    logit_scale: Tensor,
}

impl LearnableTemperature {
    /// `ln(1 / 0.07)`, CLIP's initial `logit_scale` (an inverse temperature of about 14.3).
    pub const INIT: f64 = 2.659_260_036_932_778_4;
    /// `ln(100)`, CLIP's cap on `logit_scale`.
    pub const MAX: f64 = 4.605_170_185_988_092;

    /// Parameter `logit_scale` under `p`.
    pub fn new(p: &nn::Path<'_>) -> Result<Self> {
        Ok(Self {
            logit_scale: p.f_var("logit_scale", &[], nn::Init::Const(Self::INIT))?,
        })
    }

    /// `min(logit_scale, ln 100)`, differentiable (the gradient is zero above the cap), to pass
    /// to [`info_nce_loss`].
    pub fn logit_scale(&self) -> Result<Tensor> {
        Ok(self.logit_scale.f_clamp_max(Self::MAX)?)
    }

    /// The current inverse temperature `exp(min(logit_scale, ln 100))`.
    pub fn scale(&self) -> Result<f64> {
        Ok(self.logit_scale()?.f_exp()?.f_double_value(&[])?)
    }

    /// Clamps the stored parameter to `[0, ln 100]` in place, as open_clip does after each
    /// optimiser step (`logit_scale.clamp_(0, math.log(100))`).
    pub fn clamp_(&mut self) -> Result<()> {
        let _ = tch::no_grad(|| self.logit_scale.f_clamp_(0.0, Self::MAX))?;
        Ok(())
    }
}

/// What the teacher of [`kl_distillation_loss`] gives.
#[derive(Debug, Clone, Copy)]
pub enum Teacher<'a> {
    /// Unnormalised logits; the target is `softmax(t / T)`.
    Logits(&'a Tensor),
    /// Class probabilities (rows summing to 1, e.g. SoundNet's ImageNet and Places teachers);
    /// the target is `softmax(ln(p) / T)`, i.e. `p^(1/T)` renormalised, which is `p` at `T = 1`.
    Probs(&'a Tensor),
}

/// Knowledge-distillation loss ([Hinton, Vinyals and Dean 2015](https://arxiv.org/abs/1503.02531);
/// SoundNet, [Aytar et al. 2016](https://arxiv.org/abs/1610.09001), trains against a teacher
/// distribution this way): `KL(teacher || student)` at temperature `T`, times `T^2` so gradient
/// magnitudes do not depend on `T`. Equal to
///
/// ```text
/// F.kl_div(F.log_softmax(s / T, 1), target, reduction='batchmean') * T * T
/// ```
///
/// where `target` is `softmax(t / T)` for [`Teacher::Logits`] (see [`Teacher::Probs`] for
/// probabilities). Reduction `batchmean`: the sum over classes and samples divided by `N`.
///
/// # Shapes
/// `student_logits: [N, C]`, teacher `[N, C]` -> `[]`.
pub fn kl_distillation_loss(
    student_logits: &Tensor,
    teacher: Teacher<'_>,
    temperature: f64,
) -> Result<Tensor> {
    let t = match teacher {
        Teacher::Logits(t) | Teacher::Probs(t) => t,
    };
    let (n, _) = check_paired("kl_distillation_loss", student_logits, t)?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::invalid(
            "temperature",
            format!("must be finite and > 0, got {temperature}"),
        ));
    }
    let kind = student_logits.kind();
    let log_p = student_logits
        .f_div_scalar(temperature)?
        .f_log_softmax(1, kind)?;
    let target = match teacher {
        Teacher::Logits(t) => t.f_div_scalar(temperature)?.f_softmax(1, kind)?,
        Teacher::Probs(p) => p.f_log()?.f_div_scalar(temperature)?.f_softmax(1, kind)?,
    };
    Ok(log_p
        .f_kl_div(&target, Reduction::Sum, false)?
        .f_div_scalar(n as f64)?
        .f_mul_scalar(temperature * temperature)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn randn(s: &[i64]) -> Tensor {
        Tensor::randn(s, (Kind::Double, Device::Cpu))
    }

    fn value(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn contrastive_loss_by_hand() {
        // pair 0: similar, d = 5; pair 1: dissimilar, d = 1 < margin 2; pair 2: dissimilar, d = 3
        let a = Tensor::from_slice(&[0.0f64, 0.0, 1.0, 0.0, 0.0, 0.0]).view([3, 2]);
        let b = Tensor::from_slice(&[3.0f64, 4.0, 0.0, 0.0, 0.0, 3.0]).view([3, 2]);
        let same = Tensor::from_slice(&[true, false, false]);
        let loss = contrastive_loss(&a, &b, &same, 2.0).unwrap();
        assert!((value(&loss) - (25.0 + 1.0 + 0.0) / 3.0).abs() < 1e-12);
        let same_f = Tensor::from_slice(&[1.0f32, 0.0, 0.0]);
        assert!(
            (value(&contrastive_loss(&a, &b, &same_f, 2.0).unwrap()) - 26.0 / 3.0).abs() < 1e-12
        );
        // identical negatives: loss margin^2, finite zero gradient
        let x = randn(&[2, 3]).set_requires_grad(true);
        let loss = contrastive_loss(&x, &x.detach(), &Tensor::from_slice(&[0i64, 0]), 1.5).unwrap();
        assert!((value(&loss) - 2.25).abs() < 1e-5);
        loss.backward();
        assert!(x.grad().isfinite().all().int64_value(&[]) == 1);
    }

    #[test]
    fn triplet_loss_is_zero_when_positives_win_by_the_margin() {
        let e = Tensor::eye(4, (Kind::Double, Device::Cpu));
        for neg in [Negatives::Hardest, Negatives::Sum] {
            assert_eq!(value(&triplet_loss(&e, &e, 0.5, neg).unwrap()), 0.0);
            // margin 1: every off-diagonal pair violates by exactly 1 - 1 + 0 = 0 -> still 0
            assert_eq!(value(&triplet_loss(&e, &e, 1.0, neg).unwrap()), 0.0);
        }
        // margin 1.5: each cost is 0.5; hardest: 4 + 4 queries x 0.5, sum: 2 x 12 pairs x 0.5
        assert!(
            (value(&triplet_loss(&e, &e, 1.5, Negatives::Hardest).unwrap()) - 4.0).abs() < 1e-12
        );
        assert!((value(&triplet_loss(&e, &e, 1.5, Negatives::Sum).unwrap()) - 12.0).abs() < 1e-12);
        // one pair: no negatives
        let one = randn(&[1, 3]);
        assert_eq!(
            value(&triplet_loss(&one, &one, 0.2, Negatives::Sum).unwrap()),
            0.0
        );
    }

    #[test]
    fn info_nce_of_orthonormal_pairs_and_the_temperature() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut temp = LearnableTemperature::new(&vs.root()).unwrap();
        assert!((temp.scale().unwrap() - 1.0 / 0.07).abs() < 1e-4);
        assert_eq!(
            vs.variables().into_keys().collect::<Vec<_>>(),
            ["logit_scale"]
        );
        let e = Tensor::eye(3, (Kind::Double, Device::Cpu));
        // logits = s I: loss = -ln(e^s / (e^s + 2))
        let s = 1.0f64 / 0.07;
        let want = -(s - (s.exp() + 2.0).ln());
        let got = value(&info_nce_loss(&e, &e, &temp.logit_scale().unwrap()).unwrap());
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let _ = tch::no_grad(|| temp.logit_scale.fill_(10.0));
        assert!((temp.scale().unwrap() - 100.0).abs() < 1e-3);
        temp.clamp_().unwrap();
        assert!((value(&temp.logit_scale) - LearnableTemperature::MAX).abs() < 1e-6);
        assert!((LearnableTemperature::INIT - (1.0f64 / 0.07).ln()).abs() < 1e-15);
        assert!((LearnableTemperature::MAX - 100f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn kl_of_identical_distributions_is_zero() {
        let s = randn(&[3, 5]);
        for t in [1.0, 4.0] {
            let l = kl_distillation_loss(&s, Teacher::Logits(&s), t).unwrap();
            assert!(value(&l).abs() < 1e-12);
        }
        let p = s.softmax(1, Kind::Double);
        let l = kl_distillation_loss(&s, Teacher::Probs(&p), 1.0).unwrap();
        assert!(value(&l).abs() < 1e-12);
        // probabilities with zeros are fine
        let onehot = Tensor::eye(5, (Kind::Double, Device::Cpu)).narrow(0, 0, 3);
        let l = kl_distillation_loss(&s, Teacher::Probs(&onehot), 2.0).unwrap();
        assert!(value(&l).is_finite());
    }

    #[test]
    fn bad_shapes_and_parameters_are_errors() {
        let (a, b) = (randn(&[3, 4]), randn(&[3, 4]));
        let same = Tensor::from_slice(&[1i64, 0, 1]);
        let c = randn(&[2, 4]);
        let empty = randn(&[0, 4]);
        let shape = |r: Result<Tensor>| matches!(r, Err(Error::Shape { .. }));
        let param = |r: Result<Tensor>| matches!(r, Err(Error::InvalidParameter { .. }));
        assert!(shape(contrastive_loss(&a, &c, &same, 1.0)));
        assert!(shape(contrastive_loss(
            &a,
            &b,
            &Tensor::from_slice(&[1i64, 0]),
            1.0
        )));
        assert!(shape(contrastive_loss(&empty, &empty, &randn(&[0]), 1.0)));
        assert!(param(contrastive_loss(&a, &b, &same, -1.0)));
        assert!(param(contrastive_loss(&a, &b, &same, f64::NAN)));
        assert!(shape(triplet_loss(&a, &c, 0.2, Negatives::Sum)));
        assert!(shape(triplet_loss(
            &a,
            &randn(&[3, 5]),
            0.2,
            Negatives::Hardest
        )));
        assert!(shape(triplet_loss(
            &a.view([12]),
            &b.view([12]),
            0.2,
            Negatives::Sum
        )));
        assert!(param(triplet_loss(&a, &b, f64::INFINITY, Negatives::Sum)));
        assert!(shape(info_nce_loss(&a, &c, &Tensor::from(1.0))));
        assert!(shape(info_nce_loss(&a, &b, &randn(&[2]))));
        assert!(shape(info_nce_loss(&empty, &empty, &Tensor::from(1.0))));
        assert!(shape(kl_distillation_loss(&a, Teacher::Logits(&c), 1.0)));
        assert!(shape(kl_distillation_loss(
            &a,
            Teacher::Probs(&randn(&[3, 5])),
            1.0
        )));
        assert!(param(kl_distillation_loss(&a, Teacher::Logits(&b), 0.0)));
        assert!(param(kl_distillation_loss(
            &a,
            Teacher::Logits(&b),
            f64::NAN
        )));
    }
}
