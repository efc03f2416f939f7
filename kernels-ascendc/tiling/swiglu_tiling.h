/*
 * Tiling of the SwiGLU kernels (swiglu_f32 / swiglu_f16 / swiglu_bf16), computed on the host and
 * passed as a GM buffer. Mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 * Block b handles elements [b * block_len, min((b + 1) * block_len, total_len)); blocks past the end
 * do nothing. Each block walks its range in tiles of tile_len elements (the last may be shorter).
 * Rules the host must keep:
 *   - tile_len is a non-zero multiple of 64 (every UB sub-buffer stays 32-byte aligned for any dtype);
 *   - UB use per block <= 184 KiB: fp32 uses 28 * tile_len bytes, fp16/bf16 use 20 * tile_len bytes
 *     (double-buffered gate/up/out plus float scratch), i.e. tile_len <= 6720 (fp32) / 9408 (16-bit).
 */
#ifndef KERNELS_ASCENDC_SWIGLU_TILING_H
#define KERNELS_ASCENDC_SWIGLU_TILING_H

#include <stdint.h>

typedef struct SwigluTiling {
    uint32_t total_len; /* elements in gate, up and out */
    uint32_t block_len; /* elements per block */
    uint32_t tile_len;  /* elements per UB tile */
    uint32_t reserved;  /* 0 */
} SwigluTiling;

#endif
