//! What the MLA families share: paged latent caches built on the host, and the rows of a
//! comparison (output and LSE, each element with its own bound).

use ascend_npu::Stream;
use ascend_npu::ops::mla::{BlockTable, BlockTableSpec, CacheFormat, CacheLayout, LatentCache};
use ascend_npu::reference::mla::{MlaConfig, pack_fp8_row, unpack_fp8_row};
use half::bf16;

use crate::check::{self, BF16, Outcome};

pub(super) fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

pub(super) fn reference(e: impl std::fmt::Display) -> String {
    format!("the reference refused the case: {e}")
}

/// Sequences in a paged cache: blocks dealt in reverse order (so the table's indirection
/// matters), every slot no sequence uses all bits set (NaN in bf16, in E4M3 codes and in
/// the f32 scales), so a kernel that reads one shows it.
pub(super) struct Paged {
    pub layout: CacheLayout,
    pub table: Vec<i32>,
    pub max_blocks: usize,
    pub seq_lens: Vec<usize>,
    /// Each sequence's `[len, row]` values as the cache holds them (FP8: dequantized).
    pub seqs: Vec<Vec<f64>>,
    /// `[slots, row]`: the same values by slot, NaN where unused (the reference's paged view).
    pub rows: Vec<f64>,
    bytes: Vec<u8>,
}

impl Paged {
    /// A cache of `format` holding `seqs` (`[len, cache_row]` values each, bf16-exact).
    pub fn new(
        cfg: &MlaConfig,
        block_size: usize,
        format: CacheFormat,
        seqs: &[Vec<f64>],
    ) -> Result<Paged, String> {
        let row = cfg.cache_row();
        let seq_lens: Vec<usize> = seqs.iter().map(|s| s.len() / row).collect();
        let blocks_of = |l: &usize| l.div_ceil(block_size);
        let max_blocks = seq_lens.iter().map(blocks_of).max().unwrap_or(0) + 1;
        let used: usize = seq_lens.iter().map(blocks_of).sum();
        let layout = CacheLayout::for_config(cfg, used + 1, block_size, format);
        let rb = layout.row_bytes();
        let mut table = vec![-1i32; seq_lens.len() * max_blocks];
        let mut rows = vec![f64::NAN; layout.slots() * row];
        let mut bytes = vec![0xFFu8; layout.slots() * rb];
        let mut stored_seqs = Vec::with_capacity(seqs.len());
        let mut next = used;
        for (b, seq) in seqs.iter().enumerate() {
            for j in 0..seq_lens[b].div_ceil(block_size) {
                next -= 1;
                table[b * max_blocks + j] = next as i32;
            }
            let mut stored_seq = Vec::with_capacity(seq.len());
            for (t, values) in seq.chunks_exact(row).enumerate() {
                let slot =
                    table[b * max_blocks + t / block_size] as usize * block_size + t % block_size;
                let (stored, packed) = match format {
                    CacheFormat::Fp8 => {
                        let packed = pack_fp8_row(cfg, values).map_err(reference)?;
                        (unpack_fp8_row(cfg, &packed).map_err(reference)?, packed)
                    }
                    _ => (
                        values.to_vec(),
                        values
                            .iter()
                            .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
                            .collect(),
                    ),
                };
                rows[slot * row..][..row].copy_from_slice(&stored);
                bytes[slot * rb..][..rb].copy_from_slice(&packed);
                stored_seq.extend(stored);
            }
            stored_seqs.push(stored_seq);
        }
        Ok(Paged {
            layout,
            table,
            max_blocks,
            seq_lens,
            seqs: stored_seqs,
            rows,
            bytes,
        })
    }

    /// The cache and its block table on the device.
    pub fn upload(&self, stream: &Stream) -> Result<(LatentCache, BlockTable), String> {
        let mut cache = LatentCache::new(stream, self.layout).map_err(device)?;
        cache
            .data_mut()
            .copy_from_host(&self.bytes)
            .map_err(device)?;
        let spec = BlockTableSpec {
            table: &self.table,
            max_blocks: self.max_blocks,
            seq_lens: &self.seq_lens,
        };
        let table = BlockTable::new(stream, &self.layout, spec).map_err(device)?;
        Ok((cache, table))
    }
}

/// `len` random values uniform in ±`amp`, rounded to bf16 (the device and the reference see
/// the same values).
pub(super) fn bf16_exact(rng: &mut crate::rng::CaseRng, len: usize, amp: f64) -> Vec<f64> {
    check::widen(&check::round_to::<bf16>(&rng.vec(len, amp)))
}

/// The output and LSE elements of a comparison, each with its bound.
#[derive(Default)]
pub(super) struct Rows {
    out: [Vec<f64>; 3],
    lse: [Vec<f64>; 3],
}

impl Rows {
    /// One output element: the device's, the reference's, the bound.
    pub fn out(&mut self, got: f64, want: f64, bound: f64) {
        for (v, x) in self.out.iter_mut().zip([got, want, bound]) {
            v.push(x);
        }
    }

    /// One LSE: an infinite reference LSE (no visible key) must be met exactly.
    pub fn lse(&mut self, got: f64, want: f64, bound: f64) {
        let bound = if want.is_infinite() { 0.0 } else { bound };
        for (v, x) in self.lse.iter_mut().zip([got, want, bound]) {
            v.push(x);
        }
    }

    /// The two rows of the case: output, then LSE (`case lse`).
    pub fn outcomes(
        &self,
        (op, case): (&str, &str),
        out_source: &str,
        lse_source: &str,
    ) -> Vec<Outcome> {
        let row = |[got, want, bound]: &[Vec<f64>; 3], case: &str, source: &str| {
            check::within(op, case, got, want, |i| bound[i], source)
        };
        vec![
            row(&self.out, case, out_source),
            row(&self.lse, &format!("{case} lse"), lse_source),
        ]
    }

    /// The output's relative L2 error (`case rel L2`) within the probabilistic model of
    /// `roundings` bf16 roundings on the path (Higham & Mary 2019: independent, mean zero,
    /// each relative RMS u/√3, adding in quadrature: √R·u/√3), doubled for the projections
    /// between them. The per-element bounds above hold in the worst case and are far looser
    /// for long paths; this row is what a wrong mask, scale or row would fail.
    pub fn rel_l2(&self, (op, case): (&str, &str), roundings: usize) -> Outcome {
        let tolerance = 2.0 * (roundings as f64 / 3.0).sqrt() * BF16.u;
        check::rel_l2(
            op,
            &format!("{case} rel L2"),
            &self.out[0],
            &self.out[1],
            tolerance,
            &format!("{roundings} bf16 roundings, independent: 2·√{roundings}/√3·2^-8"),
        )
    }
}
