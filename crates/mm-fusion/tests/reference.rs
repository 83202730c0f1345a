//! Golden tests against PyTorch: every case in `tests/fixtures/reference.json`, written by
//! `scripts/fusion_reference.py` (run it with `--check` to prove the fixture is current).
//!
//! Inputs in the fixture are float32 values and the reference outputs were computed from them
//! in float64, so each case runs twice: in `f64` against a tight tolerance and in `f32` against
//! ~1e-5 relative. Ranks are compared exactly, recalls and mean ranks to 1e-13 relative.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use mm_fusion::{
    MultiHeadAttention, MultiHeadAttentionConfig, Negatives, RetrievalMetrics, Similarities,
    SoftAttention, SoftAttentionConfig, Teacher, captions_per_image, contrastive_loss,
    info_nce_loss, kl_distillation_loss, scaled_dot_product_attention, triplet_loss,
};
use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

fn fixture() -> &'static Value {
    static FIXTURE: OnceLock<Value> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// `(kind, rtol, atol)` for each precision the cases run in.
const PRECISIONS: [(Kind, f64, f64); 2] = [(Kind::Double, 1e-10, 1e-12), (Kind::Float, 1e-5, 1e-6)];

/// Flattens nested JSON arrays of numbers or bools into values and a shape.
fn flatten(v: &Value, shape: &mut Vec<i64>, depth: usize, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len() as i64);
            }
            assert_eq!(shape[depth], items.len() as i64, "ragged array");
            for item in items {
                flatten(item, shape, depth + 1, out);
            }
        }
        Value::Bool(b) => out.push(f64::from(u8::from(*b))),
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        other => panic!("not a number: {other}"),
    }
}

fn shape_and_values(v: &Value) -> (Vec<i64>, Vec<f64>) {
    let (mut shape, mut values) = (Vec::new(), Vec::new());
    flatten(v, &mut shape, 0, &mut values);
    (shape, values)
}

/// A JSON array as a tensor of `kind` (bools as `Kind::Bool` when `kind` is `Bool`).
fn tensor(v: &Value, kind: Kind) -> Tensor {
    let (shape, values) = shape_and_values(v);
    Tensor::from_slice(&values)
        .to_kind(kind)
        .reshape(shape.as_slice())
}

fn mask(v: &Value) -> Tensor {
    tensor(v, Kind::Bool)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn assert_close(what: &str, got: &Tensor, want: &Value, rtol: f64, atol: f64) {
    let (shape, want) = shape_and_values(want);
    assert_eq!(got.size(), shape, "{what}: shape");
    let got = Vec::<f64>::try_from(got.to_kind(Kind::Double).reshape([-1])).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g}, want {w} (rtol {rtol}, atol {atol})"
        );
    }
}

fn assert_scalar(what: &str, got: &Tensor, want: &Value, rtol: f64) {
    assert_eq!(got.size(), [0i64; 0], "{what}: not a scalar");
    let (g, w) = (got.double_value(&[]), num(want));
    assert!(
        (g - w).abs() <= rtol * w.abs(),
        "{what}: got {g}, want {w} (rtol {rtol})"
    );
}

/// Copies the fixture's `params` into the variables of `vs`, which must have exactly those
/// names and shapes.
fn load_params(vs: &nn::VarStore, params: &Value) {
    let params = params.as_object().unwrap();
    let mut vars = vs.variables();
    let mut ours: Vec<&String> = vars.keys().collect();
    let mut theirs: Vec<&String> = params.keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "parameter names differ from PyTorch's");
    tch::no_grad(|| {
        for (name, value) in params {
            let var = vars.get_mut(name).unwrap();
            let t = tensor(value, var.kind());
            assert_eq!(var.size(), t.size(), "{name}: shape");
            var.copy_(&t);
        }
    });
}

