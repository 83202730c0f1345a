//! Runs as the command line drives them: `train` into a run directory (resumable), `evaluate`
//! and `infer` from a checkpoint.
//!
//! A run directory holds `config.toml` (the resolved configuration; a first comment line names
//! the task, so that another task refuses the run), `metrics.jsonl`,
//! `checkpoints/step-NNNNNNNN/`, `loss.png`, `<monitor>.png` and, when done, `summary.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::checkpoint;
use crate::config::{self, TrainConfig};
use crate::error::{Error, Result};
use crate::task::{Metrics, StepContext, Task};
use crate::trainer::{Summary, Trainer};

/// A run's TOML file: `[train]` for the engine, `[task]` for the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<C> {
    /// The engine's settings.
    pub train: TrainConfig,
    /// The task's settings.
    pub task: C,
}

/// How to start a training run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A TOML file over the task's defaults.
    pub config: Option<PathBuf>,
    /// `KEY=VALUE` overrides (`train.optimizer.lr=1e-3`), applied last.
    pub overrides: Vec<String>,
    /// Where the networks run.
    pub device: Device,
    /// The run directory.
    pub dir: PathBuf,
    /// Continue the run in `dir` from its latest checkpoint, with its saved configuration.
    pub resume: bool,
    /// Receives the trainer's [`crate::TrainEvent`]s (`None`: nothing is reported).
    pub progress: Option<crate::ProgressFn>,
}

/// What `train` reports (and writes to `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The task.
    pub task: String,
    /// The training summary.
    pub summary: Summary,
    /// Metrics of the best checkpoint on the test split.
    pub test: Metrics,
    /// The pictures the task wrote into the run directory ([`Task::pictures`]).
    pub pictures: Vec<PathBuf>,
    /// The process's peak resident memory so far (Linux's `VmHWM`: training, evaluation and
    /// the test split, plus whatever the process did before), in bytes; `None` where the
    /// system does not say.
    pub peak_rss_bytes: Option<u64>,
}

/// The process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`), where
/// Linux reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A size line of `/proc/self/status` (`VmHWM:`, `VmRSS:`: kB there), in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    mm_core::write_atomic(path, text.as_bytes()).map_err(Error::from)
}

/// The first line of a run's `config.toml`, naming its task.
const TASK_HEADER: &str = "# mm task: ";

/// The task a run directory was trained for: `config.toml`'s header line, else (runs from
/// before the header) `summary.json`'s `task`.
fn run_task(dir: &Path, config_text: &str) -> Option<String> {
    if let Some(name) = config_text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(TASK_HEADER))
    {
        return Some(name.trim().to_owned());
    }
    let summary = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&summary).ok()?;
    v["task"].as_str().map(str::to_owned)
}

fn read_config<T: Task>(dir: &Path) -> Result<RunConfig<T::Config>> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "{}: {e} (is this a run directory?)",
            path.display()
        ))
    })?;
    if let Some(task) = run_task(dir, &text)
        && task != T::NAME
    {
        return Err(Error::Config(format!(
            "{} is a `{task}` run, not `{}`",
            dir.display(),
            T::NAME
        )));
    }
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Task `T` built from a validated `cfg` after seeding libtorch with `train.seed`, as a run
/// starts (training and its dry run).
fn seeded_task<T: Task>(cfg: &RunConfig<T::Config>, device: Device) -> Result<T> {
    cfg.train.validate()?;
    tch::manual_seed(cfg.train.seed as i64 & i64::MAX);
    T::build(&cfg.task, device)
}

