//! The FP8 GEMM entry point: validation, then the kernel launch.

use half::bf16;

use super::{Fp8Activations, Fp8Weight};
use crate::error::{Error, Result};
use crate::kernels::{Activations, Fp8GemmLaunch, Grouping, Kernels, MatmulOutput};
use crate::runtime::{DeviceSlice, DeviceSliceMut, DeviceView, KernelArg, Stream};

/// The activation operand.
pub enum Fp8Input<'a> {
    /// bf16 activations (W8A16).
    Bf16(DeviceView<'a, bf16>),
    /// FP8 activations with per-token scales (W8A8).
    Fp8(&'a Fp8Activations),
}

/// How rows of A map to the weight's groups.
pub enum Fp8Groups<'a> {
    /// One weight matrix; A is `[m, K]`.
    None,
    /// A is `[m, K]` with rows sorted by group; `offsets` (`[groups + 1]`, int32) starts at 0,
    /// never decreases and ends at `m`. Rows outside every group are not written.
    ///
    /// The offsets are in device memory, so the kernel checks them: an offset that is
    /// negative, smaller than the one before it or larger than `m` makes the launch compute
    /// nothing (every access stays inside A and C) and the stream's next synchronisation return
    /// [`Error::InvalidArgument`] naming the offset. Offsets that end before `m` are valid; with
    /// `m = 0` nothing is launched and the offsets are not read.
    Contiguous {
        /// Group boundaries.
        offsets: DeviceView<'a, i32>,
    },
    /// As `Contiguous`, with the `[groups]` inclusive cumulative sums `aclnnMoeInitRoutingV2`
    /// writes (group g ends at `cumsum[g]` and starts where group g-1 ended, or at 0). Checked
    /// by the kernel as `Contiguous` is.
    ContiguousCumsum {
        /// Group ends.
        cumsum: DeviceView<'a, i32>,
    },
    /// A is `[groups, m, K]`; group g computes its first `counts[g]` rows (`[groups]`, int32,
    /// clamped to `0..=m`); the other rows of C keep their contents.
    Masked {
        /// Valid rows per group.
        counts: DeviceView<'a, i32>,
    },
}

/// Queues `C = A · Bᵀ` with DeepSeek block scaling (see the module docs). `m` is A's rows:
/// the plain M, the total of the contiguous layout, or the rows per group of the masked one.
pub fn fp8_gemm<O: MatmulOutput>(
    kernels: &Kernels,
    stream: &Stream,
    m: usize,
    a: Fp8Input<'_>,
    w: &Fp8Weight,
    groups: Fp8Groups<'_>,
    c: &mut impl DeviceSliceMut<O>,
) -> Result<()> {
    let (n, k, g) = (w.n, w.k, w.groups);
    let a_rows = match groups {
        Fp8Groups::Masked { .. } => crate::error::elements("masked rows", &[g, m])?,
        _ => m,
    };
    let (acts, a_k, a_len) = match &a {
        Fp8Input::Bf16(v) => (
            Activations::W8A16,
            if a_rows == 0 {
                k
            } else {
                v.len() / a_rows.max(1)
            },
            v.len(),
        ),
        Fp8Input::Fp8(q) => (Activations::W8A8, q.k, q.rows * q.k),
    };
    if a_k != k || a_len != crate::error::elements("activations", &[a_rows, k])? {
        return Err(Error::invalid(
            format!(
                "activations of {a_len} elements (K = {a_k}) for {a_rows} rows against weights of K = {k}"
            ),
            format!("[{a_rows}, {k}] activations"),
        ));
    }
    if let Fp8Input::Fp8(q) = &a {
        if q.rows != a_rows {
            return Err(Error::invalid(
                format!("{} quantized rows", q.rows),
                format!("{a_rows} rows"),
            ));
        }
    }
    let c_len = crate::error::elements("C", &[a_rows, n])?;
    if c.len() != c_len {
        return Err(Error::invalid(
            format!("C of {} elements", c.len()),
            format!("[{a_rows}, {n}] = {c_len} elements"),
        ));
    }
    let grouping = match &groups {
        Fp8Groups::None if g != 1 => {
            return Err(Error::invalid(
                format!("a stack of {g} weights without groups"),
                "Fp8Groups::Contiguous or Masked",
            ));
        }
        Fp8Groups::None => Grouping::Plain,
        Fp8Groups::Contiguous { offsets } if offsets.len() != g + 1 => {
            return Err(Error::invalid(
                format!("{} group offsets for {g} weight groups", offsets.len()),
                format!("{} offsets", g + 1),
            ));
        }
        Fp8Groups::Contiguous { .. } => Grouping::Contiguous,
        Fp8Groups::ContiguousCumsum { cumsum } if cumsum.len() != g => {
            return Err(Error::invalid(
                format!(
                    "{} cumulative group sizes for {g} weight groups",
                    cumsum.len()
                ),
                format!("{g} sums"),
            ));
        }
        Fp8Groups::ContiguousCumsum { .. } => Grouping::ContiguousCumsum,
        Fp8Groups::Masked { counts } if counts.len() != g => {
            return Err(Error::invalid(
                format!("{} group counts for {g} weight groups", counts.len()),
                format!("{g} counts"),
            ));
        }
        Fp8Groups::Masked { .. } => Grouping::Masked,
    };
    if a_rows == 0 {
        return Ok(());
    }
    let mut args = Vec::with_capacity(6);
    match &a {
        Fp8Input::Bf16(v) => args.push(KernelArg::buffer(v)),
        Fp8Input::Fp8(q) => {
            args.push(KernelArg::buffer(&q.codes));
            args.push(KernelArg::buffer(&q.scales));
        }
    }
    args.push(KernelArg::buffer(&w.codes));
    args.push(KernelArg::buffer(&w.scales));
    match &groups {
        Fp8Groups::None => {}
        Fp8Groups::Contiguous { offsets } => args.push(KernelArg::buffer(offsets)),
        Fp8Groups::ContiguousCumsum { cumsum } => args.push(KernelArg::buffer(cumsum)),
        Fp8Groups::Masked { counts } => args.push(KernelArg::buffer(counts)),
    }
    args.push(KernelArg::buffer_mut(c));
    let launch = Fp8GemmLaunch {
        acts,
        grouping,
        bf16_out: O::INDEX == 1,
        m,
        n,
        k,
        groups: g,
        fold_scales: w.folds,
    };
    kernels.launch_fp8_gemm(stream, launch, args)
}
