//! `aclnnMlaPrologV3WeightNz`: DeepSeek's MLA prolog as one vendor operator (cann-api-facts
//! §4.8, deepseek-ops §3.7), and the FRACTAL_NZ packing its weights need.
//!
//! Only the non-quantised form is wrapped: BF16 everywhere, the three projection weights in
//! FRACTAL_NZ, a paged cache of BF16 rows. The op's documented limits fix the shapes to
//! DeepSeek's (Hcq 1536, Hckv 512, D 128, Dr 64, He in a list, N a power of two up to 128);
//! the simulator rejects anything else, as the hardware does.
//!
//! Two layouts differ from the reference's (`reference::mla`) and a caller must follow them:
//! * `weightUqQr` holds all heads' `W_UQ` columns, then all heads' `W_QR` columns
//!   (`[W_UQ | W_QR]`, design doc formula 11), not DeepSeek's per-head `[nope; rope]` rows;
//! * the op's RoPE writes each rotated pair split as `[evens, odds]` (formula 15), so `q_R`
//!   and the cached `k_R` are the interleaved rotation permuted; their dot products are the
//!   reference's. `ropeCos`/`ropeSin` rows are `[cos θ_0..θ_31, cos θ_0..θ_31]`.

use std::ffi::CStr;

use super::{AclTensor, MlaPrologV3WeightNz, Plan};
use crate::error::{Error, Result};
use crate::runtime::Stream;

/// `cacheModeOptional` of `aclnnMlaPrologV3WeightNz`: how the caches are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheMode {
    /// Paged, `[blocks, block_size, 1, d]` rows, `cacheIndex` a row per token (the default).
    PaBsnd,
    /// Paged, each block in FRACTAL_NZ.
    PaNz,
    /// Paged, `cacheIndex` a block per `block_size` tokens.
    PaBlkBsnd,
    /// As `PaBlkBsnd`, blocks in FRACTAL_NZ.
    PaBlkNz,
    /// Contiguous `[B, S, 1, d]`.
    Bsnd,
    /// Contiguous `[T, 1, d]`.
    Tnd,
}

impl CacheMode {
    /// The string the C call takes.
    pub const fn as_cstr(self) -> &'static CStr {
        match self {
            CacheMode::PaBsnd => c"PA_BSND",
            CacheMode::PaNz => c"PA_NZ",
            CacheMode::PaBlkBsnd => c"PA_BLK_BSND",
            CacheMode::PaBlkNz => c"PA_BLK_NZ",
            CacheMode::Bsnd => c"BSND",
            CacheMode::Tnd => c"TND",
        }
    }
}

/// Packs a row-major `[k, n]` matrix of 2-byte elements into FRACTAL_NZ: 16×16 fractals,
/// each row-major ("Z"), the fractals column-major ("N"), i.e. storage `[n/16, k/16, 16, 16]`.
///
/// ```
/// let rows: Vec<u16> = (0..32 * 16).map(|i| i as u16).collect();
/// let nz = ascend_npu::aclnn::pack_nz(&rows, 32, 16)?;
/// // Column block 0 holds row blocks 0 and 1 one after the other.
/// assert_eq!(nz, rows);
/// # Ok::<(), ascend_npu::Error>(())
/// ```
pub fn pack_nz<T: Copy>(rows: &[T], k: usize, n: usize) -> Result<Vec<T>> {
    if k % 16 != 0 || n % 16 != 0 || k.checked_mul(n) != Some(rows.len()) {
        return Err(Error::invalid(
            format!("{} values as a [{k}, {n}] matrix", rows.len()),
            "k·n values with k and n multiples of 16",
        ));
    }
    let mut out = Vec::with_capacity(rows.len());
    for n1 in 0..n / 16 {
        for k1 in 0..k / 16 {
            for k0 in 0..16 {
                let start = (k1 * 16 + k0) * n + n1 * 16;
                out.extend_from_slice(&rows[start..start + 16]);
            }
        }
    }
    Ok(out)
}

