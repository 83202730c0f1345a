//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong while reading or transforming an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A size or crop does not fit the image.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it does not fit.
        reason: String,
    },
    /// An image could not be read or decoded.
    #[error("reading image {path}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
