//! The trio-rs workspace package: it owns the examples (`examples/`), the cross-crate
//! integration tests (`tests/`) and the benchmarks (`benches/`). It has no API of its own;
//! depend on the `trio` and `trio-test` crates.
#![warn(missing_docs)]
