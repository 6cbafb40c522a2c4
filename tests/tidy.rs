//! Tidy tests (as rust-analyzer keeps them): properties of the source tree itself.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The agent crate's layers: a module may import only from the modules listed for it.
/// Leaves first. The laboratory (benchmarks, the accuracy suite, the demo harness) is its own
/// crate, `lab/`, on top of this one (`the_daemon_never_depends_on_the_lab`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("telemetry", &["clock"]),
    ("outbox", &["clock", "telemetry"]),
    ("pipeline", &["clock", "telemetry"]),
    ("remote", &["clock"]),
    ("federate", &[]),
    ("uplink", &["clock", "telemetry", "outbox", "remote"]),
    ("observe", &["clock", "telemetry", "outbox"]),
    (
        "daemon",
        &[
            "clock",
            "telemetry",
            "outbox",
            "pipeline",
            "remote",
            "federate",
            "uplink",
            "observe",
        ],
    ),
    (
        "cmd",
        &[
            "clock",
            "telemetry",
            "outbox",
            "pipeline",
            "remote",
            "federate",
            "uplink",
            "observe",
            "daemon",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`pipeline/queue.rs` → `pipeline`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::name` a file mentions, with its line number.
fn crate_refs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            out.push((n + 1, name));
        }
    }
    out
}

#[test]
fn agent_modules_import_only_from_the_layers_below() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let Some(module) = module_of(f) else { continue };
        // The binary's own file (the CLI) sits on top.
        if ["main", "lib"].contains(&module.as_str()) {
            continue;
        }
        let Some(ok) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module {module} has no layer; add it to ALLOWED in tests/tidy.rs and to ARCHITECTURE.md",
                f.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read");
        for (line, used) in crate_refs(&text) {
            if used.starts_with('{') {
                wrong.push(format!(
                    "{}:{line}: write one `use crate::module::...` per module (grouped imports hide the layering)",
                    f.display()
                ));
            } else if used != module && !ok.contains(&used.as_str()) {
                wrong.push(format!(
                    "{}:{line}: {module} imports from {used}, which is not below it",
                    f.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_daemon_forbids_unsafe_code() {
    // The daemon's library forbids it crate-wide (its `main` makes one mallopt call); the lab
    // denies it and allows it only in its CPU-time helper (getrusage).
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    assert!(
        lib.contains("#![forbid(unsafe_code)]"),
        "agent/src/lib.rs must forbid unsafe code"
    );
    let lab = src().join("../../lab/src");
    let lab_lib = std::fs::read_to_string(lab.join("lib.rs")).expect("lab/src/lib.rs");
    assert!(
        lab_lib.contains("#![deny(unsafe_code)]"),
        "lab/src/lib.rs must deny unsafe code"
    );
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&lab, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        if text.contains("allow(unsafe_code)") {
            assert!(
                f.ends_with("lab/src/cputime.rs"),
                "{}: unsafe code outside the lab's CPU-time helper",
                f.display()
            );
        }
    }
}

/// The lab links the daemon's library, never the other way: the agent's package (and so its
/// Debian package) builds without it.
#[test]
fn the_daemon_never_depends_on_the_lab() {
    let root = src().join("../..");
    let manifest = std::fs::read_to_string(root.join("agent/Cargo.toml")).expect("Cargo.toml");
    let deps = manifest.split("[package.metadata").next().unwrap_or("");
    assert!(
        !deps.contains("vitrine-lab") && !deps.contains("../lab"),
        "agent/Cargo.toml depends on the lab"
    );
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(
            !text.contains("vitrine_lab"),
            "{}: uses the lab",
            f.display()
        );
    }
    assert!(
        !manifest.contains("release/vitrine-lab"),
        "the Debian package ships the lab's binary"
    );
}

/// The top-level modules of a crate's `src/` that each module's non-test code names
/// (`crate::name`).
fn module_graph(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first.as_os_str().to_str().expect("utf-8");
        let module = module.trim_end_matches(".rs").to_string();
        if ["main", "lib"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        // Tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let uses = graph.entry(module.clone()).or_default();
        for (_, used) in crate_refs(code) {
            if used != module && !used.is_empty() && !uses.contains(&used) {
                uses.push(used);
            }
        }
    }
    graph
}

/// A circle through `from`, if following the graph from there comes back to a module on the
/// current path.
fn circle(
    graph: &BTreeMap<String, Vec<String>>,
    from: &str,
    path: &mut Vec<String>,
    done: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == from) {
        return Some(path[i..].to_vec());
    }
    if done.iter().any(|m| m == from) {
        return None;
    }
    path.push(from.to_string());
    for next in graph.get(from).into_iter().flatten() {
        if graph.contains_key(next) {
            if let Some(c) = circle(graph, next, path, done) {
                return Some(c);
            }
        }
    }
    path.pop();
    done.push(from.to_string());
    None
}

#[test]
fn library_crates_have_no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in [
        "signals",
        "models",
        "sensors",
        "firmware-config",
        "ingest",
        "agent",
        "lab",
    ] {
        let graph = module_graph(&root.join(krate).join("src"));
        let (mut path, mut done) = (Vec::new(), Vec::new());
        for m in graph.keys() {
            if let Some(c) = circle(&graph, m, &mut path, &mut done) {
                found.push(format!("{krate}: {}", c.join(" -> ")));
                break;
            }
        }
    }
    assert!(
        found.is_empty(),
        "import circles (dependencies point one way; move the shared piece to the lower module): {found:?}"
    );
}
