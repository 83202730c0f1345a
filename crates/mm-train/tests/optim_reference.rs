//! Our optimizers against torch.optim trajectories (`scripts/optim_reference.py`), in f64.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_train::{Optimizer, OptimizerConfig};
use tch::{Device, Kind, Tensor, nn};

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/optim.json")).unwrap()
}

fn tensor(v: &serde_json::Value, shape: &[i64]) -> Tensor {
    let xs: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    Tensor::from_slice(&xs).view(shape)
}

#[test]
fn every_optimizer_follows_torch_step_by_step() {
    let f = fixture();
    let init = tensor(&f["init"], &[3, 4]);
    let lrs: Vec<f64> = f["lrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for case in f["cases"].as_array().unwrap() {
        let cfg: OptimizerConfig = serde_json::from_value(case["config"].clone()).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().add("p", init.copy(), true);
        let mut opt = Optimizer::new(&vs, &cfg, &[]).unwrap();
        for (k, lr) in lrs.iter().enumerate() {
            opt.zero_grad().unwrap();
            let g = tensor(&f["grads"][k], &[3, 4]);
            (&p * &g).sum(Kind::Double).backward();
            opt.step(*lr).unwrap();
            let want = tensor(&case["trajectory"][k], &[3, 4]);
            let err = (&p - &want).abs().max().double_value(&[]);
            assert!(
                err < 1e-12,
                "{:?} step {k}: max error {err:e}",
                case["config"]
            );
        }
    }
}

#[test]
fn gradient_clipping_matches_torch() {
    let f = fixture();
    let c = &f["clip"];
    let vs = nn::VarStore::new(Device::Cpu);
    let a = vs.root().add(
        "a",
        Tensor::zeros([3, 4], (Kind::Double, Device::Cpu)),
        true,
    );
    let b = vs
        .root()
        .add("b", Tensor::zeros([5], (Kind::Double, Device::Cpu)), true);
    let mut opt = Optimizer::new(&vs, &OptimizerConfig::adam(0.1), &[]).unwrap();
    let ga = tensor(&f["grads"][0], &[3, 4]);
    let gb = Tensor::arange(5, (Kind::Double, Device::Cpu));
    ((&a * &ga).sum(Kind::Double) + (&b * &gb).sum(Kind::Double)).backward();
    let norm = opt
        .clip_grad_norm(c["max_norm"].as_f64().unwrap())
        .unwrap()
        .double_value(&[]);
    assert!((norm - c["norm"].as_f64().unwrap()).abs() < 1e-12);
    assert!(
        (a.grad() - tensor(&c["a"], &[3, 4]))
            .abs()
            .max()
            .double_value(&[])
            < 1e-12
    );
    assert!(
        (b.grad() - tensor(&c["b"], &[5]))
            .abs()
            .max()
            .double_value(&[])
            < 1e-12
    );
}

#[test]
fn groups_scale_and_freeze_and_bad_configs_fail() {
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = vs
        .root()
        .sub("enc")
        .add("w", Tensor::ones([2], (Kind::Double, Device::Cpu)), true);
    let head = vs
        .root()
        .sub("head")
        .add("w", Tensor::ones([2], (Kind::Double, Device::Cpu)), true);
    let frozen =
        vs.root()
            .sub("frozen")
            .add("w", Tensor::ones([2], (Kind::Double, Device::Cpu)), true);
    let sgd: OptimizerConfig = serde_json::from_str(r#"{"kind": "sgd", "lr": 1.0}"#).unwrap();
    let groups = [
        mm_train::LrGroup {
            prefix: "enc.".into(),
            lr_mult: 0.1,
        },
        mm_train::LrGroup {
            prefix: "frozen.".into(),
            lr_mult: 0.0,
        },
    ];
    let mut opt = Optimizer::new(&vs, &sgd, &groups).unwrap();
    assert_eq!(opt.param_names(), ["enc.w", "head.w"]);
    assert!(!frozen.requires_grad());
    (enc.sum(Kind::Double) + head.sum(Kind::Double)).backward();
    opt.step(1.0).unwrap();
    assert!((enc.double_value(&[0]) - 0.9).abs() < 1e-12);
    assert!((head.double_value(&[0]) - 0.0).abs() < 1e-12);
    let typo = [mm_train::LrGroup {
        prefix: "encoder.".into(),
        lr_mult: 0.1,
    }];
    assert!(Optimizer::new(&vs, &sgd, &typo).is_err());
    let bad: OptimizerConfig =
        serde_json::from_str(r#"{"kind": "adam", "lr": 0.1, "betas": [1.0, 0.9]}"#).unwrap();
    assert!(Optimizer::new(&vs, &bad, &[]).is_err());
    assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "adagrad", "lr": 0.1}"#).is_err());
}
