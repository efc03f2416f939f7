//! MLA on our own kernels against `reference::mla`: the cases of `mla_kernels_sim.rs` and of
//! its hardware twins `mla_kernels_hardware.rs`.

use ascend_npu::kernels::Kernels;
use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, CacheLayout, CacheWriteInput, DecodeParams,
    LatentCache, LatentProjection, LatentQuery, MqaQuery, NaiveProjection, Positions, PrefillQuery,
    RopeTable, SlotMapping, decode, merge_attention, mqa_decode, prefill, prefill_naive,
    write_cache,
};
use ascend_npu::reference::mla::bounds::{
    AttentionBounds, absorbed_bounds, lse_tolerance, merged_bounds, naive_bounds, weight_error,
};
use ascend_npu::reference::mla::{
    BlockTable as RefBlockTable, LatentAttention, Mask, MlaConfig, MlaQuery, Mqa, PagedCache, Rope,
    absorb_query, absorbed_attention, naive_attention, pack_fp8_row, paged_mqa_decode, rms_norm,
    unpack_fp8_row,
};
use ascend_npu::{Device, DeviceBuffer, Error, Stream};
use half::bf16;

use super::Rng;

/// Every case of this file, for a suite to instantiate with its setup.
#[macro_export]
macro_rules! mla_suite {
    ($(#[$attr:meta])* setup = $setup:path) => {
        cases! {
            $(#[$attr])*
            setup = $setup;
            mla_cases:
            cache_write_matches_the_reference_rmsnorm_and_interleaved_rope,
            fp8_cache_write_is_flashmla_quantization_of_the_bf16_row,
            cache_write_rejects_bad_inputs_with_clear_errors,
            block_tables_are_checked_against_the_cache,
            decode_matches_the_reference_for_every_head_count_and_speculative_tokens,
            fp8_cache_decode_attends_to_the_dequantized_rows,
            paged_decode_equals_contiguous_and_nan_in_unused_slots_never_leaks,
            cube_decode_covers_partial_tiles_split_rows_and_long_sequences,
            decode_reads_the_cache_once_for_128_heads_and_multiplies_on_the_cube,
            decode_rejects_bad_inputs_with_clear_errors,
            absorbed_decode_from_q_nope_matches_the_reference,
            absorbed_decode_rejects_a_head_count_that_does_not_match_the_weights,
            varlen_and_chunked_prefill_match_the_naive_reference,
            naive_prefill_and_the_lse_merge_match_the_naive_reference,
            causal_prefill_keeps_an_inf_key_from_the_rows_it_is_masked_for,
        }
    };
}

pub(crate) fn setup() -> (Stream, Kernels) {
    super::backend::select();
    let device = Device::open(0).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();
    (stream, kernels)
}

/// DeepSeek-V3's attention widths (latent 512, rope 64, YaRN) with `heads` heads.
pub(crate) fn config(heads: usize) -> MlaConfig {
    MlaConfig::deepseek_v3().with_heads(heads)
}

/// Asserts `result` is an `InvalidArgument` whose text mentions `needle`.
pub(crate) fn assert_invalid<T>(result: ascend_npu::Result<T>, needle: &str) {
    match result {
        Err(e @ Error::InvalidArgument { .. }) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        }
        Err(other) => panic!("expected InvalidArgument mentioning {needle:?}, got {other}"),
        Ok(_) => panic!("expected InvalidArgument mentioning {needle:?}, got Ok"),
    }
}

fn bf16s(v: &[f64]) -> Vec<bf16> {
    v.iter().map(|&x| bf16::from_f64(x)).collect()
}

fn bf16_row(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(2)
        .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64())
        .collect()
}

/// A batch of tokens to write: raw `kv` rows, the norm weight, positions and slots.
pub(crate) struct WriteBatch {
    pub kv: Vec<f64>,
    pub gamma: Vec<f64>,
    pub positions: Vec<usize>,
    pub slots: Vec<i32>,
}

impl WriteBatch {
    /// `tokens` random rows (bf16-exact), positions below `max_pos`, distinct random slots of
    /// `layout` (token 1 is padding when `pad`).
    pub(crate) fn random(
        rng: &mut Rng,
        layout: &CacheLayout,
        tokens: usize,
        max_pos: usize,
        pad: bool,
    ) -> Self {
        let row = layout.row();
        let kv: Vec<f64> = (0..tokens * row)
            .map(|_| bf16::from_f32(rng.f32() * 3.0).to_f64())
            .collect();
        let gamma: Vec<f64> = (0..layout.latent)
            .map(|_| bf16::from_f32(1.0 + 0.5 * rng.f32()).to_f64())
            .collect();
        let positions = (0..tokens)
            .map(|_| (rng.next_u64() % max_pos as u64) as usize)
            .collect();
        let mut free: Vec<i32> = (0..layout.slots() as i32).collect();
        let mut slots = Vec::with_capacity(tokens);
        for t in 0..tokens {
            if pad && t == 1 {
                slots.push(-1);
                continue;
            }
            let k = (rng.next_u64() % free.len() as u64) as usize;
            slots.push(free.swap_remove(k));
        }
        WriteBatch {
            kv,
            gamma,
            positions,
            slots,
        }
    }

    /// The f64 rows the cache should hold: RMSNorm of the latent, interleaved RoPE of the key.
    pub(crate) fn reference_rows(&self, cfg: &MlaConfig) -> Vec<Vec<f64>> {
        let rope = Rope::new(cfg);
        let row = cfg.cache_row();
        self.kv
            .chunks_exact(row)
            .zip(&self.positions)
            .map(|(r, &p)| {
                let mut r = r.to_vec();
                let (c, k_pe) = r.split_at_mut(cfg.kv_lora_rank);
                rms_norm(c, &self.gamma, cfg.rms_norm_eps);
                rope.apply(k_pe, p);
                r
            })
            .collect()
    }

    /// Writes the batch into `cache` with our kernel.
    pub(crate) fn write(
        &self,
        stream: &Stream,
        kernels: &Kernels,
        cfg: &MlaConfig,
        rope: &RopeTable,
        cache: &mut LatentCache,
    ) {
        let kv = stream.upload(&bf16s(&self.kv)).unwrap();
        let gamma = stream.upload(&bf16s(&self.gamma)).unwrap();
        let positions = Positions::new(stream, rope, &self.positions).unwrap();
        let slots = SlotMapping::new(stream, cache.layout(), &self.slots).unwrap();
        let input = CacheWriteInput {
            kv: kv.as_view(),
            norm_weight: gamma.as_view(),
            eps: cfg.rms_norm_eps as f32,
            rope,
            positions: &positions,
            slots: &slots,
        };
        write_cache(kernels, stream, &input, cache).unwrap();
    }
}

/// Positions past YaRN's original 4096-token context, so the stretched pairs turn too.
const MAX_POS: usize = 4200;

pub fn cache_write_matches_the_reference_rmsnorm_and_interleaved_rope() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let rope = RopeTable::new(&stream, &Rope::new(&cfg), MAX_POS).unwrap();
    let mut rng = Rng::new(11);
    for block_size in [64usize, 128, 5] {
        let layout = CacheLayout::for_config(&cfg, 3, block_size, CacheFormat::Bf16);
        let batch = WriteBatch::random(&mut rng, &layout, 9, MAX_POS, true);
        let mut cache = LatentCache::new(&stream, layout).unwrap();
        batch.write(&stream, &kernels, &cfg, &rope, &mut cache);
        let bytes = cache.data().to_vec().unwrap();
        let want = batch.reference_rows(&cfg);
        let rb = layout.row_bytes();
        let mut written = vec![false; layout.slots()];
        for (t, &slot) in batch.slots.iter().enumerate() {
            if slot < 0 {
                continue;
            }
            written[slot as usize] = true;
            let got = bf16_row(&bytes[slot as usize * rb..][..rb]);
            let scale = want[t].iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want[t]).enumerate() {
                // The kernel computes in f32 and rounds once to bf16: the f32 value is within
                // (L + 8)·2^-24 of the row's magnitude (a sum of L squares, then a few
                // products; cos/sin are f32-rounded f64 values), and the rounding to bf16 adds
                // at most its unit roundoff 2^-8 relative (8 significand bits, nearest even).
                let tol = 2f64.powi(-8) * w.abs()
                    + (cfg.kv_lora_rank + 8) as f64 * 2f64.powi(-24) * scale * 1.01;
                assert!(
                    (g - w).abs() <= tol,
                    "block {block_size} token {t} [{i}]: {g} vs {w}"
                );
            }
        }
        // Every other row, and the padding token's, is untouched (still zero).
        for (slot, w) in written.iter().enumerate() {
            if !w {
                assert!(
                    bytes[slot * rb..][..rb].iter().all(|&b| b == 0),
                    "slot {slot} written"
                );
            }
        }
    }
}

