//! A cost model of the chip: how long the counted work of a kernel launch or an aclnn operator
//! would take on the simulated SoC. The simulator's wall time says nothing about the NPU; this
//! says what the counted work costs there, under the assumptions below.
//!
//! Per launch: `launch + max(cube, vector, mte, l2, hbm)`, i.e. the pipes of a core overlap
//! perfectly (double buffering) and the slowest resource decides.
//! - **cube**: the busiest block's multiply-accumulates at 16·16·16 per cycle, times the waves
//!   (`ceil(blocks / cores)`: 64 tiles on 24 cores is 3 rounds);
//! - **vector**: the busiest vector block's 256-byte repeats at one repeat per cycle, times the
//!   waves. The shim counts a call's repeats by its widest operand (`vector_repeats` of the shim
//!   ABI), so a 16-bit operation costs half of a 32-bit one over the same elements;
//! - **mte**: the busiest core's global-memory reads and, apart, its writes at one core's L2
//!   rates, whichever takes longer: reads run on MTE2 (GM to UB/L1), writes on MTE3 (UB to GM)
//!   or FIX (L0C to GM), separate pipes whose queues run concurrently (ascendc-facts.md §1.3),
//!   with separate INI rates (`l2_rate`, `l2_write_rate`). The busiest reader and the busiest
//!   writer may be different cores (a Mix group's AIC reads, its AIVs write): the maximum over
//!   cores of each core's slower pipe is the larger of the two maxima, so one block's reads are
//!   never added to another's writes;
//! - **l2**: every counted global-memory byte through the whole chip's L2 bandwidth;
//! - **hbm**: the bytes that must come from HBM. Exchange memory first: global memory the
//!   launch writes before it reads it (the shim records, per 32-byte granule and in the order the
//!   cores ran, whether a granule's first access was a write, and counts the bytes read from and
//!   written to granules the launch writes and then reads; a granule read before its first write
//!   is not exchange memory). When the launch's distinct exchange bytes fit the SoC's L2, that
//!   traffic (rings between a Mix group's AIC and AIVs, workspaces) stays in L2 and never reaches
//!   HBM: it is reported apart (`l2_bytes`) and costs only L2 bandwidth; when they do not fit,
//!   it all counts at HBM. Everything else (inputs, outputs the launch never reads back, data
//!   read before being written) is HBM traffic: its distinct global memory (`footprint` less
//!   the exchange memory) is read once, and re-reads of it hit the L2 left beside the exchange
//!   memory when they fit, and otherwise miss in the proportion the footprint exceeds it.
//!   Exchange memory is taken to be dead after the launch (a workspace, freed in stream order),
//!   so its last contents are not written back; an output the launch itself reads back would
//!   be undercounted by one write, which no kernel of ours does.
//!
//! Every figure states its source; the unverified ones say so. Treat the result as a model for
//! comparing kernels and shapes, not a measurement.

use super::soc::SocModel;

/// Fp16/bf16 multiply-accumulates per cycle of one cube core: `[DtypeMKN]` 16·16·16 of the
/// platform INI (cann-api-facts.md §7.1). That bf16 runs at the fp16 rate is UNVERIFIED (§7.2).
pub const CUBE_MACS_PER_CYCLE: f64 = 4096.0;
/// Vector repeats one vector core issues per cycle: one (UNVERIFIED). A repeat is
/// `ASCEND_SHIM_VECTOR_REPEAT_BYTES` = 256 bytes, 8 datablocks of 32 B (ascendc-facts.md §1.1,
/// §3.5), taken from the shim's ABI header.
pub const VECTOR_REPEATS_PER_CYCLE: f64 = 1.0;
/// Bytes one vector core processes per cycle: [`VECTOR_REPEATS_PER_CYCLE`] repeats of the shim
/// ABI's repeat size.
pub const VECTOR_BYTES_PER_CYCLE: f64 =
    VECTOR_REPEATS_PER_CYCLE * super::shim_abi::VECTOR_REPEAT_BYTES as f64;
