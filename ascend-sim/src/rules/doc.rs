//! `docs/HARDWARE_RULES.md`, generated from the rule table.

use std::fmt::Write;

use super::cann::{RELEASES, UNVERIFIABLE, VERSIONS};
use super::{Enforcement, Rule, all};

/// The text of `docs/HARDWARE_RULES.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "# Hardware rules of the simulator\n\n\
         <!-- Generated from ascend-sim/src/rules; do not edit. Regenerate with\n     \
         UPDATE_HARDWARE_RULES=1 cargo test -p ascend-sim --test hardware_rules -->\n\n\
         The simulator is at least as strict as the hardware: every documented requirement of a\n\
         call we make is a rule below, with its public source and the test that makes a violating\n\
         call and sees it fail. A violating call fails with the rule's id in brackets in\n\
         `aclGetRecentErrMsg`, e.g. `[moe-gating-topk.out-required]`.\n\n\
         Enforced: *phase one* = the aclnn `GetWorkspaceSize` call, by the table's validator\n\
         (`ascend-sim/src/rules`); *at run* = on the device data when the operator runs, reported by\n\
         the stream at synchronisation; otherwise the code named.\n\n\
         Sources name sections and errata of `cann-api-facts.md` (the project's reference of\n\
         verified CANN facts) and the public op docs, op definitions or kernels they were read from.\n",
    );
    let mut calls: Vec<&str> = Vec::new();
    for r in all() {
        if !calls.contains(&r.call) {
            calls.push(r.call);
        }
    }
    s.push_str("\n## Rules\n");
    for call in calls {
        let _ = write!(
            s,
            "\n### {call}\n\n| id | rule | status | enforced | source | test |\n|---|---|---|---|---|---|\n"
        );
        for r in all().filter(|r| r.call == call) {
            row(&mut s, r);
        }
    }
    s.push_str(
        "\n## CANN versions\n\n\
         Each function and operator attribute we use, per CANN release, and what we do about it.\n\
         `?`: no public source read says.\n\n| what |",
    );
    for v in RELEASES {
        let _ = write!(s, " {v} |");
    }
    s.push_str(" what we do |\n|---|");
    for _ in RELEASES {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for v in VERSIONS {
        let _ = write!(s, "| {} |", cell(v.what));
        for c in v.versions {
            let _ = write!(s, " {} |", cell(c));
        }
        let _ = writeln!(s, " {} |", cell(v.we_do));
    }
    s.push_str("\n## Unverifiable without hardware\n\n");
    for u in UNVERIFIABLE {
        let _ = writeln!(s, "- {u}");
    }
    s
}

fn row(s: &mut String, r: &Rule) {
    let (status, enforced) = match &r.enforcement {
        Enforcement::PhaseOne { status, .. } => (status.to_string(), "phase one".to_string()),
        Enforcement::AtRun { status } => (status.to_string(), "at run".to_string()),
        Enforcement::Elsewhere { code } => ("".to_string(), format!("`{code}`")),
    };
    let _ = writeln!(
        s,
        "| `{}` | {} | {} | {} | {} | `{}` |",
        r.id,
        cell(r.statement),
        status,
        enforced,
        cell(r.source),
        r.test
    );
}

/// Table-cell text: pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