pub fn fp8_cache_write_is_flashmla_quantization_of_the_bf16_row() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let rope = RopeTable::new(&stream, &Rope::new(&cfg), MAX_POS).unwrap();
    let mut rng = Rng::new(12);
    let bf16_layout = CacheLayout::for_config(&cfg, 2, 64, CacheFormat::Bf16);
    let fp8_layout = CacheLayout {
        format: CacheFormat::Fp8,
        ..bf16_layout
    };
    assert_eq!(fp8_layout.row_bytes(), 656);
    let mut batch = WriteBatch::random(&mut rng, &bf16_layout, 6, MAX_POS, false);
    // A tiny token (all tiles below 1e-4 · 448: the scale floor) and one tile of zeros.
    batch.kv[..cfg.cache_row()]
        .iter_mut()
        .for_each(|v| *v = bf16::from_f64(*v * 1e-6).to_f64());
    batch.kv[cfg.cache_row()..][..128]
        .iter_mut()
        .for_each(|v| *v = 0.0);
    let mut bf16_cache = LatentCache::new(&stream, bf16_layout).unwrap();
    let mut fp8_cache = LatentCache::new(&stream, fp8_layout).unwrap();
    batch.write(&stream, &kernels, &cfg, &rope, &mut bf16_cache);
    batch.write(&stream, &kernels, &cfg, &rope, &mut fp8_cache);
    let (b16, b8) = (
        bf16_cache.data().to_vec().unwrap(),
        fp8_cache.data().to_vec().unwrap(),
    );
    let want = batch.reference_rows(&cfg);
    for (t, &slot) in batch.slots.iter().enumerate() {
        let s = slot as usize;
        let row16 = bf16_row(&b16[s * 1152..][..1152]);
        let row8 = &b8[s * 656..][..656];
        // FlashMLA's format is the quantizer applied to the bf16 row; the scales are powers
        // of two, so the kernel's f32 x / s is exact and both round the same value to E4M3.
        assert_eq!(
            row8,
            pack_fp8_row(&cfg, &row16).unwrap().as_slice(),
            "token {t}"
        );
        // And against the f64 row: E4M3 keeps 4 significand bits (unit roundoff 2^-4, nearest
        // even) above 2^-6·s, half its subnormal step 2^-10·s below; the bf16 row before it
        // adds 2^-8 relative (and the f32 computation ~2^-15, covered by the 1.1).
        let deq = unpack_fp8_row(&cfg, row8).unwrap();
        for (i, (d, w)) in deq.iter().zip(&want[t]).enumerate() {
            let tile = if i < 512 { i / 128 } else { 4 };
            let s = if tile < 4 {
                f32::from_le_bytes(row8[512 + 4 * tile..][..4].try_into().unwrap()) as f64
            } else {
                0.0
            };
            let tol = (2f64.powi(-4) + 2f64.powi(-8)) * 1.1 * w.abs() + 2f64.powi(-10) * s;
            assert!((d - w).abs() <= tol, "token {t} [{i}]: {d} vs {w}");
        }
    }
}

pub fn cache_write_rejects_bad_inputs_with_clear_errors() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let rope = RopeTable::new(&stream, &Rope::new(&cfg), 16).unwrap();
    let layout = CacheLayout::for_config(&cfg, 2, 4, CacheFormat::Bf16);
    let mut cache = LatentCache::new(&stream, layout).unwrap();
    // Slots beyond the cache, twice the same slot; positions beyond the table.
    assert_invalid(
        SlotMapping::new(&stream, &layout, &[0, 8]),
        "slot 8 for token 1",
    );
    assert_invalid(SlotMapping::new(&stream, &layout, &[3, 3]), "slot 3");
    assert_invalid(
        Positions::new(&stream, &rope, &[0, 16]),
        "position 16 of token 1",
    );
    // Layouts the kernels do not take.
    assert_invalid(
        LatentCache::new(
            &stream,
            CacheLayout {
                latent: 500,
                ..layout
            },
        ),
        "latent of 500",
    );
    assert_invalid(
        LatentCache::new(
            &stream,
            CacheLayout {
                latent: 320,
                format: CacheFormat::Fp8,
                ..layout
            },
        ),
        "multiple of 128",
    );
    assert_invalid(
        LatentCache::new(
            &stream,
            CacheLayout {
                block_size: 0,
                ..layout
            },
        ),
        "0 tokens",
    );
    // Each width and the slot count at its largest, and one step past it (a slot mapping
    // checks its layout without allocating the cache): a latent of 2048 (the kernels' UB
    // limit), a rope key of 256, i32::MAX slots (int32 slot ids); a rope key of 0 or 8 alone.
    let checked = |edit: &dyn Fn(&mut CacheLayout)| {
        let mut l = layout;
        edit(&mut l);
        SlotMapping::new(&stream, &l, &[]).map(|_| ())
    };
    checked(&|l| l.latent = 2048).unwrap();
    assert_invalid(checked(&|l| l.latent = 2064), "latent of 2064");
    checked(&|l| l.rope = 256).unwrap();
    for bad in [0, 8, 272] {
        assert_invalid(checked(&|l| l.rope = bad), &format!("rope key of {bad}"));
    }
    let slot_count = |n: usize| {
        move |l: &mut CacheLayout| {
            l.blocks = n;
            l.block_size = 1;
        }
    };
    checked(&slot_count(i32::MAX as usize)).unwrap();
    assert_invalid(checked(&slot_count(1 << 31)), "of 2147483648 slots");

    let kv = stream.upload(&vec![bf16::ONE; 2 * 576]).unwrap();
    let gamma = stream.upload(&vec![bf16::ONE; 512]).unwrap();
    let positions = Positions::new(&stream, &rope, &[1, 2]).unwrap();
    let slots = SlotMapping::new(&stream, &layout, &[0, 5]).unwrap();
    let good = || CacheWriteInput {
        kv: kv.as_view(),
        norm_weight: gamma.as_view(),
        eps: 1e-6,
        rope: &rope,
        positions: &positions,
        slots: &slots,
    };
    let mut rejects = |input: CacheWriteInput<'_>, needle: &str| {
        assert_invalid(write_cache(&kernels, &stream, &input, &mut cache), needle)
    };
    let kv_short = kv.slice(..575).unwrap();
    let gamma_short = gamma.slice(..64).unwrap();
    let one = SlotMapping::new(&stream, &layout, &[0]).unwrap();
    let other = CacheLayout {
        blocks: 3,
        ..layout
    };
    let foreign = SlotMapping::new(&stream, &other, &[0, 9]).unwrap();
    let narrow_rope = Rope {
        inv_freq: vec![1.0; 16],
        amplitude: 1.0,
    };
    let narrow = RopeTable::new(&stream, &narrow_rope, 16).unwrap();
    rejects(
        CacheWriteInput {
            kv: kv_short,
            ..good()
        },
        "kv of 575 elements",
    );
    rejects(
        CacheWriteInput {
            norm_weight: gamma_short,
            ..good()
        },
        "norm weight of 64",
    );
    rejects(
        CacheWriteInput {
            slots: &one,
            ..good()
        },
        "1 slots for 2",
    );
    rejects(
        CacheWriteInput {
            slots: &foreign,
            ..good()
        },
        "3 blocks",
    );
    rejects(
        CacheWriteInput {
            rope: &narrow,
            ..good()
        },
        "16 pairs",
    );
    rejects(
        CacheWriteInput {
            eps: f32::NAN,
            ..good()
        },
        "epsilon NaN",
    );
    rejects(
        CacheWriteInput {
            eps: -1e-6,
            ..good()
        },
        "epsilon -0.000001",
    );
    // Positions checked against a longer table than the one the write reads (which would
    // read past it).
    let long = RopeTable::new(&stream, &Rope::new(&cfg), 32).unwrap();
    let far = Positions::new(&stream, &long, &[20, 31]).unwrap();
    rejects(
        CacheWriteInput {
            positions: &far,
            ..good()
        },
        "checked against 32 positions",
    );
    // Nothing was written by the rejected calls.
    assert!(cache.data().to_vec().unwrap().iter().all(|&b| b == 0));
    // The edges that are fine: no epsilon, and positions checked against a shorter table
    // than the one the write reads.
    write_cache(
        &kernels,
        &stream,
        &CacheWriteInput {
            eps: 0.0,
            rope: &long,
            ..good()
        },
        &mut cache,
    )
    .unwrap();
    stream.synchronize().unwrap();
    assert!(cache.data().to_vec().unwrap().iter().any(|&b| b != 0));
    let none = Positions::new(&stream, &rope, &[]).unwrap();
    assert!(none.is_empty() && !positions.is_empty());
    assert_eq!((none.len(), positions.len()), (0, 2));
    let no_slots = SlotMapping::new(&stream, &layout, &[]).unwrap();
    assert!(no_slots.is_empty() && !slots.is_empty());
    assert_eq!((no_slots.len(), slots.len()), (0, 2));
}

