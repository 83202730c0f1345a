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
