//! The error type of `mm-train`.

use std::path::PathBuf;

/// Everything that can go wrong in the training engine (tasks bring their own errors as
/// [`Error::Task`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What it must satisfy.
        reason: String,
    },
    /// A configuration file, override or environment variable could not be read or does not
    /// fit the task's configuration (unknown keys included).
    #[error("configuration: {0}")]
    Config(String),
    /// Reading or writing a file failed.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint is missing pieces, fails its checksum or does not fit the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Drawing or saving a picture (the loss and metric curves) failed.
    #[error(transparent)]
    Plot(#[from] mm_plot::Error),
    /// The loss became NaN or infinite.
    #[error(
        "the loss{} is {value} at step {step}: lower the learning rate or clip gradients",
        .group.as_ref().map(|g| format!(" of group `{g}`")).unwrap_or_default()
    )]
    NonFiniteLoss {
        /// The step.
        step: usize,
        /// The loss.
        value: f64,
        /// The parameter group whose loss it is (`None` for a task with one optimizer).
        group: Option<String>,
    },
    /// A task's [`crate::Task::metric_names`] and [`crate::Task::evaluate`] disagree (a bug
    /// in the task).
    #[error(
        "the task declares the metrics {declared:?} but its evaluation reported {reported:?}: \
         its `metric_names` and `evaluate` disagree"
    )]
    MetricNames {
        /// What `metric_names` said, sorted.
        declared: Vec<String>,
        /// What `evaluate` reported, sorted.
        reported: Vec<String>,
    },
    /// A frozen sub-model's file changed since the run recorded it, so resuming would train
    /// against another teacher.
    #[error(
        "the frozen `{name}` ({path}) has changed since the run recorded it (SHA-256 {recorded}, now {now}): restore that file or start a new run"
    )]
    FrozenChanged {
        /// The task's name for it.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The SHA-256 the checkpoint recorded.
        recorded: String,
        /// The file's SHA-256 now.
        now: String,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A task's own error.
    #[error(transparent)]
    Task(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps a task's error.
    pub fn task(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Task(Box::new(e))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

impl From<mm_core::WriteError> for Error {
    fn from(e: mm_core::WriteError) -> Self {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error and its causes as the command line prints them.
    fn chain(e: Error) -> String {
        format!("{:#}", anyhow::Error::from(e))
    }

    /// Each cause appears once in a printed chain: a variant either shows its source in its
    /// message or leaves it to the chain, never both.
    #[test]
    fn a_printed_chain_names_each_cause_once() {
        let io = || Error::Io {
            path: "run/x".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(chain(io()), "i/o on run/x: gone");
        assert_eq!(chain(Error::task(io())), "i/o on run/x: gone");
    }
}
