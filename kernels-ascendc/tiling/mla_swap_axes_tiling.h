/*
 * Tiling of mla_swap_axes_bf16 (mla_swap_axes.cpp), mirrored in Rust with #[repr(C)]; uint32_t
 * fields only.
 *
 *   src [outer, inner, width] bf16 -> dst [inner, outer, width]: dst[b][a][:] = src[a][b][:].
 *
 * Work item w = a * chunks + c moves rows b in [c * chunk_rows, ...) of src[a]; items are dealt
 * round-robin to the launched blocks. Rules the host must keep: width a non-zero multiple of 16
 * (each UB row stays 32-byte aligned), 1 <= chunk_rows <= 4095, chunk_rows * width * 2 <= 65536,
 * chunks = ceil(inner / chunk_rows).
 */
#ifndef KERNELS_ASCENDC_MLA_SWAP_AXES_TILING_H
#define KERNELS_ASCENDC_MLA_SWAP_AXES_TILING_H

#include <stdint.h>

typedef struct MlaSwapAxesTiling {
    uint32_t outer, inner, width;
    uint32_t chunk_rows, chunks;
    uint32_t reserved[3]; /* 0 */
} MlaSwapAxesTiling;

#endif