pub fn block_tables_are_checked_against_the_cache() {
    let (stream, _kernels) = setup();
    let cfg = config(1);
    let layout = CacheLayout::for_config(&cfg, 4, 64, CacheFormat::Bf16);
    let table = |table: &[i32], seq_lens: &[usize]| {
        let spec = BlockTableSpec {
            table,
            max_blocks: 2,
            seq_lens,
        };
        BlockTable::new(&stream, &layout, spec)
    };
    // Unused entries may hold garbage (FlashMLA's tests use 2147480000).
    let ok = table(&[3, 2147480000, 1, 0], &[64, 65]).unwrap();
    assert_eq!(
        (ok.batch(), ok.max_blocks(), ok.seq_lens()),
        (2, 2, &[64usize, 65][..])
    );
    assert_invalid(table(&[3, 4], &[65]), "entry [0, 1] = 4");
    assert_invalid(table(&[0, -1], &[100]), "entry [0, 1] = -1");
    assert_invalid(table(&[0, 1], &[129]), "sequence 0 of 129 tokens");
    assert_invalid(table(&[0, 1, 2], &[1, 1]), "3 entries");
}

// ---------------------------------------------------------------------------------------------
// Decode.

/// A batch of sequences in a paged cache: rows, lengths, a shuffled block table with garbage
/// in unused entries, and NaN in every slot no sequence uses.
pub(crate) struct PagedBatch {
    pub layout: CacheLayout,
    pub seq_lens: Vec<usize>,
    pub max_blocks: usize,
    pub table: Vec<i32>,
    /// `[slots, 576]` the values the cache holds (bf16-exact, or FP8-dequantized), NaN where
    /// unused.
    pub rows: Vec<f64>,
    /// The cache's bytes.
    pub bytes: Vec<u8>,
}

impl PagedBatch {
    /// Sequences of `seq_lens` tokens with values uniform in ±`amp`, in blocks dealt in a
    /// shuffled order (`shuffle`) or in order.
    pub(crate) fn random(
        rng: &mut Rng,
        cfg: &MlaConfig,
        (block_size, format): (usize, CacheFormat),
        seq_lens: &[usize],
        amp: f32,
        shuffle: bool,
    ) -> Self {
        let max_blocks = seq_lens
            .iter()
            .map(|l| l.div_ceil(block_size))
            .max()
            .unwrap_or(0)
            + 1;
        let used: usize = seq_lens.iter().map(|l| l.div_ceil(block_size)).sum();
        let blocks = used + 2; // two blocks nobody uses
        let layout = CacheLayout::for_config(cfg, blocks, block_size, format);
        let mut ids: Vec<i32> = (0..blocks as i32).collect();
        // The order comes from its own generator, so a shuffled batch holds the same values.
        let mut order = Rng::new(rng.next_u64());
        if shuffle {
            for i in (1..ids.len()).rev() {
                ids.swap(i, (order.next_u64() % (i as u64 + 1)) as usize);
            }
        }
        let (row, rb) = (layout.row(), layout.row_bytes());
        let mut rows = vec![f64::NAN; layout.slots() * row];
        // Unused slots: all bits set (NaN in bf16, in the E4M3 codes and in the f32 scales).
        let mut bytes = vec![0xFFu8; layout.slots() * rb];
        let mut table = vec![2_147_480_000i32; seq_lens.len() * max_blocks];
        let mut next = 0;
        for (b, &len) in seq_lens.iter().enumerate() {
            for j in 0..len.div_ceil(block_size) {
                table[b * max_blocks + j] = ids[next];
                next += 1;
            }
            for t in 0..len {
                let block = table[b * max_blocks + t / block_size] as usize;
                let slot = block * block_size + t % block_size;
                let values: Vec<f64> = (0..row)
                    .map(|_| bf16::from_f32(rng.f32() * amp).to_f64())
                    .collect();
                let (stored, packed) = match format {
                    // Our kernels' cases never build the vendor ops' split cache.
                    CacheFormat::Bf16 | CacheFormat::AscendSplit => {
                        let packed: Vec<u8> = values
                            .iter()
                            .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
                            .collect();
                        (values, packed)
                    }
                    CacheFormat::Fp8 => {
                        let packed = pack_fp8_row(cfg, &values).unwrap();
                        (unpack_fp8_row(cfg, &packed).unwrap(), packed)
                    }
                };
                rows[slot * row..][..row].copy_from_slice(&stored);
                bytes[slot * rb..][..rb].copy_from_slice(&packed);
            }
        }
        PagedBatch {
            layout,
            seq_lens: seq_lens.to_vec(),
            max_blocks,
            table,
            rows,
            bytes,
        }
    }

    pub(crate) fn upload(&self, stream: &Stream) -> (LatentCache, BlockTable) {
        let mut cache = LatentCache::new(stream, self.layout).unwrap();
        cache.data_mut().copy_from_host(&self.bytes).unwrap();
        let spec = BlockTableSpec {
            table: &self.table,
            max_blocks: self.max_blocks,
            seq_lens: &self.seq_lens,
        };
        let table = BlockTable::new(stream, &self.layout, spec).unwrap();
        (cache, table)
    }

    /// The reference's view of the same cache.
    pub(crate) fn reference(
        &self,
        mqa: &Mqa,
        q: &[f64],
    ) -> Vec<ascend_npu::reference::mla::AttentionOutput> {
        let lens: Vec<i32> = self.seq_lens.iter().map(|&l| l as i32).collect();
        let cache = PagedCache {
            data: &self.rows,
            block_size: self.layout.block_size,
            row: self.layout.row(),
        };
        let tables = RefBlockTable {
            table: &self.table,
            max_blocks: self.max_blocks,
            seq_lens: &lens,
        };
        paged_mqa_decode(mqa, q, &cache, &tables).unwrap()
    }

    /// The `[seq_len, 576]` rows of sequence `b`.
    pub(crate) fn gather(&self, b: usize) -> Vec<f64> {
        let row = self.layout.row();
        let mut out = Vec::with_capacity(self.seq_lens[b] * row);
        for t in 0..self.seq_lens[b] {
            let block = self.table[b * self.max_blocks + t / self.layout.block_size] as usize;
            let slot = block * self.layout.block_size + t % self.layout.block_size;
            out.extend_from_slice(&self.rows[slot * row..][..row]);
        }
        out
    }
}

/// The f32 error bound of one softmax row: each score is a dot product of `d` terms, whose f32
/// value is within γ_d·Σ|q_i k_i| (γ_d = d·2^-24 / (1 − d·2^-24)) of the exact one, times the
/// scale; a shift δ of the scores moves each weight by at most a factor e^{2δ}. Returns δ.
fn score_error(q: &[f64], keys: &[f64], d: usize, visible: usize, scale: f64) -> f64 {
    let gamma = d as f64 * 2f64.powi(-24) / (1.0 - d as f64 * 2f64.powi(-24));
    keys.chunks_exact(d)
        .take(visible)
        .map(|k| q.iter().zip(k).map(|(a, b)| (a * b).abs()).sum::<f64>() * gamma * scale)
        .fold(0.0, f64::max)
}

