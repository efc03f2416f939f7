/*
 * Tiling of the per-token 1x128 activation quantization kernels fp8_act_quant_{f32,bf16}
 * (fp8_quant.cpp), mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 *   x [m, k] (f32 or bf16) -> codes [m, k] E4M3FN (1 byte each),
 *                             scales [m, ceil(k/128)] f32 (multipliers: x ~ code * scale)
 *   per 1x128 tile: amax = max |x| (real elements only), s = max(amax, 1e-4f) / 448.0f (f32),
 *   with ue8m0 != 0: s = 2^ceil(log2 s) (DeepGEMM ceil_to_ue8m0 on the f32 bits),
 *   codes = e4m3(x / s) with an f32 quotient, round to nearest even, saturating to +-448,
 *   NaN -> 0x7F/0xFF (sign kept), -0 -> 0x80.
 * Non-finite inputs are outside the contract (the Rust reference rejects them); the kernel does
 * not detect them and the codes/scale of such a tile are unspecified.
 *
 * Block b quantizes rows [b * block_rows, min((b + 1) * block_rows, m)); blocks past the end do
 * nothing. Each row is processed in chunks of tile_k columns (the last may be shorter).
 * Rules the host must keep:
 *   - tile_k is a non-zero multiple of 128 and <= 5120 (UB: 2 input buffers of tile_k * 4 bytes,
 *     2 code buffers of tile_k bytes, 5 fp32/int32 work arrays of tile_k * 4 bytes, 2 scale
 *     buffers and 512 bytes of reductions = 30 * tile_k + ~2.5 KiB <= 184 KiB);
 *   - 1 <= k; block_rows >= 1; m * k < 2^32.
 */
#ifndef KERNELS_ASCENDC_FP8_QUANT_TILING_H
#define KERNELS_ASCENDC_FP8_QUANT_TILING_H

#include <stdint.h>

typedef struct Fp8QuantTiling {
    uint32_t m, k;
    uint32_t block_rows; /* rows per block */
    uint32_t tile_k;     /* columns per UB chunk */
    uint32_t ue8m0;      /* 0: f32 scales; 1: power-of-two (UE8M0) scales */
    uint32_t reserved[3]; /* 0 */
} Fp8QuantTiling;

#endif
