//! The import graph of ascend-sim, checked: every `crate::` path of a module names a module of
//! its own layer or of a layer below, so there is no import upward and no cycle across layers.
//!
//! Layers, lowest first (docs/ARCHITECTURE.md): `base`, `rules`, `runtime`, `operators`,
//! `ffi`. The crate root (`lib.rs`) only declares the layers and re-exports the public items.
//!
//! The check reads the sources with a small scanner (`scan/`) rather than `syn`: every path
//! that matters starts with `crate::` (or climbs out of a layer with `super::`), so finding
//! those tokens in the source with comments and literals blanked out is enough. The scanner
//! is tested below on an upward import, a grouped `use`, a `super::` climb and a path inside a
//! comment, so the check cannot pass by finding nothing.

mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[&str] = &["base", "rules", "runtime", "operators", "ffi"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn ident_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The top-level modules a source file of module path `module` (e.g. `["runtime",
/// "memory", "host"]`) refers to: `crate::x`, `crate::{x, y}`, and `super::` chains that
/// leave the file's layer.
fn targets(module: &[String], src: &str) -> Vec<(usize, String)> {
    let code = scan::strip(src);
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let is_start = |at: usize| {
        at == 0 || {
            let c = code.as_bytes()[at - 1];
            !(c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        }
    };
    for (at, _) in code.match_indices("crate::") {
        if !is_start(at) {
            continue;
        }
        let after = at + "crate::".len();
        let rest = code[after..].trim_start();
        let skipped = code.len() - after - rest.len();
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: the first identifier after `{` or a `,` at depth 0.
            let mut depth = 0;
            let mut item_start = Some(0);
            for (i, c) in group.char_indices() {
                if let Some(start) = item_start.take() {
                    let name = ident_at(group[start..].trim_start(), 0);
                    if !name.is_empty() && name != "self" {
                        found.push((line_of(at), name.to_string()));
                    }
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = Some(i + 1),
                    _ => {}
                }
            }
        } else {
            let name = ident_at(&code, after + skipped);
            if !name.is_empty() {
                found.push((line_of(at), name.to_string()));
            }
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !is_start(at) {
            continue;
        }
        let mut depth = 0;
        let mut pos = at;
        while code[pos..].starts_with("super::") {
            depth += 1;
            pos += "super::".len();
        }
        if code[..at].ends_with("super::") {
            continue;
        }
        // `super` from module a::b::c is a::b; a chain reaching the root names a crate-level
        // module. Inline modules (`mod tests`) are invisible to the scanner and make a chain
        // look one level longer, so only names of layers count here.
        if depth >= module.len() {
            let name = ident_at(&code, pos);
            if rank(name).is_some() {
                found.push((line_of(at), name.to_string()));
            }
        }
    }
    found
}

/// The module path of a source file under `src/` (`runtime/memory/mod.rs` -> runtime::memory).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Violations: `file:line: layer imports upper-layer module`.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, src) in files {
        let module = module_of(rel);
        let Some(own) = module.first() else { continue };
        if own == "lib" {
            continue;
        }
        let Some(own_rank) = rank(own) else {
            bad.push(format!(
                "{}: top-level module `{own}` is in no layer; add it to a layer folder",
                rel.display()
            ));
            continue;
        };
        for (line, target) in targets(&module, src) {
            match rank(&target) {
                Some(r) if r > own_rank => bad.push(format!(
                    "{}:{line}: layer `{own}` imports `crate::{target}`, a layer above it",
                    rel.display()
                )),
                Some(_) => {}
                // Items re-exported at the root (crate::UNINIT_BYTE) are fine in docs only;
                // in code they would hide the real layer.
                None => bad.push(format!(
                    "{}:{line}: `crate::{target}` is not a layer; import it by its layer path",
                    rel.display()
                )),
            }
        }
    }
    bad
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src").to_path_buf();
            out.push((
                rel,
                std::fs::read_to_string(&path).expect("source readable"),
            ));
        }
    }
}

#[test]
fn no_import_runs_up_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(files.len() > 40, "found only {} sources", files.len());
    let mut per_layer: BTreeMap<String, usize> = BTreeMap::new();
    for (rel, _) in &files {
        *per_layer.entry(module_of(rel)[0].clone()).or_default() += 1;
    }
    for layer in LAYERS {
        assert!(
            per_layer.contains_key(*layer),
            "layer folder {layer} missing"
        );
    }
    let bad = violations(&files);
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_ffi_reaches_the_registry() {
    // The registry lives in ffi/state.rs; the rank check above already forbids lower layers
    // from naming `crate::ffi`. This guards against the registry moving down a layer.
    let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/state.rs");
    let src = std::fs::read_to_string(state).expect("ffi/state.rs exists");
    assert!(
        src.contains("fn sim()"),
        "the registry accessor moved out of ffi/state.rs"
    );
}

#[test]
fn the_scanner_sees_every_form_of_import() {
    let file = |path: &str, src: &str| (PathBuf::from(path), src.to_string());
    let files = [
        file(
            "runtime/stream.rs",
            "use crate::ffi::state::sim;\nfn f() {}\n",
        ),
        file(
            "base/sync.rs",
            "use crate::{base::{error, sync}, runtime};\n",
        ),
        file(
            "operators/aclnn/mod.rs",
            "fn f() { super::super::ffi::guard(); }\n",
        ),
        file(
            "rules/mod.rs",
            "// crate::ffi in a comment\nconst S: &str = \"crate::ffi\";\n",
        ),
        file("runtime/copy.rs", "let x = crate::operators::aclnn::f();\n"),
        file(
            "ffi/mod.rs",
            "use crate::runtime::stream::Stream; use super::x;\n",
        ),
        file(
            "base/error.rs",
            "let c = '\"'; use crate::base::sync::lock;\n",
        ),
    ];
    let bad = violations(&files);
    assert_eq!(bad.len(), 4, "{bad:#?}");
    assert!(bad[0].starts_with("runtime/stream.rs:1: layer `runtime` imports `crate::ffi`"));
    assert!(bad[1].contains("base/sync.rs:1: layer `base` imports `crate::runtime`"));
    assert!(
        bad[2].contains("`operators` imports `crate::ffi`"),
        "{}",
        bad[2]
    );
    assert!(bad[3].contains("runtime/copy.rs:1: layer `runtime` imports `crate::operators`"));
}
