//! `--compare OLD.json`: each entry against the same operator and shape of an older report.
//!
//! Device time is noisy, so a case is slower only when its whole spread lies above the old
//! one's: the new p10 beyond the old p90 by more than [`NOISE`]. Counted work is deterministic,
//! so any growth of it is a regression.

use std::path::Path;

use super::{BENCH_SCHEMA, BenchReport, Entry};

/// Relative margin beyond the old p90 that counts as slower.
pub const NOISE: f64 = 0.05;

/// The verdict for one entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Not in the old report.
    New,
    /// Within noise; the ratio of the medians.
    Same(f64),
    /// Faster beyond noise.
    Faster(f64),
    /// Slower beyond noise.
    Slower(f64),
    /// More counted work than before (which counter).
    MoreWork(&'static str),
}

impl Change {
    /// Whether this marks a regression.
    pub fn is_regression(&self) -> bool {
        matches!(self, Change::Slower(_) | Change::MoreWork(_))
    }

    /// The table cell.
    pub fn cell(&self) -> String {
        match self {
            Change::New => "new".to_string(),
            Change::Same(r) => format!("{r:.2}x"),
            Change::Faster(r) => format!("{r:.2}x faster"),
            Change::Slower(r) => format!("{r:.2}x SLOWER"),
            Change::MoreWork(what) => format!("MORE {what}"),
        }
    }
}

/// The verdicts of a report against an old one, in the new report's entry order.
pub struct Comparison {
    /// One per entry of the new report.
    pub changes: Vec<Change>,
}

impl Comparison {
    /// How many entries regressed.
    pub fn regressions(&self) -> usize {
        self.changes.iter().filter(|c| c.is_regression()).count()
    }
}

/// Reads an older `--json` report.
pub fn load(path: &Path) -> Result<BenchReport, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--compare {}: {e}", path.display()))?;
    let report: BenchReport = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--compare {}: not a bench report ({e}); expected the JSON of `bench --json`",
            path.display()
        )
    })?;
    if report.schema != BENCH_SCHEMA {
        return Err(format!(
            "--compare {}: schema {:?}; expected {BENCH_SCHEMA:?}",
            path.display(),
            report.schema
        ));
    }
    Ok(report)
}

/// Compares every entry of `new` with its match in `old`.
pub fn compare(old: &BenchReport, new: &BenchReport) -> Comparison {
    let changes = new
        .entries
        .iter()
        .map(|e| {
            old.entries
                .iter()
                .find(|o| o.op == e.op && o.shape == e.shape)
                .map_or(Change::New, |o| change(o, e))
        })
        .collect();
    Comparison { changes }
}

