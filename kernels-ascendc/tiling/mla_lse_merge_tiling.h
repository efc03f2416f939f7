/*
 * Tiling of mla_lse_merge_bf16 (mla_lse_merge.cpp), mirrored in Rust with #[repr(C)]; uint32_t
 * fields only.
 *
 *   Two partial attentions of the same query rows over disjoint key sets, out_a / out_b
 *   [rows, width] bf16 with lse_a / lse_b (f32, natural log, +inf for a row that saw no key),
 *   merge into out [rows, width] bf16 and lse:
 *     w_a = e^(lse_a - m) / (e^(lse_a - m) + e^(lse_b - m)), m = max(lse_a, lse_b), likewise w_b,
 *     out = w_a out_a + w_b out_b, lse = m + ln(e^(lse_a - m) + e^(lse_b - m));
 *   a part with lse +inf weighs 0; both empty: out 0, lse +inf.
 *
 * Row r's LSE is at (r % lse_heads) * (rows / lse_heads) + r / lse_heads: rows ordered
 * [tokens, heads] with the LSE [heads, tokens] (FlashAttention's varlen layout); lse_heads 1
 * is the same order for both.
 *
 * Work item w merges rows [w * chunk_rows, ...); items are dealt round-robin to the launched
 * blocks. Rules the host must keep: width a non-zero multiple of 16 (each UB row stays 32-byte
 * aligned), 1 <= chunk_rows <= 64, chunk_rows * width * 12 + 64 * 48 within the UB budget,
 * chunks = ceil(rows / chunk_rows), lse_heads >= 1 dividing rows.
 */
#ifndef KERNELS_ASCENDC_MLA_LSE_MERGE_TILING_H
#define KERNELS_ASCENDC_MLA_LSE_MERGE_TILING_H

#include <stdint.h>

typedef struct MlaLseMergeTiling {
    uint32_t rows, width;
    uint32_t chunk_rows, chunks;
    uint32_t lse_heads;
    uint32_t reserved[3]; /* 0 */
} MlaLseMergeTiling;

#endif
