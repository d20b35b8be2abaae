//! Whether the crate being compiled depends on trio-test, which `#[trio::test(autojump)]`
//! needs for its `MockClock` (trio cannot provide one: trio-test depends on trio).
//!
//! A proc macro cannot ask the compiler which crates are linked, but it runs with
//! `CARGO_MANIFEST_DIR` set to the crate's directory, so it can read the `Cargo.toml`. The
//! check is loose on purpose: only a manifest that never names trio-test counts as missing it;
//! in any other case the expansion names `::trio_test` and the compiler has the last word.

use std::path::Path;

/// What the manifest says about trio-test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrioTest {
    /// Named somewhere (a dependency, a table header, a rename, the package itself).
    Named,
    /// Never named.
    Missing,
    /// No manifest to read (not built by cargo).
    Unknown,
}

/// What the manifest of the crate being compiled says about trio-test.
pub(crate) fn trio_test_dependency() -> TrioTest {
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return TrioTest::Unknown;
    };
    match std::fs::read_to_string(Path::new(&dir).join("Cargo.toml")) {
        Ok(manifest) if names_trio_test(&manifest) => TrioTest::Named,
        Ok(_) => TrioTest::Missing,
        Err(_) => TrioTest::Unknown,
    }
}

/// Whether `manifest` names `trio-test` (or `trio_test`) as a word outside comments.
fn names_trio_test(manifest: &str) -> bool {
    manifest
        .lines()
        .map(without_comment)
        .any(|line| has_word(line, "trio-test") || has_word(line, "trio_test"))
}

/// `line` up to a `#` that is not inside a TOML string.
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

/// Whether `word` occurs in `text` with no name character (letter, digit, `-`, `_`) right
/// before or after it.
fn has_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_depending_on_trio_test_counts() {
        for manifest in [
            "[dev-dependencies]\ntrio-test = \"0.1\"\n",
            "[dev-dependencies]\ntrio-test = { workspace = true }\n",
            "[dev-dependencies]\ntrio-test.workspace = true\n",
            "[dev-dependencies.trio-test]\npath = \"../trio-test\"\n",
            "[target.'cfg(unix)'.dev-dependencies]\n\"trio-test\" = \"0.1\"\n",
            "[dev-dependencies]\nmock = { package = \"trio-test\", version = \"0.1\" }\n",
            "[dependencies]\ntrio_test = \"0.1\"\n",
            "[package]\nname = \"trio-test\"\n",
        ] {
            assert!(names_trio_test(manifest), "{manifest}");
        }
    }

    #[test]
    fn a_manifest_without_trio_test_is_missing_it() {
        for manifest in [
            "[package]\nname = \"app\"\n[dependencies]\ntrio = \"0.1\"\n",
            "[dev-dependencies]\n# trio-test = \"0.1\"\ntrio = \"0.1\"\n",
            "[dev-dependencies]\ntrio = \"0.1\" # not trio-test yet\n",
            "[dependencies]\ntrio-testing = \"1\"\nmy-trio-test = \"1\"\n",
        ] {
            assert!(!names_trio_test(manifest), "{manifest}");
        }
    }

    #[test]
    fn hashes_inside_strings_are_no_comments() {
        assert_eq!(without_comment("a = \"x#y\" # c"), "a = \"x#y\" ");
        assert_eq!(without_comment("a = 'x#y' # c"), "a = 'x#y' ");
        assert_eq!(without_comment("a = \"q\\\"#\" # c"), "a = \"q\\\"#\" ");
        assert_eq!(without_comment("# all comment"), "");
    }
}
