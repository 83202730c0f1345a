//! The trainer on a toy task: it learns, stops early, keeps the right checkpoints, and a run
//! that crashes and resumes ends bit for bit where an uninterrupted run ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mm_train::{
    Error, Input, InputKind, Metrics, Mode, OptimizerConfig, ProgressFn, Result, RunConfig,
    RunOptions, ScheduleConfig, ScheduleKind, StepContext, Task, TrainConfig, TrainEvent, Trainer,
    checkpoint,
};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// Two Gaussian blobs in 8-d, an MLP with dropout; fails on purpose at `crash_at`, and its
/// loss turns NaN from step `nan_from` on (both counted from 1); `declared` is what it
/// answers to `metric_names`.
struct Blobs {
    vs: nn::VarStore,
    l1: nn::Linear,
    l2: nn::Linear,
    x: Tensor,
    y: Tensor,
    n_train: usize,
    steps: usize,
    crash_at: Option<usize>,
    nan_from: Option<usize>,
    declared: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobsConfig {
    hidden: i64,
    crash_at: Option<usize>,
}

impl Task for Blobs {
    const NAME: &'static str = "blobs";
    type Config = BlobsConfig;

    fn build(cfg: &BlobsConfig, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let l1 = nn::linear(vs.root() / "l1", 8, cfg.hidden, Default::default());
        let l2 = nn::linear(vs.root() / "l2", cfg.hidden, 2, Default::default());
        // data from a fixed generator, independent of libtorch's global seed
        let n = 300i64;
        let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
        let noise: Vec<f32> = (0..n * 8)
            .map(|i| (((i * 7919 + 13) % 1000) as f32 / 1000.0 - 0.5) * 2.0)
            .collect();
        let x = Tensor::from_slice(&noise).view([n, 8])
            + (y.to_kind(Kind::Float) * 1.2 - 0.6).unsqueeze(1);
        Ok(Self {
            vs,
            l1,
            l2,
            x,
            y,
            n_train: 200,
            steps: 0,
            crash_at: cfg.crash_at,
            nan_from: None,
            declared: None,
        })
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn train_size(&self) -> usize {
        self.n_train
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        self.steps += 1;
        if Some(self.steps) == self.crash_at {
            return Err(Error::Config("simulated crash".into()));
        }
        let idx = Tensor::from_slice(&batch.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let h = self
            .x
            .index_select(0, &idx)
            .apply(&self.l1)
            .relu()
            .dropout(0.3, true);
        let loss = h
            .apply(&self.l2)
            .cross_entropy_for_logits(&self.y.index_select(0, &idx));
        Ok(match self.nan_from {
            Some(k) if self.steps >= k => loss * f64::NAN,
            _ => loss,
        })
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let (lo, hi) = match split {
            "val" => (200, 250),
            _ => (250, 300),
        };
        let x = self.x.narrow(0, lo, hi - lo);
        let pred = x.apply(&self.l1).relu().apply(&self.l2).argmax(-1, false);
        let acc = pred
            .eq_tensor(&self.y.narrow(0, lo, hi - lo))
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        Ok(Metrics::from([(
            "accuracy".to_string(),
            acc.double_value(&[]),
        )]))
    }

    fn metric_names(&self, _split: &str) -> Result<Option<Vec<String>>> {
        Ok(self.declared.clone())
    }

    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Sample]
    }

    fn infer(&mut self, inputs: &[Input], _out: &Path) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "n": inputs.len() }))
    }
}

fn train_cfg() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        max_steps: 0,
        batch_size: 16,
        eval_batch_size: None,
        drop_last: false,
        eval_every: 5,
        log_every: 3,
        seed: 11,
        optimizer: OptimizerConfig {
            weight_decay: 1e-4,
            ..OptimizerConfig::adam(0.02)
        },
        schedule: ScheduleConfig {
            kind: ScheduleKind::Cosine,
            warmup_steps: 3,
            ..Default::default()
        },
        lr_groups: vec![],
        clip_grad_norm: 1.0,
        monitor: "accuracy".into(),
        mode: Mode::Max,
        patience: 0,
        keep_last: 2,
        autocast: mm_train::Autocast::Off,
        optimizers: Default::default(),
    }
}

