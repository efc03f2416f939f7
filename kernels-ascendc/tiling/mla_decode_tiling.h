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
 * Why these fields: the kernel is Mix 1:2 (see mla_decode.cpp). Work item w = b * groups + g
 * covers query rows [g * group_rows, ...) of sequence b, rows ordered (i, h); items are dealt
 * round-robin to the launched Mix groups. An item walks the sequence's visible cache rows
 * chunk_tokens at a time; each chunk is read from the cache once for all the item's rows.
 * group_rows and chunk_tokens are the planner's choice (src/kernels/mla.rs): as many rows as
 * L1, L0C and the two AIVs' UB hold (at most 128, so DeepSeek's 128 heads at s_q = 1 are one
 * item and the cache is read once per sequence), then as many tokens per chunk as L1 holds.
 *
 * Rules the host must keep (ops::mla checks them once):
 *   - latent / rope as in mla_cache_write_tiling.h; row_bytes matches the format;
 *   - 1 <= group_rows <= 128, groups = ceil(s_q * heads / group_rows);
 *   - chunk_tokens a multiple of 16 in [16, 256];
 *   - L1: round16(group_rows) * (latent + rope + 2 * chunk_tokens) * 2
 *         + chunk_tokens * (latent + rope) * 2 <= 524288;
 *   - UB (each AIV): MLA_DECODE_UB_BYTES(...) below <= 188416;
 *   - workspace: num_blocks * MLA_DECODE_WS_BYTES(...) bytes, contents need not be initialised
 *     (a per-group ring: scores, probabilities, partial outputs, and for FP8 the decoded chunk);
 *   - causal = 1 needs s_q <= seq_len for every non-empty sequence (bottom-right alignment);
 *   - every block id a sequence uses is in 0..cache_blocks, every seq_len <= max_blocks * block_size.
 */
#ifndef KERNELS_ASCENDC_MLA_DECODE_TILING_H
#define KERNELS_ASCENDC_MLA_DECODE_TILING_H

#include <stdint.h>

/* Rows of scores one AIV handles per softmax step, rows of partial outputs per accumulation
 * step, and FP8 cache rows per dequantization step. */
#define MLA_DECODE_SOFTMAX_ROWS 8u
#define MLA_DECODE_ACC_ROWS 8u
#define MLA_DECODE_FP8_ROWS 4u

#define MLA_DECODE_R32(x) (((uint32_t)(x) + 31u) / 32u * 32u)

/* Workspace bytes per Mix group: scores f32 [G, T], probabilities as two bf16 terms (hi, lo)
 * [2, G, T], partial outputs
 * f32 [G, latent], and for FP8 the decoded chunk bf16 [T, latent + rope]. */
#define MLA_DECODE_WS_BYTES(G, T, L, R, fp8) \
    ((uint32_t)(G) * (T) * 8u + (uint32_t)(G) * (L) * 4u + ((fp8) ? (uint32_t)(T) * ((L) + (R)) * 2u : 0u))

/* UB bytes of one AIV (each InitBuffer rounded up to 32 bytes): the accumulator of its
 * ceil(G / 2) rows, the scratch the steps share, the per-row slots, and for FP8 the table. */
#define MLA_DECODE_SCRATCH_SOFTMAX(T) (MLA_DECODE_SOFTMAX_ROWS * (T) * 12u + 256u)
#define MLA_DECODE_SCRATCH_ACC(L) (MLA_DECODE_ACC_ROWS * (L) * 4u)
#define MLA_DECODE_FP8_PITCH(L) MLA_DECODE_R32((L) + 4u * (L) / 128u)
#define MLA_DECODE_SCRATCH_FP8(L, R) \
    (MLA_DECODE_FP8_ROWS * (MLA_DECODE_FP8_PITCH(L) + MLA_DECODE_R32(2u * (R)) + 12u * (L)))
#define MLA_DECODE_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MLA_DECODE_UB_BYTES(G, T, L, R, fp8)                                                            \
    (MLA_DECODE_R32(((uint32_t)(G) + 1u) / 2u * (L) * 4u) +                                            \
     MLA_DECODE_MAX(MLA_DECODE_MAX(MLA_DECODE_SCRATCH_SOFTMAX(T), MLA_DECODE_SCRATCH_ACC(L)),          \
                    ((fp8) ? MLA_DECODE_SCRATCH_FP8(L, R) : 0u)) +                                     \
     64u * 48u + ((fp8) ? 1024u : 0u))

typedef struct MlaDecodeTiling {
    uint32_t batch, s_q, heads, latent, rope;
    uint32_t block_size, max_blocks, cache_blocks, row_bytes;
    uint32_t group_rows, groups, chunk_tokens;
    uint32_t causal;      /* 1: query i sees keys 0 ..= seq_len - s_q + i */
    uint32_t scale_bits;  /* f32 bits of the softmax scale */
    uint32_t q_lat_tok, q_lat_head, q_rope_tok, q_rope_head, out_tok, out_head;
    uint32_t q_rope_off;  /* elements from q_rope to row (0, 0, 0)'s rope part */
    uint32_t seq_off;     /* the launch's sequence 0 is row seq_off of the block table and lengths */
    uint32_t q_lat_off, out_off;     /* element offsets of row (0, 0, 0) in q_lat and out */
    uint32_t lse_off, lse_seq, lse_head, lse_len; /* lse of (b, i, h) at lse_off + b * lse_seq + h * lse_head + i */
    uint32_t ws_bytes;    /* MLA_DECODE_WS_BYTES of this tiling: one Mix group's workspace */
} MlaDecodeTiling;

#endif
