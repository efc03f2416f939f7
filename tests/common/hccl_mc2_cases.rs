//! The low-latency dispatch and combine on the MC2 operators (an A3 SoC, H ≥ 1024, bf16):
//! the same results as the portable all-to-all-v path and the f64 reference on 2, 4 and 8
//! ranks, within the orders the MC2 documentation leaves open.

use ascend_npu::Stream;
use ascend_npu::ops::ep::{
    EpConfig, EpShape, EpTransport, Payload, Tokens, low_latency_combine, low_latency_dispatch,
    low_latency_dispatch_int8, low_latency_dispatch_with,
};
use ascend_npu::reference::ep as reference;
use half::bf16;

use super::Rng;
use super::ranks::{on_ranks, rank_counts};

/// The smallest hidden size the MC2 ops take on A3.
pub const HIDDEN: usize = 1024;
const TOP_K: usize = 3;

fn shape(ranks: u32) -> EpShape {
    EpShape {
        config: EpConfig {
            num_ranks: ranks as usize,
            num_experts: 2 * ranks as usize,
        },
        hidden: HIDDEN,
        top_k: TOP_K,
    }
}

/// Rank `r`'s tokens: `x [T, H]` bf16, distinct ids with some −1 (rank 1 has no tokens),
/// weights.
fn host(shape: &EpShape, rank: u32, seed: u64) -> (Vec<bf16>, Vec<i32>, Vec<f32>) {
    let mut rng = Rng::new(seed * 104_729 + rank as u64);
    let t = if rank == 1 { 0 } else { 2 + rank as usize % 3 };
    let e = shape.config.num_experts as u64;
    let x = (0..t * HIDDEN)
        .map(|_| bf16::from_f32(rng.f32() * 2.0))
        .collect();
    let mut ids = Vec::new();
    for tok in 0..t {
        let mut chosen: Vec<i32> = Vec::new();
        while chosen.len() < TOP_K {
            let pick = if tok == 1 && chosen.len() == 2 {
                -1
            } else {
                (rng.next_u64() % e) as i32
            };
            if pick < 0 || !chosen.contains(&pick) {
                chosen.push(pick);
            }
        }
        ids.extend(chosen);
    }
    let w = (0..t * TOP_K).map(|_| rng.f32().abs() + 0.1).collect();
    (x, ids, w)
}

/// One rank's results of one transport: receive counts, each expert's valid rows (sorted,
/// since MC2 leaves their order open) and the combine of `y = 2·x` (exact in bf16).
type Got = (Vec<usize>, Vec<Vec<Vec<u16>>>, Vec<bf16>, EpTransport);

fn run(
    stream: &Stream,
    comm: &ascend_npu::runtime::comm::Comm,
    shape: &EpShape,
    data: &(Vec<bf16>, Vec<i32>, Vec<f32>),
    transport: EpTransport,
    max_tokens: usize,
) -> Got {
    let x = stream.upload(&data.0).unwrap();
    let ids = stream.upload(&data.1).unwrap();
    let w = stream.upload(&data.2).unwrap();
    let tokens = Tokens {
        x: Payload::Bf16(&x),
        topk_idx: &ids,
        topk_weights: &w,
    };
    let recv = match transport {
        EpTransport::Auto => low_latency_dispatch(comm, stream, shape, tokens, max_tokens),
        EpTransport::Portable => {
            low_latency_dispatch_with(comm, stream, shape, tokens, max_tokens, transport)
        }
    }
    .unwrap();
    let rows = recv.x.bf16().unwrap().to_vec().unwrap();
    let slab = recv.handle.slab_rows();
    let mut y = vec![bf16::NAN; rows.len()];
    let mut valid = Vec::new();
    for (e, &n) in recv.recv_count.iter().enumerate() {
        let part = e * slab * HIDDEN..(e * slab + n) * HIDDEN;
        for (d, s) in y[part.clone()].iter_mut().zip(&rows[part.clone()]) {
            *d = bf16::from_f32(2.0 * s.to_f32());
        }
        let mut sorted: Vec<Vec<u16>> = rows[part]
            .chunks(HIDDEN)
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        sorted.sort();
        valid.push(sorted);
    }
    let y = stream.upload(&y).unwrap();
    let out = low_latency_combine(comm, stream, &recv.handle, &y, &w).unwrap();
    let used = recv.handle.transport();
    (recv.recv_count, valid, out.to_vec().unwrap(), used)
}