#[test]
fn contrastive_loss_matches() {
    let c = &fixture()["contrastive"];
    for (kind, rtol, _) in PRECISIONS {
        let same = tensor(&c["same"], Kind::Int64);
        let loss = contrastive_loss(
            &tensor(&c["a"], kind),
            &tensor(&c["b"], kind),
            &same,
            num(&c["margin"]),
        )
        .unwrap();
        assert_scalar(&format!("contrastive {kind:?}"), &loss, &c["loss"], rtol);
    }
}

#[test]
fn triplet_loss_matches_vsepp() {
    let c = &fixture()["triplet"];
    for (kind, rtol, _) in PRECISIONS {
        let (im, s) = (tensor(&c["im"], kind), tensor(&c["s"], kind));
        let margin = num(&c["margin"]);
        for (neg, key) in [(Negatives::Hardest, "hardest"), (Negatives::Sum, "sum")] {
            let loss = triplet_loss(&im, &s, margin, neg).unwrap();
            assert_scalar(&format!("triplet {key} {kind:?}"), &loss, &c[key], rtol);
        }
    }
}

#[test]
fn info_nce_loss_matches_clip() {
    let c = &fixture()["info_nce"];
    for (kind, rtol, _) in PRECISIONS {
        let scale = Tensor::from(num(&c["logit_scale"])).to_kind(kind);
        let loss = info_nce_loss(&tensor(&c["a"], kind), &tensor(&c["b"], kind), &scale).unwrap();
        assert_scalar(&format!("info_nce {kind:?}"), &loss, &c["loss"], rtol);
    }
}

#[test]
fn kl_distillation_loss_matches_f_kl_div() {
    let c = &fixture()["kl"];
    for (kind, rtol, _) in PRECISIONS {
        let student = tensor(&c["student"], kind);
        let logits = tensor(&c["teacher_logits"], kind);
        let probs = tensor(&c["teacher_probs"], kind);
        for case in c["cases"].as_array().unwrap() {
            let t = num(&case["temperature"]);
            let teacher = match case["teacher"].as_str().unwrap() {
                "logits" => Teacher::Logits(&logits),
                _ => Teacher::Probs(&probs),
            };
            let loss = kl_distillation_loss(&student, teacher, t).unwrap();
            let what = format!("kl {} T={t} {kind:?}", case["teacher"]);
            assert_scalar(&what, &loss, &case["loss"], rtol);
        }
    }
}

#[test]
fn scaled_dot_product_attention_matches() {
    let c = &fixture()["sdpa"];
    for (kind, rtol, atol) in PRECISIONS {
        let (q, k, v) = (
            tensor(&c["q"], kind),
            tensor(&c["k"], kind),
            tensor(&c["v"], kind),
        );
        let m = mask(&c["mask"]);
        for (key, m) in [("plain", None), ("masked", Some(&m))] {
            let att = scaled_dot_product_attention(&q, &k, &v, m).unwrap();
            let what = format!("sdpa {key} {kind:?}");
            assert_close(&what, &att.output, &c[key]["output"], rtol, atol);
            assert_close(&what, &att.weights, &c[key]["weights"], rtol, atol);
        }
    }
}

#[test]
fn soft_attention_matches_with_pytorch_weights() {
    let c = &fixture()["soft_attention"];
    for (kind, rtol, atol) in PRECISIONS {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let cfg = SoftAttentionConfig {
            feature_dim: c["feature_dim"].as_i64().unwrap(),
            hidden_dim: c["hidden_dim"].as_i64().unwrap(),
            attention_dim: c["attention_dim"].as_i64().unwrap(),
            gate: true,
        };
        let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
        load_params(&vs, &c["params"]);
        let (features, hidden) = (tensor(&c["features"], kind), tensor(&c["hidden"], kind));
        let m = mask(&c["mask"]);
        for (key, m) in [("plain", None), ("masked", Some(&m))] {
            let out = att.forward(&features, &hidden, m).unwrap();
            let what = format!("soft attention {key} {kind:?}");
            assert_close(&what, &out.context, &c[key]["context"], rtol, atol);
            assert_close(&what, &out.weights, &c[key]["weights"], rtol, atol);
            assert_close(&what, &out.gate.unwrap(), &c[key]["gate"], rtol, atol);
        }
    }
}