/// Compares a device decode with the reference, row by row, with the bound of `score_error`
/// (weights), the f32 accumulation of at most `n` values (n·2^-24 of max|v|), and the final
/// bf16 rounding (2^-8 relative) of the output; the LSE within δ plus f32 rounding.
#[allow(clippy::too_many_arguments)]
fn assert_decode_matches(
    batch: &PagedBatch,
    q: &[f64],
    (s_q, heads, mask, scale): (usize, usize, Mask, f64),
    out: &[bf16],
    lse: &[f32],
    label: &str,
) {
    let (d, dv) = (batch.layout.row(), batch.layout.latent);
    let mqa = Mqa {
        heads,
        d,
        dv,
        mask,
        scale,
    };
    let want = batch.reference(&mqa, q);
    for (b, w) in want.iter().enumerate() {
        let keys = batch.gather(b);
        let len = batch.seq_lens[b];
        let vmax = keys
            .chunks_exact(d)
            .flat_map(|r| &r[..dv])
            .fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..s_q {
            let visible = match mask {
                Mask::None => len,
                Mask::Causal => (len + i + 1).saturating_sub(s_q).min(len),
            };
            for h in 0..heads {
                let row = (b * s_q + i) * heads + h;
                let qrow = &q[row * d..][..d];
                let delta = score_error(qrow, &keys, d, visible, scale);
                let weights = weight_error(delta, visible);
                for c in 0..dv {
                    let (g, x) = (out[row * dv + c].to_f64(), w.out[(i * heads + h) * dv + c]);
                    let tol = 2f64.powi(-8) * x.abs() * 1.01 + weights * vmax;
                    assert!(
                        (g - x).abs() <= tol,
                        "{label}: seq {b} (len {len}) query {i} head {h} [{c}]: {g} vs {x} (tol {tol:e})"
                    );
                }
                let (g, x) = (lse[(b * heads + h) * s_q + i] as f64, w.lse[h * s_q + i]);
                if x.is_infinite() {
                    assert_eq!(g, f64::INFINITY, "{label}: seq {b} lse of an empty row");
                } else {
                    let tol = lse_tolerance(delta, x, visible);
                    assert!(
                        (g - x).abs() <= tol,
                        "{label}: seq {b} query {i} head {h} lse {g} vs {x}"
                    );
                }
            }
        }
    }
}

fn random_q(rng: &mut Rng, len: usize, amp: f32) -> Vec<f64> {
    (0..len)
        .map(|_| bf16::from_f32(rng.f32() * amp).to_f64())
        .collect()
}

/// Runs FlashMLA's decode on the device for `batch` and `q`.
fn device_decode(
    stream: &Stream,
    kernels: &Kernels,
    batch: &PagedBatch,
    q: &[f64],
    (s_q, heads, causal, scale): (usize, usize, bool, f32),
) -> (Vec<bf16>, Vec<f32>) {
    let (cache, table) = batch.upload(stream);
    let dq = stream.upload(&bf16s(q)).unwrap();
    let query = MqaQuery {
        q: dq.as_view(),
        s_q,
        heads,
    };
    let params = DecodeParams {
        softmax_scale: scale,
        causal,
    };
    let res = mqa_decode(kernels, stream, &query, &cache, &table, params).unwrap();
    (res.out.to_vec().unwrap(), res.lse.to_vec().unwrap())
}

/// Lengths 0, 1, block_size ± 1 and several blocks (at least `s_q` when not empty).
fn edge_lens(block_size: usize, s_q: usize) -> Vec<usize> {
    vec![
        0,
        s_q.max(1),
        block_size - 1,
        block_size + 1,
        2 * block_size + 3,
    ]
}

pub fn decode_matches_the_reference_for_every_head_count_and_speculative_tokens() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(21);
    // Values of ±0.5 keep scores O(1) (and the f32 error bound small) while a wrong or
    // missing key still moves the output far beyond it.
    for (heads, s_q, block_size) in [
        (1, 1, 64),
        (3, 2, 128),
        (16, 4, 5),
        (128, 1, 16),
        (3, 3, 64),
    ] {
        let lens = edge_lens(block_size, s_q);
        let case = (heads, s_q, block_size, CacheFormat::Bf16);
        decode_case(&stream, &kernels, &mut rng, case, &lens);
    }
}

/// Decodes random rows and queries over sequences of `lens` tokens (the first empty), causal
/// when `s_q > 1`, and compares with the reference; the empty sequence's output is exactly 0
/// (its LSE is checked to be +inf).
fn decode_case(
    stream: &Stream,
    kernels: &Kernels,
    rng: &mut Rng,
    (heads, s_q, block_size, format): (usize, usize, usize, CacheFormat),
    lens: &[usize],
) {
    let cfg = config(1);
    let scale = cfg.softmax_scale();
    let batch = PagedBatch::random(rng, &cfg, (block_size, format), lens, 0.5, true);
    let q = random_q(rng, lens.len() * s_q * heads * 576, 0.5);
    let causal = s_q > 1;
    let (out, lse) = device_decode(
        stream,
        kernels,
        &batch,
        &q,
        (s_q, heads, causal, scale as f32),
    );
    let mask = if causal { Mask::Causal } else { Mask::None };
    let label = format!("{format:?} h {heads} s_q {s_q} block {block_size}");
    assert_decode_matches(
        &batch,
        &q,
        (s_q, heads, mask, scale as f32 as f64),
        &out,
        &lse,
        &label,
    );
    assert_eq!(lens[0], 0, "the first sequence is the empty one");
    assert!(out[..s_q * heads * 512].iter().all(|v| v.to_f64() == 0.0));
}

pub fn fp8_cache_decode_attends_to_the_dequantized_rows() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let scale = cfg.softmax_scale();
    let mut rng = Rng::new(22);
    for (heads, s_q, block_size) in [(3, 1, 64), (16, 2, 128)] {
        let lens = edge_lens(block_size, s_q);
        let batch = PagedBatch::random(
            &mut rng,
            &cfg,
            (block_size, CacheFormat::Fp8),
            &lens,
            0.5,
            true,
        );
        let q = random_q(&mut rng, lens.len() * s_q * heads * 576, 0.5);
        let (out, lse) = device_decode(
            &stream,
            &kernels,
            &batch,
            &q,
            (s_q, heads, true, scale as f32),
        );
        let label = format!("fp8 h {heads} s_q {s_q} block {block_size}");
        assert_decode_matches(
            &batch,
            &q,
            (s_q, heads, Mask::Causal, scale as f32 as f64),
            &out,
            &lse,
            &label,
        );
    }
}

pub fn paged_decode_equals_contiguous_and_nan_in_unused_slots_never_leaks() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let (heads, s_q, block_size) = (3, 2, 16);
    let lens = [33usize, 2, 16, 0, 47];
    let mut contiguous_rng = Rng::new(23);
    let mut shuffled_rng = Rng::new(23);
    // Same values, blocks in order vs shuffled (and NaN everywhere unused in both).
    let ordered = PagedBatch::random(
        &mut contiguous_rng,
        &cfg,
        (block_size, CacheFormat::Bf16),
        &lens,
        0.5,
        false,
    );
    let shuffled = PagedBatch::random(
        &mut shuffled_rng,
        &cfg,
        (block_size, CacheFormat::Bf16),
        &lens,
        0.5,
        true,
    );
    assert_ne!(ordered.table, shuffled.table);
    let q = random_q(&mut Rng::new(24), lens.len() * s_q * heads * 576, 0.5);
    let params = (s_q, heads, true, 0.1f32);
    let a = device_decode(&stream, &kernels, &ordered, &q, params);
    let b = device_decode(&stream, &kernels, &shuffled, &q, params);
    assert!(a.0 == b.0, "the block order changed the output");
    assert!(a.1 == b.1, "the block order changed the LSE");
    assert!(a.0.iter().all(|v| v.to_f64().is_finite()) && a.1.iter().all(|v| !v.is_nan()));
    assert_decode_matches(
        &shuffled,
        &q,
        (s_q, heads, Mask::Causal, 0.1f32 as f64),
        &b.0,
        &b.1,
        "shuffled",
    );
}

