//! The error type of `mm-data`.

/// Everything that can go wrong in `mm-data`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A configuration value is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What it must satisfy.
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
