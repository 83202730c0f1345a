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
    /// A stage or parameter group name the backbone does not have.
    #[error("unknown stage `{name}`; this backbone has {known:?}")]
    UnknownStage {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// Class logits were asked of a backbone built without its classifier.
    #[error("{arch} was built without a classifier (set num_classes)")]
    NoClassifier {
        /// The architecture.
        arch: crate::Arch,
    },
    /// An input tensor of the wrong kind or on the wrong device.
    #[error("{op}: expected {want}, got {got}")]
    InputKind {
        /// The operation.
        op: &'static str,
        /// What it needs.
        want: String,
        /// What it got.
        got: String,
    },
    /// Reading or writing a file failed.
    #[error("i/o on {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not valid safetensors.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: std::path::PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Weights the model needs are absent from the file.
    #[error("{path}: {} weights missing, e.g. {:?}", names.len(), &names[..names.len().min(5)])]
    MissingWeights {
        /// The file.
        path: std::path::PathBuf,
        /// The model's names not found (after the prefix).
        names: Vec<String>,
    },
    /// The file holds weights the model does not have (strict loading only).
    #[error("{path}: {} weights the model does not use, e.g. {:?}", names.len(), &names[..names.len().min(5)])]
    UnexpectedWeights {
        /// The file.
        path: std::path::PathBuf,
        /// The unused names.
        names: Vec<String>,
    },
    /// A weight whose shape differs from the model's.
    #[error("weight `{name}`: the model has shape {expected:?}, the file {got:?}")]
    WeightShape {
        /// The weight's name.
        name: String,
        /// The model's shape.
        expected: Vec<i64>,
        /// The file's shape.
        got: Vec<i64>,
    },
    /// A weight stored in a dtype that cannot become a float tensor.
    #[error("weight `{name}` has dtype {dtype}, expected F32, F64, F16 or BF16")]
    UnsupportedDtype {
        /// The weight's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// An image could not be read, decoded, resized or cropped (`mm-image`).
    #[error(transparent)]
    Image(#[from] mm_image::Error),
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's cause appears once when the chain is printed (`{:#}` in the command line).
    #[test]
    fn a_printed_chain_names_the_cause_once() {
        let e = Error::Io {
            path: "w.safetensors".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            (e.to_string(), cause),
            ("i/o on w.safetensors".into(), Some("gone".into()))
        );
    }
}