fn val_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn weights(t: &Blobs) -> Vec<Tensor> {
    let mut v: Vec<_> = t.var_store().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(_, t)| t.copy()).collect()
}

/// libtorch's generator is global: tests that train hold this lock so that no other test
/// thread reseeds it mid-step.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fresh(crash_at: Option<usize>) -> Blobs {
    tch::manual_seed(11);
    Blobs::build(
        &BlobsConfig {
            hidden: 16,
            crash_at,
        },
        Device::Cpu,
    )
    .unwrap()
}

/// A NaN loss ends the run with an error naming the step; the checkpoints written before it
/// stay as they were (finite, loadable), so the run can be resumed from them.
#[test]
fn a_non_finite_loss_stops_the_run_and_spares_the_checkpoints() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut task = fresh(None);
    task.nan_from = Some(8);
    let e = Trainer::new(train_cfg(), dir.path(), Device::Cpu)
        .unwrap()
        .fit(&mut task, false)
        .unwrap_err();
    assert!(matches!(e, Error::NonFiniteLoss { step: 7, .. }), "{e}");
    // evaluation (and a checkpoint) every 5 steps: step 5's is the last, and finite
    let kept = checkpoint::list(&dir.path().join("checkpoints")).unwrap();
    assert_eq!(kept.iter().map(|k| k.0).collect::<Vec<_>>(), [5]);
    let mut reloaded = fresh(None);
    checkpoint::load(&kept[0].1, reloaded.var_store_mut(), &mut []).unwrap();
    for (name, t) in reloaded.var_store().variables() {
        assert!(t.isfinite().all().int64_value(&[]) == 1, "{name}");
    }
}

#[test]
fn learns_and_a_crashed_run_resumes_to_the_same_result() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut task = fresh(None);
    let s = Trainer::new(train_cfg(), &a, Device::Cpu)
        .unwrap()
        .fit(&mut task, false)
        .unwrap();
    assert_eq!(s.steps, 3 * 13);
    let (best_step, best) = s.best.unwrap();
    assert!(best >= 0.8, "accuracy {best} vs chance 0.5");
    assert!(a.join("loss.png").is_file() && a.join("accuracy.png").is_file());
    let kept: Vec<usize> = checkpoint::list(&a.join("checkpoints"))
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        kept.ends_with(&[35, 39]) && kept.contains(&best_step) && kept.len() <= 3,
        "{kept:?}"
    );

    // crash in the middle (after the checkpoint at step 20), then resume
    let mut crashing = fresh(Some(23));
    // what the trainer reports, as a front end would receive it
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let trainer = Trainer::new(train_cfg(), &b, Device::Cpu)
        .unwrap()
        .with_progress(ProgressFn::new(move |e| {
            sink.lock().unwrap().push(e.clone())
        }));
    assert!(trainer.fit(&mut crashing, false).is_err());
    {
        let mut ev = events.lock().unwrap();
        assert_eq!(ev[0], TrainEvent::Started { step: 0, total: 39 });
        assert!(!ev.iter().any(|e| matches!(e, TrainEvent::Finished { .. })));
        ev.clear();
    }
    let mut resumed = fresh(None);
    let s2 = trainer.fit(&mut resumed, true).unwrap();
    {
        let ev = events.lock().unwrap();
        assert_eq!(
            ev[0],
            TrainEvent::Started {
                step: 20,
                total: 39
            }
        );
        assert_eq!(ev.last(), Some(&TrainEvent::Finished { step: 39 }));
        let steps: Vec<usize> = ev
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Step { step, loss, .. } if loss.is_finite() => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(steps, (21..=39).collect::<Vec<_>>());
        let evals: Vec<usize> = ev
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Evaluated { step, metrics } if metrics.contains_key("accuracy") => {
                    Some(*step)
                }
                _ => None,
            })
            .collect();
        assert_eq!(evals, [25, 30, 35, 39]);
    }
    assert_eq!(s2.steps, s.steps);
    assert_eq!(s2.best, s.best);
    for (x, y) in weights(&task).iter().zip(weights(&resumed)) {
        assert!(x.equal(&y), "weights differ after resume");
    }
    assert_eq!(
        val_lines(&a),
        val_lines(&b),
        "metrics.jsonl differs after resume"
    );
}

