//! Launches of the FP8 kernels (`kernels-ascendc/fp8_gemm.cpp`, `fp8_quant.cpp`): tiling,
//! block counts and workspace. The validated, typed entry points are in [`crate::ops::fp8`].

use bytemuck::{Pod, Zeroable};

use super::Kernels;
use super::manifest;
use crate::error::{Error, Result};
use crate::runtime::{Kernel, KernelArg, KernelBinary, Stream};

/// Mirrors `Fp8GemmTiling` of `kernels-ascendc/tiling/fp8_gemm_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Fp8GemmTiling {
    /// Plain: M; contiguous: total rows; masked: rows per group.
    pub m: u32,
    /// Output columns.
    pub n: u32,
    /// The reduced dimension.
    pub k: u32,
    /// Weight groups (experts); 1 for a plain GEMM.
    pub groups: u32,
    /// Rows per output tile: a multiple of 16 in 16..=128.
    pub base_m: u32,
    /// Contiguous layout only: 1 when the offsets are `groups` inclusive cumulative sums (as
    /// `aclnnMoeInitRoutingV2` writes them), 0 for `groups + 1` offsets starting at 0.
    pub offsets_inclusive: u32,
    /// W8A16 only: 1 when every weight scale is a power of two whose products with E4M3 values
    /// are normal bf16 ([`Fp8Weight`](crate::ops::fp8::Fp8Weight) checks it): the kernel folds
    /// the scales into its decode and accumulates all of K in L0C.
    pub fold_scales: u32,
    /// Output tile width: 32, 64 or 128 (0 is read as 128), a divisor of the 128-wide scale
    /// block.
    pub base_n: u32,
}

/// Mirrors `Fp8QuantTiling` of `kernels-ascendc/tiling/fp8_quant_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Fp8QuantTiling {
    /// Rows.
    pub m: u32,
    /// Columns.
    pub k: u32,
    /// Rows per block.
    pub block_rows: u32,
    /// Columns per UB chunk: a multiple of 128, at most 5120.
    pub tile_k: u32,
    /// 1 for power-of-two (UE8M0) scales.
    pub ue8m0: u32,
    /// Zero.
    pub reserved: [u32; 3],
}

/// The activation side of an FP8 GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activations {
    /// bf16, unscaled.
    W8A16,
    /// E4M3 codes with per-token 1×128 scales.
    W8A8,
}

/// How the rows of A map to weight groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// One weight matrix.
    Plain,
    /// Rows sorted by group with `[groups + 1]` int32 offsets.
    Contiguous,
    /// Rows sorted by group with `[groups]` int32 inclusive cumulative sums.
    ContiguousCumsum,
    /// `[groups, max_m, K]` with `[groups]` int32 valid row counts.
    Masked,
}

/// The FP8 kernels of one binary.
pub(crate) struct Fp8Kernels {
    /// Indexed by `gemm_index`.
    gemm: Vec<Kernel>,
    /// f32, bf16 inputs.
    quant: [Kernel; 2],
}

/// The largest K the kernels address (16-bit strides).
pub(crate) const MAX_K: usize = 65535;

fn gemm_index(acts: Activations, grouping: Grouping, bf16_out: bool) -> usize {
    let g = match grouping {
        Grouping::Plain => 0,
        Grouping::Contiguous | Grouping::ContiguousCumsum => 1,
        Grouping::Masked => 2,
    };
    g * 4 + usize::from(acts == Activations::W8A8) * 2 + usize::from(!bf16_out)
}

impl Fp8Kernels {
    pub(crate) fn load(binary: &KernelBinary) -> Result<Fp8Kernels> {
        let mut gemm = Vec::with_capacity(12);
        for grouping in ["", "contig_", "masked_"] {
            for acts in ["w8a16", "w8a8"] {
                for out in ["bf16", "f32"] {
                    // a, [a_scale,] b, b_scale, [offsets | masked_m,] c, workspace, tiling
                    gemm.push(manifest::load(
                        binary,
                        &format!("fp8_gemm_{grouping}{acts}_{out}"),
                    )?);
                }
            }
        }
        let quant = [
            manifest::load(binary, "fp8_act_quant_f32")?,
            manifest::load(binary, "fp8_act_quant_bf16")?,
        ];
        Ok(Fp8Kernels { gemm, quant })
    }
}

/// Which FP8 GEMM kernel runs, on what sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fp8GemmLaunch {
    pub(crate) acts: Activations,
    pub(crate) grouping: Grouping,
    pub(crate) bf16_out: bool,
    /// A's rows (per group for the masked layout).
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// Weight groups.
    pub(crate) groups: usize,
    /// Whether the weight's scales are folded into its codes (see `Fp8Weight`).
    pub(crate) fold_scales: bool,
}

