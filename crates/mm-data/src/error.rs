//! The error type of `mm-data`.

/// Everything that can go wrong in `mm-data`.
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
    /// The HDF5 library reported an error.
    #[error("hdf5 ({context}): {reason}")]
    Hdf5 {
        /// What was being done.
        context: String,
        /// The library's message.
        reason: String,
    },
    /// A file could not be opened, read, written or renamed.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is HDF5 but not an mm data set (no `mm_format` attribute).
    #[error("{path} is not an mm data set (no `mm_format = \"mm-dataset\"` attribute)")]
    NotADataset {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A sample does not match the schema.
    #[error("sample {index}: {reason}")]
    SampleMismatch {
        /// The sample's index.
        index: usize,
        /// What differs.
        reason: String,
    },
    /// A split that the file does not have.
    #[error("{path} has no split `{name}`")]
    NoSuchSplit {
        /// The split.
        name: String,
        /// The file.
        path: std::path::PathBuf,
    },
    /// An entry of a raw data set is missing, unreadable or malformed.
    #[error("{path}: {reason}")]
    BadEntry {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An mm data set whose structure contradicts itself (a damaged or hand-edited file).
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: std::path::PathBuf,
        /// What contradicts what.
        reason: String,
    },
    /// An index past the end.
    #[error("index {index} is out of range for {len} samples")]
    OutOfRange {
        /// The index.
        index: usize,
        /// The number of samples.
        len: usize,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
