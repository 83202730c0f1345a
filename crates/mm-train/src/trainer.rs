//! The training loop.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tch::Device;

use crate::checkpoint::{self, TrainState};
use crate::config::{ResolvedGroup, TrainConfig};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::progress::{ProgressFn, TrainEvent};
use crate::task::{Metrics, StepContext, Task};

/// What a finished (or early-stopped) training reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Steps taken in total (including before a resume).
    pub steps: usize,
    /// The best value of the monitored metric and its step.
    pub best: Option<(usize, f64)>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The last validation metrics.
    pub last_val: Metrics,
    /// Training examples per second over the steps this process ran, evaluation excluded and
    /// the first [`WARMUP_STEPS`] steps of the process too (libtorch's first steps pay for
    /// kernel selection and allocator growth); over all steps when there were no more.
    pub samples_per_sec: f64,
    /// Wall-clock start and end (Unix seconds) of the steps counted in
    /// [`Summary::samples_per_sec`], for lining up outside measurements such as GPU
    /// utilisation; the span includes any evaluation and checkpointing between them.
    pub timed_window: Option<(f64, f64)>,
    /// The checkpoint directory of the best step.
    pub best_checkpoint: Option<PathBuf>,
}

/// Steps of a process left out of [`Summary::samples_per_sec`].
pub const WARMUP_STEPS: usize = 10;

/// Runs [`Task`]s under a [`TrainConfig`], writing `metrics.jsonl`, checkpoints and PNG curves
/// into a run directory.
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainConfig,
    dir: PathBuf,
    device: Device,
    progress: Option<ProgressFn>,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One line of `metrics.jsonl`.
fn record(step: usize, epoch: usize, split: &str, values: &Metrics) -> serde_json::Value {
    let mut v = json!({ "step": step, "epoch": epoch, "split": split });
    for (k, x) in values {
        v[k] = json!(x);
    }
    v
}

/// `train.monitor` names no metric of the task, which reports `names`.
fn unknown_monitor<'a>(monitor: &str, names: impl Iterator<Item = &'a String>) -> Error {
    Error::InvalidParameter {
        name: "train.monitor",
        reason: format!(
            "the task reports no `{monitor}`; it reports {:?}",
            names.collect::<Vec<_>>()
        ),
    }
}

/// One optimizer of a training step: the task's only one, or one of its parameter groups.
struct Stage {
    /// The group (`None`: the task's only optimizer).
    name: Option<&'static str>,
    opt: Optimizer,
    cfg: ResolvedGroup,
}

fn bad_groups(reason: String) -> Error {
    Error::InvalidParameter {
        name: "train.optimizers",
        reason,
    }
}

/// The optimizers of `task` under `cfg`: one over every variable, or one per parameter group
/// ([`Task::param_groups`]) after checking that the groups and `[train.optimizers]` agree and
/// that every trainable variable is in exactly one group.
fn stages<T: Task>(task: &T, cfg: &TrainConfig) -> Result<Vec<Stage>> {
    let vs = task.var_store();
    let groups = task.param_groups();
    if groups.is_empty() {
        if let Some(name) = cfg.optimizers.keys().next() {
            return Err(bad_groups(format!(
                "the task `{}` has one optimizer, set by [train.optimizer]; it has no group `{name}`",
                T::NAME
            )));
        }
        return Ok(vec![Stage {
            name: None,
            opt: Optimizer::new(vs, &cfg.optimizer, &cfg.lr_groups)?,
            cfg: cfg.group(""),
        }]);
    }
    let names: Vec<&str> = groups.iter().map(|g| g.name).collect();
    if let Some(name) = cfg.optimizers.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(bad_groups(format!(
            "the task `{}` has no parameter group `{name}`; its groups are {names:?}",
            T::NAME
        )));
    }
    let vars: std::collections::BTreeMap<String, tch::Tensor> =
        vs.variables().into_iter().collect();
    if let Some(g) = cfg
        .lr_groups
        .iter()
        .find(|g| !vars.keys().any(|n| n.starts_with(&g.prefix)))
    {
        return Err(Error::InvalidParameter {
            name: "train.lr_groups",
            reason: format!("prefix `{}` matches no parameter", g.prefix),
        });
    }
    for (i, g) in groups.iter().enumerate() {
        if names[..i].contains(&g.name) {
            return Err(bad_groups(format!(
                "the task declares group `{}` twice",
                g.name
            )));
        }
        if let Some(p) = g
            .prefixes
            .iter()
            .find(|p| !vars.keys().any(|n| n.starts_with(p.as_str())))
        {
            return Err(bad_groups(format!(
                "group `{}` names parameters `{p}*`, and the model has none",
                g.name
            )));
        }
    }
    // every variable that will be trained is in exactly one group
    for (name, t) in &vars {
        let frozen = cfg
            .lr_groups
            .iter()
            .find(|g| name.starts_with(&g.prefix))
            .is_some_and(|g| g.lr_mult == 0.0);
        if !t.requires_grad() || frozen {
            continue;
        }
        let owners: Vec<&str> = groups
            .iter()
            .filter(|g| g.prefixes.iter().any(|p| name.starts_with(p.as_str())))
            .map(|g| g.name)
            .collect();
        if owners.len() != 1 {
            return Err(bad_groups(format!(
                "parameter `{name}` is in {} groups ({owners:?}); it must be in exactly one",
                owners.len()
            )));
        }
    }
    groups
        .iter()
        .map(|g| {
            let r = cfg.group(g.name);
            Ok(Stage {
                name: Some(g.name),
                opt: Optimizer::for_group(vs, g.name, &g.prefixes, &r.optimizer, &cfg.lr_groups)?,
                cfg: r,
            })
        })
        .collect()
}