/// Width assumed for a vector element where only element counts are known (an operator's
/// [`OperatorWork::vector_ops`]): fp32, the widest type our kernels compute in, so vector time
/// is not underestimated. Kernel launches are charged by their counted repeats instead.
pub const VECTOR_ELEMENT_BYTES: f64 = 4.0;
/// A kernel's counted vector repeats as [`VECTOR_ELEMENT_BYTES`]-wide element operations, the
/// unit of [`OperatorWork::vector_ops`] and of [`Peaks::vector_ops_per_s`]: a launch's counted
/// vector work and an operator's minimum then compare at the rate the model charges both.
pub fn vector_ops_of_repeats(repeats: u64) -> u64 {
    repeats * super::shim_abi::VECTOR_REPEAT_BYTES as u64 / VECTOR_ELEMENT_BYTES as u64
}

/// One core's global-memory read rate through L2, bytes per cycle: `l2_rate=110` of the INI's
/// `[AICoreMemoryRates]`; the unit (bytes/cycle/core) is UNVERIFIED (cann-api-facts.md §7.1).
pub const CORE_L2_READ_BYTES_PER_CYCLE: f64 = 110.0;
/// One core's write rate to global memory: `l2_write_rate=86` of the same INI section (unit
/// UNVERIFIED).
pub const CORE_L2_WRITE_BYTES_PER_CYCLE: f64 = 86.0;
/// HBM bandwidth of a 910B: the commonly quoted 1.6 TB/s, UNVERIFIED (cann-api-facts.md §7.3;
/// the INI's `ddr_rate=32` B/cycle × 24 cores × 1.8 GHz would give 1.38 TB/s).
pub const HBM_BYTES_PER_S: f64 = 1.6e12;
/// Host-to-device launch overhead of one kernel or aclnn operator: an ASSUMPTION of a few
/// microseconds, no source found; measure with an empty kernel on the device.
pub const LAUNCH_S: f64 = 5e-6;

/// What a kernel launch did, as the shim counted it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LaunchWork {
    /// Blocks launched (Mix kernels: AIC+2·AIV groups).
    pub blocks: u32,
    /// The kernel runs on vector cores only (else cube cores, or Mix groups led by one).
    pub vector_only: bool,
    /// Global-memory bytes read / written over all cores.
    pub gm_read: u64,
    /// Bytes written to global memory over all cores.
    pub gm_written: u64,
    /// Distinct global-memory bytes the launch mapped (its buffers), for the L2 model.
    pub footprint: u64,
    /// Global-memory bytes read by the busiest block (a core of it).
    pub busiest_read: u64,
    /// Global-memory bytes written by the busiest block.
    pub busiest_written: u64,
    /// Multiply-accumulates of the busiest cube block.
    pub busiest_macs: u64,
    /// 256-byte vector repeats of the busiest vector block (each call counted by its widest
    /// operand, rounded up to whole repeats).
    pub busiest_vector_repeats: u64,
    /// Of `gm_read`, the bytes read from exchange memory (written by the launch before it first
    /// read them).
    pub exchange_read: u64,
    /// Of `gm_written`, the bytes written to exchange memory.
    pub exchange_written: u64,
    /// Distinct bytes of the launch's exchange memory.
    pub exchange_footprint: u64,
}

impl LaunchWork {
    /// Whether the launch's exchange memory fits the SoC's L2, and so stays there.
    fn exchange_fits(&self, soc: &SocModel) -> bool {
        self.exchange_footprint <= soc.l2_bytes
    }

    /// The exchange traffic that stays in L2 on `soc`: all of it when the exchange memory fits
    /// the SoC's L2, else none.
    pub fn l2_resident(&self, soc: &SocModel) -> u64 {
        if self.exchange_fits(soc) {
            self.exchange_read + self.exchange_written
        } else {
            0
        }
    }
}

/// The modelled time of some work, by resource, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Launch overhead.
    pub launch: f64,
    /// Cube time of the busiest core over all waves.
    pub cube: f64,
    /// Vector time of the busiest core over all waves.
    pub vector: f64,
    /// Memory-engine time of the busiest core: its reads (MTE2) or its writes (MTE3/FIX) at
    /// one core's L2 rates, whichever pipe takes longer.
    pub mte: f64,
    /// All counted global-memory traffic through the chip's L2.
    pub l2: f64,
    /// The traffic that reaches HBM.
    pub hbm: f64,
    /// Bytes modelled as coming from (or going to) HBM.
    pub hbm_bytes: u64,
    /// Bytes of exchange memory traffic modelled as staying in L2 (see the module comment).
    pub l2_bytes: u64,
}

