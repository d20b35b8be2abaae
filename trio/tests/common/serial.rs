//! A test harness for test files that must run their tests one at a time on the main thread
//! (`harness = false`): signal dispositions and the worker-thread cache are process-wide.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

/// A named test.
pub type Test = (&'static str, fn());

/// Runs `tests` in order, as libtest would: `--list` lists them, other flags are ignored, and
/// a word keeps the tests whose name contains it. Exits with 101 if one failed.
pub fn run_tests(tests: &[Test]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in selected {
        let outcome = catch_unwind(AssertUnwindSafe(test));
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    if failed.is_empty() {
        println!("\ntest result: ok");
    } else {
        println!("\nfailures: {failed:?}\ntest result: FAILED");
        std::process::exit(101);
    }
}