impl Trainer {
    /// A trainer writing into run directory `dir`.
    pub fn new(cfg: TrainConfig, dir: &Path, device: Device) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            dir: dir.to_owned(),
            device,
            progress: None,
        })
    }

    /// Reports every [`TrainEvent`] to `f` (by default nothing is reported; the trainer never
    /// draws).
    pub fn with_progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    fn emit(&self, event: impl FnOnce() -> TrainEvent) {
        if let Some(p) = &self.progress {
            p.emit(&event());
        }
    }

    /// The checkpoint directory.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// The newest checkpoint that passes its checksums, and its state. A newer one that fails
    /// (a file truncated or flipped after it was written) is moved aside to
    /// `corrupt-step-N`, never deleted, with a warning, and the one before it is tried; when
    /// the oldest fails too, its error stops the run.
    fn last_intact_checkpoint(&self) -> Result<Option<(PathBuf, TrainState)>> {
        let mut all = checkpoint::list(&self.checkpoints())?;
        while let Some((step, dir)) = all.pop() {
            match checkpoint::verify(&dir) {
                Ok(saved) => return Ok(Some((dir, saved))),
                Err(e) if !all.is_empty() => {
                    let name = format!("corrupt-{}", checkpoint::name(step));
                    let mut aside = self.checkpoints().join(&name);
                    for k in 2.. {
                        if !aside.exists() {
                            break;
                        }
                        aside = self.checkpoints().join(format!("{name}-{k}"));
                    }
                    std::fs::rename(&dir, &aside).map_err(Error::io(&dir))?;
                    tracing::warn!(
                        checkpoint = %dir.display(),
                        moved_to = %aside.display(),
                        "{e}; resuming from the checkpoint before it"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn metrics_path(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }

    /// Keeps the lines of `metrics.jsonl` up to `step` (a killed run may have logged past its
    /// last checkpoint) and returns them.
    fn truncate_metrics(&self, step: usize) -> Result<Vec<serde_json::Value>> {
        let path = self.metrics_path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // lines are kept verbatim: re-serialising parsed floats could change their last digit
        let (mut kept, mut body) = (Vec::new(), String::new());
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line cut short by the kill
            };
            if v["step"].as_u64().is_some_and(|s| s as usize <= step) {
                body.push_str(line);
                body.push('\n');
                kept.push(v);
            }
        }
        mm_core::write_atomic(&path, body.as_bytes())?;
        Ok(kept)
    }

    /// Trains `task`, continuing from the latest checkpoint when `resume` is set (and one
    /// exists), until the configured epochs/steps or early stopping.
    pub fn fit<T: Task>(&self, task: &mut T, resume: bool) -> Result<Summary> {
        let cfg = &self.cfg;
        let n = task.train_size();
        if n == 0 {
            return Err(Error::InvalidParameter {
                name: "data",
                reason: "the training split is empty".into(),
            });
        }
        let per_epoch = if cfg.drop_last {
            n / cfg.batch_size
        } else {
            n.div_ceil(cfg.batch_size)
        };
        if per_epoch == 0 {
            return Err(Error::InvalidParameter {
                name: "train.drop_last",
                reason: format!(
                    "{n} training examples make no full batch of {}",
                    cfg.batch_size
                ),
            });
        }
        // checked against every evaluation below
        let declared: Option<BTreeSet<String>> =
            task.metric_names("val")?.map(|v| v.into_iter().collect());
        if let Some(names) = &declared
            && !names.contains(&cfg.monitor)
        {
            return Err(unknown_monitor(&cfg.monitor, names.iter()));
        }
        let total = match (cfg.epochs, cfg.max_steps) {
            (0, m) => m,
            (e, 0) => e * per_epoch,
            (e, m) => (e * per_epoch).min(m),
        };
        let eval_every = if cfg.eval_every > 0 {
            cfg.eval_every
        } else {
            per_epoch
        };
        let mut stages = stages(task, cfg)?;
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        task.set_eval_batch_size(cfg.eval_batch());
        let mut st = TrainState::new(cfg.seed);
        st.frozen = task.frozen();
        let mut history = Vec::new();
        if resume {
            if let Some((last, saved)) = self.last_intact_checkpoint()? {
                // before anything is loaded or written: the same frozen files as the run's
                crate::frozen::check_unchanged(&saved.frozen, &st.frozen)?;
                let mut opts: Vec<&mut Optimizer> = stages.iter_mut().map(|s| &mut s.opt).collect();
                checkpoint::load_verified(&last, task.var_store_mut(), &mut opts)?;
                st = saved;
                tracing::info!(step = st.step, checkpoint = %last.display(), "resuming");
            }
            history = self.truncate_metrics(st.step)?;
        } else if self.metrics_path().exists() {
            std::fs::remove_file(self.metrics_path()).map_err(Error::io(self.metrics_path()))?;
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.metrics_path())
            .map_err(Error::io(self.metrics_path()))?;
        // the same lines as TensorBoard scalars (`tensorboard --logdir` on the run)
        let mut events = crate::events::EventWriter::create(&self.dir)?;
        let mut write =
            |v: serde_json::Value, history: &mut Vec<serde_json::Value>| -> Result<()> {
                writeln!(log, "{v}")
                    .and_then(|_| log.flush())
                    .map_err(Error::io(self.metrics_path()))?;
                events.metrics_line(&v)?;
                history.push(v);
                Ok(())
            };

        self.emit(|| TrainEvent::Started {
            step: st.step,
            total,
        });
        let all: Vec<u64> = (0..n as u64).collect();
        // (all steps, after warm-up) x (samples, seconds)
        let (mut samples, mut busy) = ([0usize; 2], [0.0f64; 2]);
        let mut ran = 0usize;
        // (all steps, after warm-up) x (start, end) in Unix seconds
        let mut window: [Option<(f64, f64)>; 2] = [None; 2];
        let mut last_val = Metrics::new();
        let mut stopped_early = false;
        // the data order of the current epoch, and of the next one once a step needs it
        let mut orders: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut batch_of = |step: usize| -> Vec<usize> {
            let epoch = step / per_epoch;
            if !orders.iter().any(|(e, _)| *e == epoch) {
                orders.retain(|(e, _)| *e + 1 >= epoch);
                orders.push((
                    epoch,
                    mm_core::epoch_order(&all, true, cfg.seed, epoch as u64),
                ));
            }
            let order = orders
                .iter()
                .find(|(e, _)| *e == epoch)
                .map(|(_, o)| o.as_slice())
                .unwrap_or_default();
            let i = step % per_epoch;
            order[i * cfg.batch_size..((i + 1) * cfg.batch_size).min(n)].to_vec()
        };
        while st.step < total {
            let epoch = st.step / per_epoch;
            let batch = &batch_of(st.step);
            if st.step + 1 < total {
                task.prefetch(&batch_of(st.step + 1))?;
            }
            let started = unix_now();
            let t0 = Instant::now();
            // each group's loss this step (the mean over its repeats) and learning rate
            let (mut losses, mut lrs) = (vec![0.0; stages.len()], vec![0.0; stages.len()]);
            let mut call = 0u64;
            for (si, stage) in stages.iter_mut().enumerate() {
                let g = &stage.cfg;
                let lr = g.optimizer.lr * g.schedule.factor(st.step, total);
                lrs[si] = lr;
                for repeat in 0..g.repeats {
                    // dropout and any other libtorch randomness: a function of (seed, step)
                    // and of the update within the step only
                    tch::manual_seed(
                        (cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
                            ^ st.step as u64
                            ^ (call << 40)) as i64
                            & i64::MAX,
                    );
                    call += 1;
                    stage.opt.zero_grad()?;
                    let ctx = StepContext {
                        step: st.step,
                        epoch,
                        total_steps: total,
                        group: stage.name,
                        repeat,
                    };
                    let loss = crate::autocast::with_autocast(self.device, g.autocast, || {
                        task.train_step(batch, &ctx)
                    })?;
                    loss.f_backward()?;
                    if g.clip_grad_norm > 0.0 {
                        let _norm = stage.opt.clip_grad_norm(g.clip_grad_norm)?;
                    }
                    stage.opt.step(lr)?;
                    task.after_step()?;
                    // read once the update is queued, as a PyTorch loop's `loss.item()`:
                    // reading it after the forward pass would make the host wait for the
                    // device mid-step. A non-finite loss has then been applied to the
                    // in-memory model, which the error discards; the checkpoints on disk are
                    // untouched.
                    let value = loss.f_double_value(&[])?;
                    if !value.is_finite() {
                        return Err(Error::NonFiniteLoss {
                            step: st.step,
                            value,
                            group: stage.name.map(str::to_owned),
                        });
                    }
                    losses[si] += value / g.repeats as f64;
                }
            }
            let value: f64 = losses.iter().sum();
            let lr = lrs[0];
            let dt = t0.elapsed().as_secs_f64();
            ran += 1;
            for k in 0..=usize::from(ran > WARMUP_STEPS) {
                busy[k] += dt;
                samples[k] += batch.len();
                let first = window[k].map_or(started, |w| w.0);
                window[k] = Some((first, started + dt));
            }
            st.step += 1;
            st.epoch = st.step / per_epoch;
            st.lr = lr;
            st.loss_window.0 += value;
            st.loss_window.1 += 1;
            if stages.len() > 1 {
                st.group_loss_window.resize(stages.len(), 0.0);
                for (w, l) in st.group_loss_window.iter_mut().zip(&losses) {
                    *w += l;
                }
            }
            self.emit(|| TrainEvent::Step {
                step: st.step,
                total,
                loss: value,
                lr,
            });
            if st.step.is_multiple_of(cfg.log_every) || st.step == total {
                let mean = st.loss_window.0 / st.loss_window.1 as f64;
                let mut m = Metrics::new();
                m.insert("loss".into(), mean);
                m.insert("lr".into(), lr);
                if stages.len() > 1 {
                    for ((stage, w), lr) in stages.iter().zip(&st.group_loss_window).zip(&lrs) {
                        let name = stage.name.unwrap_or_default();
                        m.insert(format!("loss_{name}"), w / st.loss_window.1 as f64);
                        m.insert(format!("lr_{name}"), *lr);
                    }
                }
                write(record(st.step, epoch, "train", &m), &mut history)?;
                st.loss_window = (0.0, 0);
                st.group_loss_window.clear();
            }
            if st.step.is_multiple_of(eval_every) || st.step == total {
                let metrics = tch::no_grad(|| task.evaluate("val"))?;
                if let Some(names) = &declared
                    && !names.iter().eq(metrics.keys())
                {
                    return Err(Error::MetricNames {
                        declared: names.iter().cloned().collect(),
                        reported: metrics.keys().cloned().collect(),
                    });
                }
                let value = *metrics
                    .get(&cfg.monitor)
                    .ok_or_else(|| unknown_monitor(&cfg.monitor, metrics.keys()))?;
                write(record(st.step, epoch, "val", &metrics), &mut history)?;
                self.emit(|| TrainEvent::Evaluated {
                    step: st.step,
                    metrics: metrics.clone(),
                });
                if st.best.is_none_or(|b| cfg.mode.better(value, b)) {
                    st.best = Some(value);
                    st.best_step = Some(st.step);
                    st.evals_without_improvement = 0;
                } else {
                    st.evals_without_improvement += 1;
                }
                tracing::info!(step = st.step, monitor = %cfg.monitor, value, best = ?st.best, "evaluated");
                let opts: Vec<&Optimizer> = stages.iter().map(|s| &s.opt).collect();
                checkpoint::save(&self.checkpoints(), task.var_store(), &opts, &st)?;
                checkpoint::prune(&self.checkpoints(), cfg.keep_last, st.best_step)?;
                self.plot(&history)?;
                last_val = metrics;
                if cfg.patience > 0 && st.evals_without_improvement >= cfg.patience {
                    stopped_early = true;
                    tracing::info!(step = st.step, "early stopping");
                    break;
                }
            }
        }
        self.emit(|| TrainEvent::Finished { step: st.step });
        let best_checkpoint = st
            .best_step
            .map(|s| self.checkpoints().join(checkpoint::name(s)))
            .filter(|p| p.is_dir());
        let timed = usize::from(busy[1] > 0.0);
        Ok(Summary {
            steps: st.step,
            best: st.best_step.zip(st.best),
            stopped_early,
            last_val,
            samples_per_sec: if busy[timed] > 0.0 {
                samples[timed] as f64 / busy[timed]
            } else {
                0.0
            },
            timed_window: window[timed],
            best_checkpoint,
        })
    }

    /// `loss.png` (the training loss, per parameter group for a task with several, and the
    /// validation loss where evaluation reports one) and `<monitor>.png` (the validation curve,
    /// with the baselines its evaluation reports beside it as reference lines: `prior_<monitor>`,
    /// `chance_<monitor>`, `baseline_<monitor>`, and `chance` for an accuracy), from the history.
    fn plot(&self, history: &[serde_json::Value]) -> Result<()> {
        let points = |split: &str, key: &str| -> Vec<(f64, f64)> {
            history
                .iter()
                .filter(|v| v["split"] == split)
                .filter_map(|v| Some((v["step"].as_f64()?, v[key].as_f64()?)))
                .collect()
        };
        let series = |name: &str, points: Vec<(f64, f64)>| mm_plot::Series {
            name: name.to_string(),
            points,
        };
        // the training loss, or one curve per group (`loss_<group>`)
        let mut losses = vec![series("train", points("train", "loss"))];
        if losses[0].points.is_empty() {
            let mut groups: Vec<&str> = history
                .iter()
                .filter(|v| v["split"] == "train")
                .filter_map(|v| v.as_object())
                .flat_map(|o| {
                    o.keys()
                        .filter(|k| k.starts_with("loss_"))
                        .map(String::as_str)
                })
                .collect();
            groups.sort_unstable();
            groups.dedup();
            losses = groups
                .iter()
                .map(|k| series(&format!("train {}", &k[5..]), points("train", k)))
                .collect();
        }
        losses.push(series("val", points("val", "loss")));
        let monitor = self.cfg.monitor.as_str();
        let last_val = history.iter().rev().find(|v| v["split"] == "val");
        let mut references = Vec::new();
        for (key, name) in [
            (format!("prior_{monitor}"), "prior"),
            (format!("chance_{monitor}"), "chance"),
            (format!("baseline_{monitor}"), "baseline"),
            ("chance".to_string(), "chance"),
        ] {
            let y = last_val.and_then(|v| v[key.as_str()].as_f64());
            // a bare `chance` is the chance of an accuracy
            let applies = key != "chance" || monitor.contains("accuracy");
            if let Some(y) = y.filter(|_| applies)
                && !references
                    .iter()
                    .any(|r: &mm_plot::Reference| r.name == name)
            {
                references.push(mm_plot::Reference {
                    name: name.to_string(),
                    y,
                });
            }
        }
        let charts = [
            ("loss.png".to_string(), "loss", losses, Vec::new()),
            (
                format!("{monitor}.png"),
                monitor,
                vec![series("val", points("val", monitor))],
                references,
            ),
        ];
        for (file, key, mut series, references) in charts {
            series.retain(|s| !s.points.is_empty());
            // one evaluation is a number, not a curve (summary.json has it)
            if series.iter().map(|s| s.points.len()).sum::<usize>() < 2 {
                continue;
            }
            let spec = mm_plot::ChartSpec {
                title: format!("{key} by step"),
                x_label: "step".into(),
                y_label: key.to_string(),
                series,
                references,
                width: 560,
                height: 340,
            };
            mm_plot::save_png_atomic(&mm_plot::line_chart(&spec)?, &self.dir.join(file))?;
        }
        Ok(())
    }
}