pub fn mc2_path_equals_portable_path_and_reference() {
    for n in rank_counts(&[2, 4, 8]) {
        let shape = shape(n);
        let data: Vec<_> = (0..n).map(|r| host(&shape, r, 3)).collect();
        let max_tokens = 5;
        let got = on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let mc2 = run(
                stream,
                comm,
                &shape,
                &data[r],
                EpTransport::Auto,
                max_tokens,
            );
            let portable = run(
                stream,
                comm,
                &shape,
                &data[r],
                EpTransport::Portable,
                max_tokens,
            );
            (mc2, portable)
        });
        let inputs = reference_inputs(&data);
        let refs = reference_tokens(&inputs);
        let masked = reference::low_latency_dispatch(&shape, &refs, max_tokens).unwrap();
        let y: Vec<Vec<f64>> = masked
            .iter()
            .map(|m| m.x.iter().map(|v| 2.0 * v).collect())
            .collect();
        let want = reference::low_latency_combine(&shape, &refs, &masked, &y).unwrap();
        for (r, (mc2, portable)) in got.iter().enumerate() {
            assert_eq!(
                mc2.3,
                EpTransport::Auto,
                "{n} ranks: rank {r} took the MC2 ops"
            );
            assert_eq!(portable.3, EpTransport::Portable);
            assert_eq!(mc2.0, portable.0, "{n} ranks, rank {r}: receive counts");
            assert_eq!(
                mc2.0, masked[r].recv_count,
                "{n} ranks, rank {r}: vs reference"
            );
            assert_eq!(
                mc2.1, portable.1,
                "{n} ranks, rank {r}: the rows each expert got"
            );
            // Both sum Σ_k w_k·y_k in fp32 in k order and round once: bit for bit.
            let bits = |v: &[bf16]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&mc2.2),
                bits(&portable.2),
                "{n} ranks, rank {r}: combine"
            );
            for (i, (&g, &w)) in mc2.2.iter().zip(&want[r]).enumerate() {
                // ≤ K products and sums in fp32 (each within 2^-24 of Σ|w·y| ≤ K·1.1·2·2),
                // then one bf16 rounding (2^-8 relative).
                let bound = 2f64.powi(-8) * w.abs()
                    + 2.0 * TOP_K as f64 * 2f64.powi(-24) * 4.4 * TOP_K as f64;
                assert!(
                    (g.to_f64() - w).abs() <= bound,
                    "rank {r} [{i}]: {g} vs {w}"
                );
            }
        }
    }
}

/// The ranks' tokens in f64 for the reference: `x`, ids, weights.
type RefInputs = Vec<(Vec<f64>, Vec<i64>, Vec<f64>)>;

fn f64s(v: &[bf16]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn reference_inputs(data: &[(Vec<bf16>, Vec<i32>, Vec<f32>)]) -> RefInputs {
    let widen = |(x, ids, w): &(Vec<bf16>, Vec<i32>, Vec<f32>)| {
        let ids = ids.iter().map(|&e| e as i64).collect();
        (f64s(x), ids, w.iter().map(|&w| w as f64).collect())
    };
    data.iter().map(widen).collect()
}

fn reference_tokens(inputs: &RefInputs) -> Vec<reference::RankTokens<'_>> {
    inputs
        .iter()
        .map(|(x, ids, w)| reference::RankTokens {
            x,
            topk_idx: ids,
            topk_weights: w,
        })
        .collect()
}

/// One rank's results of [`int8_dispatch_quantizes_the_portable_rows`]: the portable path's
/// counts and bf16 rows, the INT8 path's counts, codes and scales, the slab height, and the
/// INT8 path's combine of its dequantized rows.
type Int8Got = (
    Vec<usize>,
    Vec<bf16>,
    Vec<usize>,
    Vec<i8>,
    Vec<f32>,
    usize,
    Vec<bf16>,
);