/// The output tile width of an FP8 GEMM: 128 (one scale block), or for decode-sized M (one
/// 16-row tile per group) the width among 128, 64 and 32 that puts the fewest weight rows on the
/// busiest core. There the vector cores' decode binds or nearly does (`ascend_sim::cost`: 12
/// bytes of vector work per weight), and it is proportional to the weight rows a core decodes: 2048
/// columns make 16 tiles of 128 on 24 cores (8 cores idle, 128 rows on the others) but 64 tiles
/// of 32 (at most 96 rows on a core). A narrower tile makes the cube re-read A once more per
/// tile: at most 16 rows against the at least 32 weight rows it decodes. Ties keep the wider
/// tile.
fn tile_width(base_m: u32, m_tiles: usize, n: usize, cores: usize) -> u32 {
    if base_m > 16 {
        return 128;
    }
    let busiest_rows = |w: usize| (m_tiles * n.div_ceil(w)).div_ceil(cores) * w;
    [128u32, 64, 32]
        .into_iter()
        .min_by_key(|&w| busiest_rows(w as usize))
        .unwrap_or(128)
}

impl Kernels {
    /// Launches an FP8 GEMM whose arguments (all but workspace and tiling) are already checked
    /// and ordered as the kernel declares them.
    pub(crate) fn launch_fp8_gemm(
        &self,
        stream: &Stream,
        launch: Fp8GemmLaunch,
        args: Vec<KernelArg<'_>>,
    ) -> Result<()> {
        let Fp8GemmLaunch {
            acts,
            grouping,
            bf16_out,
            m,
            n,
            k,
            groups,
            fold_scales,
        } = launch;
        if k == 0 || k > MAX_K || n == 0 || n > u32::MAX as usize || m > u32::MAX as usize {
            return Err(Error::invalid(
                format!("FP8 GEMM of M={m} N={n} K={k}"),
                format!("1 <= K <= {MAX_K}, N >= 1"),
            ));
        }
        if m == 0 {
            return Ok(());
        }
        let rows_per_group = match grouping {
            Grouping::Contiguous | Grouping::ContiguousCumsum => m.div_ceil(groups),
            _ => m,
        };
        let base_m = (rows_per_group as u32).next_multiple_of(16).clamp(16, 128);
        let m_tiles = match grouping {
            Grouping::Plain => m.div_ceil(base_m as usize),
            // Every group may end with a partial tile.
            Grouping::Contiguous | Grouping::ContiguousCumsum => {
                m.div_ceil(base_m as usize) + groups
            }
            Grouping::Masked => groups * m.div_ceil(base_m as usize),
        };
        let cores = (self.inner.cube_cores as usize).max(1);
        let base_n = tile_width(base_m, m_tiles, n, cores);
        let n_tiles = n.div_ceil(base_n as usize);
        let blocks = (m_tiles * n_tiles).clamp(1, cores) as u32;
        let tiling = Fp8GemmTiling {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            groups: groups as u32,
            base_m,
            offsets_inclusive: u32::from(grouping == Grouping::ContiguousCumsum),
            fold_scales: u32::from(fold_scales && acts == Activations::W8A16),
            base_n,
        };
        // A per-core ring of decoded B, decoded A and fp32 partials (see the tiling header).
        let workspace_len = blocks as usize * (65536 + 1536 * base_m as usize);
        let mut workspace = stream.alloc_pooled::<u8>(workspace_len)?;
        let tiling = self
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        // Contiguous offsets live in device memory: the kernel checks them and reports here.
        let contiguous = matches!(grouping, Grouping::Contiguous | Grouping::ContiguousCumsum);
        let mut status = if contiguous {
            Some(stream.status_slots(1)?)
        } else {
            None
        };
        let mut all = Vec::with_capacity(args.len() + 3);
        all.extend(args);
        if let Some(status) = status.as_mut() {
            all.push(KernelArg::buffer_mut(status));
        }
        all.push(KernelArg::buffer_mut(&mut workspace));
        all.push(tiling);
        let kernel = &self.inner.fp8.gemm[gemm_index(acts, grouping, bf16_out)];
        stream.launch_trusted(kernel, blocks, &all)?;
        drop(all);
        if let Some(status) = status {
            stream.check_status_at_sync(status, decode_status);
        }
        Ok(())
        // The workspace is freed in stream order, after the kernel.
    }