#[test]
fn early_stopping_and_bad_monitors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = train_cfg();
    cfg.optimizer.lr = 1e-9; // nothing improves
    cfg.patience = 2;
    cfg.epochs = 50;
    let s = Trainer::new(cfg.clone(), dir.path(), Device::Cpu)
        .unwrap()
        .fit(&mut fresh(None), false)
        .unwrap();
    assert!(s.stopped_early);
    assert_eq!(
        s.steps, 15,
        "stops at the third evaluation without improvement"
    );
    // a task that cannot name its metrics before evaluating: caught at the first evaluation
    cfg.monitor = "f1".into();
    let mut task = fresh(None);
    let e = Trainer::new(cfg.clone(), &dir.path().join("x"), Device::Cpu)
        .unwrap()
        .fit(&mut task, false)
        .unwrap_err();
    assert!(e.to_string().contains("reports no `f1`"), "{e}");
    assert_eq!(task.steps, 5, "one epoch trained before the evaluation");
    // one that can: caught before the first step
    let mut task = fresh(None);
    task.declared = Some(vec!["accuracy".into()]);
    let e = Trainer::new(cfg.clone(), &dir.path().join("y"), Device::Cpu)
        .unwrap()
        .fit(&mut task, false)
        .unwrap_err();
    assert!(e.to_string().contains("reports no `f1`"), "{e}");
    assert_eq!(task.steps, 0, "no step before the check");
}

/// A task whose `metric_names` and `evaluate` disagree is stopped at its first evaluation,
/// whichever way they differ; one whose names agree trains.
#[test]
fn declared_metric_names_must_match_the_evaluation() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = train_cfg();
    cfg.epochs = 2;
    for (k, declared) in [
        vec!["accuracy", "f1"],
        vec!["Accuracy", "accuracy"],
        vec!["accuracy"],
    ]
    .into_iter()
    .enumerate()
    {
        let mut task = fresh(None);
        task.declared = Some(declared.iter().map(|s| s.to_string()).collect());
        let r = Trainer::new(cfg.clone(), &dir.path().join(k.to_string()), Device::Cpu)
            .unwrap()
            .fit(&mut task, false);
        if declared == ["accuracy"] {
            assert_eq!(r.unwrap().steps, 26, "two epochs of 13 batches");
            continue;
        }
        match r {
            Err(Error::MetricNames {
                declared: d,
                reported,
            }) => {
                assert_eq!(d, declared);
                assert_eq!(reported, ["accuracy"]);
            }
            other => panic!("{declared:?}: {other:?}"),
        }
        assert_eq!(task.steps, 5, "stopped at the first evaluation");
    }
}