impl Estimate {
    /// `launch + max(cube, vector, mte, l2, hbm)`.
    pub fn total(&self) -> f64 {
        self.launch
            + [self.cube, self.vector, self.mte, self.l2, self.hbm]
                .into_iter()
                .fold(0.0, f64::max)
    }

    /// Every term in microseconds and the bound, on one line: `total 14.7 µs (vector) =
    /// launch 5.0 + max(cube 1.5, vector 9.7, mte 7.1, l2 5.2, hbm 9.4)`.
    pub fn breakdown(&self) -> String {
        let us = |s: f64| s * 1e6;
        format!(
            "total {:.1} µs ({}) = launch {:.1} + max(cube {:.1}, vector {:.1}, mte {:.1}, l2 {:.1}, hbm {:.1})",
            us(self.total()),
            self.bound(),
            us(self.launch),
            us(self.cube),
            us(self.vector),
            us(self.mte),
            us(self.l2),
            us(self.hbm)
        )
    }

    /// The resource that decides the time: "cube", "vector", "mte", "l2" or "hbm".
    pub fn bound(&self) -> &'static str {
        let parts = [
            ("cube", self.cube),
            ("vector", self.vector),
            ("mte", self.mte),
            ("l2", self.l2),
            ("hbm", self.hbm),
        ];
        parts
            .iter()
            .fold(("cube", f64::MIN), |b, p| if p.1 > b.1 { *p } else { b })
            .0
    }
}

/// Bytes that reach HBM when `traffic` bytes move over a launch whose distinct memory is
/// `footprint` bytes, with an L2 of `l2` bytes (see the module comment).
pub fn hbm_bytes(traffic: u64, footprint: u64, l2: u64) -> u64 {
    if footprint == 0 || traffic <= footprint {
        return traffic;
    }
    let rereads = (traffic - footprint) as f64;
    let miss = (1.0 - l2 as f64 / footprint as f64).max(0.0);
    footprint + (rereads * miss) as u64
}

/// The modelled time of one kernel launch on `soc`.
pub fn kernel(soc: &SocModel, w: &LaunchWork) -> Estimate {
    let hz = f64::from(soc.cube_mhz) * 1e6;
    let cores = if w.vector_only {
        soc.aiv_cores
    } else {
        soc.aic_cores
    };
    let waves = f64::from(w.blocks.div_ceil(cores.max(1)).max(1));
    let traffic = w.gm_read + w.gm_written;
    let l2_resident = w.l2_resident(soc);
    // The exchange memory that stays in L2, and the L2 left for re-reads of everything else.
    let (exchange, left) = if w.exchange_fits(soc) {
        (w.exchange_footprint, soc.l2_bytes - w.exchange_footprint)
    } else {
        (0, soc.l2_bytes)
    };
    let hbm_bytes = hbm_bytes(
        traffic.saturating_sub(l2_resident),
        w.footprint.saturating_sub(exchange),
        left,
    );
    let l2_bytes_per_s =
        CORE_L2_READ_BYTES_PER_CYCLE * f64::from(soc.aic_cores + soc.aiv_cores) * hz;
    Estimate {
        launch: LAUNCH_S,
        cube: waves * w.busiest_macs as f64 / (CUBE_MACS_PER_CYCLE * hz),
        vector: waves * w.busiest_vector_repeats as f64 / (VECTOR_REPEATS_PER_CYCLE * hz),
        mte: waves
            * f64::max(
                w.busiest_read as f64 / (CORE_L2_READ_BYTES_PER_CYCLE * hz),
                w.busiest_written as f64 / (CORE_L2_WRITE_BYTES_PER_CYCLE * hz),
            ),
        l2: traffic as f64 / l2_bytes_per_s,
        hbm: hbm_bytes as f64 / HBM_BYTES_PER_S,
        hbm_bytes,
        l2_bytes: l2_resident,
    }
}

/// Work of an operator taken as a whole, with no split over cores known: what a vendor's
/// kernel must at least move and compute, or the least an operator's maths needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OperatorWork {
    /// Global-memory bytes read.
    pub read: u64,
    /// Global-memory bytes written.
    pub written: u64,
    /// Cube multiply-accumulates.
    pub macs: u64,
    /// Vector element operations (counted as [`VECTOR_ELEMENT_BYTES`] wide).
    pub vector_ops: u64,
}

