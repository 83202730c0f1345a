//! The error type of `mm-signal`.

/// Everything that can go wrong in `mm-signal`, all detected before any work starts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A configuration value is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name, as in the config struct.
        name: &'static str,
        /// What the parameter must satisfy.
        reason: String,
    },
    /// An input signal is too short for the requested transform.
    #[error("signal of {got} samples is too short: need at least {needed}")]
    SignalTooShort {
        /// The minimum number of samples.
        needed: usize,
        /// The number of samples given.
        got: usize,
    },
    /// A buffer has the wrong length.
    #[error("buffer `{name}` has length {got}, expected {expected}")]
    BufferLen {
        /// Which buffer.
        name: &'static str,
        /// The required length.
        expected: usize,
        /// The given length.
        got: usize,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name,
        reason: reason.into(),
    }
}