#[test]
fn multi_head_attention_matches_torch_nn_multiheadattention() {
    let c = &fixture()["mha"];
    for (kind, rtol, atol) in PRECISIONS {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let cfg = MultiHeadAttentionConfig {
            embed_dim: c["embed_dim"].as_i64().unwrap(),
            num_heads: c["num_heads"].as_i64().unwrap(),
        };
        let mha = MultiHeadAttention::new(&vs.root(), &cfg).unwrap();
        load_params(&vs, &c["params"]);
        let (q, k, v) = (
            tensor(&c["query"], kind),
            tensor(&c["key"], kind),
            tensor(&c["value"], kind),
        );
        let m = mask(&c["mask"]);
        for (key, m) in [("plain", None), ("masked", Some(&m))] {
            let out = mha.forward(&q, &k, &v, m).unwrap();
            let what = format!("mha {key} {kind:?}");
            assert_close(&what, &out.output, &c[key]["output"], rtol, atol);
            assert_close(&what, &out.weights, &c[key]["weights"], rtol, atol);
            assert_close(
                &what,
                &out.head_weights,
                &c[key]["head_weights"],
                rtol,
                atol,
            );
        }
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn scores_f32(v: &Value) -> Vec<f32> {
    shape_and_values(v).1.iter().map(|&x| x as f32).collect()
}

fn assert_metrics(what: &str, got: &RetrievalMetrics, want: &Value) {
    // Computed as numpy does (`100.0 * count / n`, floor of the median), so equal up to the last
    // bit or two: serde_json's default float parsing may be off by an ulp or two.
    let fields = [
        ("r1", got.r1),
        ("r5", got.r5),
        ("r10", got.r10),
        ("median_rank", got.median_rank),
        ("mean_rank", got.mean_rank),
    ];
    for (name, g) in fields {
        let w = num(&want[name]);
        assert!(
            (g - w).abs() <= 1e-13 * w.abs(),
            "{what} {name}: got {g}, want {w}"
        );
    }
}

#[test]
fn retrieval_matches_vsepp_i2t_and_t2i_with_five_captions() {
    let c = &fixture()["retrieval"]["five_captions"];
    let n_images = c["n_images"].as_u64().unwrap() as usize;
    let k = c["k"].as_u64().unwrap() as usize;
    let scores = scores_f32(&c["scores"]);
    let map = captions_per_image(n_images, k);
    let borrowed = Similarities::new(&scores, n_images, n_images * k).unwrap();
    let from_tensor = Similarities::from_tensor(&tensor(&c["scores"], Kind::Float)).unwrap();
    assert_eq!(borrowed, from_tensor);
    for sims in [&borrowed, &from_tensor] {
        assert_eq!(
            sims.image_to_text_ranks(&map).unwrap(),
            usizes(&c["i2t_ranks"])
        );
        assert_eq!(
            sims.text_to_image_ranks(&map).unwrap(),
            usizes(&c["t2i_ranks"])
        );
        assert_metrics("i2t", &sims.image_to_text(&map).unwrap(), &c["i2t"]);
        assert_metrics("t2i", &sims.text_to_image(&map).unwrap(), &c["t2i"]);
    }
}

#[test]
fn retrieval_matches_with_an_uneven_caption_mapping() {
    let c = &fixture()["retrieval"]["general"];
    let map = usizes(&c["image_of_caption"]);
    let scores = scores_f32(&c["scores"]);
    let n_images = c["n_images"].as_u64().unwrap() as usize;
    let sims = Similarities::new(&scores, n_images, map.len()).unwrap();
    assert_eq!(
        sims.image_to_text_ranks(&map).unwrap(),
        usizes(&c["i2t_ranks"])
    );
    assert_eq!(
        sims.text_to_image_ranks(&map).unwrap(),
        usizes(&c["t2i_ranks"])
    );
    assert_metrics("i2t", &sims.image_to_text(&map).unwrap(), &c["i2t"]);
    assert_metrics("t2i", &sims.text_to_image(&map).unwrap(), &c["t2i"]);
}
