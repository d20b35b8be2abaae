//! Procedural macros for trio-rs. Use them through the `trio` crate: `#[trio::main]`,
//! `#[trio::test]`, `#[trio::checkpoint]` and `#[trio::wchan]`.
//!
//! This crate only parses, checks and expands; everything the expansions call lives in
//! `trio::__private` (hidden, not a public API) or in trio's public API. Every rejection is a
//! compile error at the offending span, with a UI test of its exact text (see below).
//!
//! # `#[trio::main]`
//! On `async fn main()` returning `()` or `Result<(), E: Debug>` (any alias of those). The body
//! becomes an inner `async fn` with the same return type (so `?` and `return` work as written),
//! and `main` runs it with `trio::__private::run_main`: Ctrl-C cancels the run; an error is
//! printed (`Error: {e:?}`) and the process exits with status 1. After Ctrl-C, once cleanup
//! has run, the error the cleanup failed with (if any) is printed and the process dies by
//! SIGINT, as programs stopped by Ctrl-C do (the shell reports 130, and a script running it
//! stops too).
//!
//! # `#[trio::test]`
//! On an `async fn` with no parameters returning `()` or `Result<(), E: Debug>`; becomes a
//! plain `#[test]` that runs the body in trio with deadlock detection (a test whose tasks are
//! all blocked forever fails with a task dump instead of hanging). Options, comma-separated,
//! each at most once, all checked when compiling:
//! - `autojump`: run on `trio_test::MockClock` with autojump threshold 0 (virtual time jumps
//!   as soon as every task is blocked); `autojump = 0.5` sets the threshold, a literal number
//!   of seconds, 0 or more. It needs trio-test in the crate's dev-dependencies (trio-test
//!   depends on trio, so trio cannot provide the clock); without it the error says what to
//!   add.
//! - `clock = EXPR`: run on the clock `EXPR` (any `trio::Clock`).
//! - `seed = N`: fix the scheduling seed, a non-negative integer literal.
//!
//! Trio's `trio_test` takes its clock and instruments from the test's pytest fixtures and
//! raises "too many clocks spoil the broth!" when it finds two; here the clock is an option,
//! so two clocks (`autojump` with `clock`, or either twice) are compile errors, and a test
//! that wants instruments runs `trio::RunConfig` itself (`#[test]` with
//! `RunConfig::new().instrument(...).run(...)`).
//!
//! # `#[trio::checkpoint]`
//! On an `async fn` returning `Result<T, E>` (or an alias of one) whose error type can carry
//! `Cancelled`: `E: From<trio::Error>`. The function becomes a checkpoint by construction: a
//! cancel point on entry (inside a cancelled scope it returns `Err(Cancelled)` before running
//! the body) and a schedule point before a successful return if the body did not yield. The
//! site is registered, so `trio::lowlevel::checkpoint_sites()` lists every such function.
//!
//! # Compiler messages
//! Rejections of the syntax are errors at the offending span. What only the compiler can
//! check (the return type of `main` and of tests, the error type of a checkpoint, the type of
//! `clock = EXPR`) is a trait bound in `trio::__private` with a
//! `#[diagnostic::on_unimplemented]` message that names the fix. `tests/ui/` (trybuild) and
//! `tests/cargo-ui/` (`cargo check --tests` on a crate without trio-test) hold their exact
//! text.
//!
//! # `#[trio::wchan]` / `#[trio::wchan("label")]`
//! Marks an `async fn` as a wait-channel frame (default label: the function's name). The
//! outermost annotated frame a blocked task is in is its wait channel in task dumps.

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (a `// SAFETY:` comment); clippy checks it.
#![warn(clippy::undocumented_unsafe_blocks)]

mod checkpoint;
mod entry;
mod manifest;
mod options;
mod wchan;

use proc_macro::TokenStream;

/// Turns `async fn main()` into a program that runs it in trio. See the crate docs.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::main(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns an `async fn` into a `#[test]` that runs it in trio. See the crate docs.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::test(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes an `async fn` a checkpoint by construction and registers it. See the crate docs.
#[proc_macro_attribute]
pub fn checkpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    checkpoint::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks an `async fn` as a wait-channel frame for task dumps. See the crate docs.
#[proc_macro_attribute]
pub fn wchan(args: TokenStream, item: TokenStream) -> TokenStream {
    wchan::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Checks shared by every macro: the item is an `async fn`.
fn require_async(function: &syn::ItemFn, macro_name: &str) -> syn::Result<()> {
    if function.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            function.sig.fn_token,
            format!("#[{macro_name}] requires an async fn"),
        ));
    }
    Ok(())
}
