//! # mm-train: the training engine
//!
//! A task implements [`Task`] (build from its config, one training step, evaluation,
//! inference); the [`Trainer`] runs it: seeded data order, optimizers written on tensors
//! ([`Optimizer`]: SGD, Adam, AdamW, RMSprop, per-module learning rates), schedules with
//! warm-up ([`ScheduleConfig`]), gradient clipping, bf16/fp16 autocast on CUDA or the CPU
//! ([`autocast`]), evaluation every N
//! steps, early stopping, atomic checksummed checkpoints that keep the last N and the best, and
//! exact resume: a killed run continued with `--resume` ends where an uninterrupted run ends.
//! [`run::train`] adds the run directory (resolved `config.toml`, `metrics.jsonl` and the same
//! scalars as a TensorBoard event file ([`events`]), PNG curves, `summary.json`) and
//! [`config::load`] the TOML + environment + `--set` configuration.
//!
//! ## Determinism
//! Everything random derives from the seed: initialisation (the engine seeds libtorch before
//! [`Task::build`]), the data order of each epoch ([`mm_core::epoch_order`]), and
//! libtorch's generator, reseeded from `(seed, step)` before every step. A checkpoint therefore
//! needs no RNG state beyond the seed and the step, which it stores.
//!
//! ## Several optimizers
//! A task whose parts learn from different losses (a GAN) declares [`ParamGroup`]s
//! ([`Task::param_groups`]); each gets its own [`Optimizer`], schedule, clipping and autocast
//! from `[train.optimizers.<group>]` ([`GroupConfig`], falling back to the `[train]` level),
//! and a step updates the groups in order, each `repeats` times, calling [`Task::train_step`]
//! with the group in [`StepContext::group`]. Checkpoints hold every group's optimizer state.
//!
//! ## Frozen sub-models
//! A teacher or an encoder that a task uses but never trains is a [`Frozen`]: built in its own
//! var store and loaded from a safetensors file or another run ([`Frozen::load`]; a file of
//! another architecture is an error naming the variable), without gradients, outside every
//! optimizer and checkpoint of the task. The task lists them in [`Task::frozen`]; checkpoints
//! record each file's SHA-256 and `--resume` refuses a run whose frozen file changed
//! ([`Error::FrozenChanged`]), before anything is loaded or written.
//!
//! ## Progress
//! The trainer never draws: it reports [`TrainEvent`]s (started, each step's loss and learning
//! rate, each evaluation, finished) to a [`ProgressFn`] that the caller passes
//! ([`Trainer::with_progress`], [`RunOptions::progress`]); the `mm` command renders them with
//! indicatif. Its PNG curves come from `mm-plot`, which tasks and the command use without the
//! engine.
//!
//! ## Performance
//! Call [`malloc::keep_freed_buffers`] at the start of a training binary (the `mm` command
//! does): with glibc's default settings every step unmaps and re-faults its large activation
//! buffers, which cost the retrieval task 40% of its CPU throughput.
//!
//! ## Feature flags
//! None: this crate always requires libtorch.

pub mod autocast;
pub mod checkpoint;
pub mod config;
mod error;
pub mod events;
pub mod frozen;
pub mod input;
pub mod malloc;
pub mod optim;
pub mod progress;
pub mod run;
pub mod schedule;
mod task;
mod trainer;

pub use autocast::Autocast;
pub use checkpoint::TrainState;
pub use config::{GroupConfig, LrGroup, Mode, ResolvedGroup, TrainConfig};
pub use error::{Error, Result};
pub use frozen::{Frozen, FrozenSource};
pub use input::{Input, InputKind};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use progress::{ProgressFn, TrainEvent};
pub use run::{RunConfig, RunOptions, RunReport};
pub use schedule::{ScheduleConfig, ScheduleKind};
pub use task::{Metrics, ParamGroup, StepContext, Task};
pub use trainer::{Summary, Trainer, WARMUP_STEPS};