/// The cube decode's tiling edges: head counts that are not a multiple of the 16-row cube
/// tile, more query rows than one item holds (128: the rows are split over items, one of them
/// mid-token), sequences longer than one chunk, block sizes 64 and 128, bf16 and FP8 caches.
pub fn cube_decode_covers_partial_tiles_split_rows_and_long_sequences() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(26);
    // Chunks hold up to 256 tokens (224 at 128 rows): 259 and 600 tokens take several.
    for (heads, s_q, block_size, format, long) in [
        (17, 1, 64, CacheFormat::Bf16, 600),
        (48, 3, 64, CacheFormat::Bf16, 0),
        (72, 2, 128, CacheFormat::Fp8, 0),
        (5, 4, 128, CacheFormat::Fp8, 600),
    ] {
        let mut lens = edge_lens(block_size, s_q);
        lens.extend((long > 0).then_some(long));
        decode_case(
            &stream,
            &kernels,
            &mut rng,
            (heads, s_q, block_size, format),
            &lens,
        );
    }
}

/// DeepSeek's 128 heads at s_q = 1 are one work item: the simulator's counters show the cache
/// rows read exactly once, every product on the cube, and the rest of the traffic being the
/// queries, the outputs and the per-group ring (scores, probabilities, partial outputs).
pub fn decode_reads_the_cache_once_for_128_heads_and_multiplies_on_the_cube() {
    // Device 1 alone: select the backend here, as `setup` does (not every suite's setup calls it).
    super::backend::select();
    let device = Device::open(1).unwrap();
    let stream = device.new_stream().unwrap();
    let kernels = Kernels::load(&device).unwrap();
    let cfg = config(1);
    let (heads, len, block_size) = (128u64, 100u64, 64);
    let mut rng = Rng::new(27);
    let batch = PagedBatch::random(
        &mut rng,
        &cfg,
        (block_size, CacheFormat::Bf16),
        &[len as usize],
        0.5,
        true,
    );
    let q = random_q(&mut rng, heads as usize * 576, 0.5);
    let (cache, table) = batch.upload(&stream);
    let dq = stream.upload(&bf16s(&q)).unwrap();
    stream.synchronize().unwrap();
    let Some(before) = super::backend::counters(1) else {
        return;
    };
    let query = MqaQuery {
        q: dq.as_view(),
        s_q: 1,
        heads: heads as usize,
    };
    let params = DecodeParams {
        softmax_scale: 0.1,
        causal: false,
    };
    let res = mqa_decode(&kernels, &stream, &query, &cache, &table, params).unwrap();
    stream.synchronize().unwrap();
    let after = super::backend::counters(1).unwrap();
    drop(res);
    let k = |a: u64, b: u64| a - b;
    let macs = k(after.kernels.cube_macs, before.kernels.cube_macs);
    let read = k(
        after.kernels.gm_to_local_bytes,
        before.kernels.gm_to_local_bytes,
    );
    let written = k(
        after.kernels.local_to_gm_bytes,
        before.kernels.local_to_gm_bytes,
    );
    // One chunk of 100 keys (padded to 112 in the probabilities); S over 576 columns, P V over
    // 512 with P as two bf16 terms.
    let (n, np, d, dv) = (len, 112u64, 576u64, 512u64);
    assert_eq!(macs, heads * n * (d + 2 * dv));
    let queries = heads * d * 2;
    let cache_once = n * d * 2;
    let ring_read = heads * n * 4 + 2 * heads * np * 2 + heads * dv * 4;
    assert_eq!(
        read,
        queries + cache_once + ring_read,
        "the cache read more than once"
    );
    let ring_written = heads * n * 4 + 2 * heads * np * 2 + heads * dv * 4;
    let outputs = heads * dv * 2 + heads * 4;
    assert_eq!(written, outputs + ring_written);
    // The ring is memory the launch writes before it reads it, well within the L2: it stays
    // there, and HBM sees exactly the minimum (queries, the cache once, out and LSE).
    let exchange = (
        k(
            after.kernels.gm_exchange_read_bytes,
            before.kernels.gm_exchange_read_bytes,
        ),
        k(
            after.kernels.gm_exchange_written_bytes,
            before.kernels.gm_exchange_written_bytes,
        ),
    );
    assert_eq!(exchange, (ring_read, ring_written));
    assert_eq!(
        k(after.kernel_l2_bytes, before.kernel_l2_bytes),
        ring_read + ring_written
    );
    assert_eq!(
        k(after.kernel_hbm_bytes(), before.kernel_hbm_bytes()),
        queries + cache_once + outputs
    );
}

pub fn decode_rejects_bad_inputs_with_clear_errors() {
    let (stream, kernels) = setup();
    let cfg = config(1);
    let mut rng = Rng::new(25);
    let batch = PagedBatch::random(&mut rng, &cfg, (64, CacheFormat::Bf16), &[3, 1], 0.5, true);
    let (cache, table) = batch.upload(&stream);
    let q = stream.upload(&vec![bf16::ONE; 2 * 2 * 4 * 576]).unwrap();
    let params = DecodeParams {
        softmax_scale: 0.1,
        causal: false,
    };
    let run = |s_q: usize, heads: usize, params: DecodeParams, table: &BlockTable| {
        let query = MqaQuery {
            q: q.as_view(),
            s_q,
            heads,
        };
        mqa_decode(&kernels, &stream, &query, &cache, table, params).map(|_| ())
    };
    run(2, 4, params, &table).unwrap();
    assert_invalid(run(2, 3, params, &table), "q of 9216 elements");
    assert_invalid(run(0, 4, params, &table), "0 query tokens");
    let nan = DecodeParams {
        softmax_scale: f32::NAN,
        ..params
    };
    assert_invalid(run(2, 4, nan, &table), "softmax scale NaN");
    // Sequence 1 holds 1 token: 2 causal queries cannot be its last tokens.
    let causal = DecodeParams {
        causal: true,
        ..params
    };
    assert_invalid(run(2, 4, causal, &table), "sequence 1 of 1 cached tokens");
    // A table built for another cache.
    let other = CacheLayout {
        blocks: batch.layout.blocks + 1,
        ..batch.layout
    };
    let spec = BlockTableSpec {
        table: &batch.table,
        max_blocks: batch.max_blocks,
        seq_lens: &batch.seq_lens,
    };
    let foreign = BlockTable::new(&stream, &other, spec).unwrap();
    assert_invalid(run(2, 4, params, &foreign), "a block table built for");
}

/// The reference side of a device latent attention: its `kv_b_proj` and the f32-rounded
/// softmax scale the device used; the bounds are `reference::mla::bounds`' (each derived from
/// the device path's roundings there).
struct LatentCheck<'a> {
    cfg: &'a MlaConfig,
    kv_b: &'a [f64],
    scale: f64,
}

impl LatentCheck<'_> {
    /// The reference's settings under `mask`.
    fn attention_with(&self, mask: Mask) -> LatentAttention<'_> {
        LatentAttention {
            cfg: self.cfg,
            kv_b_proj: self.kv_b,
            mask,
            scale: self.scale,
        }
    }

    /// Causal, as the absorbed decode and prefill attend.
    fn attention(&self) -> LatentAttention<'_> {
        self.attention_with(Mask::Causal)
    }

    /// Checks one sequence of the absorbed form: `mq` against `keys` (its cached rows),
    /// `got(i, h)` the device's output row and LSE, within `absorbed_bounds`.
    fn assert_rows(
        &self,
        (mq, keys): (&MlaQuery, &[f64]),
        got: impl Fn(usize, usize) -> (Vec<f64>, f64),
        label: &str,
    ) {
        let bounds = absorbed_bounds(&self.attention(), mq, keys).unwrap();
        assert_bounded(&bounds, (mq.tokens, mq.heads), got, label);
    }

    /// The naive form's reference and bounds (`prefill_naive`) under `mask`.
    fn naive(&self, mq: &MlaQuery, keys: &[f64], mask: Mask) -> AttentionBounds {
        naive_bounds(&self.attention_with(mask), mq, keys).unwrap()
    }
}

/// The rows `[start, start + tokens)` of `[_, heads, width]` values as one sequence's query.
fn sequence_query(
    (q_nope, q_pe): (&[f64], &[f64]),
    heads: usize,
    start: usize,
    tokens: usize,
) -> MlaQuery {
    let (a, b) = (start * heads, (start + tokens) * heads);
    MlaQuery {
        tokens,
        heads,
        q_nope: q_nope[a * 128..b * 128].to_vec(),
        q_pe: q_pe[a * 64..b * 64].to_vec(),
    }
}