/// The INT8 low-latency dispatch (MC2's quantMode 2) against the portable bf16 path and the
/// f64 reference, on 2, 4 and 8 ranks: the same receive counts; each expert's rows are the
/// portable rows quantized per row (compared sorted, as the MC2 order within an expert is
/// open); identity experts on the dequantized rows combine to the reference within the
/// quantization bound.
pub fn int8_dispatch_quantizes_the_portable_rows() {
    for n in rank_counts(&[2, 4, 8]) {
        let shape = shape(n);
        let data: Vec<_> = (0..n).map(|r| host(&shape, r, 5)).collect();
        let max_tokens = 5;
        let got: Vec<Int8Got> = on_ranks(n, |comm, stream| {
            let (x, ids, w) = &data[comm.rank() as usize];
            let (xd, idsd, wd) = (
                stream.upload(x).unwrap(),
                stream.upload(ids).unwrap(),
                stream.upload(w).unwrap(),
            );
            let tokens = Tokens {
                x: Payload::Bf16(&xd),
                topk_idx: &idsd,
                topk_weights: &wd,
            };
            let portable = low_latency_dispatch_with(
                comm,
                stream,
                &shape,
                tokens,
                max_tokens,
                EpTransport::Portable,
            )
            .unwrap();
            let q = low_latency_dispatch_int8(comm, stream, &shape, tokens, max_tokens).unwrap();
            let (codes, scales) = (q.codes.to_vec().unwrap(), q.scales.to_vec().unwrap());
            let slab = q.handle.slab_rows();
            // Identity experts on the dequantized rows; garbage rows stay NaN (never read).
            let mut y = vec![bf16::NAN; codes.len()];
            for (e, &count) in q.recv_count.iter().enumerate() {
                for i in e * slab..e * slab + count {
                    for h in 0..HIDDEN {
                        let v = f32::from(codes[i * HIDDEN + h]) * scales[i];
                        y[i * HIDDEN + h] = bf16::from_f32(v);
                    }
                }
            }
            let y = stream.upload(&y).unwrap();
            let out = low_latency_combine(comm, stream, &q.handle, &y, &wd).unwrap();
            (
                portable.recv_count,
                portable.x.bf16().unwrap().to_vec().unwrap(),
                q.recv_count,
                codes,
                scales,
                slab,
                out.to_vec().unwrap(),
            )
        });
        let inputs = reference_inputs(&data);
        let refs = reference_tokens(&inputs);
        let masked = reference::low_latency_dispatch(&shape, &refs, max_tokens).unwrap();
        let identity: Vec<Vec<f64>> = masked.iter().map(|m| m.x.clone()).collect();
        let want = reference::low_latency_combine(&shape, &refs, &masked, &identity).unwrap();
        for (r, (p_counts, p_rows, counts, codes, scales, slab, out)) in got.iter().enumerate() {
            assert_eq!(counts, p_counts, "{n} ranks, rank {r}: receive counts");
            assert_eq!(
                *counts, masked[r].recv_count,
                "{n} ranks, rank {r}: vs reference"
            );
            for (e, &count) in counts.iter().enumerate() {
                let rows = e * slab..e * slab + count;
                // The portable rows quantized on the host in f64: scale max|x|/127, codes
                // rounded half to even.
                let mut want_rows: Vec<(Vec<i32>, f64, Vec<f64>)> = rows
                    .clone()
                    .map(|i| {
                        let x = f64s(&p_rows[i * HIDDEN..(i + 1) * HIDDEN]);
                        let scale = x.iter().fold(0f64, |m, v| m.max(v.abs())) / 127.0;
                        let q = x
                            .iter()
                            .map(|v| (v / scale).round_ties_even() as i32)
                            .collect();
                        (q, scale, x)
                    })
                    .collect();
                let mut got_rows: Vec<(Vec<i32>, f64)> = rows
                    .map(|i| {
                        let q = codes[i * HIDDEN..(i + 1) * HIDDEN]
                            .iter()
                            .map(|&c| c as i32);
                        (q.collect(), scales[i] as f64)
                    })
                    .collect();
                want_rows.sort_by(|a, b| a.0.cmp(&b.0));
                got_rows.sort_by(|a, b| a.0.cmp(&b.0));
                for (j, ((wq, ws, x), (gq, gs))) in want_rows.iter().zip(&got_rows).enumerate() {
                    // The device forms 127/max|x| and x·(127/max|x|) in f32: the scale is within
                    // 2^-22 relative, and a code may differ by one where x/scale lies within
                    // that of a rounding boundary; the dequantized row stays within half a step.
                    assert!(
                        (gs - ws).abs() <= ws * 2f64.powi(-22),
                        "rank {r} expert {e} row {j}: scale {gs} vs {ws}"
                    );
                    for (h, ((&g, &w), &v)) in gq.iter().zip(wq).zip(x).enumerate() {
                        assert!(
                            (g - w).abs() <= 1,
                            "rank {r} expert {e} row {j} [{h}]: code {g} vs {w}"
                        );
                        assert!(
                            (g as f64 * gs - v).abs() <= gs * (0.5 + 2f64.powi(-20)),
                            "rank {r} expert {e} row {j} [{h}]"
                        );
                    }
                }
            }
            // Per token: Σ_k w_k·(half a step of its row + the bf16 rounding of a dequantized
            // value, 2^-8 of max|x|) + the combine's fp32 sums and final bf16 rounding.
            let (x, ids, w) = &inputs[r];
            for (t, token) in out.chunks(HIDDEN).enumerate() {
                let amax = x[t * HIDDEN..(t + 1) * HIDDEN]
                    .iter()
                    .fold(0f64, |m, v| m.max(v.abs()));
                let weight: f64 = (0..TOP_K)
                    .filter(|&j| ids[t * TOP_K + j] >= 0)
                    .map(|j| w[t * TOP_K + j])
                    .sum();
                for (h, g) in token.iter().enumerate() {
                    let want = want[r][t * HIDDEN + h];
                    let bound = weight * amax * (0.5 / 127.0 + 2f64.powi(-8))
                        + 2f64.powi(-8) * want.abs()
                        + 2.0 * TOP_K as f64 * 2f64.powi(-24) * 4.4 * TOP_K as f64;
                    assert!(
                        (g.to_f64() - want).abs() <= bound,
                        "rank {r} token {t} [{h}]: {g} vs {want}"
                    );
                }
            }
        }
    }
}

