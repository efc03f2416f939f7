//! `ascend-npu bench`: per operator and shape, event-timed device time (median, p10, p90 after
//! warm-up), the work counted by the simulator (global-memory reads and writes, cube MACs,
//! vector operations) against the minimum the maths needs, the modelled time, and the fraction
//! of the roofline reached.
//!
//! There is one model of the chip, the simulator's `ascend_sim::cost`. On the simulator the
//! device time is the CPU emulation's and says nothing about an NPU; the modelled time is what
//! the simulator's cost model gave each launch of the run (kernels from their per-core counts,
//! aclnn operators from their tensors' bytes and MACs). On an NPU there are no counts, so the
//! modelled time is the same model's time for the minimum work, beside the measured time.

mod compare;
mod mla;
mod moe_layer;
mod ops;
mod plot;
mod vendor;

pub use compare::Comparison;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use ascend_npu::sim::{DeviceCounters, SocModel};
use ascend_npu::{Backend, Event};
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::{Deserialize, Serialize};

use crate::Failure;
use crate::backend::{BackendChoice, Session};
use crate::host::HostInfo;
use crate::preset::Preset;
use crate::report::Platform;
use crate::roofline::{Roofline, least_time_s};

/// What the command was asked.
pub struct Options {
    /// `--backend`.
    pub backend: BackendChoice,
    /// `--preset`.
    pub preset: String,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--plot`.
    pub plot: Option<PathBuf>,
    /// `--compare`.
    pub compare: Option<PathBuf>,
    /// `--runs`: timed runs per case.
    pub runs: usize,
    /// `--warmup`: untimed runs first.
    pub warmup: usize,
}

/// Work of one run: counted by the simulator, or the minimum the maths needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Global-memory bytes read.
    pub read_bytes: u64,
    /// Global-memory bytes written.
    pub written_bytes: u64,
    /// Cube multiply-accumulates.
    pub cube_macs: u64,
    /// Vector work in element operations of 4 bytes (`ascend_sim::cost::VECTOR_ELEMENT_BYTES`),
    /// the unit the cost model charges an operator's minimum in. Counted for our kernels from
    /// the shim's 256-byte repeats (`cost::vector_ops_of_repeats`: 64 per repeat), which is
    /// what the model charges a launch, so 16-bit work counts half of 32-bit work and a
    /// partly filled repeat counts whole.
    pub vector_ops: u64,
    /// Of the bytes read and written, those the simulator's cost model keeps in the L2: each
    /// kernel launch's exchange memory (what it writes before it reads it: the rings between a
    /// Mix kernel's cube and vector cores, workspaces) when that fits the SoC's L2. Zero for a
    /// minimum and on an NPU.
    #[serde(default)]
    pub l2_bytes: u64,
}

impl Work {
    /// Bytes read and written.
    pub fn bytes(&self) -> u64 {
        self.read_bytes + self.written_bytes
    }

    /// The bytes read and written that cross HBM: [`Work::bytes`] less [`Work::l2_bytes`].
    pub fn hbm_bytes(&self) -> u64 {
        self.bytes() - self.l2_bytes
    }
}

/// Device time over the timed runs, in milliseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// 10th percentile.
    pub p10_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Timed runs.
    pub runs: usize,
}

/// One operator at one shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Operator.
    pub op: String,
    /// Types and shape.
    pub shape: String,
    /// Event-timed device time.
    pub device: Timing,
    /// The work the simulator counted for one run (absent on an NPU).
    pub counted: Option<Work>,
    /// Whether `counted` includes the cube and vector work: the simulator counts them for our
    /// kernels, while for aclnn operators it counts only the bytes of their inputs and outputs.
    pub compute_counted: bool,
    /// The least work the maths needs.
    pub minimum: Work,
    /// Modelled seconds of one run: the simulator's cost model over its launches (never less
    /// than `minimum_s`), or `minimum_s` on an NPU.
    pub modelled_s: f64,
    /// The cost model's seconds for the minimum work in one launch at the SoC's peaks.
    pub minimum_s: f64,
    /// `minimum_s` over the time reached: the modelled time on the simulator, the measured
    /// median on an NPU.
    pub roofline_fraction: f64,
}

/// A bench run's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    /// `ascend-npu-bench/1`.
    pub schema: String,
    /// Backend, release, SoC, libraries.
    pub platform: Platform,
    /// Host, cores, load, time, revision.
    pub host: HostInfo,
    /// The preset's name.
    pub preset: String,
    /// The SoC's peaks.
    pub roofline: Roofline,
    /// One entry per operator and shape.
    pub entries: Vec<Entry>,
}

/// The value of [`BenchReport::schema`].
pub const BENCH_SCHEMA: &str = "ascend-npu-bench/1";

/// The state operators are benchmarked with.
pub struct BenchRun<'a> {
    /// The backend and device.
    pub session: &'a Session,
    /// The shapes.
    pub preset: &'a Preset,
    soc: &'a SocModel,
    runs: usize,
    warmup: usize,
    entries: Vec<Entry>,
    errors: Vec<String>,
    progress: ProgressBar,
}

impl BenchRun<'_> {
    /// Measures `launch` (which queues one run on the session's stream) as `op` at `shape`,
    /// with `minimum` the least work its maths needs.
    pub fn measure(
        &mut self,
        op: &str,
        shape: &str,
        minimum: Work,
        mut launch: impl FnMut() -> ascend_npu::Result<()>,
    ) {
        self.progress.set_message(format!("{op} {shape}"));
        match self.try_measure(&mut launch) {
            Ok((device, simulated)) => {
                let minimum_s = least_time_s(self.soc, &minimum);
                // Work the simulator does not count (aclnn operators' vector work) is taken at
                // its minimum: the model never beats the least time of the maths.
                let modelled_s = simulated
                    .as_ref()
                    .map_or(minimum_s, |s| s.modelled_s.max(minimum_s));
                let reached = if simulated.is_some() {
                    modelled_s
                } else {
                    device.median_ms / 1e3
                };
                self.entries.push(Entry {
                    op: op.to_string(),
                    shape: shape.to_string(),
                    device,
                    counted: simulated.as_ref().map(|s| s.work),
                    compute_counted: simulated.as_ref().is_some_and(|s| s.compute_counted),
                    minimum,
                    modelled_s,
                    minimum_s,
                    roofline_fraction: if reached > 0.0 {
                        minimum_s / reached
                    } else {
                        0.0
                    },
                });
            }
            Err(e) => self.errors.push(format!("{op} {shape}: {e}")),
        }
        self.progress.inc(1);
    }

    /// Records that `op` could not be set up.
    pub fn failed(&mut self, op: &str, error: impl std::fmt::Display) {
        self.errors.push(format!("{op}: {error}"));
    }

    fn try_measure(
        &self,
        launch: &mut impl FnMut() -> ascend_npu::Result<()>,
    ) -> ascend_npu::Result<(Timing, Option<Simulated>)> {
        let stream = &self.session.stream;
        for _ in 0..self.warmup {
            launch()?;
        }
        stream.synchronize()?;
        let simulated = if self.session.backend == Backend::Sim {
            let before = counters();
            launch()?;
            stream.synchronize()?;
            Some(Simulated::between(self.soc, &before, &counters()))
        } else {
            None
        };
        let mut times = Vec::with_capacity(self.runs);
        for _ in 0..self.runs {
            let start = stream.record_event()?;
            launch()?;
            let end = stream.record_event()?;
            end.synchronize()?;
            times.push(f64::from(Event::elapsed_ms(&start, &end)?));
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Ok((
            Timing {
                median_ms: at(0.5),
                p10_ms: at(0.1),
                p90_ms: at(0.9),
                runs: times.len(),
            },
            simulated,
        ))
    }
}

/// Device 0's counters in the compiled-in simulator.
fn counters() -> DeviceCounters {
    ascend_npu::sim::counters(0).unwrap_or_default()
}

/// What the simulator counted and modelled for one run.
struct Simulated {
    work: Work,
    /// Whether the cube and vector work were all counted: our kernels count both, aclnn
    /// operators only the MACs they report.
    compute_counted: bool,
    modelled_s: f64,
}

impl Simulated {
    /// The run between two snapshots. Kernels count their own global-memory transfers; aclnn
    /// operators count each input and output view once and report their MACs; copies and
    /// memsets inside an operator count as reads and writes of global memory. The modelled
    /// time is the simulator's, per launch; copies and memsets, which it does not model, are
    /// taken as one more launch moving their bytes.
    fn between(soc: &SocModel, before: &DeviceCounters, after: &DeviceCounters) -> Simulated {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let (k1, k0) = (&after.kernels, &before.kernels);
        let d2d = d(after.d2d_bytes, before.d2d_bytes);
        let copies = Work {
            read_bytes: d2d,
            written_bytes: d2d + d(after.memset_bytes, before.memset_bytes),
            ..Work::default()
        };
        let work = Work {
            read_bytes: d(k1.gm_to_local_bytes, k0.gm_to_local_bytes)
                + d(after.aclnn_read_bytes, before.aclnn_read_bytes)
                + copies.read_bytes,
            written_bytes: d(k1.local_to_gm_bytes, k0.local_to_gm_bytes)
                + d(after.aclnn_write_bytes, before.aclnn_write_bytes)
                + copies.written_bytes,
            cube_macs: d(k1.cube_macs, k0.cube_macs) + d(after.aclnn_macs, before.aclnn_macs),
            vector_ops: ascend_npu::sim::cost::vector_ops_of_repeats(d(
                k1.vector_repeats,
                k0.vector_repeats,
            )),
            l2_bytes: d(after.kernel_l2_bytes, before.kernel_l2_bytes),
        };
        let launched_ns = d(after.modelled_kernel_ns, before.modelled_kernel_ns)
            + d(after.modelled_aclnn_ns, before.modelled_aclnn_ns);
        let copies_s = if copies.bytes() > 0 {
            least_time_s(soc, &copies)
        } else {
            0.0
        };
        Simulated {
            work,
            compute_counted: after.kernel_launches > before.kernel_launches
                && after.aclnn_launches == before.aclnn_launches,
            modelled_s: launched_ns as f64 * 1e-9 + copies_s,
        }
    }
}

/// Runs the command: exit 0, or 1 when `--compare` finds a regression or a case failed.
pub fn command(options: Options) -> Result<ExitCode, Failure> {
    if options.runs == 0 {
        return Err(Failure::Other(
            "--runs 0; expected at least one timed run".into(),
        ));
    }
    let old = options
        .compare
        .as_deref()
        .map(compare::load)
        .transpose()
        .map_err(Failure::Other)?;
    let preset = Preset::load(&options.preset).map_err(Failure::Other)?;
    let session = Session::open(options.backend)?;
    let soc = session.soc_model.clone().ok_or_else(|| {
        Failure::Other(format!(
            "SoC {:?} is not in the SoC table, so its roofline is unknown; expected one of {}",
            session.soc,
            ascend_npu::sim::SocModel::names()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let roofline = Roofline::of(&soc);
    println!(
        "bench on {} ({}, CANN {}), preset {}, {} runs after {} warm-up",
        session.backend.name(),
        session.soc,
        session.cann_version,
        preset.name,
        options.runs,
        options.warmup
    );
    if session.backend == Backend::Sim {
        println!(
            "simulator: device times are the CPU emulation's; the counted work and the modelled \
             time are what an NPU would do"
        );
    }
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    let mut run = BenchRun {
        session: &session,
        preset: &preset,
        soc: &soc,
        runs: options.runs,
        warmup: options.warmup,
        entries: Vec::new(),
        errors: Vec::new(),
        progress,
    };
    ops::run_all(&mut run);
    run.progress.finish_and_clear();
    let BenchRun {
        entries, errors, ..
    } = run;
    let report = BenchReport {
        schema: BENCH_SCHEMA.to_string(),
        platform: Platform::of(&session),
        host: HostInfo::now(),
        preset: preset.name.clone(),
        roofline,
        entries,
    };
    let comparison = old.as_ref().map(|old| compare::compare(old, &report));
    println!("{}", crate::table::bench(&report, comparison.as_ref()));
    println!("roofline: {}", report.roofline.source);
    for e in &errors {
        println!("error: {e}");
    }
    if let Some(path) = &options.json {
        crate::report::write_json(&report, path).map_err(Failure::Other)?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = &options.plot {
        plot::roofline(&report, path).map_err(Failure::Other)?;
        println!("roofline picture written to {}", path.display());
    }
    let regressions = comparison.as_ref().map_or(0, |c| c.regressions());
    if regressions > 0 {
        println!("{regressions} regressions beyond noise against the old report");
    }
    Ok(if errors.is_empty() && regressions == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counted work is in the cost model's units: vector work from the shim's repeats (64
    /// four-byte operations each, however many elements they held), and the bytes the model
    /// keeps in L2 apart from the HBM bytes.
    #[test]
    fn counted_work_is_in_the_cost_models_units() {
        let soc = SocModel::ascend910b2();
        let before = DeviceCounters::default();
        let mut after = DeviceCounters::default();
        after.kernels.gm_to_local_bytes = 5000;
        after.kernels.local_to_gm_bytes = 3000;
        after.kernel_l2_bytes = 6000;
        after.kernels.vector_elem_ops = 1000;
        after.kernels.vector_repeats = 10;
        after.kernel_launches = 1;
        let s = Simulated::between(&soc, &before, &after);
        assert_eq!(s.work.vector_ops, 640);
        assert_eq!(
            (s.work.bytes(), s.work.l2_bytes, s.work.hbm_bytes()),
            (8000, 6000, 2000)
        );
        assert!(s.compute_counted);
    }
}