/// The tensors of one `aclnnMlaPrologV3WeightNz` call (T tokens, N heads, He hidden).
pub struct MlaPrologTensors<'t, 'a> {
    /// `tokenX [T, He]` BF16.
    pub token_x: &'t AclTensor<'a>,
    /// `weightDq`, FRACTAL_NZ `[He, 1536]`.
    pub weight_dq: &'t AclTensor<'a>,
    /// `weightUqQr`, FRACTAL_NZ `[1536, N·192]`: all heads' `W_UQ`, then all heads' `W_QR`.
    pub weight_uq_qr: &'t AclTensor<'a>,
    /// `weightUk [N, 128, 512]`.
    pub weight_uk: &'t AclTensor<'a>,
    /// `weightDkvKr`, FRACTAL_NZ `[He, 576]`: `W_DKV` then `W_KR` columns.
    pub weight_dkv_kr: &'t AclTensor<'a>,
    /// `rmsnormGammaCq [1536]`.
    pub gamma_cq: &'t AclTensor<'a>,
    /// `rmsnormGammaCkv [512]`.
    pub gamma_ckv: &'t AclTensor<'a>,
    /// `ropeSin [T, 64]`.
    pub rope_sin: &'t AclTensor<'a>,
    /// `ropeCos [T, 64]`.
    pub rope_cos: &'t AclTensor<'a>,
    /// `cacheIndex [T]` INT64: each token's cache row.
    pub cache_index: &'t AclTensor<'a>,
    /// `kvCacheRef [blocks, block_size, 1, 512]`, updated in place.
    pub kv_cache: &'t mut AclTensor<'a>,
    /// `krCacheRef [blocks, block_size, 1, 64]`, updated in place.
    pub kr_cache: &'t mut AclTensor<'a>,
    /// `queryOut [T, N, 512]`: `q_N`, the absorbed query.
    pub query: &'t mut AclTensor<'a>,
    /// `queryRopeOut [T, N, 64]`: the rotated `q_R`.
    pub query_rope: &'t mut AclTensor<'a>,
}

/// The scalar attributes of a non-quantised call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlaPrologAttrs {
    /// `rmsnormEpsilonCq`.
    pub eps_cq: f64,
    /// `rmsnormEpsilonCkv`.
    pub eps_ckv: f64,
    /// `cacheModeOptional`.
    pub cache_mode: CacheMode,
    /// `qcQrScale` (α_q, multiplies `c_Q`).
    pub qc_qr_scale: f64,
    /// `kcScale` (α_kv, multiplies the cached latent).
    pub kc_scale: f64,
}

/// Queues `aclnnMlaPrologV3WeightNz` on `stream` without quantisation (weightQuantMode,
/// kvCacheQuantMode and queryQuantMode 0, no query-norm output).
pub fn mla_prolog_v3(
    stream: &Stream,
    t: MlaPrologTensors<'_, '_>,
    a: &MlaPrologAttrs,
) -> Result<()> {
    let null = std::ptr::null::<ascend_sys::aclTensor>;
    let (kv, kr) = (t.kv_cache.as_mut_ptr(), t.kr_cache.as_mut_ptr());
    let (query, query_rope) = (t.query.as_ptr(), t.query_rope.as_ptr());
    let mode = a.cache_mode.as_cstr();
    let plan = Plan::new::<MlaPrologV3WeightNz>(
        stream,
        &[
            t.token_x,
            t.weight_dq,
            t.weight_uq_qr,
            t.weight_uk,
            t.weight_dkv_kr,
            t.gamma_cq,
            t.gamma_ckv,
            t.rope_sin,
            t.rope_cos,
            t.cache_index,
            &*t.kv_cache,
            &*t.kr_cache,
            &*t.query,
            &*t.query_rope,
        ],
        |f, ws, exec| {
            // SAFETY: live tensor handles; NULL for every optional quantisation input and
            // output; `mode` is a static NUL-terminated string the op only reads (the C
            // prototype declares it `char*`); out-pointers from Plan::new.
            unsafe {
                f(
                    t.token_x.as_ptr(),
                    t.weight_dq.as_ptr(),
                    t.weight_uq_qr.as_ptr(),
                    t.weight_uk.as_ptr(),
                    t.weight_dkv_kr.as_ptr(),
                    t.gamma_cq.as_ptr(),
                    t.gamma_ckv.as_ptr(),
                    t.rope_sin.as_ptr(),
                    t.rope_cos.as_ptr(),
                    kv,
                    kr,
                    t.cache_index.as_ptr(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    null(),
                    a.eps_cq,
                    a.eps_ckv,
                    mode.as_ptr().cast_mut(),
                    false,
                    0,
                    0,
                    0,
                    0,
                    0,
                    128,
                    1.0,
                    a.qc_qr_scale,
                    a.kc_scale,
                    query,
                    query_rope,
                    null(),
                    null(),
                    null(),
                    ws,
                    exec,
                )
            }
        },
    )?;
    plan.launch()
}

/// The shapes the prolog weights are packed for: DeepSeek's widths, a head count and a
/// hidden size (the op's limits decide whether the vendor op takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrologShape {
    /// He.
    pub hidden: usize,
    /// N, query heads.
    pub heads: usize,
    /// Hcq, `q_lora_rank`.
    pub q_lora: usize,
    /// Hckv, `kv_lora_rank`.
    pub kv_lora: usize,
    /// D, `qk_nope_head_dim`.
    pub nope: usize,
    /// Dr, `qk_rope_head_dim`.
    pub rope: usize,
    /// `v_head_dim` (only to find `W_UK` in `kv_b_proj`).
    pub v: usize,
}