/// What a raw MC2 call gets wrong, for the run-time rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: a valid dispatch of one token to expert 0.
    None,
    /// `groupEp` names no communicator.
    UnknownGroup,
    /// An expert id of `moeExpertNum`.
    IdOutOfRange,
    /// A combine whose bookkeeping is not its dispatch's.
    UnpairedCombine,
}

/// A raw DispatchV2 (and, for [`Fault::UnpairedCombine`], a CombineV2 with made-up
/// bookkeeping) of one token of H 1024 on `comm` (2 experts per rank, top-1), synchronised:
/// the stream's error text, or `None`.
pub fn raw_mc2(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
    fault: Fault,
) -> Option<String> {
    use ascend_npu::aclnn::{AclBool, AclTensor};
    let api = ascend_npu::raw_api().unwrap();
    let (r, l, a) = (comm.size() as usize, 2usize, comm.size() as usize);
    let name = std::ffi::CString::new(match fault {
        Fault::UnknownGroup => "no-such-communicator".to_string(),
        _ => comm.name().unwrap(),
    })
    .unwrap();
    let x = stream.upload(&vec![bf16::ONE; HIDDEN]).unwrap();
    let e = if fault == Fault::IdOutOfRange {
        (r * l) as i32
    } else {
        0
    };
    let ids = stream.upload(&[e]).unwrap();
    let mask = stream.upload(&[1u8]).unwrap();
    let mut expand = stream.alloc_zeroed::<bf16>(a * HIDDEN).unwrap();
    let mut assist = stream.alloc_zeroed::<i32>(a * 128).unwrap();
    let mut nums = stream.alloc_zeroed::<i64>(l).unwrap();
    let mut counts = stream.alloc_zeroed::<i32>(r * l).unwrap();
    let null = std::ptr::null();
    let tx = AclTensor::new(&x, &[1, HIDDEN]).unwrap();
    let tids = AclTensor::new(&ids, &[1, 1]).unwrap();
    let tmask = AclTensor::from_bytes::<AclBool>(&mask, &[1, 1]).unwrap();
    let tex = AclTensor::new_mut(&mut expand, &[a, HIDDEN]).unwrap();
    let tassist = AclTensor::new_mut(&mut assist, &[a * 128]).unwrap();
    let tnums = AclTensor::new_mut(&mut nums, &[l]).unwrap();
    let tcounts = AclTensor::new_mut(&mut counts, &[r * l]).unwrap();
    let (mut ws, mut exec) = (0u64, std::ptr::null_mut());
    let plan = api.aclnnMoeDistributeDispatchV2GetWorkspaceSize().unwrap();
    let launch = api.aclnnMoeDistributeDispatchV2().unwrap();
    // SAFETY: live tensors, NUL-terminated names, out-pointers; no workspace (the simulator
    // asks for none, checked below).
    unsafe {
        let rc = plan(
            tx.as_ptr(),
            tids.as_ptr(),
            null,
            tmask.as_ptr(),
            null,
            name.as_ptr(),
            r as i64,
            comm.rank() as i64,
            (r * l) as i64,
            null.cast(),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            null.cast(),
            tex.as_ptr().cast_mut(),
            std::ptr::null_mut(),
            tassist.as_ptr().cast_mut(),
            tnums.as_ptr().cast_mut(),
            tcounts.as_ptr().cast_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut ws,
            &mut exec,
        );
        if rc != 0 {
            return Some(recent_error(api));
        }
        assert_eq!(ws, 0, "phase one of a valid dispatch");
        assert_eq!(launch(std::ptr::null_mut(), 0, exec, stream.as_raw()), 0);
    }
    drop((tex, tassist, tnums, tcounts));
    if let Err(e) = stream.synchronize() {
        return Some(e.to_string());
    }
    if fault != Fault::UnpairedCombine {
        return None;
    }
    // Every rank's row 0 claims to come from rank 0's token 0.
    let zeros = stream.alloc_zeroed::<i32>(a * 128).unwrap();
    let mut one = vec![0i32; r * l];
    one[0] = 1;
    let one = stream.upload(&one).unwrap();
    let w = stream.upload(&[1.0f32]).unwrap();
    let mut out = stream.alloc_zeroed::<bf16>(HIDDEN).unwrap();
    let tex = AclTensor::new(&expand, &[a, HIDDEN]).unwrap();
    let tassist = AclTensor::new(&zeros, &[a * 128]).unwrap();
    let tcounts = AclTensor::new(&one, &[r * l]).unwrap();
    let tw = AclTensor::new(&w, &[1, 1]).unwrap();
    let tout = AclTensor::new_mut(&mut out, &[1, HIDDEN]).unwrap();
    let plan = api.aclnnMoeDistributeCombineV2GetWorkspaceSize().unwrap();
    let launch = api.aclnnMoeDistributeCombineV2().unwrap();
    // SAFETY: as above.
    unsafe {
        let rc = plan(
            tex.as_ptr(),
            tids.as_ptr(),
            tassist.as_ptr(),
            tcounts.as_ptr(),
            tw.as_ptr(),
            null,
            tmask.as_ptr(),
            null,
            null,
            null,
            null,
            null,
            name.as_ptr(),
            r as i64,
            comm.rank() as i64,
            (r * l) as i64,
            null.cast(),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            null.cast(),
            tout.as_ptr().cast_mut(),
            &mut ws,
            &mut exec,
        );
        assert_eq!((rc, ws), (0, 0), "phase one of the combine");
        assert_eq!(launch(std::ptr::null_mut(), 0, exec, stream.as_raw()), 0);
    }
    stream.synchronize().err().map(|e| e.to_string())
}

