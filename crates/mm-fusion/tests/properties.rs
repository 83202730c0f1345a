//! Property tests: attention weights are distributions, normalised embeddings have unit norm,
//! losses are ordered and non-negative, retrieval ranks are in range and consistent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_fusion::{
    Negatives, RetrievalMetrics, Similarities, SoftAttention, SoftAttentionConfig, l2_normalize,
    scaled_dot_product_attention, triplet_loss,
};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor, nn};

/// A tensor of `shape` from `values` (recycled to fill it).
fn filled(shape: &[i64], values: &[f32]) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    let data: Vec<f32> = values.iter().copied().cycle().take(n).collect();
    Tensor::from_slice(&data).reshape(shape)
}

fn dims() -> impl Strategy<Value = (i64, i64, i64, i64)> {
    (1i64..4, 1i64..6, 1i64..7, 1i64..6)
}

fn values() -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-4.0f32..4.0, 1..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sdpa_weights_are_distributions_or_zero(
        (n, lq, lk, d) in dims(),
        vals in values(),
        keep in proptest::collection::vec(any::<bool>(), 1..32),
    ) {
        let q = filled(&[n, lq, d], &vals);
        let k = filled(&[n, lk, d], &vals[vals.len() / 2..]) * 0.7;
        let v = filled(&[n, lk, 3], &vals);
        let keep: Vec<bool> = keep.iter().copied().cycle().take((n * lq * lk) as usize).collect();
        let mask = Tensor::from_slice(&keep).reshape([n, lq, lk]);
        for m in [None, Some(&mask)] {
            let att = scaled_dot_product_attention(&q, &k, &v, m).unwrap();
            prop_assert_eq!(att.output.size(), vec![n, lq, 3]);
            let sums = att.weights.sum_dim_intlist(-1, false, Kind::Float);
            let want = match m {
                None => Tensor::ones([n, lq], (Kind::Float, Device::Cpu)),
                Some(m) => m.any_dim(-1, false).to_kind(Kind::Float),
            };
            prop_assert!((sums - want).abs().max().double_value(&[]) < 1e-5);
            prop_assert!(att.weights.min().double_value(&[]) >= 0.0);
            if let Some(m) = m {
                let leaked = att.weights.masked_select(&m.logical_not()).abs().sum(Kind::Float);
                prop_assert_eq!(leaked.double_value(&[]), 0.0);
            }
        }
    }

    #[test]
    fn soft_attention_weights_sum_to_one((n, l, d, h) in dims(), vals in values()) {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SoftAttentionConfig { feature_dim: d, hidden_dim: h, attention_dim: 4, gate: false };
        let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
        let out = att.forward(&filled(&[n, l, d], &vals), &filled(&[n, h], &vals), None).unwrap();
        let sums = out.weights.sum_dim_intlist(-1, false, Kind::Float);
        prop_assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn l2_normalized_rows_have_unit_norm((n, _, d, _) in dims(), vals in values()) {
        let x = filled(&[n, d], &vals) + 0.01;
        let y = l2_normalize(&x).unwrap();
        let norms = y.norm_scalaropt_dim(2.0, [-1i64], false);
        prop_assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn hardest_negative_loss_is_between_zero_and_the_sum((n, _, d, _) in dims(), vals in values()) {
        let im = l2_normalize(&filled(&[n, d], &vals)).unwrap();
        let s = l2_normalize(&(filled(&[n, d], &vals[vals.len() / 3..]) - 0.5)).unwrap();
        let hard = triplet_loss(&im, &s, 0.2, Negatives::Hardest).unwrap().double_value(&[]);
        let all = triplet_loss(&im, &s, 0.2, Negatives::Sum).unwrap().double_value(&[]);
        prop_assert!(hard >= 0.0);
        prop_assert!(hard <= all + 1e-5);
    }

    #[test]
    fn retrieval_ranks_are_in_range_and_a_bonus_makes_them_first(
        n_images in 1usize..6,
        map_seed in proptest::collection::vec(0usize..100, 1..12),
        scores in proptest::collection::vec(-1.0f32..1.0, 72),
    ) {
        // every image gets a caption, then the rest at random
        let mut map: Vec<usize> = (0..n_images).collect();
        map.extend(map_seed.iter().map(|s| s % n_images));
        let nc = map.len();
        let mut scores: Vec<f32> = scores.iter().copied().cycle().take(n_images * nc).collect();
        let sims = Similarities::new(&scores, n_images, nc).unwrap();
        let i2t = sims.image_to_text_ranks(&map).unwrap();
        let t2i = sims.text_to_image_ranks(&map).unwrap();
        prop_assert_eq!(i2t.len(), n_images);
        prop_assert_eq!(t2i.len(), nc);
        for (i, &r) in i2t.iter().enumerate() {
            let own = map.iter().filter(|&&m| m == i).count();
            prop_assert!(r >= 1 && r <= nc - own + 1);
        }
        prop_assert!(t2i.iter().all(|&r| (1..=n_images).contains(&r)));
        let m = RetrievalMetrics::from_ranks(&t2i).unwrap();
        prop_assert!(m.r1 <= m.r5 && m.r5 <= m.r10 && m.r10 <= 100.0);
        prop_assert!(m.median_rank >= 1.0 && m.mean_rank >= 1.0);

        for (j, &img) in map.iter().enumerate() {
            scores[img * nc + j] += 10.0;
        }
        let sims = Similarities::new(&scores, n_images, nc).unwrap();
        prop_assert!(sims.image_to_text_ranks(&map).unwrap().iter().all(|&r| r == 1));
        prop_assert!(sims.text_to_image_ranks(&map).unwrap().iter().all(|&r| r == 1));
        prop_assert_eq!(sims.text_to_image(&map).unwrap().r1, 100.0);
    }
}
