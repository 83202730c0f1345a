//! Criterion benchmarks for the `mm` workspace live in `benches/`; run `cargo bench -p
//! mm-benches`. Results are recorded in `docs/benchmarks.md`.
