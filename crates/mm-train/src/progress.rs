//! What the trainer reports as it goes. Libraries do not draw: a front end (the `mm` command
//! renders an indicatif bar) passes a [`ProgressFn`] and shows the events as it likes.

use std::sync::Arc;

use crate::task::Metrics;

/// One thing the trainer did.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// Training starts at `step` (0, or the resumed checkpoint's step) of `total`.
    Started {
        /// The first step to run.
        step: usize,
        /// Steps of the whole run.
        total: usize,
    },
    /// A training step finished (`step` steps are done).
    Step {
        /// Steps done.
        step: usize,
        /// Steps of the whole run.
        total: usize,
        /// This step's loss.
        loss: f64,
        /// This step's learning rate.
        lr: f64,
    },
    /// An evaluation on the validation split finished, after `step` steps.
    Evaluated {
        /// Steps done.
        step: usize,
        /// What the task reported.
        metrics: Metrics,
    },
    /// The loop ended after `step` steps (all of them, or early stopping).
    Finished {
        /// Steps done.
        step: usize,
    },
}

/// A shared callback that receives every [`TrainEvent`]; cheap to clone.
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(&TrainEvent) + Send + Sync>);

impl ProgressFn {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&TrainEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Hands `event` to the callback.
    pub fn emit(&self, event: &TrainEvent) {
        (self.0)(event);
    }
}

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn(..)")
    }
}
