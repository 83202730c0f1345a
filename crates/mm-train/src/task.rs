//! The one trait a task implements to be trained, evaluated and run by the engine.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tch::{Device, Tensor, nn};

use crate::error::Result;
use crate::input::{Input, InputKind};

/// Where training stands when a step runs (for curricula, loss warm-ups, annealing); a
/// function of the step alone, so a resumed run sees what an uninterrupted one saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepContext {
    /// 0-based index of this step.
    pub step: usize,
    /// 0-based epoch of this step.
    pub epoch: usize,
    /// Steps the run will take (without early stopping).
    pub total_steps: usize,
    /// The parameter group this call updates ([`Task::param_groups`]); `None` for a task
    /// with one optimizer.
    pub group: Option<&'static str>,
    /// Which of the group's `repeats` updates in this step this call is (0-based).
    pub repeat: usize,
}

/// A named set of parameters with its own optimizer, schedule and clipping
/// (`[train.optimizers.<name>]`), updated by its own loss ([`Task::param_groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamGroup {
    /// The group's name in the configuration and in the logs (`loss_<name>`).
    pub name: &'static str,
    /// The variables of the group: those whose names start with one of these.
    pub prefixes: Vec<String>,
}

impl ParamGroup {
    /// The group `name` of the variables under `prefixes`.
    pub fn new(name: &'static str, prefixes: &[&str]) -> Self {
        Self {
            name,
            prefixes: prefixes.iter().map(|p| (*p).to_string()).collect(),
        }
    }
}

/// Named evaluation results (`"r1_i2t"`, `"accuracy"`, ...).
pub type Metrics = BTreeMap<String, f64>;

/// A learning task: model and data built from a configuration, one training step, evaluation
/// with its metrics, and inference. See `docs/tasks/adding-a-task.md` for a worked example.
///
/// The [`crate::Trainer`] owns the loop (data order, optimizer, schedule, clipping, autocast,
/// checkpoints, logs); the task owns everything specific: how a batch of training examples
/// becomes a loss and what the metrics are.
pub trait Task: Sized {
    /// The name used by the command line (`mm train <name>`) and in run directories.
    const NAME: &'static str;

    /// The `[task]` table of the run's TOML file (use `#[serde(deny_unknown_fields)]`).
    type Config: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// Builds the model (its variables in one var store on `device`) and loads the data.
    /// The engine seeds libtorch first, so initialisation is deterministic.
    fn build(cfg: &Self::Config, device: Device) -> Result<Self>;

    /// Every variable of the model: the engine optimizes, checkpoints and restores these.
    fn var_store(&self) -> &nn::VarStore;

    /// Mutable access to the same var store (for restoring checkpoints).
    fn var_store_mut(&mut self) -> &mut nn::VarStore;

    /// Number of training examples; a step receives indices into `0..train_size()`.
    fn train_size(&self) -> usize;

    /// The loss of one batch in training mode (a scalar tensor that requires gradients).
    ///
    /// A task with several [`Task::param_groups`] is called once per group update, in the
    /// groups' order (and `repeats` times for a group that asks for it), with the group in
    /// `ctx.group`: it returns that group's loss (the engine zeroes the group's gradients,
    /// runs backward, clips and updates only that group).
    fn train_step(&mut self, batch: &[usize], ctx: &StepContext) -> Result<Tensor>;

    /// A hint: the batch of the next training step, given before this step's
    /// [`Task::train_step`], so that a task that reads its data from disk can read the next
    /// batch in the background while this one trains. Results must not depend on it (a
    /// resumed run gets no hint for its first step). Nothing by default.
    fn prefetch(&mut self, batch: &[usize]) -> Result<()> {
        let _ = batch;
        Ok(())
    }

    /// The parameter groups that have their own optimizers, in the order a training step
    /// updates them (a GAN: `discriminator`, then `generator`). Every trainable variable must
    /// be in exactly one group. Empty, the default: one optimizer over every variable,
    /// configured by `[train.optimizer]`.
    fn param_groups(&self) -> Vec<ParamGroup> {
        Vec::new()
    }

    /// Metrics on `split` (`"val"` during training, `"test"` at the end), in eval mode.
    fn evaluate(&mut self, split: &str) -> Result<Metrics>;

    /// The names [`Task::evaluate`] will report for `split`, for a task that knows them
    /// before evaluating (they may depend on its data, as VQA's one accuracy per question
    /// type does). The engine checks `train.monitor` against them before the first step, so
    /// that a misspelt monitor fails at once instead of at the first evaluation. `None`, the
    /// default, leaves the check to the first evaluation.
    fn metric_names(&self, split: &str) -> Result<Option<Vec<String>>> {
        let _ = split;
        Ok(None)
    }

    /// The kinds of input [`Task::infer`] takes; the engine refuses any other before it loads
    /// the model. The default, none, makes the task refuse inference.
    fn input_kinds() -> &'static [InputKind] {
        &[]
    }

    /// Runs the trained model on `inputs` (each of a kind in [`Task::input_kinds`]), writing
    /// any pictures under `out_dir`; returns a JSON report.
    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value>;

    /// Where the task's frozen sub-models ([`crate::Frozen`]) came from; checkpoints record
    /// it, and resuming refuses a run whose frozen files changed. None by default.
    fn frozen(&self) -> Vec<crate::FrozenSource> {
        Vec::new()
    }

    /// How many samples evaluation, inference and beam search may process at once
    /// (`train.eval_batch_size`, else `train.batch_size`): the engine sets it before it
    /// evaluates, and so do `run::evaluate` and `run::infer` from the run's configuration. A
    /// task that chunks its evaluation uses it; results must not depend on it.
    fn set_eval_batch_size(&mut self, n: usize) {
        let _ = n;
    }

    /// `--set`-style overrides of a run that trains in seconds (`mm train <task> --quick`:
    /// demos and smoke tests); none by default, and `--quick` is then an error.
    fn quick_overrides() -> &'static [&'static str] {
        &[]
    }

    /// Writes the pictures a finished run shows (one example per class, a confusion matrix)
    /// under `dir`, with the best checkpoint loaded; returns their paths. [`crate::run::train`]
    /// calls it after the test evaluation. None by default.
    fn pictures(&mut self, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
        let _ = dir;
        Ok(Vec::new())
    }

    /// Called after each optimizer step, of every group (e.g. to clamp a learnable
    /// temperature).
    fn after_step(&mut self) -> Result<()> {
        Ok(())
    }
}
