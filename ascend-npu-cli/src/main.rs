//! `ascend-npu`: one command that tells a user whether every operator of the library is right
//! on their chip and CANN release (`conformance`), how fast each is against the SoC's roofline
//! (`bench`), and what the machine offers (`info`). The same commands run on the simulator.
//!
//! Exit codes: 0 success, 1 a conformance case failed (or a bench case failed or regressed
//! against `--compare`), 2 the backend could not be loaded, 3 bad usage or another error.

mod backend;
mod bench;
mod check;
mod conformance;
mod host;
mod info;
mod preset;
mod report;
mod rng;
mod roofline;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Conformance and benchmarks of the ascend-npu operators, on an Ascend NPU or the simulator.
#[derive(Parser, Debug)]
#[command(name = "ascend-npu", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GIT_REVISION"), ")"))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The backend, CANN release, library paths, SoC and what this release offers.
    Info(BackendArgs),
    /// Checks every operator family against the f64 reference; exit 1 if any case fails.
    Conformance(ConformanceArgs),
    /// Times every operator and compares its work with the SoC's roofline.
    Bench(BenchArgs),
}

/// Which provider runs the operators.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// `cann`: the installed CANN on an NPU; `sim`: the CPU simulator (no NPU needed).
    #[arg(long, value_enum, default_value_t = backend::BackendChoice::Cann)]
    backend: backend::BackendChoice,
}

#[derive(Args, Debug)]
struct ConformanceArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Shapes: `small` (seconds on the simulator), `deepseek-v3` (the model's real shapes), or a
    /// TOML file with the fields of a preset.
    #[arg(long, default_value = "small")]
    preset: String,
    /// Comma-separated operator families to run (default: all); `list` prints them.
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    /// Writes the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the random inputs (default: from the clock); printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// Test only: adds an operator whose result is deliberately wrong, to prove the run fails.
    #[arg(long, hide = true)]
    plant_wrong_result: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Shapes: `small`, `deepseek-v3` or a TOML preset, as for `conformance`.
    #[arg(long, default_value = "small")]
    preset: String,
    /// Writes the JSON report here (the input of a later `--compare`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draws the roofline picture, with every operator as a point, to this file: SVG or PNG by
    /// its extension (PNG text needs a TrueType font: `ASCEND_NPU_FONT`, or a usual system one).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Marks regressions against an older `--json` report; exit 1 if there are any.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Timed runs per operator and shape.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Untimed runs before them.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(args.backend),
        Command::Conformance(args) => conformance::command(conformance::Options {
            backend: args.backend.backend,
            preset: args.preset,
            ops: args.ops,
            json: args.json,
            seed: args.seed,
            plant_wrong_result: args.plant_wrong_result,
        }),
        Command::Bench(args) => bench::command(bench::Options {
            backend: args.backend.backend,
            preset: args.preset,
            json: args.json,
            plot: args.plot,
            compare: args.compare,
            runs: args.runs,
            warmup: args.warmup,
        }),
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

/// Why a command stopped before its normal end, and the exit code that says so.
#[derive(Debug)]
pub enum Failure {
    /// The backend could not be loaded or initialised (exit 2).
    Backend(String),
    /// Bad usage or another error (exit 3).
    Other(String),
}

impl Failure {
    fn report(self) -> ExitCode {
        match self {
            Failure::Backend(message) => {
                eprintln!("error: the backend cannot be loaded: {message}");
                ExitCode::from(2)
            }
            Failure::Other(message) => {
                eprintln!("error: {message}");
                ExitCode::from(3)
            }
        }
    }
}
