//! Converters from the layouts people download into the HDF5 layout of `docs/datasets.md`.
//!
//! Each converter reads a raw tree, checks every entry, and either stops at the first bad one
//! with an error naming the file or, with `skip_bad`, skips it and counts it in the
//! [`Report`]. The output is written atomically ([`crate::Writer`]): never half-written, never
//! silently smaller (the report says what was skipped and why).

pub mod av_folders;
pub mod esc50;
pub mod flickr8k;
pub mod vqa;

use std::path::PathBuf;

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Samples written.
    pub written: usize,
    /// Entries skipped (with `skip_bad`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The output file.
    pub out: PathBuf,
}
