//! The error type of `mm-vision`.

/// Everything that can go wrong in `mm-vision`.
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
    /// An input tensor has the wrong shape.
    #[error("{op}: expected input of shape {expected}, got {got:?}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape given.
        got: Vec<i64>,
    },
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
