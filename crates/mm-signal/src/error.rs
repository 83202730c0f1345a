//! The error type of `mm-signal`.

/// Everything that can go wrong in `mm-signal`, all detected before any work starts.
#[derive(Debug, thiserror::Error)]
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
    /// The signal has no samples.
    #[error("the signal is empty")]
    EmptySignal,
    /// The signal holds a NaN or an infinity.
    #[error("the signal holds a non-finite sample at index {index}")]
    NonFinite {
        /// Index of the first non-finite sample.
        index: usize,
    },
    /// An array has the wrong shape.
    #[error("array `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Which array.
        name: &'static str,
        /// The required shape.
        expected: Vec<usize>,
        /// The given shape.
        got: Vec<usize>,
    },
    /// A mel filter covers no FFT bin: too many mels (or too narrow a band) for `n_fft`.
    #[error(
        "mel band {band} of {n_mels} covers no FFT bin of n_fft {n_fft}: use fewer mels, a larger n_fft or a wider fmin..fmax"
    )]
    EmptyMelFilter {
        /// The first empty band.
        band: usize,
        /// Bands requested.
        n_mels: usize,
        /// FFT length.
        n_fft: usize,
    },
    /// A file could not be opened, read or written.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An audio file is truncated or corrupt.
    #[error("cannot decode {path}: {reason}")]
    Decode {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An audio encoding this crate does not read.
    #[error("unsupported audio format: {what}")]
    UnsupportedFormat {
        /// The format.
        what: String,
    },
    /// libtorch reported an error (feature `tch`).
    #[error("libtorch: {0}")]
    Torch(String),
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
