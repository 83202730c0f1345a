//! Cross-crate end-to-end tests for the `mm` workspace live in `tests/`; this library is empty
//! on purpose (a package needs a target, and the tests need a package to hold their
//! dependencies and the libtorch link arguments of `build.rs`).