/// Trains task `T` as `opts` says, then scores its best checkpoint on the test split.
pub fn train<T: Task>(defaults: &RunConfig<T::Config>, opts: &RunOptions) -> Result<RunReport> {
    let cfg: RunConfig<T::Config> = if opts.resume {
        if opts.config.is_some() || !opts.overrides.is_empty() {
            return Err(Error::Config(
                "a resumed run keeps the configuration it started with: drop --config/--set".into(),
            ));
        }
        read_config::<T>(&opts.dir)?
    } else {
        if !checkpoint::list(&opts.dir.join("checkpoints"))?.is_empty() {
            return Err(Error::Config(format!(
                "{} already holds a run: pass --resume to continue it, or choose another --out",
                opts.dir.display()
            )));
        }
        config::load(defaults, opts.config.as_deref(), &opts.overrides)?
    };
    // the task first: a configuration or data set it refuses leaves no run directory behind
    let mut task = seeded_task::<T>(&cfg, opts.device)?;
    std::fs::create_dir_all(&opts.dir).map_err(Error::io(&opts.dir))?;
    let text = format!("{TASK_HEADER}{}\n{}", T::NAME, config::to_toml(&cfg)?);
    write_atomic(&opts.dir.join("config.toml"), &text)?;
    let mut trainer = Trainer::new(cfg.train.clone(), &opts.dir, opts.device)?;
    if let Some(p) = &opts.progress {
        trainer = trainer.with_progress(p.clone());
    }
    let summary = trainer.fit(&mut task, opts.resume)?;
    if let Some(best) = &summary.best_checkpoint {
        checkpoint::load(best, task.var_store_mut(), &mut [])?;
    }
    let test = tch::no_grad(|| task.evaluate("test"))?;
    let pictures = tch::no_grad(|| task.pictures(&opts.dir))?;
    // TensorBoard: the test metrics and the pictures, at the last step
    let mut values: Vec<(String, crate::events::Value)> = test
        .iter()
        .map(|(k, v)| (format!("test/{k}"), crate::events::Value::Scalar(*v as f32)))
        .collect();
    for p in pictures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let bytes = std::fs::read(p).map_err(Error::io(p))?;
        if let Some(image) = crate::events::Value::png(bytes) {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            values.push((format!("pictures/{stem}"), image));
        }
    }
    crate::events::EventWriter::open(&opts.dir)?.values(summary.steps, &values)?;
    let report = RunReport {
        task: T::NAME.to_string(),
        summary,
        test,
        pictures,
        peak_rss_bytes: peak_rss_bytes(),
    };
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&opts.dir.join("summary.json"), &text)?;
    Ok(report)
}

/// The process's resident set size now, in bytes (`VmRSS`), where Linux reports it.
fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Resets the process's peak resident set size (`VmHWM`) to its current size, by writing 5 to
/// `/proc/self/clear_refs` (Linux 4.0 and later); false where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What `mm train --dry-run` measures: host memory of one training step and of one batch
/// through the model without gradients, on the configured model, data and sizes, without
/// writing a run. Sizes in bytes; `None` where the system cannot say (not Linux).
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// `train.batch_size` (or the training split's size, if smaller).
    pub batch: usize,
    /// `train.eval_batch_size` (or the training split's size, if smaller).
    pub eval_batch: usize,
    /// The trainable parameters' size; the optimizer keeps about this much again per moment
    /// (Adam and AdamW two, SGD with momentum and RMSprop one) and the gradients once more.
    pub parameter_bytes: u64,
    /// Resident memory once the task is built (libtorch, the model, the data's indices).
    pub built_bytes: Option<u64>,
    /// Peak resident memory after `eval_batch` training samples went through the task's
    /// training loss without gradients: an estimate of evaluation's peak (the real evaluation
    /// may decode, as captioning's beam search, or encode each image once).
    pub eval_peak_bytes: Option<u64>,
    /// Peak resident memory after one training step's forward and backward pass as well: the
    /// estimate of a run's peak (freed buffers stay with the process, see [`crate::malloc`],
    /// so this is the larger of the two needs, not their sum).
    pub train_peak_bytes: Option<u64>,
}

/// Builds task `T` as [`train`] would and measures the memory of one training step and one
/// evaluation-sized batch ([`DryRun`]); writes nothing. Host memory only: on CUDA the
/// device's memory is not counted.
pub fn dry_run<T: Task>(defaults: &RunConfig<T::Config>, opts: &RunOptions) -> Result<DryRun> {
    let cfg = config::load(defaults, opts.config.as_deref(), &opts.overrides)?;
    let mut task = seeded_task::<T>(&cfg, opts.device)?;
    let n = task.train_size();
    let (batch, eval_batch) = (cfg.train.batch_size.min(n), cfg.train.eval_batch().min(n));
    let ctx = StepContext {
        step: 0,
        epoch: 0,
        total_steps: 1,
        group: task.param_groups().first().map(|g| g.name),
        repeat: 0,
    };
    let vars = task.var_store().trainable_variables();
    let parameter_bytes = vars
        .iter()
        .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum();
    let built = rss_bytes();
    let peak = |measured: bool| if measured { peak_rss_bytes() } else { None };
    // evaluation first: its freed buffers stay with the process and the training step reuses
    // them, so the second peak is the run's
    let measured = reset_peak_rss();
    let rows: Vec<usize> = (0..eval_batch).collect();
    let _ = tch::no_grad(|| task.train_step(&rows, &ctx))?;
    let eval_peak_bytes = peak(measured);
    let measured = reset_peak_rss();
    let rows: Vec<usize> = (0..batch).collect();
    task.train_step(&rows, &ctx)?.f_backward()?;
    let train_peak_bytes = peak(measured);
    Ok(DryRun {
        batch,
        eval_batch,
        parameter_bytes,
        built_bytes: built,
        eval_peak_bytes,
        train_peak_bytes,
    })
}

