//! Records the git revision the tool was built from, for its reports (`GIT_REVISION`): `git
//! describe --always --dirty`, or `unknown` outside a git checkout (a crate tarball).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    let revision = git(&["describe", "--always", "--dirty", "--abbrev=12"])
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=GIT_REVISION={revision}");
    // Rebuild when HEAD moves: HEAD itself (a branch switch), the branch's ref and packed-refs
    // (a commit). Paths that do not exist are skipped, since cargo would rerun every build.
    for what in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", what]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    // The index changes with staged edits, which `--dirty` reports.
    watch(git(&["rev-parse", "--git-path", "index"]));
}

fn watch(path: Option<String>) {
    if let Some(path) = path.filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
