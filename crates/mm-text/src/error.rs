//! The error type of `mm-text`.

/// Everything that can go wrong in `mm-text`.
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
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {len} tokens")]
    UnknownId {
        /// The id.
        id: usize,
        /// The vocabulary size.
        len: usize,
    },
    /// Reading or writing a file failed.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A training corpus is empty, has no frequent enough word, or is not UTF-8.
    #[error("corpus {path}: {reason}")]
    Corpus {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A word-vector file is truncated or malformed, or its header disagrees with its body.
    #[error("vector file {path}: {reason}")]
    VectorFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The sub-word tokenizer library reported an error.
    #[error("sub-word tokenizer ({context}): {reason}")]
    Subword {
        /// What was being done.
        context: String,
        /// The library's message.
        reason: String,
    },
    /// A saved vocabulary could not be parsed.
    #[error("malformed vocabulary file {path}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
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
