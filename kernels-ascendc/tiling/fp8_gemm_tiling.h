/*
 * Tiling of the FP8-emulated block-scaled GEMM kernels (fp8_gemm.cpp), mirrored in Rust with
 * #[repr(C)]; uint32_t fields only. Math (DeepGEMM "NT", DeepSeek block scaling):
 *
 *   C[m, n] = sum_kb ( sum_{k in kb} A[m, k] * B[n, k] ) * sa[m, kb] * sb[n / 128, kb]
 *
 * kb = 128-long K blocks (the last may be shorter); sa = 1 for W8A16. Every K block's partial
 * product is computed by the cube in fp32 (L0C, fresh per block), scaled in fp32 on the AIV and
 * accumulated in an fp32 UB accumulator, so the scales are applied exactly as kernel.py does:
 * (P * sa) * sb, then acc += that.
 *
 * Groups (all kernels; plain GEMM = one group):
 *   plain:      A [m, k], C [m, n], B [n, k], sb [ceil(n/128), ceil(k/128)], groups = 1.
 *   contiguous: A [m, k] with m = total rows (rows sorted by expert), group g owns rows
 *               [offsets[g], offsets[g+1]); B [groups, n, k], sb [groups, ceil(n/128), ceil(k/128)];
 *               C [m, n]. offsets: int32 [groups + 1], offsets[0] = 0, non-decreasing,
 *               offsets[groups] = m. Rows of C outside every group are not written.
 *   masked:     A [groups, m, k] (m = max_m), C [groups, m, n], masked_m: int32 [groups];
 *               group g computes rows [0, masked_m[g]) of its slice (values < 0 count as 0, values
 *               > m as m). Rows >= masked_m[g] of C are NOT written: they keep whatever the buffer
 *               held before the launch.
 *   W8A8 adds sa [rows of A, ceil(k/128)] f32 (per-token 1x128 scales; rows as A's rows).
 *
 * Output tiles are base_m x base_n (base_n = 128 = one scale block of B along N, or 64 or 32, a
 * divisor of it, so no tile straddles two scale blocks; the last tile of N is narrower). Tiles are enumerated group by group, M tile-major then N; tile t is computed by Mix
 * group (AIC block) t % num_blocks.
 *
 * Rules the host must keep:
 *   - base_m is a multiple of 16 in [16, 128] (L0A 2 * base_m * 128 * 2 <= 65536, L0C
 *     2 * base_m * 128 * 4 <= 131072, AIV UB <= 184 KiB at base_m = 128). For decode (m <= 16)
 *     use 16: the cube pads rows to 16 anyway, traffic of B does not depend on base_m.
 *   - base_n is 32, 64 or 128 (or 0, read as 128).
 *   - 1 <= n, 1 <= k <= 65535 (Nd2Nz / DataCopyPad strides are 16-bit element counts);
 *     m * k, n * k per group < 2^32; groups >= 1. m may be 0 (nothing to do).
 *   - workspace: a GM buffer of at least num_blocks * FP8_GEMM_WS_BYTES_PER_BLOCK(base_m) bytes
 *     (per group: 2 slots of dequantized B [128 x 128] 16-bit, 2 slots of dequantized A
 *     [base_m x 128] fp16 (W8A8 only, reserved always), 2 slots of fp32 partials
 *     [base_m x 128]). Contents need not be initialised; it is a per-core ring, so it stays in L2.
 *   - launch with num_blocks <= 65535 Mix groups (each = 1 AIC + 2 AIV); more groups than tiles
 *     is allowed (idle groups do nothing).
 */
#ifndef KERNELS_ASCENDC_FP8_GEMM_TILING_H
#define KERNELS_ASCENDC_FP8_GEMM_TILING_H

#include <stdint.h>

#define FP8_GEMM_BLOCK 128u
#define FP8_GEMM_WS_BYTES_PER_BLOCK(base_m) (65536u + 1536u * (uint32_t)(base_m))

typedef struct Fp8GemmTiling {
    uint32_t m;        /* plain: M; contiguous: total rows of A/C; masked: max_m (rows per group) */
    uint32_t n, k;
    uint32_t groups;   /* 1 for the plain kernels */
    uint32_t base_m;   /* rows per output tile */
    uint32_t offsets_inclusive; /* contiguous only: 1 = group_offsets holds `groups` inclusive
                                   cumulative sums (no leading 0), as aclnnMoeInitRoutingV2
                                   writes them; 0 = `groups + 1` offsets starting at 0 */
    uint32_t fold_scales; /* W8A16 only: 1 = every weight scale is a power of two whose products
                             with E4M3 values are normal bf16 (host-checked, e.g. UE8M0): the
                             decode applies it and the cube accumulates all of K in L0C */
    uint32_t base_n;      /* output tile width: 32, 64 or 128 (0 is read as 128). Narrower tiles
                             give a decode-sized M (one M tile) more tiles than cores, so the
                             weight decode spreads over every vector core */
} Fp8GemmTiling;

#endif
