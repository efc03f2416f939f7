//! `ascend-npu info`: what the backend is, where its libraries came from, the SoC's figures,
//! and what this CANN release offers.

use std::process::ExitCode;

use ascend_npu::sim::rules::version_table;
use ascend_npu::sys::Api;

use crate::Failure;
use crate::backend::{self, BackendChoice, Session};
use crate::roofline::Roofline;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Prints the report; exit 2 when the backend cannot be loaded.
pub fn run(choice: BackendChoice) -> Result<ExitCode, Failure> {
    let session = Session::open(choice)?;
    let device = &session.device;
    let version = session.cann_version;
    println!("backend         {}", session.backend.name());
    println!("CANN version    {version}");
    let libraries = backend::resolved_libraries();
    if libraries.is_empty() {
        println!("libraries       none: the simulator is compiled into this tool");
    } else {
        for (file, path) in &libraries {
            println!("library         {file:<24} {path}");
        }
    }
    println!("SoC             {}", session.soc);
    let cores =
        |r: ascend_npu::Result<u32>| r.map_or_else(|e| format!("? ({e})"), |c| c.to_string());
    println!(
        "cores           {} cube (AIC), {} vector (AIV)",
        cores(device.cube_cores()),
        cores(device.vector_cores())
    );
    match device.memory_info() {
        Ok(m) => println!(
            "device memory   {:.1} GiB total, {:.1} GiB free",
            m.total as f64 / GIB,
            m.free as f64 / GIB
        ),
        Err(e) => println!("device memory   ? ({e})"),
    }
    match &session.soc_model {
        Some(soc) => {
            let roof = Roofline::of(soc);
            println!(
                "cube clock      {} MHz; L2 {:.0} MiB; per cube core L1 {} KiB, L0A/B/C {}/{}/{} KiB; \
                 UB {} KiB per vector core",
                soc.cube_mhz,
                soc.l2_bytes as f64 / MIB,
                soc.l1_bytes / 1024,
                soc.l0a_bytes / 1024,
                soc.l0b_bytes / 1024,
                soc.l0c_bytes / 1024,
                soc.ub_bytes / 1024
            );
            println!(
                "peak            {:.1} TFLOPS fp16/bf16, {:.2} TB/s global memory",
                roof.tflops(),
                roof.memory_bytes_per_s / 1e12
            );
            println!("                ({})", roof.source);
        }
        None => println!(
            "peak            unknown: {} is not in the SoC table",
            session.soc
        ),
    }

    let table = version_table();
    match table.column(version) {
        Some(column) => {
            println!(
                "\nWhat CANN {version} offers (column {} of docs/HARDWARE_RULES.md):",
                table.releases[column]
            );
            let mut t = crate::table::new(&["function or attribute", "this release", "we do"]);
            for row in table.rows {
                t.add_row(vec![row.what, row.versions[column], row.we_do]);
            }
            println!("{t}");
        }
        None => println!("\nCANN {version} predates every release we support (8.1.RC1 on)."),
    }
    let missing: Vec<&str> = match ascend_npu::raw_api() {
        Ok(api) => api.missing().iter().map(|e| e.symbol()).collect(),
        Err(_) => Vec::new(),
    };
    let resolves = |op: &str| !missing.contains(&format!("{op}GetWorkspaceSize").as_str());
    our_operators(version, &resolves);
    vendor_ops(&resolves);
    Ok(ExitCode::SUCCESS)
}

/// Each conformance family: what it needs and whether this release and provider have it.
fn our_operators(version: ascend_npu::sys::CannVersion, resolves: &dyn Fn(&str) -> bool) {
    let mut t = crate::table::new(&["our operator", "needs", "available here"]);
    for family in crate::conformance::FAMILIES {
        let mut needs: Vec<&str> = Vec::new();
        let mut lacking: Vec<String> = Vec::new();
        if family.kernels {
            needs.push("our kernels (kernel-binary API, 8.2 on)");
            if !version.has_kernel_binaries() {
                lacking.push(format!("CANN {version} has no kernel-binary API"));
            }
        }
        for op in family.aclnn {
            needs.push(op);
            if !resolves(op) {
                lacking.push(format!("{op} does not resolve"));
            }
        }
        let available = if lacking.is_empty() {
            "yes".to_string()
        } else {
            format!("no: {}", lacking.join("; "))
        };
        t.add_row(vec![family.name.to_string(), needs.join(", "), available]);
    }
    println!("\nOur operators on this release:\n{t}");
}

/// Which aclnn operators we call resolve from this provider.
fn vendor_ops(resolves: &dyn Fn(&str) -> bool) {
    let mut t = crate::table::new(&["vendor op", "resolves"]);
    for op in Api::SYMBOLS
        .iter()
        .filter_map(|s| s.strip_suffix("GetWorkspaceSize"))
    {
        t.add_row(vec![op, if resolves(op) { "yes" } else { "no" }]);
    }
    println!("\nVendor ops we call, resolved from this provider's libraries:\n{t}");
}
