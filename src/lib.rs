//! The trio-rs workspace package: it owns the examples (`examples/`) and the cross-crate
//! integration tests (`tests/`). It has no API of its own; depend on the `trio` and `trio-test`
//! crates. The benchmarks are the `trio-benches` package in `benches/`.
#![warn(missing_docs)]