#[test]
fn runs_write_their_directory_and_refuse_to_overwrite() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let defaults = RunConfig {
        train: train_cfg(),
        task: BlobsConfig {
            hidden: 8,
            crash_at: None,
        },
    };
    let opts = RunOptions {
        config: None,
        overrides: vec!["train.epochs=1".into(), "task.hidden=12".into()],
        device: Device::Cpu,
        dir: out.clone(),
        resume: false,
        progress: None,
    };
    let r = mm_train::run::train::<Blobs>(&defaults, &opts).unwrap();
    assert_eq!(r.summary.steps, 13);
    assert!(r.test["accuracy"] > 0.6);
    // 13 steps, the first 10 left out: the window holds the last 3 (and the evaluation
    // between them), at least two full batches and one example of the last
    let (start, end) = r.summary.timed_window.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let timed = (2 * train_cfg().batch_size + 1) as f64 / r.summary.samples_per_sec;
    assert!(
        start < end && end <= now && now - start < 600.0,
        "{start} {end} {now}"
    );
    assert!(end - start >= timed * 0.999, "{} < {timed}", end - start);
    let cfg_text = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg_text.contains("hidden = 12"), "{cfg_text}");
    assert!(out.join("summary.json").is_file());
    assert!(
        mm_train::run::train::<Blobs>(&defaults, &opts)
            .unwrap_err()
            .to_string()
            .contains("--resume")
    );
    let m = mm_train::run::evaluate::<Blobs>(&out, "test", &[], Device::Cpu).unwrap();
    assert_eq!(m["accuracy"], r.test["accuracy"]);
    // the run's `checkpoints/` folder names the run too
    let m = mm_train::run::evaluate::<Blobs>(&out.join("checkpoints"), "test", &[], Device::Cpu);
    assert_eq!(m.unwrap()["accuracy"], r.test["accuracy"]);
    // task settings can be overridden; one that changes the model's shape does not fit the
    // weights, and training settings are refused
    let set = |o: &str| vec![o.to_string()];
    let m = mm_train::run::evaluate::<Blobs>(&out, "test", &set("task.crash_at=3"), Device::Cpu);
    assert_eq!(m.unwrap()["accuracy"], r.test["accuracy"]);
    let e = mm_train::run::evaluate::<Blobs>(&out, "test", &set("task.hidden=5"), Device::Cpu)
        .unwrap_err();
    assert!(matches!(e, Error::Checkpoint { .. }), "{e}");
    let e = mm_train::run::evaluate::<Blobs>(&out, "test", &set("train.epochs=9"), Device::Cpu)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("task.* settings and train.eval_batch_size only"),
        "{e}"
    );
    // the evaluation batch may change (it bounds memory, not the model), but not to zero
    mm_train::run::evaluate::<Blobs>(&out, "test", &set("train.eval_batch_size=4"), Device::Cpu)
        .unwrap();
    let e = mm_train::run::evaluate::<Blobs>(
        &out,
        "test",
        &set("train.eval_batch_size=0"),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("eval_batch_size"), "{e}");
    let e = mm_train::run::evaluate::<Blobs>(&out, "test", &set("task.hiden=5"), Device::Cpu)
        .unwrap_err();
    assert!(e.to_string().contains("hiden"), "{e}");
    let inferred = mm_train::run::infer::<Blobs>(
        &out,
        &[Input::parse("test:0").unwrap()],
        &dir.path().join("inf"),
        &[],
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(inferred["n"], 1);
    // an input of a kind the task does not take is refused with the kinds it does
    let e = mm_train::run::infer::<Blobs>(
        &out,
        &[Input::parse("photo.png").unwrap()],
        &dir.path().join("inf"),
        &[],
        Device::Cpu,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("Blobs takes SPLIT:INDEX")
            || e.to_string().contains("takes SPLIT:INDEX"),
        "{e}"
    );
}

#[test]
fn bf16_autocast_trains_on_the_cpu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = train_cfg();
    cfg.autocast = mm_train::Autocast::Bf16;
    let s = Trainer::new(cfg, dir.path(), Device::Cpu)
        .unwrap()
        .fit(&mut fresh(None), false)
        .unwrap();
    assert!(s.best.unwrap().1 >= 0.8, "{:?}", s.best);
    let c: TrainConfig = serde_json::from_value(serde_json::json!({
        "epochs": 1, "batch_size": 4, "seed": 0, "monitor": "a", "mode": "max",
        "optimizer": {"kind": "sgd", "lr": 0.1}, "autocast": "fp16"
    }))
    .unwrap();
    assert_eq!(c.autocast, mm_train::Autocast::Fp16);
}
