//! A complete task outside the engine's crate, as `docs/tasks/adding-a-task.md` walks through:
//! SynthAV scene types (beach, forest, city, night) from images, with a small CNN.
//!
//! ```text
//! cargo run --release -p mm-tasks --example scene_classification -- data/synthav.h5 runs/scene
//! ```

use std::path::{Path, PathBuf};

use mm_data::Reader;
use mm_train::{
    Error, Input, InputKind, Metrics, Mode, OptimizerConfig, Result, RunConfig, RunOptions,
    ScheduleConfig, StepContext, Task, TrainConfig,
};
use mm_vision::{
    Arch, Backbone, BackboneConfig, IMAGENET_MEAN, IMAGENET_STD, backbone, normalize_batch,
};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// 1. The task's configuration: the `[task]` table of its TOML file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneConfig {
    data: PathBuf,
    backbone: BackboneConfig,
}

/// 2. The task: its var store, model and data.
struct Scene {
    vs: nn::VarStore,
    cnn: Box<dyn Backbone>,
    head: nn::Linear,
    /// `(images uint8 [N, 64, 64, 3], labels [N])` per split.
    splits: Vec<(String, Tensor, Tensor)>,
    device: Device,
}

impl Scene {
    fn split(&self, name: &str) -> Result<(&Tensor, &Tensor)> {
        self.splits
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, x, y)| (x, y))
            .ok_or_else(|| Error::Config(format!("no split {name}")))
    }

    fn logits(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let x = normalize_batch(images, &IMAGENET_MEAN, &IMAGENET_STD, self.device)
            .map_err(Error::task)?;
        let v = self.cnn.pooled(&x, train).map_err(Error::task)?;
        Ok(v.apply(&self.head))
    }
}

/// 3. The trait: build, one training step, evaluation, inference.
impl Task for Scene {
    const NAME: &'static str = "scene";
    type Config = SceneConfig;

    fn build(cfg: &SceneConfig, device: Device) -> Result<Self> {
        let r = Reader::open(&cfg.data).map_err(Error::task)?;
        let mut splits = Vec::new();
        for name in ["train", "val", "test"] {
            let idx: Vec<usize> = r
                .split(name)
                .map_err(Error::task)?
                .iter()
                .map(|&i| i as usize)
                .collect();
            let b = r
                .read_batch_fields(&idx, &["image", "scene_type"])
                .map_err(Error::task)?;
            let x = b.tensor("image", Device::Cpu).map_err(Error::task)?;
            let y = b.tensor("scene_type", Device::Cpu).map_err(Error::task)?;
            splits.push((name.to_string(), x, y));
        }
        let vs = nn::VarStore::new(device);
        let cnn = backbone(&(vs.root() / "cnn"), &cfg.backbone).map_err(Error::task)?;
        let width = cnn.channels(&cnn.last_stage()).map_err(Error::task)?;
        let head = nn::linear(vs.root() / "head", width, 4, Default::default());
        Ok(Self {
            vs,
            cnn,
            head,
            splits,
            device,
        })
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn train_size(&self) -> usize {
        self.splits[0].2.size()[0] as usize
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        let idx = Tensor::from_slice(&batch.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let (x, y) = self.split("train")?;
        let logits = self.logits(&x.index_select(0, &idx), true)?;
        Ok(logits.cross_entropy_for_logits(&y.index_select(0, &idx).to_device(self.device)))
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let (x, y) = self.split(split)?;
        let pred = self
            .logits(x, false)?
            .argmax(-1, false)
            .to_device(Device::Cpu);
        let acc = pred
            .eq_tensor(y)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        Ok(Metrics::from([
            ("accuracy".into(), 100.0 * acc),
            ("chance".into(), 25.0),
        ]))
    }

    fn metric_names(&self, split: &str) -> Result<Option<Vec<String>>> {
        self.split(split)?;
        Ok(Some(vec!["accuracy".into(), "chance".into()]))
    }

    /// Inference takes samples of the data set (`test:3`); the engine refuses other inputs.
    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Sample]
    }

    fn infer(&mut self, inputs: &[Input], _out: &Path) -> Result<serde_json::Value> {
        let names = ["beach", "forest", "city", "night"];
        let mut out = Vec::new();
        for input in inputs {
            let Input::Sample { split, index } = input else {
                return Err(Error::Config(format!("`{input}` is not a sample")));
            };
            let (x, _) = self.split(split)?;
            let k = *index as i64;
            if k >= x.size()[0] {
                return Err(Error::Config(format!("`{input}`: no such sample")));
            }
            let p = self
                .logits(&x.narrow(0, k, 1), false)?
                .argmax(-1, false)
                .int64_value(&[0]);
            out.push(serde_json::json!({ "input": input.to_string(), "scene": names[p as usize] }));
        }
        Ok(serde_json::Value::Array(out))
    }
}

/// 4. Defaults, and a run: the engine does the rest (order, optimizer, checkpoints, curves).
fn main() -> anyhow::Result<()> {
    mm_train::malloc::keep_freed_buffers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = PathBuf::from(args.first().map_or("data/synthav.h5", String::as_str));
    let out = PathBuf::from(args.get(1).map_or("runs/scene", String::as_str));
    let defaults = RunConfig {
        train: TrainConfig {
            epochs: 3,
            max_steps: 0,
            batch_size: 32,
            eval_batch_size: None,
            drop_last: false,
            eval_every: 0,
            log_every: 5,
            seed: 0,
            optimizer: OptimizerConfig::adam(1e-3),
            schedule: ScheduleConfig::default(),
            lr_groups: vec![],
            clip_grad_norm: 0.0,
            monitor: "accuracy".into(),
            mode: Mode::Max,
            patience: 0,
            keep_last: 1,
            autocast: mm_train::Autocast::Off,
            optimizers: Default::default(),
        },
        task: SceneConfig {
            data,
            backbone: BackboneConfig::headless(Arch::SmallCnn),
        },
    };
    let opts = RunOptions {
        config: None,
        overrides: vec![],
        device: Device::cuda_if_available(),
        resume: out.join("checkpoints").is_dir(),
        dir: out,
        // a binary may print: the evaluations, as the trainer reports them
        progress: Some(mm_train::ProgressFn::new(|e| {
            if let mm_train::TrainEvent::Evaluated { step, metrics } = e {
                println!("step {step}: {metrics:?}");
            }
        })),
    };
    let report = mm_train::run::train::<Scene>(&defaults, &opts)?;
    println!("test accuracy {:.1}% (chance 25%)", report.test["accuracy"]);
    Ok(())
}
