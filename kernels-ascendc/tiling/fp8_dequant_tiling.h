/*
 * Tiling of the FP8 dequantization kernels fp8_dequant_{bf16,f32} (fp8_dequant.cpp; the suffix is
 * the output type), mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 *   codes [rows, k] E4M3FN (1 byte each, row-major), scales f32 multipliers:
 *     scale_layout 0 (1x128, per-token activations): scales [rows, ceil(k/128)],
 *                    element (r, c) uses scales[r, c / 128];
 *     scale_layout 1 (128x128 blocks, weight_scale_inv): scales [ceil(rows/128), ceil(k/128)],
 *                    element (r, c) uses scales[r / 128, c / 128];
 *   -> out [rows, k] = decode(code) * scale computed in f32 (one rounding), then for bf16 output
 *      rounded to nearest even (Cast CAST_RINT); f32 output is the product itself.
 * Bit-identical to src/fp8/quantize.rs dequantize_into (plus the bf16 rounding). The decode is
 * exact (256-entry f32 table + Gather); NaN codes (0x7F, 0xFF) give NaN, a zero scale gives +-0,
 * products overflowing f32 give +-Inf (bf16: whatever the RINT cast gives; scales that large are
 * outside the contract).
 *
 * Work split: launch block b dequantizes rows [b * block_rows, min((b + 1) * block_rows, rows));
 * blocks past the end do nothing. A block walks its rows in chunks of chunk_rows rows (the last
 * may be shorter) and each row chunk in column chunks of tile_k columns (the last may be
 * narrower); one chunk = one DMA of codes in, one of scales in, one of out.
 *
 * Rules the host must keep:
 *   - tile_k is a multiple of 128 in [128, 8192]; chunk_rows >= 1 and chunk_rows * tile_k <= 8192
 *     (UB: 2 x E code bytes, E * 2 half, E * 4 int32, 2 x E * 4 (f32) or E * 4 + 2 x E * 2 (bf16)
 *     output/value bytes, 1 KiB table, <= 2 KiB scales: 16 * E + 3 KiB <= 131 KiB for
 *     E = chunk_rows * tile_k = 8192);
 *   - block_rows >= 1 and num_blocks * block_rows >= rows (rows beyond are not written): choose
 *     ceil(rows / num_blocks); for layout 1, chunk_rows dividing 128 and block_rows a multiple of
 *     chunk_rows keep every chunk inside one 128-row band (one scale row per chunk);
 *   - 1 <= k; rows * k < 2^32; rows == 0 is allowed (nothing is read or written);
 *   - scale_layout is 0 or 1; reserved fields 0.
 * With scale_layout 1, tile_k = 128 and chunks inside one 128-row band, the scale multiply is one
 * vector op per chunk; otherwise it is one op per (row, 128-column tile) of the chunk.
 *
 * Traffic (exact, the shim's counters), GM -> UB: rows * k (codes) + scale bytes, where every
 * chunk (rows r0 .. r1-1, tiles columns) loads the scale rows it spans:
 *   layout 0: rows * ceil(k/128) * 4 (each scale once);
 *   layout 1: sum over row chunks of (floor((r1-1)/128) - floor(r0/128) + 1) * ceil(k/128) * 4
 *             (= number of row chunks * ceil(k/128) * 4 when no chunk crosses a 128-row band);
 * UB -> GM: rows * k * sizeof(out).
 */
#ifndef KERNELS_ASCENDC_FP8_DEQUANT_TILING_H
#define KERNELS_ASCENDC_FP8_DEQUANT_TILING_H

#include <stdint.h>

#define FP8_DEQUANT_MAX_CHUNK 8192u /* chunk_rows * tile_k limit */

typedef struct Fp8DequantTiling {
    uint32_t rows, k;
    uint32_t scale_layout; /* 0: 1x128 scales [rows, ceil(k/128)]; 1: 128x128 [ceil(rows/128), ceil(k/128)] */
    uint32_t block_rows;   /* rows per launch block */
    uint32_t chunk_rows;   /* rows per UB chunk */
    uint32_t tile_k;       /* columns per UB chunk */
    uint32_t reserved[2];  /* 0 */
} Fp8DequantTiling;

#endif
