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
                Verdict::Skipped => "skipped",
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

/// The bench table: per operator and shape, device time, counted work against the minimum
/// (global-memory bytes as HBM bytes, and beside them the bytes the cost model keeps in L2),
/// modelled time and the fraction of the roofline; with a comparison, the change.
pub fn bench(
    report: &crate::bench::BenchReport,
    comparison: Option<&crate::bench::Comparison>,
) -> Table {
    let mut header = vec![
        "op",
        "shape",
        "device ms (p10-p90)",
        "HBM bytes / min",
        "L2 bytes",
        "MACs / min",
        "vector ops / min",
        "modelled µs",
        "roofline",
    ];
    if comparison.is_some() {
        header.push("vs old");
    }
    let mut table = new(&header);
    for (i, e) in report.entries.iter().enumerate() {
        let versus = |counted: Option<u64>, minimum: u64| match counted {
            Some(c) if minimum > 0 => format!("{} ({:.2}x)", si(c), c as f64 / minimum as f64),
            Some(c) => si(c),
            None => format!("- / {}", si(minimum)),
        };
        let c = e.counted;
        let m = e.minimum;
        // aclnn operators: the simulator counts their bytes, not their arithmetic.
        let compute = |v: u64| if e.compute_counted { Some(v) } else { None };
        let mut row = vec![
            e.op.clone(),
            e.shape.clone(),
            format!(
                "{:.3} ({:.3}-{:.3})",
                e.device.median_ms, e.device.p10_ms, e.device.p90_ms
            ),
            versus(c.map(|c| c.hbm_bytes()), m.bytes()),
            c.map_or("-".into(), |c| si(c.l2_bytes)),
            versus(c.and_then(|c| compute(c.cube_macs)), m.cube_macs),
            versus(c.and_then(|c| compute(c.vector_ops)), m.vector_ops),
            format!("{:.2}", e.modelled_s * 1e6),
            format!("{:.0}%", e.roofline_fraction * 100.0),
        ];
        if let Some(cmp) = comparison {
            row.push(cmp.changes[i].cell());
        }
        table.add_row(row);
    }
    table
}

/// A count with an SI prefix.
fn si(v: u64) -> String {
    let v = v as f64;
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v}"),
    }
}
