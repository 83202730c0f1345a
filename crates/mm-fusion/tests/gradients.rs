//! Gradient checks in `f64`: autograd against central finite differences for every loss and
//! the attention modules, on small random inputs (relative error < 1e-5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_fusion::{
    MultiHeadAttention, MultiHeadAttentionConfig, Negatives, SoftAttention, SoftAttentionConfig,
    Teacher, contrastive_loss, info_nce_loss, kl_distillation_loss, l2_normalize,
    scaled_dot_product_attention, triplet_loss,
};
use tch::{Device, Kind, Tensor, nn};

mod common;

const H: f64 = 1e-6;

/// A seeded standard-normal input: its shape and `f64` values.
fn input(shape: &[i64], seed: u64) -> (Vec<i64>, Vec<f64>) {
    let n = shape.iter().product::<i64>() as usize;
    (shape.to_vec(), common::normal_values(n, seed))
}

fn make(shape: &[i64], values: &[f64], grad: bool) -> Tensor {
    Tensor::from_slice(values)
        .reshape(shape)
        .set_requires_grad(grad)
}

/// Asserts that the autograd gradient of the scalar `f` with respect to each input matches
/// central differences.
fn check(name: &str, inputs: &[(Vec<i64>, Vec<f64>)], f: impl Fn(&[Tensor]) -> Tensor) {
    let leaves: Vec<Tensor> = inputs.iter().map(|(s, v)| make(s, v, true)).collect();
    let y = f(&leaves);
    assert_eq!(y.size(), [0i64; 0], "{name}: not a scalar");
    assert_eq!(y.kind(), Kind::Double, "{name}: not f64");
    y.backward();
    for (k, (shape, values)) in inputs.iter().enumerate() {
        let analytic = Vec::<f64>::try_from(leaves[k].grad().reshape([-1])).unwrap();
        let mut numeric = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let eval = |delta: f64| {
                let mut args: Vec<Tensor> = inputs.iter().map(|(s, v)| make(s, v, false)).collect();
                let mut moved = values.clone();
                moved[i] += delta;
                args[k] = make(shape, &moved, false);
                f(&args).double_value(&[])
            };
            numeric.push((eval(H) - eval(-H)) / (2.0 * H));
        }
        let diff: f64 = analytic
            .iter()
            .zip(&numeric)
            .map(|(a, n)| (a - n).powi(2))
            .sum::<f64>()
            .sqrt();
        let scale = analytic
            .iter()
            .map(|a| a * a)
            .sum::<f64>()
            .sqrt()
            .max(numeric.iter().map(|n| n * n).sum::<f64>().sqrt());
        assert!(
            scale > 1e-8,
            "{name}: input {k} has a zero gradient; pick other data"
        );
        let rel = diff / scale;
        assert!(
            rel < 1e-5,
            "{name}: input {k}: relative error {rel:e}\n{analytic:?}\n{numeric:?}"
        );
    }
}

/// A fixed random weighting that turns a tensor output into a scalar: `sum(x * r)`.
fn project(x: &Tensor, seed: u64) -> Tensor {
    let r = make(&x.size(), &input(&x.size(), seed).1, false);
    (x * r).sum(Kind::Double)
}

#[test]
fn contrastive_loss_gradient() {
    let (a, b) = (input(&[5, 3], 1), input(&[5, 3], 2));
    let same = Tensor::from_slice(&[1i64, 0, 0, 1, 0]);
    check("contrastive", &[a, b], |x| {
        contrastive_loss(&x[0], &x[1], &same, 2.5).unwrap()
    });
}

#[test]
fn triplet_loss_gradients() {
    let (im, s) = (input(&[4, 3], 3), input(&[4, 3], 4));
    for neg in [Negatives::Hardest, Negatives::Sum] {
        check(&format!("triplet {neg:?}"), &[im.clone(), s.clone()], |x| {
            triplet_loss(
                &l2_normalize(&x[0]).unwrap(),
                &l2_normalize(&x[1]).unwrap(),
                0.2,
                neg,
            )
            .unwrap()
        });
    }
}

#[test]
fn info_nce_loss_gradient_including_the_temperature() {
    let (a, b) = (input(&[4, 3], 5), input(&[4, 3], 6));
    let scale = (vec![], vec![1.3]);
    check("info_nce", &[a, b, scale], |x| {
        info_nce_loss(&x[0], &x[1], &x[2]).unwrap()
    });
}

#[test]
fn kl_distillation_loss_gradients() {
    let (s, t) = (input(&[3, 5], 7), input(&[3, 5], 8));
    for temp in [1.0, 3.0] {
        check(
            &format!("kl logits T={temp}"),
            &[s.clone(), t.clone()],
            |x| kl_distillation_loss(&x[0], Teacher::Logits(&x[1]), temp).unwrap(),
        );
        let p = t.1.iter().map(|v| v.exp()).collect::<Vec<_>>();
        let probs = (t.0.clone(), p);
        check(&format!("kl probs T={temp}"), &[s.clone(), probs], |x| {
            let p = &x[1] / x[1].sum_dim_intlist(1, true, Kind::Double);
            kl_distillation_loss(&x[0], Teacher::Probs(&p), temp).unwrap()
        });
    }
}

#[test]
fn l2_normalize_gradient() {
    check("l2_normalize", &[input(&[3, 4], 9)], |x| {
        project(&l2_normalize(&x[0]).unwrap(), 10)
    });
}

#[test]
fn scaled_dot_product_attention_gradient_with_a_mask() {
    let (q, k, v) = (
        input(&[2, 3, 4], 11),
        input(&[2, 5, 4], 12),
        input(&[2, 5, 2], 13),
    );
    let mask = Tensor::from_slice(&[true, true, false, true, false])
        .reshape([1, 1, 5])
        .repeat([2, 3, 1]);
    for m in [None, Some(&mask)] {
        check(
            &format!("sdpa {}", m.is_some()),
            &[q.clone(), k.clone(), v.clone()],
            |x| {
                let att = scaled_dot_product_attention(&x[0], &x[1], &x[2], m).unwrap();
                project(&att.output, 14) + project(&att.weights, 15)
            },
        );
    }
}

#[test]
fn soft_attention_gradient() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let cfg = SoftAttentionConfig {
        feature_dim: 4,
        hidden_dim: 3,
        attention_dim: 5,
        gate: true,
    };
    let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
    let (features, hidden) = (input(&[2, 6, 4], 17), input(&[2, 3], 18));
    let mask = Tensor::from_slice(&[
        true, false, true, true, false, true, //
        true, true, true, false, true, true,
    ])
    .reshape([2, 6]);
    for m in [None, Some(&mask)] {
        check("soft attention", &[features.clone(), hidden.clone()], |x| {
            let out = att.forward(&x[0], &x[1], m).unwrap();
            project(&out.context, 19) + project(&out.weights, 20) + project(&out.gate.unwrap(), 21)
        });
    }
}

#[test]
fn multi_head_attention_gradient() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let cfg = MultiHeadAttentionConfig {
        embed_dim: 4,
        num_heads: 2,
    };
    let mha = MultiHeadAttention::new(&vs.root(), &cfg).unwrap();
    let (q, kv) = (input(&[2, 3, 4], 23), input(&[2, 4, 4], 24));
    check("mha", &[q, kv], |x| {
        let out = mha.forward(&x[0], &x[1], &x[1], None).unwrap();
        project(&out.output, 25) + project(&out.head_weights, 26)
    });
}
