/*
 * Tiling of the 128x128 block weight quantization kernels fp8_weight_quant_{f32,bf16}
 * (fp8_weight_quant.cpp), mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 *   x [n, k] (f32 or bf16, row-major) -> codes  [n, k] E4M3FN (1 byte each, row-major),
 *                                        scales [ceil(n/128), ceil(k/128)] f32 (weight_scale_inv:
 *                                        multipliers, x ~ code * scale)
 *   per 128x128 block (edge blocks have fewer rows and/or columns; only real elements count):
 *   amax = max |x|, s = max(amax, 1e-4f) / 448.0f (f32), with ue8m0 != 0: s = 2^ceil(log2 s)
 *   (DeepGEMM ceil_to_ue8m0 on the f32 bits), codes = e4m3(x / s) with an f32 quotient, round to
 *   nearest even, saturating to +-448, -0 -> 0x80. (|x / s| exceeds 448 only by the f32 rounding
 *   of s = amax / 448 down, at most one f32 ulp; saturation maps it to 448 = 0x7E, as the reference.)
 * Bit-identical to src/fp8/quantize.rs quantize_weight. Non-finite inputs are outside the contract
 * (the Rust reference rejects them): the kernel does not detect them; the scale and codes of a
 * block holding one are unspecified (other blocks are unaffected) and nothing outside the outputs
 * is written.
 *
 * Work split: the blocks are numbered in row-major block order, t = nb * ceil(k/128) + kb (the
 * index of the block's scale), and launch block (AI core) b quantizes blocks
 * [b * blocks_per_core, min((b + 1) * blocks_per_core, total)); cores past the end do nothing.
 * A core's scales are therefore one contiguous run of the scale matrix.
 *
 * Rules the host must keep:
 *   - blocks_per_core >= 1 and num_blocks * blocks_per_core >= total (blocks beyond are not
 *     quantized): choose ceil(total / num_blocks) with total = ceil(n/128) * ceil(k/128);
 *     num_blocks <= total avoids idle cores;
 *   - n * k < 2^32; n == 0 or k == 0 is allowed (nothing is read or written);
 *   - ue8m0 is 0 (f32 scales) or 1 (power-of-two scales); reserved fields 0.
 * Traffic (exact, the shim's counters): GM -> UB n * k * sizeof(x) (each input byte once);
 * UB -> GM n * k (codes) + 4 * ceil(n/128) * ceil(k/128) (scales).
 */
#ifndef KERNELS_ASCENDC_FP8_WEIGHT_QUANT_TILING_H
#define KERNELS_ASCENDC_FP8_WEIGHT_QUANT_TILING_H

#include <stdint.h>

typedef struct Fp8WeightQuantTiling {
    uint32_t n, k;            /* rows and columns of x */
    uint32_t blocks_per_core; /* 128x128 blocks per launch block */
    uint32_t ue8m0;           /* 0: f32 scales; 1: power-of-two (UE8M0) scales */
    uint32_t reserved[4];     /* 0 */
} Fp8WeightQuantTiling;

#endif
