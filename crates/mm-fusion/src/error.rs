//! The error type of `mm-fusion`.

/// Everything that can go wrong in `mm-fusion`.
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
    /// Input tensors have incompatible shapes.
    #[error("{op}: expected {expected}, got {got:?}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// The expected shapes, in words.
        expected: String,
        /// The shapes given.
        got: Vec<Vec<i64>>,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::Shape`] listing the shapes of `tensors`.
    pub(crate) fn shape(
        op: &'static str,
        expected: impl Into<String>,
        tensors: &[&tch::Tensor],
    ) -> Self {
        Error::Shape {
            op,
            expected: expected.into(),
            got: tensors.iter().map(|t| t.size()).collect(),
        }
    }

    /// An [`Error::InvalidParameter`].
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// `Ok` when `value > 0`, else [`Error::InvalidParameter`] naming `name`.
pub(crate) fn check_positive(name: &'static str, value: i64) -> Result<()> {
    if value > 0 {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("must be positive, got {value}"),
        ))
    }
}

/// `Ok` when `mask` is a bool tensor, else [`Error::InvalidParameter`].
pub(crate) fn check_bool_mask(mask: &tch::Tensor) -> Result<()> {
    if mask.kind() == tch::Kind::Bool {
        Ok(())
    } else {
        Err(Error::invalid(
            "mask",
            format!(
                "must be a bool tensor (true = attend), got {:?}",
                mask.kind()
            ),
        ))
    }
}