/// The run directory and checkpoint that `path` names: a checkpoint directory itself, or a
/// run directory or its `checkpoints/` folder (the run's best checkpoint, else its latest).
pub fn resolve_checkpoint(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if !path.is_dir() {
        return Err(Error::Config(format!(
            "{}: {}",
            path.display(),
            if path.exists() {
                "a file, not a run or checkpoint directory"
            } else {
                "no such run or checkpoint directory"
            }
        )));
    }
    if path.join("manifest.json").is_file() {
        let run = path.parent().and_then(Path::parent).ok_or_else(|| {
            Error::Config(format!("{}: not inside a run directory", path.display()))
        })?;
        return Ok((run.to_owned(), path.to_owned()));
    }
    if path.file_name().is_some_and(|n| n == "checkpoints")
        && !path.join("checkpoints").exists()
        && let Some(run) = path.parent()
    {
        // the run's `checkpoints/` folder itself
        return resolve_checkpoint(run);
    }
    let all = checkpoint::list(&path.join("checkpoints"))?;
    let Some((_, last)) = all.last() else {
        return Err(Error::Config(format!("{}: no checkpoints", path.display())));
    };
    let best = checkpoint::verify(last)?
        .best_step
        .map(|s| path.join("checkpoints").join(checkpoint::name(s)))
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| last.clone());
    Ok((path.to_owned(), best))
}

/// The safetensors file that `path` names: the file itself, a checkpoint directory's model
/// file, or a run directory's best (else latest) checkpoint's; for weights that a task loads
/// from another run (an encoder, a frozen teacher).
pub fn weights_file(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_owned());
    }
    if path.is_dir() {
        let (_, ck) = resolve_checkpoint(path)?;
        return Ok(ck.join(checkpoint::MODEL));
    }
    Err(Error::Config(format!(
        "{}: no such safetensors file, checkpoint or run directory",
        path.display()
    )))
}

/// The task of a checkpoint (or a run's best), built from the run's configuration with the
/// checkpoint's weights, for use as a library (`Captioning::caption`, `Vqa::forward`).
pub fn restore<T: Task>(checkpoint_or_run: &Path, device: Device) -> Result<T> {
    restore_with(checkpoint_or_run, &[], device)
}

/// [`restore`] with `task.*` settings of the run's configuration overridden (`"a.b=v"`, as
/// `--set` gives them): the data set at another path (`task.data=...`), or a setting that
/// only inference reads (a beam size). Training settings no longer apply, so `train.*` keys
/// are errors; a setting that changes the model's shape fails when the weights are loaded.
pub fn restore_with<T: Task>(
    checkpoint_or_run: &Path,
    overrides: &[String],
    device: Device,
) -> Result<T> {
    let (run, ck) = resolve_checkpoint(checkpoint_or_run)?;
    let mut cfg = read_config::<T>(&run)?;
    // task settings, and the one training setting that does not change a trained model
    let allowed = |o: &str| {
        let o = o.trim_start();
        o.starts_with("task.") || o.starts_with("train.eval_batch_size")
    };
    if let Some(o) = overrides.iter().find(|o| !allowed(o)) {
        return Err(Error::Config(format!(
            "`{o}`: a trained run takes task.* settings and train.eval_batch_size only (its other training settings no longer apply)"
        )));
    }
    if !overrides.is_empty() {
        cfg = config::with_overrides(&cfg, overrides)?;
        cfg.train.validate()?;
    }
    let mut task = T::build(&cfg.task, device)?;
    task.set_eval_batch_size(cfg.train.eval_batch());
    checkpoint::verify(&ck)?;
    checkpoint::load_model(&ck, task.var_store_mut())?;
    Ok(task)
}

/// Metrics of a checkpoint (or a run's best) on `split`, with `task.*` settings overridden as
/// [`restore_with`] does.
pub fn evaluate<T: Task>(
    checkpoint_or_run: &Path,
    split: &str,
    overrides: &[String],
    device: Device,
) -> Result<Metrics> {
    let mut task: T = restore_with(checkpoint_or_run, overrides, device)?;
    tch::no_grad(|| task.evaluate(split))
}

/// Inference with a checkpoint (or a run's best) on `inputs`, pictures under `out_dir`, with
/// `task.*` settings overridden as [`restore_with`] does. Inputs of a kind the task does not
/// take ([`Task::input_kinds`]) are refused before the model is loaded.
pub fn infer<T: Task>(
    checkpoint_or_run: &Path,
    inputs: &[crate::Input],
    out_dir: &Path,
    overrides: &[String],
    device: Device,
) -> Result<serde_json::Value> {
    crate::input::check_kinds(T::NAME, inputs, T::input_kinds())?;
    let mut task: T = restore_with(checkpoint_or_run, overrides, device)?;
    std::fs::create_dir_all(out_dir).map_err(Error::io(out_dir))?;
    tch::no_grad(|| task.infer(inputs, out_dir))
}
