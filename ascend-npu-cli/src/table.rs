//! Terminal tables.

use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};

use crate::check::{Outcome, Verdict};

/// A table with `header`, in the tool's style.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.iter().map(Cell::new));
    table
}

/// The conformance table: op, case, metric, measured, tolerance, source, verdict.
pub fn outcomes(outcomes: &[Outcome]) -> Table {
    let mut table = new(&[
        "op",
        "case",
        "metric",
        "measured",
        "tolerance",
        "source",
        "verdict",
    ]);
    for o in outcomes {
        table.add_row(vec![
            o.op.clone(),
            o.case.clone(),
            o.metric.clone(),
            number(o.measured),
            number(o.tolerance),
            o.source.clone(),
            match o.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Error => "ERROR",
            }
            .to_string(),
        ]);
    }
    table
}

/// A measured value in scientific notation, `-` when absent.
pub fn number(value: Option<f64>) -> String {
    match value {
        // Counts and exact zeros read better without an exponent.
        Some(v) if v.fract() == 0.0 && v.abs() < 1e9 => format!("{v}"),
        Some(v) => format!("{v:.2e}"),
        None => "-".to_string(),
    }
}