/// Asserts that every rank's error names rule `id`.
pub fn all_name(errors: &[Option<String>], id: &str) {
    for (r, e) in errors.iter().enumerate() {
        let e = e
            .as_deref()
            .unwrap_or_else(|| panic!("rank {r}: no error for {id}"));
        assert!(e.contains(&format!("[{id}]")), "rank {r}: {e}");
    }
}

/// The provider's last error message (`aclGetRecentErrMsg`).
fn recent_error(api: &ascend_npu::sys::Api) -> String {
    let get = api.aclGetRecentErrMsg().unwrap();
    // SAFETY: no arguments; NULL or a NUL-terminated string owned by the runtime, copied at once.
    let p = unsafe { get() };
    assert!(!p.is_null(), "no recent error message");
    // SAFETY: as above.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// One MC2 low-latency round trip of two tokens to experts 2 and 3 (rank 1's) with identity
/// experts; checks the path taken and the result (`x/2 + x/2`).
pub fn mc2_round_trip(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
) -> Result<(), ascend_npu::Error> {
    let transport = low_latency_round_trip(comm, stream)?;
    assert_eq!(transport, EpTransport::Auto);
    Ok(())
}

/// The round trip of [`mc2_round_trip`] on whichever transport `EpTransport::Auto` picks;
/// checks the result and returns the transport.
pub fn low_latency_round_trip(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
) -> Result<EpTransport, ascend_npu::Error> {
    let shape = shape(comm.size());
    let x: Vec<bf16> = (0..2 * HIDDEN)
        .map(|i| bf16::from_f32((i % 7) as f32))
        .collect();
    let (xd, ids) = (stream.upload(&x)?, stream.upload(&[2i32, 3, 0, 3, 2, 1])?);
    let w = stream.upload(&[0.5f32, 0.5, 0.0, 0.5, 0.5, 0.0])?;
    let tokens = Tokens {
        x: Payload::Bf16(&xd),
        topk_idx: &ids,
        topk_weights: &w,
    };
    let recv = low_latency_dispatch(comm, stream, &shape, tokens, 2)?;
    let out = low_latency_combine(comm, stream, &recv.handle, recv.x.bf16().unwrap(), &w)?;
    assert_eq!(out.to_vec()?, x);
    Ok(recv.handle.transport())
}
