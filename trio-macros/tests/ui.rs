//! Every rejection of the macros, with its exact message and span (trybuild UI tests).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p trio-macros --test ui`
//! and read the diff.

#[test]
fn rejections() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
