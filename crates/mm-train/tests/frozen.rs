//! A task with a frozen teacher: the teacher is loaded from a file or another run, never
//! trained, never in the optimizer or the student's checkpoints; checkpoints record its file's
//! SHA-256 and resuming refuses a teacher that changed; a teacher of another architecture is
//! refused before the first step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mm_train::{
    Error, Frozen, FrozenSource, Input, Metrics, Mode, Optimizer, OptimizerConfig, Result,
    StepContext, Task, TrainConfig, TrainState, Trainer, checkpoint,
};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// A linear student distilled from a frozen linear teacher (`net`, 4 -> 3).
struct Student {
    vs: nn::VarStore,
    student: nn::Linear,
    teacher: Frozen,
    teacher_net: nn::Linear,
    x: Tensor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StudentConfig {
    teacher: PathBuf,
}

impl Task for Student {
    const NAME: &'static str = "student";
    type Config = StudentConfig;

    fn build(cfg: &StudentConfig, device: Device) -> Result<Self> {
        let (teacher, teacher_net) = Frozen::load("teacher", &cfg.teacher, device, |p| {
            Ok(nn::linear(p / "net", 4, 3, Default::default()))
        })?;
        let vs = nn::VarStore::new(device);
        let student = nn::linear(vs.root() / "student", 4, 3, Default::default());
        let x = Tensor::randn([64, 4], (Kind::Float, device));
        Ok(Self {
            vs,
            student,
            teacher,
            teacher_net,
            x,
        })
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn train_size(&self) -> usize {
        48
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        let idx: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
        let x = self.x.index_select(0, &Tensor::from_slice(&idx));
        let target = x.apply(&self.teacher_net);
        Ok(x.apply(&self.student)
            .mse_loss(&target, tch::Reduction::Mean))
    }

    fn evaluate(&mut self, _split: &str) -> Result<Metrics> {
        let x = self.x.narrow(0, 48, 16);
        let mse = x
            .apply(&self.student)
            .mse_loss(&x.apply(&self.teacher_net), tch::Reduction::Mean);
        Ok(Metrics::from([("mse".to_string(), mse.double_value(&[]))]))
    }

    fn frozen(&self) -> Vec<FrozenSource> {
        vec![self.teacher.source().clone()]
    }

    fn infer(&mut self, _inputs: &[Input], _out: &Path) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
}

fn train_cfg() -> TrainConfig {
    TrainConfig {
        epochs: 25,
        max_steps: 0,
        batch_size: 16,
        eval_batch_size: None,
        drop_last: false,
        eval_every: 4,
        log_every: 4,
        seed: 3,
        optimizer: OptimizerConfig::adam(0.05),
        schedule: mm_train::ScheduleConfig::default(),
        lr_groups: vec![],
        clip_grad_norm: 0.0,
        monitor: "mse".into(),
        mode: Mode::Min,
        patience: 0,
        keep_last: 3,
        autocast: mm_train::Autocast::Off,
        optimizers: Default::default(),
    }
}

/// A teacher file: `net.weight` `[out, 4]` and `net.bias` `[out]`, filled with `v`.
fn teacher_file(path: &Path, out: i64, v: f64) {
    let w = Tensor::full([out, 4], v, (Kind::Float, Device::Cpu));
    let b = Tensor::full([out], -v, (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("net.weight", &w), ("net.bias", &b)], path).unwrap();
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_frozen_teacher_is_never_trained_nor_checkpointed_and_a_changed_one_stops_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teacher.safetensors");
    teacher_file(&file, 3, 0.5);
    let cfg = StudentConfig {
        teacher: file.clone(),
    };
    tch::manual_seed(0);
    let mut task = Student::build(&cfg, Device::Cpu).unwrap();
    // no gradient, and not among the variables the optimizer and checkpoints see
    for (_, t) in task.teacher.var_store().variables() {
        assert!(!t.requires_grad());
    }
    let names: Vec<String> = task.vs.variables().into_keys().collect();
    assert!(names.iter().all(|n| n.starts_with("student.")), "{names:?}");
    // the strongest naive student: the teacher's mean output over the training rows, for
    // every validation row (measured: the student reaches 1.1e-3 against its 0.64)
    let teach = |x: &Tensor| x.apply(&task.teacher_net);
    let mean = teach(&task.x.narrow(0, 0, 48)).mean_dim(0, true, Kind::Float);
    let target = teach(&task.x.narrow(0, 48, 16));
    let baseline = target
        .mse_loss(&mean.expand_as(&target), tch::Reduction::Mean)
        .double_value(&[]);
    let run = dir.path().join("run");
    let trainer = Trainer::new(train_cfg(), &run, Device::Cpu).unwrap();
    let s = trainer.fit(&mut task, false).unwrap();
    let (_, mse) = s.best.unwrap();
    eprintln!("student mse {mse:.3e}, mean-output baseline {baseline:.3e}");
    assert!(
        mse < 0.01 * baseline,
        "the student learns the teacher: mse {mse}, mean-output baseline {baseline}"
    );
    // the teacher is what the file holds, after training
    let w = &task.teacher.var_store().variables()["net.weight"];
    assert!(w.eq(0.5).all().int64_value(&[]) == 1);
    // checkpoints hold the student only, and record where the teacher came from
    let (_, last) = checkpoint::list(&run.join("checkpoints"))
        .unwrap()
        .pop()
        .unwrap();
    let saved: Vec<String> = Tensor::read_safetensors(last.join(checkpoint::MODEL))
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(saved.iter().all(|n| n.starts_with("student.")), "{saved:?}");
    let state: TrainState = checkpoint::verify(&last).unwrap();
    assert_eq!(state.frozen.len(), 1);
    assert_eq!(state.frozen[0].name, "teacher");
    assert_eq!(state.frozen[0].path, file);
    assert_eq!(state.frozen[0].sha256.len(), 64);

    // the same teacher: resuming works
    let mut again = Student::build(&cfg, Device::Cpu).unwrap();
    Trainer::new(train_cfg(), &run, Device::Cpu)
        .unwrap()
        .fit(&mut again, true)
        .unwrap();
    // another teacher in the same file: resuming is refused, and nothing is written
    teacher_file(&file, 3, 0.25);
    let before = files_under(&run);
    let mut changed = Student::build(&cfg, Device::Cpu).unwrap();
    let e = Trainer::new(train_cfg(), &run, Device::Cpu)
        .unwrap()
        .fit(&mut changed, true)
        .unwrap_err();
    assert!(matches!(e, Error::FrozenChanged { .. }), "{e}");
    assert!(e.to_string().contains("teacher"), "{e}");
    assert_eq!(files_under(&run), before);
}

#[test]
fn a_teacher_of_another_architecture_is_refused_and_runs_and_checkpoints_are_sources() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.safetensors");
    teacher_file(&wide, 5, 0.5);
    let e = Student::build(&StudentConfig { teacher: wide }, Device::Cpu)
        .err()
        .expect("a 5-output teacher does not fit a 3-output network");
    assert!(
        e.to_string().contains("`net.bias` ([3])") && e.to_string().contains("another shape"),
        "{e}"
    );
    let e = Student::build(
        &StudentConfig {
            teacher: dir.path().join("none.safetensors"),
        },
        Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("none.safetensors"), "{e}");
    // a teacher from another run: its best (here its only) checkpoint's model file
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = nn::linear(vs.root() / "net", 4, 3, Default::default());
    let opt = Optimizer::new(&vs, &OptimizerConfig::adam(1e-3), &[]).unwrap();
    let other = dir.path().join("other-run");
    let ck = checkpoint::save(
        &other.join("checkpoints"),
        &vs,
        &[&opt],
        &TrainState::new(0),
    )
    .unwrap();
    for source in [other.clone(), ck] {
        let t = Student::build(
            &StudentConfig {
                teacher: source.clone(),
            },
            Device::Cpu,
        )
        .unwrap();
        assert!(
            t.teacher.source().path.ends_with(checkpoint::MODEL),
            "{source:?}"
        );
    }
}
