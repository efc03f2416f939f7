/*
 * Tiling of the absorbed MLA decode kernels (mla_decode.cpp: mla_decode_bf16, mla_decode_fp8),
 * mirrored in Rust with #[repr(C)]; uint32_t fields only.
 *
 *   q_lat, q_rope (bf16): the absorbed query rows, row (b, i, h) at element
 *     (b * s_q + i) * q_*_tok + h * q_*_head of each, plus q_rope_off for the rope part
 *     (FlashMLA's q [b, s_q, h, latent + rope] is q_lat = q_rope = q, q_rope_off = latent,
 *     tok = h * (latent + rope), head = latent + rope);
 *   cache [cache_blocks, block_size, row_bytes], block_table [batch, max_blocks] int32,
 *   seq_lens [batch] int32
 *   -> out (bf16) row (b, i, h) at out_off + (b * s_q + i) * out_tok + h * out_head, latent values;
 *      lse f32 at lse_off + b * lse_seq + h * lse_head + i (decode: [batch, heads, s_q]), natural
 *      log, +inf for a row that sees no key (output 0).
 *   The launch's sequences are rows seq_off .. seq_off + batch of block_table and seq_lens (a
 *   varlen prefill launches one sequence at a time), q_lat rows start q_lat_off elements in.
 *
 * Work item w = b * groups + g covers query rows [g * group_rows, ...) of sequence b, rows
 * ordered (i, h); items are dealt round-robin to the launched blocks. Each item reads the
 * sequence's visible cache rows once, tile_tokens at a time (a tile never crosses a block).
 * Rules the host must keep (ops::mla checks them once):
 *   - latent / rope as in mla_cache_write_tiling.h; row_bytes matches the format;
 *   - 1 <= group_rows <= 32, groups = ceil(s_q * heads / group_rows), 1 <= tile_tokens <= 16;
 *   - UB: group_rows * (8 * (latent + rope) + 36 * tile_tokens + 8) + tile-dependent buffers
 *     <= 188416 bytes (the planner's formula, tested in src/kernels/mla.rs);
 *   - causal = 1 needs s_q <= seq_len for every non-empty sequence (bottom-right alignment);
 *   - every block id a sequence uses is in 0..cache_blocks, every seq_len <= max_blocks * block_size.
 */
#ifndef KERNELS_ASCENDC_MLA_DECODE_TILING_H
#define KERNELS_ASCENDC_MLA_DECODE_TILING_H

#include <stdint.h>

typedef struct MlaDecodeTiling {
    uint32_t batch, s_q, heads, latent, rope;
    uint32_t block_size, max_blocks, cache_blocks, row_bytes;
    uint32_t group_rows, groups, tile_tokens;
    uint32_t causal;      /* 1: query i sees keys 0 ..= seq_len - s_q + i */
    uint32_t scale_bits;  /* f32 bits of the softmax scale */
    uint32_t q_lat_tok, q_lat_head, q_rope_tok, q_rope_head, out_tok, out_head;
    uint32_t q_rope_off;  /* elements from q_rope to row (0, 0, 0)'s rope part */
    uint32_t seq_off;     /* the launch's sequence 0 is row seq_off of the block table and lengths */
    uint32_t q_lat_off, out_off;     /* element offsets of row (0, 0, 0) in q_lat and out */
    uint32_t lse_off, lse_seq, lse_head, lse_len; /* lse of (b, i, h) at lse_off + b * lse_seq + h * lse_head + i */
    uint32_t reserved;    /* 0 */
} MlaDecodeTiling;

#endif