    /// Launches the activation quantization over `[m, k]` (`bf16_in` selects the input type).
    pub(crate) fn launch_fp8_quant(
        &self,
        stream: &Stream,
        bf16_in: bool,
        (m, k): (usize, usize),
        ue8m0: bool,
        args: [KernelArg<'_>; 3],
    ) -> Result<()> {
        if m == 0 || k == 0 {
            return Ok(());
        }
        if m.checked_mul(k).is_none_or(|e| e >= 1 << 32) {
            return Err(Error::invalid(
                format!("quantizing [{m}, {k}]"),
                "fewer than 2^32 elements",
            ));
        }
        let blocks = m.clamp(1, self.inner.vector_cores as usize) as u32;
        let tiling = Fp8QuantTiling {
            m: m as u32,
            k: k as u32,
            block_rows: m.div_ceil(blocks as usize) as u32,
            // Whole rows in one chunk when they fit the UB budget (30 bytes per column).
            tile_k: (k as u32).next_multiple_of(128).min(5120),
            ue8m0: u32::from(ue8m0),
            reserved: [0; 3],
        };
        let blocks = m.div_ceil(tiling.block_rows as usize) as u32;
        let tiling = self
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        let [x, codes, scales] = args;
        launch_with_status(
            stream,
            &self.inner.fp8.quant[usize::from(bf16_in)],
            blocks,
            [x, codes, scales],
            tiling,
        )
    }
}

/// Mirrors `Fp8WeightQuantTiling` of `kernels-ascendc/tiling/fp8_weight_quant_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Fp8WeightQuantTiling {
    /// Rows `N`.
    pub n: u32,
    /// Columns `K`.
    pub k: u32,
    /// 128×128 blocks per launch block.
    pub blocks_per_core: u32,
    /// 1 for power-of-two (UE8M0) scales.
    pub ue8m0: u32,
    /// Zero.
    pub reserved: [u32; 4],
}

/// Mirrors `Fp8DequantTiling` of `kernels-ascendc/tiling/fp8_dequant_tiling.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Fp8DequantTiling {
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub k: u32,
    /// 0: 1×128 scales; 1: 128×128 scales.
    pub scale_layout: u32,
    /// Rows per launch block.
    pub block_rows: u32,
    /// Rows per UB chunk.
    pub chunk_rows: u32,
    /// Columns per UB chunk: a multiple of 128 in 128..=8192.
    pub tile_k: u32,
    /// Zero.
    pub reserved: [u32; 2],
}

/// The weight quantization and dequantization kernels.
pub(crate) struct Fp8CodecKernels {
    /// f32, bf16 inputs.
    weight_quant: [Kernel; 2],
    /// f32, bf16 outputs.
    dequant: [Kernel; 2],
}

impl Fp8CodecKernels {
    pub(crate) fn load(binary: &KernelBinary) -> Result<Self> {
        Ok(Fp8CodecKernels {
            weight_quant: [
                manifest::load(binary, "fp8_weight_quant_f32")?,
                manifest::load(binary, "fp8_weight_quant_bf16")?,
            ],
            dequant: [
                manifest::load(binary, "fp8_dequant_f32")?,
                manifest::load(binary, "fp8_dequant_bf16")?,
            ],
        })
    }
}

