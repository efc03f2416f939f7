//! The JSON report of a conformance run (schema: `report.schema.json` beside this crate's
//! manifest), the file a user attaches to an issue.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::{Session, resolved_libraries};
use crate::check::{Outcome, Verdict};
use crate::host::HostInfo;
use crate::preset::Preset;

/// The value of [`ConformanceReport::schema`]; bumped when a field changes meaning.
pub const CONFORMANCE_SCHEMA: &str = "ascend-npu-conformance/2";

/// Where the device came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Platform {
    /// `sim` or `cann`.
    pub backend: String,
    /// The CANN release (the simulated one on the simulator).
    pub cann_version: String,
    /// `aclrtGetSocName`.
    pub soc: String,
    /// Each CANN library opened, with its path (empty on the simulator).
    pub libraries: Vec<LibraryPath>,
}

/// One CANN library file and where it was opened from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LibraryPath {
    /// The file name, e.g. `libascendcl.so`.
    pub file: String,
    /// The path the loader opened.
    pub path: String,
}

impl Platform {
    /// The platform of `session`.
    pub fn of(session: &Session) -> Platform {
        Platform {
            backend: session.backend.name().to_string(),
            cann_version: session.cann_version.to_string(),
            soc: session.soc.clone(),
            libraries: resolved_libraries()
                .into_iter()
                .map(|(file, path)| LibraryPath {
                    file: file.to_string(),
                    path,
                })
                .collect(),
        }
    }
}

/// Counts of verdicts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Cases run.
    pub cases: usize,
    /// Within tolerance.
    pub passed: usize,
    /// Outside tolerance.
    pub failed: usize,
    /// The operator returned an error.
    pub errors: usize,
    /// Not run on this machine (see each row's `source`).
    pub skipped: usize,
}

/// A conformance run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConformanceReport {
    /// [`CONFORMANCE_SCHEMA`].
    pub schema: String,
    /// Backend, CANN release, SoC and libraries.
    pub platform: Platform,
    /// Host, time and revision.
    pub host: HostInfo,
    /// The shapes.
    pub preset: Preset,
    /// The seed of the random inputs.
    pub seed: u64,
    /// The families run.
    pub families: Vec<String>,
    /// Whether the test-only planted failure was included.
    pub planted: bool,
    /// Verdict counts.
    pub summary: Summary,
    /// One entry per case.
    pub results: Vec<Outcome>,
}

impl ConformanceReport {
    /// The report of a finished run.
    pub fn new(
        session: &Session,
        preset: &Preset,
        seed: u64,
        families: Vec<String>,
        planted: bool,
        results: Vec<Outcome>,
    ) -> ConformanceReport {
        let count = |v: Verdict| results.iter().filter(|o| o.verdict == v).count();
        ConformanceReport {
            schema: CONFORMANCE_SCHEMA.to_string(),
            platform: Platform::of(session),
            host: HostInfo::now(),
            preset: preset.clone(),
            seed,
            families,
            planted,
            summary: Summary {
                cases: results.len(),
                passed: count(Verdict::Pass),
                failed: count(Verdict::Fail),
                errors: count(Verdict::Error),
                skipped: count(Verdict::Skipped),
            },
            results,
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        write_json(self, path)
    }
}

/// Writes `value` as pretty JSON to `path`, with the path in any error.
pub fn write_json(value: &impl Serialize, path: &Path) -> Result<(), String> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| format!("serialising the report: {e}"))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| format!("writing the report to {}: {e}", path.display()))
}
