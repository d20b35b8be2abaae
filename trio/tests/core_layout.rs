//! The layout rules of docs/architecture.md, checked on the source itself.
//!
//! - Nothing above `core` names `crate::core` (the crate root, which declares the module and
//!   re-exports its public items, is the one exception): higher layers use `lowlevel`.
//! - The drivers (reactor, deadlines, entry queue, Ctrl-C, clock, storage, the task-future
//!   allocator) import no module of the run: they are owned by the run loop and know nothing
//!   of it. The APIs tasks call are imported by nothing in the run. So no import cycle passes
//!   through a driver or an API; the one cycle allowed is the run itself (runner, tasks,
//!   nurseries, cancel scopes, parking lot), as in Trio's `_run.py`.
//! - No source file is longer than 900 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files of `trio/src/core` that are drivers (owned by the loop, knowing nothing of it).
const DRIVERS: &[&str] = &[
    "core/io/reactor",
    "core/deadlines",
    "core/entry",
    "core/ki",
    "core/clock",
    "core/storage",
    "core/task_future",
    "core/dump_signal",
];

/// Files of `trio/src/core` that are APIs (call into the run, are not called by it).
const APIS: &[&str] = &[
    "core/checkpoint",
    "core/external",
    "core/idle",
    "core/introspect",
    "core/local",
    "core/io/wait",
    "core/io/registration",
    "core/lowlevel",
    "core/dump",
];

fn crate_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `core/run/runner` for `.../src/core/run/runner.rs`; `core/run` for `core/run/mod.rs`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(crate_root()).expect("under src");
    let mut name = rel.with_extension("").to_string_lossy().replace('\\', "/");
    if let Some(dir) = name.strip_suffix("/mod") {
        name = dir.to_string();
    }
    name
}

/// The code of a file without comments (so docs that name modules do not count).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every identifier path that follows `prefix` in `code` (`super::a::b` gives `[a, b]`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let segments: Vec<&str> = rest
            .split("::")
            .map(|s| {
                let end = s
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(s.len());
                &s[..end]
            })
            .take_while(|s| !s.is_empty())
            .collect();
        out.push(segments);
    }
    out
}

/// The most specific known module that `segments` (after `base/`) names.
fn resolve(base: &str, segments: &[&str], known: &BTreeSet<String>) -> Option<String> {
    let mut best = None;
    let mut name = base.to_string();
    for segment in segments {
        name = if name.is_empty() {
            segment.to_string()
        } else {
            format!("{name}/{segment}")
        };
        if known.contains(&name) {
            best = Some(name.clone());
        } else {
            break;
        }
    }
    best
}

struct Source {
    module: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&crate_root(), &mut files);
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("read source");
            Source {
                module: module_of(path),
                code: code_of(&text),
            }
        })
        .collect()
}

/// Import edges between the modules under `core/`.
fn core_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for source in sources.iter().filter(|s| s.module.starts_with("core")) {
        let module = &source.module;
        let is_dir_root = known.iter().any(|k| k.starts_with(&format!("{module}/")));
        // The module `super::` refers to: the parent directory's, for a file and for a
        // directory's `mod.rs` alike.
        let parent = module.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        let mut edges = BTreeSet::new();
        for segments in paths_after(&source.code, "crate::") {
            edges.extend(resolve("", &segments, &known));
        }
        for segments in paths_after(&source.code, "super::") {
            let (base, segments) = if segments.first() == Some(&"super") {
                let grand = parent.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                (grand, &segments[1..])
            } else {
                (parent.clone(), &segments[..])
            };
            edges.extend(resolve(&base, segments, &known));
        }
        if is_dir_root {
            // `mod child;` then `child::item` in a directory's mod.rs.
            for child in known
                .iter()
                .filter_map(|k| k.strip_prefix(&format!("{module}/")))
            {
                if !child.contains('/') && source.code.contains(&format!("{child}::")) {
                    edges.insert(format!("{module}/{child}"));
                }
            }
        }
        edges.remove(module);
        edges.retain(|m| m.starts_with("core"));
        graph.insert(module.clone(), edges);
    }
    graph
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn nothing_above_core_names_core() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.module.starts_with("core") && s.module != "lib")
        .filter(|s| s.code.contains("crate::core") || s.code.contains("super::core"))
        .map(|s| s.module)
        .collect();
    assert!(
        offenders.is_empty(),
        "these modules above core name crate::core (use crate::lowlevel): {offenders:?}"
    );
}

#[test]
fn drivers_import_nothing_of_the_run() {
    let graph = core_graph(&sources());
    for driver in DRIVERS {
        let edges = graph
            .get(*driver)
            .unwrap_or_else(|| panic!("driver {driver} not found; update DRIVERS"));
        let bad: Vec<&String> = edges
            .iter()
            .filter(|m| !DRIVERS.contains(&m.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "driver {driver} imports modules that are not drivers: {bad:?}"
        );
    }
}

#[test]
fn no_import_cycle_passes_through_a_driver_or_an_api() {
    let graph = core_graph(&sources());
    for api in APIS {
        assert!(graph.contains_key(*api), "API {api} not found; update APIS");
    }
    for component in cycles(&graph) {
        let bad: Vec<&String> = component
            .iter()
            .filter(|m| DRIVERS.contains(&m.as_str()) || APIS.contains(&m.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "an import cycle passes through {bad:?}; the cycle: {component:?}"
        );
    }
}

#[test]
fn the_graph_sees_the_imports_it_must() {
    // A check of the checker: the run loop imports the reactor, and the waits import the run.
    let graph = core_graph(&sources());
    assert!(graph["core/run/runner"].contains("core/io/reactor"));
    assert!(graph["core/io/wait"].contains("core/run"));
    assert!(!cycles(&graph).is_empty(), "the run itself is one cycle");
}

#[test]
fn no_source_file_is_over_900_lines() {
    let root = crate_root().join("../..");
    let mut files = Vec::new();
    for dir in ["trio/src", "trio-test/src", "trio-macros/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let long: Vec<(PathBuf, usize)> = files
        .into_iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).ok()?.lines().count();
            (lines > 900).then_some((path, lines))
        })
        .collect();
    assert!(long.is_empty(), "files over 900 lines: {long:?}");
}

#[test]
#[ignore = "prints the import graph"]
fn print_graph() {
    let graph = core_graph(&sources());
    for (m, e) in &graph {
        println!("{m} -> {e:?}");
    }
    println!("cycles: {:?}", cycles(&graph));
}
