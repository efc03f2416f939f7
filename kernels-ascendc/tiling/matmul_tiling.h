/*
 * Tiling of the cube matmul kernels matmul_<in>_<out> (in: f16/bf16, out: f32/bf16), mirrored in Rust
 * with #[repr(C)]; uint32_t fields only.
 *
 *   b_trans = 0 ("NN"): C[M,N] = A[M,K] * B[K,N], all row-major.
 *   b_trans = 1 ("NT", DeepGEMM layout): C[M,N] = A[M,K] * B[N,K]^T, B row-major as [N,K].
 *
 * Output tiles of base_m x base_n are dealt round-robin to blocks (tile t goes to block t % num_blocks);
 * K is walked in steps of base_k with fp32 accumulation in L0C. Edge tiles are padded to 16.
 * Rules the host must keep:
 *   - base_m, base_n, base_k are non-zero multiples of 16;
 *   - L0A: 2 * base_m * base_k * 2 <= 65536; L0B: 2 * base_k * base_n * 2 <= 65536;
 *     L0C: base_m * base_n * 4 <= 131072; L1: 2 * (base_m + base_n) * base_k * 2 <= 524288
 *     (128 / 128 / 128 fits all of them, and so do 256 / 128 / 64 and 128 / 256 / 64, which the
 *     host picks for larger M or N: fewer re-reads of the other operand, fewer waves);
 *   - M, N, K <= 65535 (Nd2Nz row pitch is 16-bit), m, n, k > 0.
 */
#ifndef KERNELS_ASCENDC_MATMUL_TILING_H
#define KERNELS_ASCENDC_MATMUL_TILING_H

#include <stdint.h>

typedef struct MatmulTiling {
    uint32_t m, n, k;
    uint32_t base_m, base_n, base_k;
    uint32_t b_trans;  /* 0: B is [K,N]; 1: B is [N,K] */
    uint32_t reserved; /* 0 */
} MatmulTiling;

#endif
