/*
 * Tiling of the MLA latent-cache write kernels (mla_cache_write.cpp: mla_cache_write_bf16,
 * mla_cache_write_fp8), mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 *   kv [tokens, latent + rope] bf16 (kv_a_proj_with_mqa's output), gamma [latent] bf16,
 *   cos / sin [positions, rope / 2] f32, positions [tokens] int32, slots [tokens] int32
 *   -> cache rows at slots[t] (bf16: latent + rope bf16 values; fp8: latent E4M3 codes,
 *      latent / 128 f32 power-of-two scales, rope bf16 values).
 *
 * Block b writes tokens [b * tokens_per_block, ...). A negative slot is padding and is skipped.
 * Rules the host must keep (ops::mla checks them once, at the boundary):
 *   - 16 <= latent <= 2048, a multiple of 16 (bf16) or of 128 (fp8); 16 <= rope <= 256, a
 *     multiple of 16 (every UB sub-buffer stays 32-byte aligned);
 *   - every position in 0..positions and every slot < slots (slots = blocks * block_size);
 *   - row_bytes = 2 * (latent + rope) (bf16) or latent + 4 * latent / 128 + 2 * rope (fp8).
 */
#ifndef KERNELS_ASCENDC_MLA_CACHE_WRITE_TILING_H
#define KERNELS_ASCENDC_MLA_CACHE_WRITE_TILING_H

#include <stdint.h>

typedef struct MlaCacheWriteTiling {
    uint32_t tokens, latent, rope;
    uint32_t slots;      /* rows in the cache */
    uint32_t positions;  /* rows in the cos / sin tables */
    uint32_t tokens_per_block;
    uint32_t eps_bits;   /* f32 bits of the RMSNorm epsilon */
    uint32_t row_bytes;  /* bytes per cache row */
} MlaCacheWriteTiling;

#endif
