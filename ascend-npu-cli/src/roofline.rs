//! The SoC's roofline: peak cube throughput and global-memory bandwidth, from the platform
//! facts of the simulator's SoC table (`cann-api-facts.md` §7.1–7.3).

use ascend_npu::sim::SocModel;
use serde::{Deserialize, Serialize};

/// fp16/bf16 cube MACs per cycle per cube core: `[DtypeMKN]` Default 16·16·16 (§7.1).
const CUBE_MACS_PER_CYCLE: f64 = 16.0 * 16.0 * 16.0;
/// Vector element operations per cycle per vector core: the INI's `vec_calc_size` = 128, read as
/// elements per cycle (an interpretation, unverified).
const VECTOR_OPS_PER_CYCLE: f64 = 128.0;
/// Global-memory bytes per cycle per cube core: the INI's `ddr_rate` = 32, read as bytes per
/// cycle per core (§7.3; an interpretation, unverified by the vendor).
const DDR_BYTES_PER_CYCLE: f64 = 32.0;

/// Peak figures of one SoC.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Roofline {
    /// The SoC.
    pub soc: String,
    /// fp16/bf16 cube MACs per second over all cube cores.
    pub cube_macs_per_s: f64,
    /// Vector element operations per second over all vector cores.
    pub vector_ops_per_s: f64,
    /// Global-memory bytes per second.
    pub memory_bytes_per_s: f64,
    /// How the two were derived.
    pub source: String,
}

impl Roofline {
    /// The roofline of `soc`.
    pub fn of(soc: &SocModel) -> Roofline {
        let cores = f64::from(soc.aic_cores);
        let hz = f64::from(soc.cube_mhz) * 1e6;
        Roofline {
            soc: soc.name.to_string(),
            cube_macs_per_s: cores * CUBE_MACS_PER_CYCLE * hz,
            vector_ops_per_s: f64::from(soc.aiv_cores) * VECTOR_OPS_PER_CYCLE * hz,
            memory_bytes_per_s: cores * DDR_BYTES_PER_CYCLE * hz,
            source: format!(
                "{} cube cores × {} MHz × 16·16·16 fp16 MACs/cycle; vector {} cores × 128 \
                 elements/cycle (INI vec_calc_size, unverified); memory {} cores × 32 B/cycle \
                 (INI ddr_rate, unverified; cann-api-facts §7.2-7.3)",
                soc.aic_cores, soc.cube_mhz, soc.aiv_cores, soc.aic_cores
            ),
        }
    }

    /// fp16/bf16 TFLOPS (2 FLOP per MAC).
    pub fn tflops(&self) -> f64 {
        2.0 * self.cube_macs_per_s / 1e12
    }

    /// The time the roofline allows for `work`: the longest of its cube, vector and memory
    /// times, in seconds (each unit running at its peak, overlapped).
    pub fn time_s(&self, work: &crate::bench::Work) -> f64 {
        let cube = work.cube_macs as f64 / self.cube_macs_per_s;
        let vector = work.vector_ops as f64 / self.vector_ops_per_s;
        let memory = work.bytes() as f64 / self.memory_bytes_per_s;
        cube.max(vector).max(memory)
    }
}
