//! The SoC's roofline, from the simulator's cost model (`ascend_sim::cost`): one model of the
//! chip for the simulator's counters, the bench and the picture, so a modelled time and a
//! roofline fraction mean the same thing everywhere.

use ascend_npu::sim::SocModel;
use ascend_npu::sim::cost::{self, OperatorWork};
use serde::{Deserialize, Serialize};

use crate::bench::Work;

/// Peak figures of one SoC, as the report records them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Roofline {
    /// The SoC.
    pub soc: String,
    /// fp16/bf16 cube MACs per second over all cube cores.
    pub cube_macs_per_s: f64,
    /// Vector element operations (4 bytes wide) per second over all vector cores.
    pub vector_ops_per_s: f64,
    /// Global-memory (HBM) bytes per second.
    pub memory_bytes_per_s: f64,
    /// How the figures were derived.
    pub source: String,
}

impl Roofline {
    /// The roofline of `soc`.
    pub fn of(soc: &SocModel) -> Roofline {
        let peaks = cost::peaks(soc);
        Roofline {
            soc: soc.name.to_string(),
            cube_macs_per_s: peaks.cube_macs_per_s,
            vector_ops_per_s: peaks.vector_ops_per_s,
            memory_bytes_per_s: peaks.hbm_bytes_per_s,
            source: format!(
                "ascend_sim::cost: {} cube cores × {} MHz × {} fp16 MACs/cycle; {} vector cores × \
                 {} B/cycle as {}-byte elements (a kernel's counted {}-byte vector repeat is {} \
                 of them); HBM {:.2} TB/s; {:.0} µs per launch (vector rate, HBM and launch \
                 figures unverified; cann-api-facts §7.1-7.3)",
                soc.aic_cores,
                soc.cube_mhz,
                cost::CUBE_MACS_PER_CYCLE,
                soc.aiv_cores,
                cost::VECTOR_BYTES_PER_CYCLE,
                cost::VECTOR_ELEMENT_BYTES,
                cost::VECTOR_BYTES_PER_CYCLE / cost::VECTOR_REPEATS_PER_CYCLE,
                cost::vector_ops_of_repeats(1),
                peaks.hbm_bytes_per_s / 1e12,
                cost::LAUNCH_S * 1e6
            ),
        }
    }

    /// fp16/bf16 TFLOPS (2 FLOP per MAC).
    pub fn tflops(&self) -> f64 {
        2.0 * self.cube_macs_per_s / 1e12
    }
}

/// The least time `work` can take on `soc`: one launch, every resource at its peak
/// (`ascend_sim::cost::operator`).
pub fn least_time_s(soc: &SocModel, work: &Work) -> f64 {
    let work = OperatorWork {
        read: work.read_bytes,
        written: work.written_bytes,
        macs: work.cube_macs,
        vector_ops: work.vector_ops,
    };
    cost::operator(soc, &work).total()
}
