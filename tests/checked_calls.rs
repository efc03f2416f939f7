//! The checked-call rule, kept for future code (docs/ARCHITECTURE.md, "One checked call per C
//! function"): under `src/`, every C function is named once, at its call, through
//! `c_call!`/`c_fn!` (`src/checked_call.rs`), so an error can only name the function called.
//!
//! - No string literal is a C function's name, as the name of a call was before this layer
//!   (`check(api, "aclrtFree", ..)`, `call: "aclrtFree"`). Prose that mentions a function in
//!   a message is fine. The names are every function of ascend-sys's table, read from its
//!   generated `symbols.rs`.
//! - No code looks a function up in the table (`api.aclrtMalloc()`) outside the layer.
//! - Every `c_call!` sits directly inside an `unsafe` block: the macro holds no `unsafe` of
//!   its own, and the block's `// SAFETY:` comment is where the C contract is argued.
//!
//! The scanner (`ascend-sim/tests/scan/`) is tested below on each form, so the check cannot
//! pass by finding nothing.

#[path = "../ascend-sim/tests/scan/mod.rs"]
mod scan;

use std::path::{Path, PathBuf};

/// The module of the layer itself: it reads the table and names functions in its tests.
const LAYER: &str = "checked_call.rs";

/// Every C function of the table, from `name: PFN_name in Library,` lines.
fn c_functions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ascend-sys/src/symbols.rs");
    let text = std::fs::read_to_string(&path).expect("ascend-sys/src/symbols.rs readable");
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(": PFN_")?;
            rest.starts_with(name).then(|| name.to_string())
        })
        .collect()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Offsets where `word` stands as a whole identifier in `text`.
fn word_at(text: &str, word: &str) -> Vec<usize> {
    let b = text.as_bytes();
    text.match_indices(word)
        .map(|(at, _)| at)
        .filter(|&at| {
            let end = at + word.len();
            (at == 0 || !is_ident(b[at - 1])) && (end == b.len() || !is_ident(b[end]))
        })
        .collect()
}

/// The breaches of the rule in one file, and how many `c_call!` sites it has.
fn breaches(rel: &str, src: &str, names: &[String]) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let literals = scan::only(src, scan::Part::Literal);
    let code = scan::strip(src);
    for name in names {
        for at in word_at(&literals, name) {
            // The whole literal: the name between its two quotes.
            let whole = src[..at].ends_with('"') && src[at + name.len()..].starts_with('"');
            if whole {
                bad.push(format!(
                    "{rel}:{}: the string literal \"{name}\" names a call; call it through \
                     c_call!/c_fn!, whose errors take the name from the call",
                    scan::line_of(src, at)
                ));
            }
        }
        for at in word_at(&code, name) {
            let before = code[..at].trim_end();
            let after = code[at + name.len()..].trim_start();
            if before.ends_with('.') && after.starts_with("()") {
                bad.push(format!(
                    "{rel}:{}: {name} is looked up in the function table outside the \
                     checked-call layer; use c_call!/c_fn!",
                    scan::line_of(src, at)
                ));
            }
        }
    }
    let mut calls = 0;
    for (at, _) in code.match_indices("c_call!") {
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        if code[at + "c_call!".len()..].trim_start().starts_with('{') {
            continue; // the macro's definition, `macro_rules! c_call {`
        }
        calls += 1;
        let before = code[..at].trim_end();
        let in_unsafe = before
            .strip_suffix('{')
            .is_some_and(|b| b.trim_end().ends_with("unsafe"));
        if !in_unsafe {
            bad.push(format!(
                "{rel}:{}: c_call! outside an `unsafe {{ }}` block of its own; write \
                 `// SAFETY: ...` then `unsafe {{ c_call!(...) }}`",
                scan::line_of(src, at)
            ));
        }
    }
    (bad, calls)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_c_function_is_named_once_at_its_checked_call() {
    let names = c_functions();
    assert!(names.len() > 100, "read only {} C functions", names.len());
    assert!(names.iter().any(|n| n == "HcclAllReduce"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let (mut bad, mut calls) = (Vec::new(), 0);
    for path in &files {
        let rel = path.strip_prefix(root).expect("under the root").display();
        if path.file_name().is_some_and(|f| f == LAYER) {
            continue;
        }
        let src = std::fs::read_to_string(path).expect("source readable");
        let (b, n) = breaches(&rel.to_string(), &src, &names);
        bad.extend(b);
        calls += n;
    }
    assert!(calls > 50, "found only {calls} c_call! sites");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_scanner_sees_each_breach_and_nothing_else() {
    let names = ["aclrtFree".to_string(), "HcclSend".to_string()];
    let src = r#"
// aclrtFree in a comment, and api.aclrtFree() in one
let name = "aclrtFree";
let prose = "aclrtFree failed, as reported";
let f = api.aclrtFree()?;
let ok = "aclrtFreeHost is another name";
/// `c_call!(api, aclrtFree(p))` in a doc comment
unsafe { c_call!(api, aclrtFree(p)) }?;
let r = c_call!(api, HcclSend(p, n));
// SAFETY: fine
let s = unsafe {
    c_call!(api, HcclSend(p, n))
};
"#;
    let (bad, calls) = breaches("x.rs", src, &names);
    assert_eq!(calls, 3, "{bad:#?}");
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].starts_with("x.rs:3: the string literal \"aclrtFree\" names a call"));
    assert!(bad[1].starts_with("x.rs:5: aclrtFree is looked up"));
    assert!(bad[2].starts_with("x.rs:9: c_call! outside an `unsafe"));
}
