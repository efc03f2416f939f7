//! Per-device counters of work done, read by benches and the cost model.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one device's counters. Counters only grow; take differences around the work
/// you measure.
///
/// `#[repr(C)]`: the drop-in libraries (`ascend-sim-cann`) hand it to C callers too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Bytes copied host to device (counted on the destination device).
    pub h2d_bytes: u64,
    /// Bytes copied device to host (counted on the source device).
    pub d2h_bytes: u64,
    /// Bytes copied device to device (counted on the destination device).
    pub d2d_bytes: u64,
    /// Bytes set by memset (counted on the device written).
    pub memset_bytes: u64,
    /// Stream tasks executed by the device's streams (copies, events, host functions, ...).
    pub tasks_executed: u64,
    /// Kernel launches that ran (successfully or not).
    pub kernel_launches: u64,
    /// Work counted by the kernel shim, summed over every launch on the device.
    pub kernels: crate::runtime::kernel::KernelCounters,
    /// Bytes aclnn operators read from device memory: each element they must read once (every
    /// input view, except that the grouped matmul reads only the experts that received rows).
    pub aclnn_read_bytes: u64,
    /// Bytes aclnn operators wrote to device memory.
    pub aclnn_write_bytes: u64,
    /// Device allocations made (`aclrtMalloc` and its variants), successful ones only.
    pub allocations: u64,
    /// Cube multiply-accumulates the aclnn operators must do at least (reported by the ops).
    pub aclnn_macs: u64,
    /// Modelled device time of every successful kernel launch, nanoseconds (see
    /// [`crate::cost`]).
    pub modelled_kernel_ns: u64,
    /// aclnn operator launches that ran (successfully or not).
    pub aclnn_launches: u64,
    /// Modelled device time of every aclnn operator launch, nanoseconds: each launch's tensor
    /// bytes and reported MACs through [`crate::cost::operator`].
    pub modelled_aclnn_ns: u64,
    /// Of the kernels' global-memory bytes (`kernels.gm_to_local_bytes + local_to_gm_bytes`),
    /// those the cost model keeps in L2: each launch's exchange memory traffic (memory it wrote
    /// before reading) when that memory fits the SoC's L2 ([`crate::cost`]). The rest is HBM
    /// traffic.
    pub kernel_l2_bytes: u64,
    /// Device-to-device copies made (counted on the destination device), one per copy
    /// whatever its size or rows: how many copies a gather took, where the bytes cannot tell.
    pub d2d_copies: u64,
}

impl DeviceCounters {
    /// The kernels' global-memory bytes that are not [`DeviceCounters::kernel_l2_bytes`]: what
    /// they move to and from HBM, before the cost model's discount for re-reads hitting L2.
    pub fn kernel_hbm_bytes(&self) -> u64 {
        (self.kernels.gm_to_local_bytes + self.kernels.local_to_gm_bytes)
            .saturating_sub(self.kernel_l2_bytes)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    h2d: AtomicU64,
    d2h: AtomicU64,
    d2d: AtomicU64,
    d2d_copies: AtomicU64,
    memset: AtomicU64,
    tasks: AtomicU64,
    launches: AtomicU64,
    gm_to_local: AtomicU64,
    local_to_gm: AtomicU64,
    local_to_local: AtomicU64,
    cube_macs: AtomicU64,
    vector_ops: AtomicU64,
    cores: AtomicU64,
    aclnn_read: AtomicU64,
    aclnn_write: AtomicU64,
    allocations: AtomicU64,
    aclnn_macs: AtomicU64,
    modelled_kernel_ns: AtomicU64,
    aclnn_launches: AtomicU64,
    modelled_aclnn_ns: AtomicU64,
    vector_repeats: AtomicU64,
    kernel_l2_bytes: AtomicU64,
    exchange: [AtomicU64; 3],
    /// Per-launch busiest-core counts, summed over launches: read, written, MACs, vector ops,
    /// vector repeats.
    busiest: [AtomicU64; 5],
}

/// Which counter a transfer adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Traffic {
    H2D,
    D2H,
    D2D,
    Memset,
}

