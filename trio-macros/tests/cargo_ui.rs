//! Compiler messages that trybuild cannot show, with their exact text:
//! - those of `#[trio::test]` that the compiler gives (return type, `clock = EXPR`): trybuild
//!   builds its cases as binaries, where `#[test]` functions are compiled out;
//! - the one for a crate that does not depend on trio-test: trybuild's cases get every
//!   dev-dependency of trio-macros.
//!
//! Each `tests/cargo-ui/NAME.rs` becomes an integration test of a scratch crate (in the target
//! directory) that depends on trio alone. One `cargo check --tests` checks them all; each
//! one's diagnostics, rendered from cargo's JSON (message, primary span and label, notes and
//! helps: no line numbers of trio's own files), must equal `NAME.stderr`.
//! `TRYBUILD=overwrite` writes the actual text instead (then read the diff).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The target directory this test was built in (the binary is in `<target>/<profile>/deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lies in <target>/<profile>/deps")
        .to_path_buf()
}

/// The case names: the `.rs` files of `dir`, without extension.
fn cases(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("tests/cargo-ui exists")
        .filter_map(|entry| {
            let path = entry.expect("directory entry").path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// Writes the scratch crate: trio as its only dependency, each case as an integration test.
fn write_project(project: &Path, workspace: &Path, cases_dir: &Path, cases: &[String]) {
    let tests = project.join("tests");
    if tests.exists() {
        fs::remove_dir_all(&tests).expect("remove old cases");
    }
    fs::create_dir_all(project.join("src")).expect("create the scratch crate");
    fs::create_dir_all(&tests).expect("create the scratch crate");
    let trio = workspace.join("trio");
    let manifest = format!(
        "[package]\nname = \"trio-macros-cargo-ui\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\n\n[dependencies]\ntrio = {{ path = {:?} }}\n\n[workspace]\n",
        trio.display().to_string()
    );
    fs::write(project.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    fs::write(project.join("src/lib.rs"), "").expect("write src/lib.rs");
    // The workspace's lock file pins the same versions, so nothing is fetched.
    fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy Cargo.lock");
    for case in cases {
        fs::copy(
            cases_dir.join(format!("{case}.rs")),
            tests.join(format!("{case}.rs")),
        )
        .expect("copy a case");
    }
}

/// A diagnostic as text: `level[code]: message`, the primary span (file in the scratch crate,
/// line, column) with its label, and each note and help.
fn render(message: &Value, out: &mut String) {
    let level = message["level"].as_str().unwrap_or("?");
    let text = message["message"].as_str().unwrap_or("?");
    match message["code"]["code"].as_str() {
        Some(code) => writeln!(out, "{level}[{code}]: {text}"),
        None => writeln!(out, "{level}: {text}"),
    }
    .unwrap();
    for span in message["spans"].as_array().into_iter().flatten() {
        if span["is_primary"].as_bool() != Some(true) {
            continue;
        }
        let file = span["file_name"].as_str().unwrap_or("?");
        let (line, column) = (&span["line_start"], &span["column_start"]);
        writeln!(out, " --> {file}:{line}:{column}").unwrap();
        if let Some(label) = span["label"].as_str() {
            writeln!(out, "  | {label}").unwrap();
        }
    }
    for child in message["children"].as_array().into_iter().flatten() {
        let level = child["level"].as_str().unwrap_or("?");
        let text = child["message"].as_str().unwrap_or("?");
        writeln!(out, "  = {level}: {text}").unwrap();
    }
}

/// Runs `cargo check --tests` over the scratch crate; the diagnostics per case.
fn check(project: &Path) -> BTreeMap<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "check",
            "--tests",
            "--keep-going",
            "--offline",
            "--quiet",
            "--message-format=json",
        ])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo check");
    let mut diagnostics: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["reason"] != "compiler-message" {
            continue;
        }
        let message = &event["message"];
        let text = message["message"].as_str().unwrap_or("");
        if message["level"] == "failure-note" || text.starts_with("aborting due to") {
            continue;
        }
        let target = event["target"]["name"].as_str().unwrap_or("?").to_owned();
        let out = diagnostics.entry(target).or_default();
        if !out.is_empty() {
            out.push('\n');
        }
        render(message, out);
    }
    assert!(
        !diagnostics.is_empty(),
        "cargo check gave no diagnostics; its stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    diagnostics
}

#[test]
fn messages_that_need_cargo_check_tests() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("trio-macros is in the workspace");
    let cases_dir = manifest_dir.join("tests/cargo-ui");
    let cases = cases(&cases_dir);
    let project = target_dir().join("tests").join("trio-macros-cargo-ui");
    write_project(&project, workspace, &cases_dir, &cases);
    let mut diagnostics = check(&project);
    let overwrite = std::env::var_os("TRYBUILD").is_some_and(|v| v == "overwrite");
    let mut failures = Vec::new();
    for case in &cases {
        let actual = diagnostics.remove(case).unwrap_or_default();
        let expected_path = cases_dir.join(format!("{case}.stderr"));
        if overwrite {
            fs::write(&expected_path, &actual).expect("write the expected messages");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual.is_empty() || actual != expected {
            failures.push(format!(
                "{case}:\n--- expected ({})\n{expected}\n--- actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        diagnostics.is_empty(),
        "diagnostics outside the cases: {diagnostics:#?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