/// `kv_b_proj`, `q_nope` and `q_pe` on the device, in bf16.
fn upload_latent(
    stream: &Stream,
    cfg: &MlaConfig,
    (q_nope, q_pe): (&[f64], &[f64]),
    kv_b: &[f64],
) -> (LatentProjection, DeviceBuffer<bf16>, DeviceBuffer<bf16>) {
    let proj = LatentProjection::new(cfg, stream.upload(&bf16s(kv_b)).unwrap()).unwrap();
    let dqn = stream.upload(&bf16s(q_nope)).unwrap();
    let dqp = stream.upload(&bf16s(q_pe)).unwrap();
    (proj, dqn, dqp)
}

pub fn absorbed_decode_from_q_nope_matches_the_reference() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(26);
    // Small blocks keep the f64 bounds cheap; the block sizes 64 and 128 are covered above.
    for (heads, s_q, block_size) in [(3, 2, 16), (16, 1, 8)] {
        let cfg = config(heads);
        let scale = cfg.softmax_scale();
        let lens = edge_lens(block_size, s_q);
        let batch = PagedBatch::random(
            &mut rng,
            &cfg,
            (block_size, CacheFormat::Bf16),
            &lens,
            0.5,
            true,
        );
        let n = lens.len() * s_q;
        let q_nope = random_q(&mut rng, n * heads * 128, 0.5);
        let q_pe = random_q(&mut rng, n * heads * 64, 0.5);
        let kv_b = random_q(&mut rng, heads * 256 * 512, 0.1);
        let (cache, table) = batch.upload(&stream);
        let (proj, dqn, dqp) = upload_latent(&stream, &cfg, (&q_nope, &q_pe), &kv_b);
        let query = LatentQuery {
            q_nope: dqn.as_view(),
            q_pe: dqp.as_view(),
            s_q,
        };
        let params = DecodeParams {
            softmax_scale: scale as f32,
            causal: true,
        };
        let res = decode(&kernels, &stream, &proj, &query, &cache, &table, params).unwrap();
        let (out, lse) = (res.out.to_vec().unwrap(), res.lse.to_vec().unwrap());
        let check = LatentCheck {
            cfg: &cfg,
            kv_b: &kv_b,
            scale: scale as f32 as f64,
        };
        for b in 0..lens.len() {
            let mq = sequence_query((&q_nope, &q_pe), heads, b * s_q, s_q);
            let keys = batch.gather(b);
            let got = |i: usize, h: usize| {
                let row = (b * s_q + i) * heads + h;
                let o = out[row * 128..][..128].iter().map(|v| v.to_f64()).collect();
                (o, lse[(b * heads + h) * s_q + i] as f64)
            };
            check.assert_rows((&mq, &keys), got, &format!("h {heads} seq {b}"));
        }
    }
}

/// A prefill case on DeepSeek-V3's widths in blocks of 16: each sequence's cached rows (±0.5,
/// its new tokens the last `q_lens[b]`), the new tokens' queries (±0.5) and `kv_b_proj`
/// (±0.1), all bf16-exact.
struct PrefillCase {
    cfg: MlaConfig,
    lens: Vec<usize>,
    q_lens: Vec<usize>,
    batch: PagedBatch,
    q_nope: Vec<f64>,
    q_pe: Vec<f64>,
    kv_b: Vec<f64>,
}

impl PrefillCase {
    fn random(rng: &mut Rng, heads: usize, lens: &[usize], q_lens: &[usize]) -> Self {
        let cfg = config(heads);
        let batch = PagedBatch::random(rng, &cfg, (16, CacheFormat::Bf16), lens, 0.5, true);
        let n: usize = q_lens.iter().sum();
        let q_nope = random_q(rng, n * heads * 128, 0.5);
        let q_pe = random_q(rng, n * heads * 64, 0.5);
        let kv_b = random_q(rng, heads * 256 * 512, 0.1);
        PrefillCase {
            cfg,
            lens: lens.to_vec(),
            q_lens: q_lens.to_vec(),
            batch,
            q_nope,
            q_pe,
            kv_b,
        }
    }

    fn heads(&self) -> usize {
        self.cfg.num_heads
    }

    /// New tokens of the whole batch.
    fn tokens(&self) -> usize {
        self.q_lens.iter().sum()
    }

    /// The softmax scale as the device takes it.
    fn scale(&self) -> f32 {
        self.cfg.softmax_scale() as f32
    }

    /// `kv_b_proj` on the device for the absorbed form.
    fn latent_projection(&self, stream: &Stream) -> LatentProjection {
        LatentProjection::new(&self.cfg, stream.upload(&bf16s(&self.kv_b)).unwrap()).unwrap()
    }

    /// `kv_b_proj` on the device for the naive form.
    fn naive_projection(&self, stream: &Stream) -> NaiveProjection {
        NaiveProjection::new(stream, &self.cfg, &bf16s(&self.kv_b)).unwrap()
    }

    /// The queries on the device, for [`PrefillCase::query`].
    fn upload_queries(&self, stream: &Stream) -> (DeviceBuffer<bf16>, DeviceBuffer<bf16>) {
        (
            stream.upload(&bf16s(&self.q_nope)).unwrap(),
            stream.upload(&bf16s(&self.q_pe)).unwrap(),
        )
    }

    fn query<'a>(
        &'a self,
        (q_nope, q_pe): &'a (DeviceBuffer<bf16>, DeviceBuffer<bf16>),
    ) -> PrefillQuery<'a> {
        PrefillQuery {
            q_nope: q_nope.as_view(),
            q_pe: q_pe.as_view(),
            q_lens: &self.q_lens,
        }
    }

    /// Tokens `[start, start + tokens)` of the batch's queries as one sequence's.
    fn sequence(&self, start: usize, tokens: usize) -> MlaQuery {
        sequence_query((&self.q_nope, &self.q_pe), self.heads(), start, tokens)
    }

    /// The reference side, with the scale the device used.
    fn check(&self) -> LatentCheck<'_> {
        LatentCheck {
            cfg: &self.cfg,
            kv_b: &self.kv_b,
            scale: f64::from(self.scale()),
        }
    }
}

/// A device output (bf16) and its LSE (f32), read back in f64.
pub(crate) fn on_host_rows(
    out: &DeviceBuffer<bf16>,
    lse: &DeviceBuffer<f32>,
) -> (Vec<f64>, Vec<f64>) {
    let out = out.to_vec().unwrap().iter().map(|v| v.to_f64()).collect();
    let lse = lse
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    (out, lse)
}

pub fn varlen_and_chunked_prefill_match_the_naive_reference() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(28);
    // Cached lengths (prefix + new tokens) and the new tokens, in blocks of 16: a whole
    // prompt, a chunk after a prefix spanning blocks, nothing new, one token after a full
    // block, a chunk of one block's length across two blocks. (The f64 naive reference
    // expands every key per head, which dominates this test's time in debug builds.)
    let case = PrefillCase::random(&mut rng, 2, &[13, 24, 5, 17, 20], &[13, 6, 0, 1, 16]);
    let (heads, n) = (case.heads(), case.tokens());
    let (cache, table) = case.batch.upload(&stream);
    let proj = case.latent_projection(&stream);
    let queries = case.upload_queries(&stream);
    let query = case.query(&queries);
    let res = prefill(
        &kernels,
        &stream,
        &proj,
        &query,
        (&cache, &table),
        case.scale(),
    )
    .unwrap();
    let (out, lse) = on_host_rows(&res.out, &res.lse);
    let check = case.check();
    let mut start = 0;
    for (b, &s_q) in case.q_lens.iter().enumerate() {
        if s_q == 0 {
            continue;
        }
        let mq = case.sequence(start, s_q);
        let keys = case.batch.gather(b);
        let got = |i: usize, h: usize| {
            let row = (start + i) * heads + h;
            (out[row * 128..][..128].to_vec(), lse[h * n + start + i])
        };
        check.assert_rows((&mq, &keys), got, &format!("prefill seq {b}"));
        start += s_q;
    }
    // A chunk longer than what the cache holds, and a length per sequence missing.
    let too_long = [13usize, 25, 0, 0, 0];
    let bad = PrefillQuery {
        q_lens: &too_long,
        ..query
    };
    assert_invalid(
        prefill(&kernels, &stream, &proj, &bad, (&cache, &table), 0.1).map(|_| ()),
        "sequence 1 with 25 new tokens but 24 cached",
    );
    let short = PrefillQuery {
        q_lens: &case.q_lens[..4],
        ..bad
    };
    assert_invalid(
        prefill(&kernels, &stream, &proj, &short, (&cache, &table), 0.1).map(|_| ()),
        "4 query lengths for 5 sequences",
    );
}

