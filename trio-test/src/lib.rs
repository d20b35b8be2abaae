//! # trio-test: tools for testing trio code
//!
//! - [`MockClock`]: virtual time with a rate and Trio's autojump.
//!
//! Use it with `#[trio::test(autojump)]`, or pass it to `trio::RunConfig::clock` yourself.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (a `// SAFETY:` comment); clippy checks it.
#![warn(clippy::undocumented_unsafe_blocks)]

mod clock;

pub use clock::MockClock;
