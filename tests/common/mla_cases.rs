//! MLA on our own kernels against `reference::mla`: the cases of `mla_kernels_sim.rs` and of
//! its hardware twins `mla_kernels_hardware.rs`.

use ascend_npu::kernels::Kernels;
use ascend_npu::ops::mla::{
    BlockTable, BlockTableSpec, CacheFormat, CacheLayout, CacheWriteInput, LatentCache, Positions,
    RopeTable, SlotMapping, write_cache,
};
use ascend_npu::reference::mla::{MlaConfig, Rope, pack_fp8_row, rms_norm, unpack_fp8_row};
use ascend_npu::{Device, Error, Stream};
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
    // Nothing was written by the rejected calls.
    assert!(cache.data().to_vec().unwrap().iter().all(|&b| b == 0));
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
