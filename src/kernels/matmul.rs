//! The cube matmul: fp16/bf16 inputs, fp32 accumulation, fp32 or bf16 output.

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

use super::Kernels;
use crate::error::{Error, Result};
use crate::runtime::{DeviceSlice, DeviceSliceMut, KernelArg, Stream};

/// Mirrors `MatmulTiling` of `kernels-ascendc/tiling/matmul_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MatmulTiling {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of C.
    pub n: u32,
    /// The reduced dimension.
    pub k: u32,
    /// Output tile rows: a multiple of 16.
    pub base_m: u32,
    /// Output tile columns: a multiple of 16.
    pub base_n: u32,
    /// K step per cube pass: a multiple of 16.
    pub base_k: u32,
    /// 0: B is `[K, N]`; 1: B is `[N, K]`.
    pub b_trans: u32,
    /// Zero.
    pub reserved: u32,
}

/// How B is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `B[K, N]`, row-major: `C = A · B`.
    KN,
    /// `B[N, K]`, row-major (DeepGEMM's "NT", weights as stored in checkpoints): `C = A · Bᵀ`.
    NK,
}

/// `C[M, N] = A[M, K] · B`, all row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The reduced dimension.
    pub k: usize,
}

/// Input element types of the cube: fp16 and bf16.
pub trait MatmulInput: Pod + sealed::Sealed {
    #[doc(hidden)]
    const INDEX: usize;
}
/// Output element types: fp32 and bf16 (rounded once, from the fp32 accumulator).
pub trait MatmulOutput: Pod + sealed::Sealed {
    #[doc(hidden)]
    const INDEX: usize;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

impl MatmulInput for f16 {
    const INDEX: usize = 0;
}
impl MatmulInput for bf16 {
    const INDEX: usize = 1;
}
impl MatmulOutput for f32 {
    const INDEX: usize = 0;
}
impl MatmulOutput for bf16 {
    const INDEX: usize = 1;
}

/// The largest M, N or K: the kernel's row pitch field is 16 bits.
const MAX_DIM: usize = 65535;
/// 128×128 output tiles with 128-long K steps fit L0A, L0B, L0C and L1 with double buffering.
const MAX_BASE: u32 = 128;
/// The long side of a 256×128 tile: its fp32 accumulator fills L0C (128 KiB) exactly, and
/// 64-long K steps keep two A buffers within L0A (2·256·64·2 = 64 KiB).
const LONG_BASE: u32 = 256;
const LONG_BASE_K: u32 = 64;

impl MatmulTiling {
    /// The tiling of `shape` over at most `cores` cube cores, and the block count.
    pub fn plan(
        shape: MatmulShape,
        layout: WeightLayout,
        cores: u32,
    ) -> Result<(MatmulTiling, u32)> {
        let MatmulShape { m, n, k } = shape;
        if [m, n, k].iter().any(|&d| d == 0 || d > MAX_DIM) {
            return Err(Error::invalid(
                format!("matmul of M={m} N={n} K={k}"),
                format!("1 <= M, N, K <= {MAX_DIM}"),
            ));
        }
        let base = |d: usize| (d as u32).next_multiple_of(16).min(MAX_BASE);
        let (mut base_m, mut base_n, mut base_k) = (base(m), base(n), base(k));
        // Each output tile reads its A rows and B columns over all of K, so reads are
        // M·K·(N / base_n) + N·K·(M / base_m): a 256-long side on the larger dimension cuts the
        // re-reads of the other operand in half (1024³: 8× the minimum -> 6×) and the waves
        // with them. (Any split of the output over P cores reads at least √P× the minimum when
        // M = N; the rest of the re-reads hit L2 on the chip.)
        // Only when the longer tiles still give every core one: fewer tiles than cores would
        // leave cores idle and put more bytes on each busy one.
        let tiles = |bm: u32, bn: u32| (m as u32).div_ceil(bm) * (n as u32).div_ceil(bn);
        let long = |d: usize| (d as u32).next_multiple_of(16).min(LONG_BASE);
        let (long_m, long_n) = if m >= n {
            (long(m), base_n)
        } else {
            (base_m, long(n))
        };
        if m.max(n) > MAX_BASE as usize
            && k > LONG_BASE_K as usize
            && tiles(long_m, long_n) >= cores.max(1)
        {
            (base_m, base_n, base_k) = (long_m, long_n, LONG_BASE_K);
        }
        let tiling = MatmulTiling {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            base_m,
            base_n,
            base_k,
            b_trans: u32::from(layout == WeightLayout::NK),
            reserved: 0,
        };
        let tiles = (m as u32).div_ceil(tiling.base_m) * (n as u32).div_ceil(tiling.base_n);
        Ok((tiling, tiles.min(cores.max(1))))
    }
}

/// Queues `C = A · B` (or `A · Bᵀ` for [`WeightLayout::NK`]) on `stream`.
///
/// `a` holds `M·K` elements, `b` `K·N`, `c` `M·N`. With `K = 0`, C is zeroed.
pub fn matmul<I: MatmulInput, O: MatmulOutput>(
    kernels: &Kernels,
    stream: &Stream,
    shape: MatmulShape,
    layout: WeightLayout,
    a: &impl DeviceSlice<I>,
    b: &impl DeviceSlice<I>,
    c: &mut impl DeviceSliceMut<O>,
) -> Result<()> {
    let MatmulShape { m, n, k } = shape;
    let expect = |what: &str, len: usize, rows: usize, cols: usize| {
        if rows.checked_mul(cols) == Some(len) {
            Ok(())
        } else {
            Err(Error::invalid(
                format!("{what} of {len} elements for M={m} N={n} K={k}"),
                format!("{what} of {rows}×{cols} elements"),
            ))
        }
    };
    expect("A", a.len(), m, k)?;
    expect("B", b.len(), k, n)?;
    expect("C", c.len(), m, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        return stream.memset(c, 0);
    }
    let (tiling, blocks) = MatmulTiling::plan(shape, layout, kernels.inner.cube_cores)?;
    let tiling = kernels
        .inner
        .tilings
        .arg(bytemuck::bytes_of(&tiling), stream)?;
    stream.launch_trusted(
        &kernels.inner.matmul[I::INDEX * 2 + O::INDEX],
        blocks,
        &[
            KernelArg::buffer(a),
            KernelArg::buffer(b),
            KernelArg::buffer_mut(c),
            tiling,
        ],
    )
}