pub fn absorbed_decode_rejects_a_head_count_that_does_not_match_the_weights() {
    let (stream, kernels) = setup();
    let cfg = config(4);
    let mut rng = Rng::new(27);
    let batch = PagedBatch::random(&mut rng, &cfg, (64, CacheFormat::Bf16), &[3], 0.5, true);
    let (cache, table) = batch.upload(&stream);
    let kv_b = stream.upload(&vec![bf16::ONE; 4 * 256 * 512]).unwrap();
    assert_invalid(
        LatentProjection::new(
            &config(3),
            stream.upload(&vec![bf16::ONE; 4 * 256 * 512]).unwrap(),
        ),
        "for 3 heads",
    );
    // Each check of kv_b_proj alone, with the size the config gives: no weights (0 heads),
    // a nope or a v width not a multiple of 16.
    for bad in [
        config(0),
        MlaConfig {
            qk_nope_head_dim: 120,
            ..config(1)
        },
        MlaConfig {
            v_head_dim: 120,
            ..config(1)
        },
    ] {
        let (nope, v) = (bad.qk_nope_head_dim, bad.v_head_dim);
        let len = bad.num_heads * (nope + v) * bad.kv_lora_rank;
        assert_invalid(
            LatentProjection::new(&bad, stream.upload(&vec![bf16::ONE; len]).unwrap()),
            &format!("for {} heads, nope {nope}, v {v},", bad.num_heads),
        );
    }
    let proj = LatentProjection::new(&cfg, kv_b).unwrap();
    // Queries of 3 heads against weights of 4.
    let qn = stream.upload(&vec![bf16::ONE; 3 * 128]).unwrap();
    let qp = stream.upload(&vec![bf16::ONE; 3 * 64]).unwrap();
    let query = LatentQuery {
        q_nope: qn.as_view(),
        q_pe: qp.as_view(),
        s_q: 1,
    };
    let params = DecodeParams {
        softmax_scale: 0.1,
        causal: false,
    };
    assert_invalid(
        decode(&kernels, &stream, &proj, &query, &cache, &table, params),
        "the heads of kv_b_proj",
    );
}

impl PagedBatch {
    /// A bf16 batch holding exactly `seqs[b]` (`[len, 576]` rows each), blocks dealt in
    /// order, NaN in unused slots and garbage in unused table entries.
    pub(crate) fn from_rows(cfg: &MlaConfig, block_size: usize, seqs: &[Vec<f64>]) -> Self {
        let row = cfg.cache_row();
        let lens: Vec<usize> = seqs.iter().map(|s| s.len() / row).collect();
        let max_blocks = lens
            .iter()
            .map(|l| l.div_ceil(block_size))
            .max()
            .unwrap_or(0)
            + 1;
        let blocks = lens.iter().map(|l| l.div_ceil(block_size)).sum::<usize>() + 1;
        let layout = CacheLayout::for_config(cfg, blocks, block_size, CacheFormat::Bf16);
        let mut rows = vec![f64::NAN; layout.slots() * row];
        let mut table = vec![2_147_480_000i32; lens.len() * max_blocks];
        let mut next = 0;
        for (b, s) in seqs.iter().enumerate() {
            for j in 0..lens[b].div_ceil(block_size) {
                table[b * max_blocks + j] = next;
                next += 1;
            }
            for (t, r) in s.chunks_exact(row).enumerate() {
                let slot =
                    table[b * max_blocks + t / block_size] as usize * block_size + t % block_size;
                rows[slot * row..][..row].copy_from_slice(r);
            }
        }
        let bytes = rows
            .iter()
            .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
            .collect();
        PagedBatch {
            layout,
            seq_lens: lens,
            max_blocks,
            table,
            rows,
            bytes,
        }
    }
}

/// Asserts the device rows of one sequence (`got(i, h)`: output row and LSE) within `b`.
fn assert_bounded(
    b: &AttentionBounds,
    (s_q, heads): (usize, usize),
    got: impl Fn(usize, usize) -> (Vec<f64>, f64),
    label: &str,
) {
    for i in 0..s_q {
        for h in 0..heads {
            let (out, lse) = got(i, h);
            for (c, g) in out.iter().enumerate() {
                let at = (i * heads + h) * 128 + c;
                let (x, tol) = (b.reference.out[at], b.out_tol[at]);
                assert!(
                    (g - x).abs() <= tol,
                    "{label}: query {i} head {h} [{c}]: {g} vs {x} (tol {tol:e})"
                );
            }
            let (x, tol) = (b.reference.lse[h * s_q + i], b.lse_tol[h * s_q + i]);
            if x.is_infinite() {
                assert_eq!(
                    lse,
                    f64::INFINITY,
                    "{label}: query {i} head {h}: an empty row"
                );
            } else {
                assert!(
                    (lse - x).abs() <= tol,
                    "{label}: query {i} head {h} lse {lse} vs {x}"
                );
            }
        }
    }
}

pub fn naive_prefill_and_the_lse_merge_match_the_naive_reference() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(29);
    // Whole lengths and new tokens, in blocks of 16 (as the absorbed prefill's case): a whole
    // prompt, a chunk after a prefix spanning blocks, nothing new, one token after a full
    // block, a chunk of one block's length across two blocks.
    let case = PrefillCase::random(&mut rng, 2, &[13, 24, 5, 17, 20], &[13, 6, 0, 1, 16]);
    let (cfg, full, lens, q_lens) = (&case.cfg, &case.batch, &case.lens, &case.q_lens);
    let (heads, n, scale) = (case.heads(), case.tokens(), case.scale());
    let proj = case.naive_projection(&stream);
    let queries = case.upload_queries(&stream);
    let query = case.query(&queries);
    let run = |batch: &PagedBatch, causal: bool| {
        let (cache, table) = batch.upload(&stream);
        let params = DecodeParams {
            softmax_scale: scale,
            causal,
        };
        prefill_naive(&kernels, &stream, &proj, &query, (&cache, &table), params).unwrap()
    };
    // The whole attention, and the chunked one: the new tokens over the cached prefix (no
    // mask) and over themselves (causal), each from a cache of only those rows, merged.
    let row = cfg.cache_row();
    let split = |b: usize| {
        let rows = full.gather(b);
        let at = (lens[b] - q_lens[b]) * row;
        (rows[..at].to_vec(), rows[at..].to_vec())
    };
    let (prefix, chunk): (Vec<_>, Vec<_>) = (0..lens.len()).map(split).unzip();
    let whole = run(full, true);
    let parts = [
        run(&PagedBatch::from_rows(cfg, 16, &prefix), false),
        run(&PagedBatch::from_rows(cfg, 16, &chunk), true),
    ];
    let merged = merge_attention(&kernels, &stream, &parts[0], &parts[1], heads).unwrap();
    let check = case.check();
    let mut start = 0;
    for (b, &s_q) in q_lens.iter().enumerate() {
        if s_q == 0 {
            continue;
        }
        let mq = case.sequence(start, s_q);
        let want = check.naive(&mq, &full.gather(b), Mask::Causal);
        let want_a = check.naive(&mq, &prefix[b], Mask::None);
        let want_b = check.naive(&mq, &chunk[b], Mask::Causal);
        let want_m = merged_bounds(&want_a, &want_b, want.reference.clone());
        for (label, got, bounds) in [
            ("whole", on_host_rows(&whole.out, &whole.lse), &want),
            (
                "prefix part",
                on_host_rows(&parts[0].out, &parts[0].lse),
                &want_a,
            ),
            (
                "chunk part",
                on_host_rows(&parts[1].out, &parts[1].lse),
                &want_b,
            ),
            ("merged", on_host_rows(&merged.out, &merged.lse), &want_m),
        ] {
            let (out, lse) = &got;
            let rows = |i: usize, h: usize| {
                let r = (start + i) * heads + h;
                (out[r * 128..][..128].to_vec(), lse[h * n + start + i])
            };
            assert_bounded(bounds, (s_q, heads), rows, &format!("{label}, seq {b}"));
        }
        start += s_q;
    }
    // Shapes that do not fit: partials of different sizes, a chunk longer than its causal
    // cache. (An FP8 cache: `mla_fp8_cases`.)
    let params = DecodeParams {
        softmax_scale: scale,
        causal: true,
    };
    let one = run(&PagedBatch::from_rows(cfg, 16, &prefix), false);
    let short = PrefillQuery {
        q_lens: &[1, 0, 0, 0, 0],
        q_nope: queries.0.slice(..heads * 128).unwrap(),
        q_pe: queries.1.slice(..heads * 64).unwrap(),
    };
    let (cache, table) = full.upload(&stream);
    let tiny = prefill_naive(&kernels, &stream, &proj, &short, (&cache, &table), params).unwrap();
    assert_invalid(
        merge_attention(&kernels, &stream, &one, &tiny, heads).map(|_| ()),
        "of the same shape",
    );
    let (cache, table) = PagedBatch::from_rows(cfg, 16, &chunk).upload(&stream);
    let too_long = PrefillQuery {
        q_lens: &[14, 6, 0, 1, 16],
        ..query
    };
    assert_invalid(
        prefill_naive(
            &kernels,
            &stream,
            &proj,
            &too_long,
            (&cache, &table),
            params,
        )
        .map(|_| ()),
        "sequence 0 with 14 new tokens but 13 cached",
    );
}