impl Kernels {
    /// Launches the 128×128 block weight quantization of `[n, k]` (`x`, `codes`, `scales`).
    pub(crate) fn launch_fp8_weight_quant(
        &self,
        stream: &Stream,
        bf16_in: bool,
        (n, k): (usize, usize),
        ue8m0: bool,
        args: [KernelArg<'_>; 3],
    ) -> Result<()> {
        if n == 0 || k == 0 {
            return Ok(());
        }
        if n.checked_mul(k).is_none_or(|e| e >= 1 << 32) {
            return Err(Error::invalid(
                format!("quantizing [{n}, {k}]"),
                "fewer than 2^32 elements",
            ));
        }
        let total = n.div_ceil(128) * k.div_ceil(128);
        let cores = total.clamp(1, self.inner.vector_cores as usize);
        let tiling = Fp8WeightQuantTiling {
            n: n as u32,
            k: k as u32,
            blocks_per_core: total.div_ceil(cores) as u32,
            ue8m0: u32::from(ue8m0),
            reserved: [0; 4],
        };
        let blocks = total.div_ceil(tiling.blocks_per_core as usize) as u32;
        let tiling = self
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        let [x, codes, scales] = args;
        launch_with_status(
            stream,
            &self.inner.codec.weight_quant[usize::from(bf16_in)],
            blocks,
            [x, codes, scales],
            tiling,
        )
    }

    /// Launches dequantization of `[rows, k]` codes with 1×128 (`block_scales` false) or
    /// 128×128 scales (`codes`, `scales`, `out`).
    pub(crate) fn launch_fp8_dequant(
        &self,
        stream: &Stream,
        bf16_out: bool,
        (rows, k): (usize, usize),
        block_scales: bool,
        args: [KernelArg<'_>; 3],
    ) -> Result<()> {
        if rows == 0 || k == 0 {
            return Ok(());
        }
        if rows.checked_mul(k).is_none_or(|e| e >= 1 << 32) {
            return Err(Error::invalid(
                format!("dequantizing [{rows}, {k}]"),
                "fewer than 2^32 elements",
            ));
        }
        // 128-column tiles and chunks that never cross a 128-row band keep the scale multiply
        // to one vector operation per chunk (the kernel's fast path).
        let chunk_rows = 64u32;
        let cores = rows
            .div_ceil(chunk_rows as usize)
            .clamp(1, self.inner.vector_cores as usize);
        let block_rows = (rows.div_ceil(cores) as u32).next_multiple_of(chunk_rows);
        let tiling = Fp8DequantTiling {
            rows: rows as u32,
            k: k as u32,
            scale_layout: u32::from(block_scales),
            block_rows,
            chunk_rows,
            tile_k: 128,
            reserved: [0; 2],
        };
        let blocks = rows.div_ceil(block_rows as usize) as u32;
        let tiling = self
            .inner
            .tilings
            .arg(bytemuck::bytes_of(&tiling), stream)?;
        let [codes, scales, out] = args;
        stream.launch_trusted(
            &self.inner.codec.dequant[usize::from(bf16_out)],
            blocks,
            &[codes, scales, out, tiling],
        )
    }
}

/// Launches a quantization kernel `(x, codes, scales, status, tiling)` with one status slot per
/// block: non-finite input comes back as [`QuantError::NonFinite`](crate::fp8::QuantError) when
/// the stream is next synchronised.
fn launch_with_status(
    stream: &Stream,
    kernel: &Kernel,
    blocks: u32,
    [x, codes, scales]: [KernelArg<'_>; 3],
    tiling: KernelArg<'_>,
) -> Result<()> {
    let mut status = stream.status_slots(blocks as usize)?;
    stream.launch_trusted(
        kernel,
        blocks,
        &[x, codes, scales, KernelArg::buffer_mut(&mut status), tiling],
    )?;
    stream.check_status_at_sync(status, decode_status);
    Ok(())
}

/// Codes of `kernels-ascendc/common/kernel_status.h` (checked against it by a test).
const STATUS_BAD_GROUP_OFFSETS: u32 = 1;
const STATUS_NON_FINITE: u32 = 2;

/// The error an FP8 kernel's status slot reports (see `runtime::status`).
pub(crate) fn decode_status(slot: &[u32]) -> Error {
    let word = |i: usize| slot.get(i).copied().unwrap_or(0);
    match word(0) {
        STATUS_BAD_GROUP_OFFSETS => Error::invalid(
            format!(
                "FP8 GEMM group offset {} at index {} (found by the kernel; nothing was computed)",
                word(2) as i32,
                word(1)
            ),
            format!("offsets >= 0, never decreasing, at most M = {}", word(3)),
        ),
        STATUS_NON_FINITE => crate::fp8::QuantError::NonFinite {
            row: word(1) as usize,
            col: word(2) as usize,
        }
        .into(),
        code => Error::invalid(
            format!("unknown status code {code} from an FP8 kernel"),
            "a code of kernel_status.h",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_match_the_kernel_header() {
        let header = include_str!("../../kernels-ascendc/common/kernel_status.h");
        let define = |name: &str| -> u32 {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{name} is not defined in kernel_status.h"));
            let value = line.split_whitespace().nth(2).expect("a value");
            value
                .trim_end_matches('u')
                .parse()
                .expect("a decimal value")
        };
        assert_eq!(
            define("KERNEL_STATUS_BAD_GROUP_OFFSETS"),
            STATUS_BAD_GROUP_OFFSETS
        );
        assert_eq!(define("KERNEL_STATUS_NON_FINITE"), STATUS_NON_FINITE);
        assert_eq!(
            define("KERNEL_STATUS_SLOT_WORDS") as usize,
            crate::runtime::STATUS_SLOT_WORDS
        );
    }

    #[test]
    fn decode_sized_m_takes_the_tile_width_with_the_fewest_rows_per_core() {
        // 24 cores. N = 2048: 16 tiles of 128 (128 rows on a core), 32 of 64 (2·64 = 128),
        // 64 of 32 (3·32 = 96). N = 7168: 56·128 (3·128 = 384), 112·64 (5·64 = 320),
        // 224·32 (10·32 = 320, a tie kept at 64).
        assert_eq!(tile_width(16, 1, 2048, 24), 32);
        assert_eq!(tile_width(16, 1, 7168, 24), 64);
        // 24·128 columns are one tile of 128 per core already.
        assert_eq!(tile_width(16, 1, 3072, 24), 128);
        // Larger M re-reads A per tile: always one scale block wide.
        assert_eq!(tile_width(32, 1, 2048, 24), 128);
        assert_eq!(tile_width(128, 4, 2048, 24), 128);
    }
}
