/*
 * Tiling of moe_gather_scores (moe_gather_scores.cpp), mirrored in Rust with #[repr(C)];
 * uint32_t fields only.
 *
 *   scores [rows, experts] f32, ids [rows, k] int32 -> out [rows, k] f32,
 *   out[r][j] = scores[r][ids[r][j]] * scale.
 *
 * Rules the host must keep: 1 <= experts <= 2048, 1 <= k <= experts, every id in [0, experts)
 * (the router's output), rows_per_block >= 1; scale_bits holds the f32 scale's bit pattern.
 */
#ifndef KERNELS_ASCENDC_MOE_GATHER_SCORES_TILING_H
#define KERNELS_ASCENDC_MOE_GATHER_SCORES_TILING_H

#include <stdint.h>

typedef struct MoeGatherScoresTiling {
    uint32_t rows, experts, k;
    uint32_t rows_per_block;
    uint32_t scale_bits;   /* f32 bits */
    uint32_t reserved[3];  /* 0 */
} MoeGatherScoresTiling;

#endif