/// The whole chip's peak rates: the roofs of a roofline, from the same constants as
/// [`kernel`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peaks {
    /// fp16/bf16 cube multiply-accumulates per second over every cube core.
    pub cube_macs_per_s: f64,
    /// Vector element operations per second over every vector core.
    pub vector_ops_per_s: f64,
    /// HBM bytes per second.
    pub hbm_bytes_per_s: f64,
}

/// The peak rates of `soc`.
pub fn peaks(soc: &SocModel) -> Peaks {
    let hz = f64::from(soc.cube_mhz) * 1e6;
    Peaks {
        cube_macs_per_s: CUBE_MACS_PER_CYCLE * f64::from(soc.aic_cores) * hz,
        vector_ops_per_s: VECTOR_BYTES_PER_CYCLE / VECTOR_ELEMENT_BYTES
            * f64::from(soc.aiv_cores)
            * hz,
        hbm_bytes_per_s: HBM_BYTES_PER_S,
    }
}

/// The modelled time of one operator launch whose work is spread evenly over every core and
/// whose bytes cross HBM once: the least time any kernel doing `work` can take (one launch,
/// every resource at its peak). Simulated aclnn operators are modelled so, from the bytes of
/// their tensors and the MACs they report.
pub fn operator(soc: &SocModel, work: &OperatorWork) -> Estimate {
    let p = peaks(soc);
    let bytes = work.read + work.written;
    Estimate {
        launch: LAUNCH_S,
        cube: work.macs as f64 / p.cube_macs_per_s,
        vector: work.vector_ops as f64 / p.vector_ops_per_s,
        hbm: bytes as f64 / p.hbm_bytes_per_s,
        hbm_bytes: bytes,
        ..Estimate::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v_work(repeats: u64) -> LaunchWork {
        LaunchWork {
            blocks: 48,
            vector_only: true,
            busiest_vector_repeats: repeats,
            ..LaunchWork::default()
        }
    }

    #[test]
    fn exchange_memory_stays_in_l2_only_when_it_fits() {
        let soc = SocModel::ascend910b2();
        let mib = 1u64 << 20;
        // 10 MiB in, 1 MiB out; a 4 MiB ring written 8 times and read 8 times.
        let ring = LaunchWork {
            blocks: 24,
            gm_read: 10 * mib + 32 * mib,
            gm_written: mib + 32 * mib,
            footprint: 10 * mib + mib + 4 * mib,
            exchange_read: 32 * mib,
            exchange_written: 32 * mib,
            exchange_footprint: 4 * mib,
            ..LaunchWork::default()
        };
        let e = kernel(&soc, &ring);
        assert_eq!((e.l2_bytes, e.hbm_bytes), (64 * mib, 11 * mib));
        // All traffic still crosses the L2.
        let l2_rate = CORE_L2_READ_BYTES_PER_CYCLE * 72.0 * 1.8e9;
        assert!((e.l2 - (75 * mib) as f64 / l2_rate).abs() < 1e-15);
        assert!((e.hbm - (11 * mib) as f64 / HBM_BYTES_PER_S).abs() < 1e-15);
        // A ring larger than the L2 goes to HBM whole, and so does everything else.
        let big = LaunchWork {
            exchange_footprint: soc.l2_bytes + 32,
            footprint: 11 * mib + soc.l2_bytes + 32,
            ..ring
        };
        let e = kernel(&soc, &big);
        assert_eq!((e.l2_bytes, e.hbm_bytes), (0, 75 * mib));
        // Re-reads of the other memory hit only the L2 the ring leaves: a 190 MiB input read
        // twice beside a 4 MiB ring misses on (190 - 188) / 190 of its re-read.
        let tight = LaunchWork {
            gm_read: 380 * mib + 32 * mib,
            gm_written: 32 * mib,
            footprint: 190 * mib + 4 * mib,
            ..ring
        };
        let e = kernel(&soc, &tight);
        let miss = (190 * mib) as f64 * (2.0 / 190.0);
        assert_eq!(e.hbm_bytes, 190 * mib + miss as u64);
    }

    #[test]
    fn waves_l2_and_bounds() {
        let soc = SocModel::ascend910b2();
        let one = LaunchWork {
            blocks: 24,
            busiest_macs: 128 * 128 * 1024,
            ..LaunchWork::default()
        };
        let e24 = kernel(&soc, &one);
        // 128·128·1024 MACs at 4096 per cycle and 1.8 GHz.
        assert!((e24.cube - 128.0 * 128.0 * 1024.0 / 4096.0 / 1.8e9).abs() < 1e-12);
        // 25 blocks on 24 cores take two rounds; 64 take three.
        let e25 = kernel(&soc, &LaunchWork { blocks: 25, ..one });
        let e64 = kernel(&soc, &LaunchWork { blocks: 64, ..one });
        assert_eq!((e25.cube / e24.cube, e64.cube / e24.cube), (2.0, 3.0));
        assert_eq!(e24.bound(), "cube");
        // Reads (MTE2) and writes (MTE3/FIX) are separate pipes: the slower one decides, they
        // do not add up. 110 B/cycle read, 86 B/cycle written, at 1.8 GHz.
        let io = kernel(
            &soc,
            &LaunchWork {
                blocks: 1,
                busiest_read: 110 * 1800,
                busiest_written: 86 * 900,
                ..LaunchWork::default()
            },
        );
        assert!((io.mte - 1e-6).abs() < 1e-15);
        let io = kernel(
            &soc,
            &LaunchWork {
                blocks: 1,
                busiest_read: 110 * 900,
                busiest_written: 86 * 3600,
                ..LaunchWork::default()
            },
        );
        assert!((io.mte - 2e-6).abs() < 1e-15);
        // Re-reads of a footprint within L2 never reach HBM; beyond it, they miss in proportion.
        assert_eq!(hbm_bytes(100 << 20, 10 << 20, 192 << 20), 10 << 20);
        assert_eq!(hbm_bytes(5 << 20, 10 << 20, 192 << 20), 5 << 20);
        assert_eq!(hbm_bytes(800 << 20, 400 << 20, 200 << 20), 600 << 20);
        let e = operator(
            &soc,
            &OperatorWork {
                read: 1_600_000,
                ..OperatorWork::default()
            },
        );
        assert!((e.total() - (LAUNCH_S + 1e-6)).abs() < 1e-12);
        assert_eq!(e.bound(), "hbm");
        // A launch's vector time is its busiest core's repeats at one per cycle: 1800 repeats
        // at 1.8 GHz is 1 µs, whatever widths the shim counted them at.
        let v = kernel(&soc, &v_work(1800));
        assert!((v.vector - 1e-6).abs() < 1e-15);
        assert_eq!(v.bound(), "vector");
        assert_eq!(
            v.breakdown(),
            "total 6.0 µs (vector) = launch 5.0 + max(cube 0.0, vector 1.0, mte 0.0, l2 0.0, hbm 0.0)"
        );
        let v97 = kernel(
            &soc,
            &LaunchWork {
                blocks: 97,
                ..v_work(1800)
            },
        );
        assert!(
            (v97.vector - 3e-6).abs() < 1e-15,
            "97 blocks on 48 AIVs: 3 waves"
        );
        // 48 vector cores at 64 fp32 elements per cycle and 1.8 GHz; 24 cube cores at 4096.
        let p = peaks(&soc);
        assert_eq!(p.vector_ops_per_s, 48.0 * 64.0 * 1.8e9);
        assert_eq!(p.cube_macs_per_s, 24.0 * 4096.0 * 1.8e9);
        let v = operator(
            &soc,
            &OperatorWork {
                vector_ops: 48 * 64 * 1800,
                macs: 24 * 4096 * 900,
                ..OperatorWork::default()
            },
        );
        assert!((v.vector - 1e-6).abs() < 1e-15 && (v.cube - 0.5e-6).abs() < 1e-15);
        assert_eq!(v.bound(), "vector");
        // 1800 repeats on each of 48 cores take 1 µs as a launch, and as operator work too.
        let ops = vector_ops_of_repeats(48 * 1800);
        assert_eq!(ops, 48 * 64 * 1800);
        let as_operator = operator(
            &soc,
            &OperatorWork {
                vector_ops: ops,
                ..OperatorWork::default()
            },
        );
        assert!((as_operator.vector - kernel(&soc, &v_work(1800)).vector).abs() < 1e-15);
    }
}