impl PagedBatch {
    /// Sets latent value `col` of token `t` of sequence `b` to +Inf (bf16 and f64 alike).
    fn poison(&mut self, b: usize, t: usize, col: usize) {
        let bs = self.layout.block_size;
        let slot = self.table[b * self.max_blocks + t / bs] as usize * bs + t % bs;
        self.rows[slot * self.layout.row() + col] = f64::INFINITY;
        let at = slot * self.layout.row_bytes() + 2 * col;
        self.bytes[at..at + 2].copy_from_slice(&bf16::INFINITY.to_le_bytes());
    }
}

/// The latent column where the absorbed query `q_abs [heads, 576]` of one token is most
/// positive for head 0 and most negative for head 1: an Inf there gives head 0 a score of +Inf
/// (the f64 reference: NaN output and LSE) and head 1 a score of -Inf (weight 0, but 0·Inf =
/// NaN output; the LSE is the other keys').
fn inf_column(q_abs: &[f64]) -> usize {
    (0..512)
        .max_by(|&a, &b| {
            let m = |c: usize| q_abs[c].min(-q_abs[576 + c]);
            m(a).total_cmp(&m(b))
        })
        .unwrap()
}

/// Causal prefill where each sequence's last key holds +Inf in its latent: the key is visible
/// to the last new token only. The f64 reference gives the other tokens exactly what it gives
/// without that key (a masked key does not contribute), and the last token what f64 gives:
/// NaN output; in the absorbed form LSE NaN for a +Inf score and the other keys' LSE for a -Inf
/// one, in the naive form (whose projected key holds Inf of both signs) LSE NaN for every head.
/// Each device form must agree with its own reference form; before chunks stopped at the rows'
/// causal limits, the cube's P·V gave 0·Inf = NaN to every row the key was masked for.
pub fn causal_prefill_keeps_an_inf_key_from_the_rows_it_is_masked_for() {
    let (stream, kernels) = setup();
    let mut rng = Rng::new(30);
    // A whole prompt in one block, and a chunk after a prefix across two blocks.
    let (lens, q_lens) = ([13usize, 20], [13usize, 6]);
    let mut case = PrefillCase::random(&mut rng, 2, &lens, &q_lens);
    let (heads, n, scale) = (case.heads(), case.tokens(), case.scale());
    let row = case.cfg.cache_row();
    let mut start = 0;
    for (b, &s_q) in q_lens.iter().enumerate() {
        let last = case.sequence(start + s_q - 1, 1);
        let col = inf_column(&absorb_query(&case.cfg, &case.kv_b, &last).unwrap());
        case.batch.poison(b, lens[b] - 1, col);
        start += s_q;
    }
    let (cache, table) = case.batch.upload(&stream);
    let queries = case.upload_queries(&stream);
    let query = case.query(&queries);
    let absorbed = prefill(
        &kernels,
        &stream,
        &case.latent_projection(&stream),
        &query,
        (&cache, &table),
        scale,
    )
    .unwrap();
    let naive_proj = case.naive_projection(&stream);
    let params = DecodeParams {
        softmax_scale: scale,
        causal: true,
    };
    let naive = prefill_naive(
        &kernels,
        &stream,
        &naive_proj,
        &query,
        (&cache, &table),
        params,
    )
    .unwrap();
    let (absorbed, naive) = (
        on_host_rows(&absorbed.out, &absorbed.lse),
        on_host_rows(&naive.out, &naive.lse),
    );
    let check = case.check();
    let mut start = 0;
    for (b, &s_q) in q_lens.iter().enumerate() {
        let keys = case.batch.gather(b);
        let clean = &keys[..(lens[b] - 1) * row];
        let mq = case.sequence(start, s_q);
        let want = absorbed_attention(&check.attention(), &mq, &keys).unwrap();
        // The tokens before the last, over the keys without the poisoned one: the same causal
        // limits, and exactly the reference's values with it.
        let head = case.sequence(start, s_q - 1);
        let want_head = absorbed_attention(&check.attention(), &head, clean).unwrap();
        assert_eq!(want_head.out[..], want.out[..want_head.out.len()]);
        let rows = |(out, lse): &(Vec<f64>, Vec<f64>), i: usize, h: usize| {
            let r = (start + i) * heads + h;
            (out[r * 128..][..128].to_vec(), lse[h * n + start + i])
        };
        let label = format!("seq {b}, the tokens the Inf key is masked for");
        check.assert_rows(
            (&head, clean),
            |i, h| rows(&absorbed, i, h),
            &format!("absorbed, {label}"),
        );
        let bounds = check.naive(&head, clean, Mask::Causal);
        assert_bounded(
            &bounds,
            (s_q - 1, heads),
            |i, h| rows(&naive, i, h),
            &format!("naive, {label}"),
        );
        // The last token sees the Inf: NaN output rows in f64 and on the device; its LSE NaN
        // exactly where f64's is, else (a -Inf score adds e^-inf = 0) within the bound of
        // the keys without it.
        let i = s_q - 1;
        let last = case.sequence(start + i, 1);
        let want_last = absorbed_attention(&check.attention(), &last, clean).unwrap();
        for h in 0..heads {
            let x = want.lse[h * s_q + i];
            for (form, got) in [("absorbed", &absorbed), ("naive", &naive)] {
                let (out, lse) = rows(got, i, h);
                let want_row = &want.out[(i * heads + h) * 128..][..128];
                assert!(want_row.iter().all(|v| v.is_nan()), "f64: seq {b} head {h}");
                assert!(
                    out.iter().all(|v| v.is_nan()),
                    "{form}: seq {b} head {h}: {out:?}"
                );
                if form == "absorbed" {
                    assert_eq!(
                        lse.is_nan(),
                        x.is_nan(),
                        "{form}: seq {b} head {h} lse {lse}"
                    );
                }
            }
            if !x.is_nan() {
                assert_eq!(x, want_last.lse[h], "seq {b} head {h}: a -Inf score adds 0");
            }
        }
        assert!(
            want.lse[i].is_nan() && !want.lse[s_q + i].is_nan(),
            "seq {b}: head 0 scores +Inf, head 1 -Inf"
        );
        check.assert_rows(
            (&last, clean),
            |_, h| {
                let lse = rows(&absorbed, i, h).1;
                (Vec::new(), if h == 0 { want_last.lse[0] } else { lse })
            },
            &format!("absorbed, seq {b}, the last token's LSE"),
        );
        // The naive form's LSE against the naive reference's: that form projects the Inf
        // latent to k_nope values of both signs (W_UK's column has both), so every head's
        // score is +Inf − Inf = NaN in f64 too, where the absorbed form keeps head 1's -Inf.
        let naive_want = naive_attention(&check.attention(), &mq, &keys).unwrap();
        for h in 0..heads {
            let (x, lse) = (naive_want.lse[h * s_q + i], rows(&naive, i, h).1);
            assert!(x.is_nan(), "f64 naive: seq {b} head {h} lse {x}");
            assert!(lse.is_nan(), "naive: seq {b} head {h} lse {lse}, f64 {x}");
        }
        start += s_q;
    }
}