fn change(old: &Entry, new: &Entry) -> Change {
    if let (Some(o), Some(n)) = (&old.counted, &new.counted) {
        let compute = old.compute_counted && new.compute_counted;
        for (what, before, now) in [
            ("reads", o.read_bytes, n.read_bytes),
            ("writes", o.written_bytes, n.written_bytes),
            (
                "MACs",
                if compute { o.cube_macs } else { 0 },
                if compute { n.cube_macs } else { 0 },
            ),
            (
                "vector ops",
                if compute { o.vector_ops } else { 0 },
                if compute { n.vector_ops } else { 0 },
            ),
        ] {
            if now > before {
                return Change::MoreWork(what);
            }
        }
    }
    let ratio = new.device.median_ms / old.device.median_ms.max(f64::MIN_POSITIVE);
    if new.device.p10_ms > old.device.p90_ms * (1.0 + NOISE) {
        Change::Slower(ratio)
    } else if new.device.p90_ms * (1.0 + NOISE) < old.device.p10_ms {
        Change::Faster(ratio)
    } else {
        Change::Same(ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Timing, Work};

    fn entry(p10: f64, median: f64, p90: f64, reads: u64) -> Entry {
        Entry {
            op: "op".into(),
            shape: "s".into(),
            device: Timing {
                median_ms: median,
                p10_ms: p10,
                p90_ms: p90,
                runs: 10,
            },
            counted: Some(Work {
                read_bytes: reads,
                ..Work::default()
            }),
            compute_counted: true,
            minimum: Work::default(),
            modelled_s: 0.0,
            minimum_s: 0.0,
            roofline_fraction: 0.0,
        }
    }

    #[test]
    fn only_disjoint_spreads_or_more_work_are_regressions() {
        let old = entry(1.0, 1.1, 1.2, 100);
        assert_eq!(
            change(&old, &entry(1.1, 1.2, 1.3, 100)),
            Change::Same(1.2 / 1.1)
        );
        assert!(change(&old, &entry(1.3, 1.4, 1.5, 100)).is_regression());
        // Inside the noise margin above the old p90.
        assert!(!change(&old, &entry(1.25, 1.3, 1.4, 100)).is_regression());
        assert!(matches!(
            change(&old, &entry(0.5, 0.55, 0.6, 100)),
            Change::Faster(_)
        ));
        assert_eq!(
            change(&old, &entry(1.0, 1.1, 1.2, 101)),
            Change::MoreWork("reads")
        );
        assert!(!change(&old, &entry(1.0, 1.1, 1.2, 99)).is_regression());
    }

    #[test]
    fn the_noise_margin_itself_is_still_the_same() {
        let old = entry(1.0, 1.1, 1.2, 100);
        // The new p10 exactly at the old p90 plus the margin: not slower.
        let edge = 1.2 * (1.0 + NOISE);
        assert!(matches!(
            change(&old, &entry(edge, edge, edge, 100)),
            Change::Same(_)
        ));
        // The new p90 plus the margin exactly at the old p10: not faster.
        let slow = entry(1.0 + NOISE, 1.1, 1.2, 100);
        assert!(matches!(
            change(&slow, &entry(0.9, 0.95, 1.0, 100)),
            Change::Same(_)
        ));
        // Within the margin below the old p10 (0.97 · 1.05 > 1): the same, not faster.
        assert!(matches!(
            change(&old, &entry(0.9, 0.95, 0.97, 100)),
            Change::Same(_)
        ));
    }

    #[test]
    fn compute_counts_compare_only_when_both_reports_counted_them() {
        let mut old = entry(1.0, 1.1, 1.2, 100);
        let mut new = entry(1.0, 1.1, 1.2, 100);
        new.counted.as_mut().unwrap().cube_macs = 5;
        assert_eq!(change(&old, &new), Change::MoreWork("MACs"));
        new.counted.as_mut().unwrap().vector_ops = 5;
        new.counted.as_mut().unwrap().cube_macs = 0;
        assert_eq!(change(&old, &new), Change::MoreWork("vector ops"));
        new.counted.as_mut().unwrap().written_bytes = 1;
        assert_eq!(change(&old, &new), Change::MoreWork("writes"));
        // An aclnn operator's counts hold only its bytes: its compute is not compared.
        new.counted.as_mut().unwrap().written_bytes = 0;
        new.compute_counted = false;
        assert!(matches!(change(&old, &new), Change::Same(_)));
        new.compute_counted = true;
        old.compute_counted = false;
        assert!(matches!(change(&old, &new), Change::Same(_)));
    }

    fn report(entries: Vec<Entry>) -> BenchReport {
        BenchReport {
            schema: BENCH_SCHEMA.into(),
            platform: crate::report::Platform {
                backend: "sim".into(),
                cann_version: "8.2".into(),
                soc: "soc".into(),
                libraries: vec![],
            },
            host: crate::host::HostInfo {
                name: "h".into(),
                cores: 1,
                load_average: None,
                time: "t".into(),
                git_revision: "r".into(),
                tool_version: "v".into(),
            },
            preset: "small".into(),
            roofline: crate::roofline::Roofline {
                soc: "soc".into(),
                cube_macs_per_s: 1.0,
                vector_ops_per_s: 1.0,
                memory_bytes_per_s: 1.0,
                source: "s".into(),
            },
            entries,
        }
    }

    #[test]
    fn entries_match_by_operator_and_shape_and_regressions_are_counted() {
        let named = |op: &str, shape: &str, reads| Entry {
            op: op.into(),
            shape: shape.into(),
            ..entry(1.0, 1.1, 1.2, reads)
        };
        let old = report(vec![named("a", "s", 10), named("b", "s", 10)]);
        let new = report(vec![
            named("a", "s", 11),
            named("a", "t", 10),
            named("c", "s", 10),
            named("b", "s", 10),
        ]);
        let c = compare(&old, &new);
        assert_eq!(
            c.changes,
            [
                Change::MoreWork("reads"),
                Change::New,
                Change::New,
                Change::Same(1.0)
            ]
        );
        assert_eq!(c.regressions(), 1);
        assert_eq!(compare(&old, &old).regressions(), 0);
    }

    #[test]
    fn cells_name_the_change() {
        assert_eq!(Change::New.cell(), "new");
        assert_eq!(Change::Same(1.004).cell(), "1.00x");
        assert_eq!(Change::Faster(0.5).cell(), "0.50x faster");
        assert_eq!(Change::Slower(2.0).cell(), "2.00x SLOWER");
        assert_eq!(Change::MoreWork("reads").cell(), "MORE reads");
        assert!(!Change::New.is_regression() && !Change::Faster(0.5).is_regression());
    }
}
