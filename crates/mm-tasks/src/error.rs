//! The error type of `mm-tasks`.

use std::path::PathBuf;

/// Everything that can go wrong in `mm-tasks`.
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
    /// Feature extraction failed.
    #[error("feature extraction")]
    Signal(#[from] mm_signal::Error),
    /// Data generation or loading failed.
    #[error("data")]
    Data(#[from] mm_data::Error),
    /// A vision model could not be built or run.
    #[error("vision model")]
    Vision(#[from] mm_vision::Error),
    /// The training engine (or a plot) failed.
    #[error(transparent)]
    Train(#[from] mm_train::Error),
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// Writing an output file failed.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Encoding an image failed.
    #[error("encoding {path}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: image::ImageError,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