/// The op's four weight tensors, in the layouts its parameters take.
#[derive(Clone, Debug, PartialEq)]
pub struct PrologWeights<T> {
    /// `weightDq`: `q_a_proj`ᵀ `[He, Hcq]`, FRACTAL_NZ.
    pub weight_dq: Vec<T>,
    /// `weightUqQr`: `[Hcq, N·(D+Dr)]` FRACTAL_NZ, all heads' nope columns then all heads'
    /// rope columns of `q_b_proj`ᵀ.
    pub weight_uq_qr: Vec<T>,
    /// `weightUk [N, D, Hckv]`: the `W_UK` rows of `kv_b_proj`.
    pub weight_uk: Vec<T>,
    /// `weightDkvKr`: `kv_a_proj_with_mqa`ᵀ `[He, Hckv+Dr]`, FRACTAL_NZ.
    pub weight_dkv_kr: Vec<T>,
}

/// Packs DeepSeek's checkpoint tensors (row-major `[out, in]`, as `nn.Linear` stores them:
/// `q_a_proj [Hcq, He]`, `q_b_proj [N·(D+Dr), Hcq]`, `kv_a_proj_with_mqa [Hckv+Dr, He]`,
/// `kv_b_proj [N·(D+Dv), Hckv]`) into the op's layouts.
pub fn pack_prolog_weights<T: Copy>(
    s: PrologShape,
    q_a_proj: &[T],
    q_b_proj: &[T],
    kv_a_proj_with_mqa: &[T],
    kv_b_proj: &[T],
) -> Result<PrologWeights<T>> {
    let qk = s.nope + s.rope;
    let check = |what: &str, v: &[T], rows: usize, cols: usize| {
        if rows.checked_mul(cols) == Some(v.len()) {
            Ok(())
        } else {
            Err(Error::invalid(
                format!("{what} of {} values", v.len()),
                format!("[{rows}, {cols}] for {s:?}"),
            ))
        }
    };
    check("q_a_proj", q_a_proj, s.q_lora, s.hidden)?;
    check("q_b_proj", q_b_proj, s.heads * qk, s.q_lora)?;
    check(
        "kv_a_proj_with_mqa",
        kv_a_proj_with_mqa,
        s.kv_lora + s.rope,
        s.hidden,
    )?;
    check("kv_b_proj", kv_b_proj, s.heads * (s.nope + s.v), s.kv_lora)?;
    let transpose = |w: &[T], rows: usize, cols: usize| -> Vec<T> {
        (0..cols)
            .flat_map(|c| (0..rows).map(move |r| (r, c)))
            .map(|(r, c)| w[r * cols + c])
            .collect()
    };
    // q_b_proj's rows in the op's column order: nope rows of every head, then rope rows.
    let order = (0..s.heads)
        .flat_map(|h| (0..s.nope).map(move |d| h * qk + d))
        .chain((0..s.heads).flat_map(|h| (0..s.rope).map(move |r| h * qk + s.nope + r)));
    let uq_qr_rows: Vec<T> = order
        .flat_map(|row| {
            q_b_proj[row * s.q_lora..(row + 1) * s.q_lora]
                .iter()
                .copied()
        })
        .collect();
    let weight_uk = (0..s.heads)
        .flat_map(|h| {
            let start = h * (s.nope + s.v) * s.kv_lora;
            kv_b_proj[start..start + s.nope * s.kv_lora].iter().copied()
        })
        .collect();
    Ok(PrologWeights {
        weight_dq: pack_nz(&transpose(q_a_proj, s.q_lora, s.hidden), s.hidden, s.q_lora)?,
        weight_uq_qr: pack_nz(
            &transpose(&uq_qr_rows, s.heads * qk, s.q_lora),
            s.q_lora,
            s.heads * qk,
        )?,
        weight_uk,
        weight_dkv_kr: pack_nz(
            &transpose(kv_a_proj_with_mqa, s.kv_lora + s.rope, s.hidden),
            s.hidden,
            s.kv_lora + s.rope,
        )?,
    })
}

/// `ropeCos` and `ropeSin` rows `[T, 2·pairs]` for tokens at `positions`, in the op's layout
/// `[cos(p·f_0) .. cos(p·f_{pairs−1}), cos(p·f_0) .. cos(p·f_{pairs−1})]`, each scaled by
/// `amplitude` (YaRN's cos/sin factor).
pub fn prolog_rope_tables(
    inv_freq: &[f64],
    amplitude: f64,
    positions: &[usize],
) -> (Vec<f64>, Vec<f64>) {
    let mut cos = Vec::with_capacity(positions.len() * 2 * inv_freq.len());
    let mut sin = Vec::with_capacity(cos.capacity());
    for &p in positions {
        for _ in 0..2 {
            for &f in inv_freq {
                let (s, c) = (p as f64 * f).sin_cos();
                cos.push(c * amplitude);
                sin.push(s * amplitude);
            }
        }
    }
    (cos, sin)
}