impl Counters {
    /// One copy (or memset) of `bytes` is done.
    pub(crate) fn add(&self, traffic: Traffic, bytes: u64) {
        if traffic == Traffic::D2D {
            self.d2d_copies.fetch_add(1, Ordering::Relaxed);
        }
        let c = match traffic {
            Traffic::H2D => &self.h2d,
            Traffic::D2H => &self.d2h,
            Traffic::D2D => &self.d2d,
            Traffic::Memset => &self.memset,
        };
        c.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn task_done(&self) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn kernel_done(
        &self,
        k: &crate::runtime::kernel::KernelCounters,
        estimate: &crate::base::cost::Estimate,
    ) {
        self.modelled_kernel_ns
            .fetch_add((estimate.total() * 1e9).round() as u64, Ordering::Relaxed);
        self.kernel_l2_bytes
            .fetch_add(estimate.l2_bytes, Ordering::Relaxed);
        let exchange = [
            k.gm_exchange_read_bytes,
            k.gm_exchange_written_bytes,
            k.gm_exchange_footprint,
        ];
        for (sum, v) in self.exchange.iter().zip(exchange) {
            sum.fetch_add(v, Ordering::Relaxed);
        }
        self.launches.fetch_add(1, Ordering::Relaxed);
        self.gm_to_local
            .fetch_add(k.gm_to_local_bytes, Ordering::Relaxed);
        self.local_to_gm
            .fetch_add(k.local_to_gm_bytes, Ordering::Relaxed);
        self.local_to_local
            .fetch_add(k.local_to_local_bytes, Ordering::Relaxed);
        self.cube_macs.fetch_add(k.cube_macs, Ordering::Relaxed);
        self.vector_ops
            .fetch_add(k.vector_elem_ops, Ordering::Relaxed);
        self.cores.fetch_add(k.cores_run, Ordering::Relaxed);
        self.vector_repeats
            .fetch_add(k.vector_repeats, Ordering::Relaxed);
        let busiest = [
            k.busiest_gm_read,
            k.busiest_gm_written,
            k.busiest_cube_macs,
            k.busiest_vector_ops,
            k.busiest_vector_repeats,
        ];
        for (sum, v) in self.busiest.iter().zip(busiest) {
            sum.fetch_add(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn allocated(&self) {
        self.allocations.fetch_add(1, Ordering::Relaxed);
    }

    /// Multiply-accumulates an aclnn operator must do at least (e.g. rows × N × K of every
    /// expert that received rows); bytes are counted by [`Counters::aclnn_io`].
    pub(crate) fn aclnn_macs(&self, macs: u64) {
        self.aclnn_macs.fetch_add(macs, Ordering::Relaxed);
    }

    pub(crate) fn aclnn_io(&self, read: u64, written: u64) {
        self.aclnn_read.fetch_add(read, Ordering::Relaxed);
        self.aclnn_write.fetch_add(written, Ordering::Relaxed);
    }

    /// One aclnn launch is done: adds its own counts (`run`, counted apart so that launches
    /// on other streams do not mix in) and its modelled time.
    pub(crate) fn aclnn_done(&self, run: &DeviceCounters, modelled_s: f64) {
        self.aclnn_io(run.aclnn_read_bytes, run.aclnn_write_bytes);
        self.aclnn_macs(run.aclnn_macs);
        self.aclnn_launches.fetch_add(1, Ordering::Relaxed);
        self.modelled_aclnn_ns
            .fetch_add((modelled_s * 1e9).round() as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DeviceCounters {
        DeviceCounters {
            h2d_bytes: self.h2d.load(Ordering::Relaxed),
            d2h_bytes: self.d2h.load(Ordering::Relaxed),
            d2d_bytes: self.d2d.load(Ordering::Relaxed),
            memset_bytes: self.memset.load(Ordering::Relaxed),
            tasks_executed: self.tasks.load(Ordering::Relaxed),
            kernel_launches: self.launches.load(Ordering::Relaxed),
            kernels: crate::runtime::kernel::KernelCounters {
                gm_to_local_bytes: self.gm_to_local.load(Ordering::Relaxed),
                local_to_gm_bytes: self.local_to_gm.load(Ordering::Relaxed),
                local_to_local_bytes: self.local_to_local.load(Ordering::Relaxed),
                cube_macs: self.cube_macs.load(Ordering::Relaxed),
                vector_elem_ops: self.vector_ops.load(Ordering::Relaxed),
                cores_run: self.cores.load(Ordering::Relaxed),
                busiest_gm_read: self.busiest[0].load(Ordering::Relaxed),
                busiest_gm_written: self.busiest[1].load(Ordering::Relaxed),
                busiest_cube_macs: self.busiest[2].load(Ordering::Relaxed),
                busiest_vector_ops: self.busiest[3].load(Ordering::Relaxed),
                vector_repeats: self.vector_repeats.load(Ordering::Relaxed),
                busiest_vector_repeats: self.busiest[4].load(Ordering::Relaxed),
                gm_exchange_read_bytes: self.exchange[0].load(Ordering::Relaxed),
                gm_exchange_written_bytes: self.exchange[1].load(Ordering::Relaxed),
                gm_exchange_footprint: self.exchange[2].load(Ordering::Relaxed),
            },
            aclnn_read_bytes: self.aclnn_read.load(Ordering::Relaxed),
            aclnn_write_bytes: self.aclnn_write.load(Ordering::Relaxed),
            allocations: self.allocations.load(Ordering::Relaxed),
            aclnn_macs: self.aclnn_macs.load(Ordering::Relaxed),
            modelled_kernel_ns: self.modelled_kernel_ns.load(Ordering::Relaxed),
            aclnn_launches: self.aclnn_launches.load(Ordering::Relaxed),
            modelled_aclnn_ns: self.modelled_aclnn_ns.load(Ordering::Relaxed),
            kernel_l2_bytes: self.kernel_l2_bytes.load(Ordering::Relaxed),
            d2d_copies: self.d2d_copies.load(Ordering::Relaxed),
        }
    }
}
