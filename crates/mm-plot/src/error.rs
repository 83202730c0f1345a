//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong while drawing or saving a picture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A picture cannot be drawn from these inputs.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Encoding a PNG failed.
    #[error("encoding {path}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// A file could not be written or renamed.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A closure turning an I/O error on `path` into [`Error::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
