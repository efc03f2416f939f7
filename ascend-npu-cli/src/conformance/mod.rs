//! `ascend-npu conformance`: every operator family × element type × shape against the f64
//! reference.
//!
//! The registry is [`FAMILIES`]: a family is one module with one [`Family`] value, whose `run`
//! records an [`Outcome`] per case through [`Run`]. Adding a family (MLA, expert parallelism)
//! is a new module and one line in the list.

mod ep;
mod fp8;
mod kernels;
mod mla;
mod moe;
mod planted;
mod vendor;

use std::cell::OnceCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use ascend_npu::kernels::Kernels;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Failure;
use crate::backend::{BackendChoice, Session};
use crate::check::Outcome;
use crate::preset::Preset;
use crate::report::ConformanceReport;
use crate::rng::CaseRng;

/// One operator family: a name for `--ops` and a function that runs its cases.
pub struct Family {
    /// The name `--ops` selects it by, and the first part of its rows' `op`.
    pub name: &'static str,
    /// One line for `--ops list`.
    pub summary: &'static str,
    /// Whether it runs our Ascend C kernels (the kernel-binary API, CANN 8.2 on).
    pub kernels: bool,
    /// The vendor (aclnn) operators it calls.
    pub aclnn: &'static [&'static str],
    /// Runs every case of the preset, recording each outcome.
    pub run: fn(&mut Run<'_>),
}

/// Every family, in the order they run.
pub const FAMILIES: &[Family] = &[
    kernels::SWIGLU,
    kernels::MATMUL,
    fp8::QUANT,
    fp8::DEQUANT,
    fp8::GEMM,
    moe::ROUTING,
    moe::DISPATCH,
    moe::COMBINE,
    moe::LAYER,
    mla::CACHE_WRITE,
    mla::DECODE,
    mla::PREFILL,
    mla::ATTENTION,
    mla::LAYER,
    ep::EP,
    vendor::VENDOR,
];

/// What the command was asked.
pub struct Options {
    /// `--backend`.
    pub backend: BackendChoice,
    /// `--preset`.
    pub preset: String,
    /// `--ops` (empty = all).
    pub ops: Vec<String>,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// The hidden test-only flag that adds [`planted::FAMILY`].
    pub plant_wrong_result: bool,
}

/// The state of a conformance run that families use.
pub struct Run<'a> {
    /// The backend and device.
    pub session: &'a Session,
    /// The shapes.
    pub preset: &'a Preset,
    seed: u64,
    family: &'static str,
    kernels: OnceCell<Result<Kernels, String>>,
    outcomes: Vec<Outcome>,
}

impl Run<'_> {
    /// The random inputs of case `name` of the current family.
    pub fn rng(&self, name: &str) -> CaseRng {
        CaseRng::new(self.seed, &format!("{}/{name}", self.family))
    }

    /// Our kernels, loaded once for the run.
    pub fn kernels(&self) -> Result<&Kernels, String> {
        self.kernels
            .get_or_init(|| self.session.kernels().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| format!("loading our kernels: {e}"))
    }

    /// Runs one case of operator `op` (shown as `family/op`, or the family's name alone when
    /// that already ends in `op`): its outcome, or an error row when the operator (or
    /// anything before the comparison) failed.
    pub fn case(
        &mut self,
        op: &str,
        case: &str,
        body: impl FnOnce(&Self, &str, &str) -> Result<Outcome, String>,
    ) {
        self.cases(op, case, |run, op, case| {
            body(run, op, case).map(|o| vec![o])
        });
    }

    /// [`Run::case`] for a case measured by several metrics, one row each.
    pub fn cases(
        &mut self,
        op: &str,
        case: &str,
        body: impl FnOnce(&Self, &str, &str) -> Result<Vec<Outcome>, String>,
    ) {
        let op = if op == self.family || self.family.ends_with(&format!("-{op}")) {
            self.family.to_string()
        } else {
            format!("{}/{op}", self.family)
        };
        match body(self, &op, case) {
            Ok(outcomes) => self.outcomes.extend(outcomes),
            Err(e) => self.outcomes.push(Outcome::error(&op, case, e)),
        }
    }
}

/// Runs the command; exit 0 when every case that ran passes, 1 when any fails or errs.
pub fn command(options: Options) -> Result<ExitCode, Failure> {
    if options.ops.iter().any(|o| o == "list") {
        for family in FAMILIES {
            println!("{:<12} {}", family.name, family.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let families = select(&options.ops, options.plant_wrong_result)?;
    let preset = Preset::load(&options.preset).map_err(Failure::Other)?;
    let session = Session::open(options.backend)?;
    let seed = options.seed.unwrap_or_else(crate::rng::fresh_seed);
    println!(
        "conformance on {} ({}, CANN {}), preset {}, seed {seed} (repeat with --seed {seed})",
        session.backend.name(),
        session.soc,
        session.cann_version,
        preset.name
    );
    if options.plant_wrong_result {
        println!("planted: a test-only operator with a deliberately wrong result is included");
    }

    let mut run = Run {
        session: &session,
        preset: &preset,
        seed,
        family: "",
        kernels: OnceCell::new(),
        outcomes: Vec::new(),
    };
    let progress = progress_bar(families.len());
    for family in &families {
        progress.set_message(family.name);
        run.family = family.name;
        (family.run)(&mut run);
        progress.inc(1);
    }
    progress.finish_and_clear();

    let outcomes = run.outcomes;
    println!("{}", crate::table::outcomes(&outcomes));
    let report = ConformanceReport::new(
        &session,
        &preset,
        seed,
        families.iter().map(|f| f.name.to_string()).collect(),
        options.plant_wrong_result,
        outcomes,
    );
    let summary = &report.summary;
    println!(
        "{} cases: {} passed, {} failed, {} errors, {} skipped",
        summary.cases, summary.passed, summary.failed, summary.errors, summary.skipped
    );
    if let Some(path) = &options.json {
        report.write(path).map_err(Failure::Other)?;
        println!("report written to {}", path.display());
    }
    // A skipped case (the machine lacks what it needs, its row says what) is neither.
    Ok(if summary.failed == 0 && summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The families `--ops` names (all when empty), in registry order.
fn select(ops: &[String], planted: bool) -> Result<Vec<&'static Family>, Failure> {
    let known = || {
        FAMILIES
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for op in ops {
        if !FAMILIES.iter().any(|f| f.name == op) {
            return Err(Failure::Other(format!(
                "--ops names {op:?}, which is not an operator family; expected some of: {}",
                known()
            )));
        }
    }
    let mut families: Vec<&'static Family> = FAMILIES
        .iter()
        .filter(|f| ops.is_empty() || ops.iter().any(|o| o == f.name))
        .collect();
    if planted {
        families.push(&planted::FAMILY);
    }
    Ok(families)
}

/// One tick per family, drawn only when stderr is a terminal.
fn progress_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
    }
    bar
}
