//! # mm-core: what every layer of mm shares
//!
//! The seeded order in which a training run visits its data, used by the training engine
//! (`mm-train`) to pick each step's samples and by the data layer (`mm-data`) to read batches
//! and to assign converted clips to splits. It lives here, below both, so that the engine
//! needs no data-set code (HDF5) and the data layer no engine.
//!
//! ```
//! let order = mm_core::epoch_order(&[10, 11, 12, 13], true, 7, 0);
//! let mut sorted = order.clone();
//! sorted.sort_unstable();
//! assert_eq!(sorted, [10, 11, 12, 13]);
//! // the same seed and epoch give the same order, on every machine
//! assert_eq!(order, mm_core::epoch_order(&[10, 11, 12, 13], true, 7, 0));
//! ```
//!
//! [`write_atomic`] writes a file through a temporary and a rename, so that a full disk or a
//! kill never leaves a half-written file under its final name; the small outputs of every
//! layer (summaries, configurations, JSON, weights) go through it.
//!
//! ## Feature flags
//! None; no libtorch.

mod fs;
mod order;

pub use fs::{WriteError, tmp_path, write_atomic};
pub use order::epoch_order;
