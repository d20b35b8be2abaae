//! # trio-test: tools for testing trio code
//!
//! - [`MockClock`]: virtual time with a rate and Trio's autojump.
//!
//! Use it with `#[trio::test(autojump)]`, or pass it to `trio::RunConfig::clock` yourself.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod clock;

pub use clock::MockClock;
