//! The low-latency dispatch and combine on the MC2 operators (an A3 SoC, H ≥ 1024, bf16, or
//! an A2 SoC at 16 ranks): the same results as the portable all-to-all-v path and the f64
//! reference, within the orders the MC2 documentation leaves open.

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

/// Where a case runs: its rank counts, hidden size, and whether token 1 of each rank routes
/// its last k to −1 (A2's MC2 ops cannot mask a pair, so there a −1 makes every rank fall
/// back to all-to-all-v).
#[derive(Clone, Copy)]
pub struct Setting {
    pub ranks: &'static [u32],
    pub hidden: usize,
    pub unrouted: bool,
    /// Rank 1 has no tokens (V1's ops, without a mask, cannot run a rank without tokens).
    pub empty_rank: bool,
}

/// A3: 2, 4 and 8 ranks at the smallest H the ops take there, with −1 ids.
pub const ON_A3: Setting = Setting {
    ranks: &[2, 4, 8],
    hidden: HIDDEN,
    unrouted: true,
    empty_rank: true,
};

/// A2 "fullmesh": 16 ranks (its smallest), a small H (a multiple of 32), every id routed.
pub const ON_A2: Setting = Setting {
    ranks: &[16],
    hidden: 64,
    unrouted: false,
    empty_rank: true,
};

/// V1 on A3: 8 ranks (its smallest EP size) at H 7168 (the only one it takes), every id
/// routed and every rank with tokens (V1 has no mask).
pub const V1_ON_A3: Setting = Setting {
    ranks: &[8],
    hidden: V1_A3_HIDDEN,
    unrouted: false,
    empty_rank: false,
};

/// V1 on A2 ("fullmesh"): 16 ranks, a small H, every id routed and every rank with tokens.
pub const V1_ON_A2: Setting = Setting {
    ranks: &[16],
    hidden: 64,
    unrouted: false,
    empty_rank: false,
};

fn shape(ranks: u32, hidden: usize) -> EpShape {
    EpShape {
        config: EpConfig {
            num_ranks: ranks as usize,
            num_experts: 2 * ranks as usize,
        },
        hidden,
        top_k: TOP_K,
    }
}

/// Rank `r`'s tokens: `x [T, H]` bf16, distinct ids, with some −1 if `unrouted`, none on rank
/// 1 if `empty_rank`, weights.
fn host(
    shape: &EpShape,
    rank: u32,
    seed: u64,
    (unrouted, empty_rank): (bool, bool),
) -> (Vec<bf16>, Vec<i32>, Vec<f32>) {
    let mut rng = Rng::new(seed * 104_729 + rank as u64);
    let t = if rank == 1 && empty_rank {
        0
    } else {
        2 + rank as usize % 3
    };
    let e = shape.config.num_experts as u64;
    let x = (0..t * shape.hidden)
        .map(|_| bf16::from_f32(rng.f32() * 2.0))
        .collect();
    let mut ids = Vec::new();
    for tok in 0..t {
        let mut chosen: Vec<i32> = Vec::new();
        while chosen.len() < TOP_K {
            let pick = if unrouted && tok == 1 && chosen.len() == 2 {
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
    let (slab, hidden) = (recv.handle.slab_rows(), shape.hidden);
    let mut y = vec![bf16::NAN; rows.len()];
    let mut valid = Vec::new();
    for (e, &n) in recv.recv_count.iter().enumerate() {
        let part = e * slab * hidden..(e * slab + n) * hidden;
        for (d, s) in y[part.clone()].iter_mut().zip(&rows[part.clone()]) {
            *d = bf16::from_f32(2.0 * s.to_f32());
        }
        let mut sorted: Vec<Vec<u16>> = rows[part]
            .chunks(hidden)
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

pub fn mc2_path_equals_portable_path_and_reference(on: Setting) {
    for n in rank_counts(on.ranks) {
        let shape = shape(n, on.hidden);
        let data: Vec<_> = (0..n)
            .map(|r| host(&shape, r, 3, (on.unrouted, on.empty_rank)))
            .collect();
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
        let (masked, want) = doubled_round_trip(&shape, &data, max_tokens);
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

/// On A2, where one "fullmesh" limit does not fit, [`EpTransport::Auto`] takes all-to-all-v
/// on every rank, and the round trip still equals the f64 reference: 8 ranks with 25 experts
/// each (neither EP size nor experts per rank fits), 16 ranks with 25 experts each (24 at
/// most), and 16 ranks of which rank 3 routes a k to −1 (A2's mask is per token).
pub fn a2_falls_back_where_a_limit_does_not_fit() {
    for (n, per_rank, unrouted) in [(8u32, 25usize, None), (16, 25, None), (16, 2, Some(3))] {
        if rank_counts(&[n]).is_empty() {
            continue;
        }
        let mut shape = shape(n, ON_A2.hidden);
        shape.config.num_experts = per_rank * n as usize;
        let data: Vec<_> = (0..n)
            .map(|r| host(&shape, r, 7, (unrouted == Some(r), true)))
            .collect();
        let max_tokens = 5;
        let got = on_ranks(n, |comm, stream| {
            let mine = &data[comm.rank() as usize];
            run(stream, comm, &shape, mine, EpTransport::Auto, max_tokens)
        });
        let (masked, want) = doubled_round_trip(&shape, &data, max_tokens);
        for (r, (counts, _, out, used)) in got.iter().enumerate() {
            let case = format!("{n} ranks, {per_rank} experts each, −1 on {unrouted:?}");
            assert_eq!(*used, EpTransport::Portable, "{case}: rank {r}'s transport");
            assert_eq!(*counts, masked[r].recv_count, "{case}: rank {r}'s counts");
            for (i, (&g, &w)) in out.iter().zip(&want[r]).enumerate() {
                // As in `mc2_path_equals_portable_path_and_reference`.
                let bound = 2f64.powi(-8) * w.abs()
                    + 2.0 * TOP_K as f64 * 2f64.powi(-24) * 4.4 * TOP_K as f64;
                assert!((g.to_f64() - w).abs() <= bound, "{case}: rank {r} [{i}]");
            }
        }
    }
}

/// The f64 reference of [`run`]'s round trip: each rank's masked layout, and its combine of
/// `y = 2·x`.
fn doubled_round_trip(
    shape: &EpShape,
    data: &[(Vec<bf16>, Vec<i32>, Vec<f32>)],
    max_tokens: usize,
) -> (Vec<reference::Masked>, Vec<Vec<f64>>) {
    let inputs = reference_inputs(data);
    let refs = reference_tokens(&inputs);
    let masked = reference::low_latency_dispatch(shape, &refs, max_tokens).unwrap();
    let y: Vec<Vec<f64>> = masked
        .iter()
        .map(|m| m.x.iter().map(|v| 2.0 * v).collect())
        .collect();
    let want = reference::low_latency_combine(shape, &refs, &masked, &y).unwrap();
    (masked, want)
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
pub fn int8_dispatch_quantizes_the_portable_rows(on: Setting) {
    for n in rank_counts(on.ranks) {
        let shape = shape(n, on.hidden);
        let hidden = on.hidden;
        let data: Vec<_> = (0..n)
            .map(|r| host(&shape, r, 5, (on.unrouted, on.empty_rank)))
            .collect();
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
                    for h in 0..hidden {
                        let v = f32::from(codes[i * hidden + h]) * scales[i];
                        y[i * hidden + h] = bf16::from_f32(v);
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
                        let x = f64s(&p_rows[i * hidden..(i + 1) * hidden]);
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
                        let q = codes[i * hidden..(i + 1) * hidden]
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
            for (t, token) in out.chunks(hidden).enumerate() {
                let amax = x[t * hidden..(t + 1) * hidden]
                    .iter()
                    .fold(0f64, |m, v| m.max(v.abs()));
                let weight: f64 = (0..TOP_K)
                    .filter(|&j| ids[t * TOP_K + j] >= 0)
                    .map(|j| w[t * TOP_K + j])
                    .sum();
                for (h, g) in token.iter().enumerate() {
                    let want = want[r][t * hidden + h];
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
    /// The call in A2's form with this `commAlg` (a 1-D mask, A2's counts length).
    A2(&'static std::ffi::CStr),
    /// A2 "fullmesh" with two tokens masked `[false, true]`.
    A2MaskOrder,
    /// V1 given a mask (V1's `xActiveMask` is reserved): refused before the call.
    MaskOnV1,
    /// V1: a combine with its dispatch's counts but every `expandIdx` one past.
    ShiftedIndexV1,
}

/// A raw DispatchV2 (and, for [`Fault::UnpairedCombine`], a CombineV2 with made-up
/// bookkeeping) of one token of H 1024 on `comm` (2 experts per rank, top-1), synchronised:
/// the stream's error text, or `None`.
pub fn raw_mc2(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
    fault: Fault,
) -> Option<String> {
    use ascend_npu::aclnn::{AclBool, AclTensor, Mc2Combine, Mc2Dispatch, Mc2Group, Mc2Version};
    let a2 = match fault {
        Fault::A2(alg) => Some(alg),
        Fault::A2MaskOrder => Some(c"fullmesh"),
        _ => None,
    };
    let bs = if fault == Fault::A2MaskOrder { 2 } else { 1 };
    let (r, l) = (comm.size() as usize, 2usize);
    let a = bs * r;
    // A2's counts: moeExpertNum + 2·globalBs·K·serverNum (8 devices per simulated server).
    let counts_len = r * l
        + if a2.is_some() {
            2 * a * (r / 8).max(1)
        } else {
            0
        };
    let name = std::ffi::CString::new(match fault {
        Fault::UnknownGroup => "no-such-communicator".to_string(),
        _ => comm.name().unwrap(),
    })
    .unwrap();
    let x = stream.upload(&vec![bf16::ONE; bs * HIDDEN]).unwrap();
    let e = if fault == Fault::IdOutOfRange {
        (r * l) as i32
    } else {
        0
    };
    let ids = stream.upload(&vec![e; bs]).unwrap();
    let mask = stream.upload(&[u8::from(bs == 1), 1]).unwrap();
    let mask = mask.slice(0..bs).unwrap();
    let mask_dims: &[usize] = if a2.is_some() { &[bs] } else { &[1, 1] };
    let mut expand = stream.alloc_zeroed::<bf16>(a * HIDDEN).unwrap();
    let mut assist = stream.alloc_zeroed::<i32>(a * 128).unwrap();
    let mut nums = stream.alloc_zeroed::<i64>(l).unwrap();
    let mut counts = stream.alloc_zeroed::<i32>(counts_len).unwrap();
    let tx = AclTensor::new(&x, &[bs, HIDDEN]).unwrap();
    let tids = AclTensor::new(&ids, &[bs, 1]).unwrap();
    let tmask = AclTensor::from_bytes::<AclBool>(&mask, mask_dims).unwrap();
    let tex = AclTensor::new_mut(&mut expand, &[a, HIDDEN]).unwrap();
    let tassist = AclTensor::new_mut(&mut assist, &[a * 128]).unwrap();
    let tnums = AclTensor::new_mut(&mut nums, &[l]).unwrap();
    let tcounts = AclTensor::new_mut(&mut counts, &[counts_len]).unwrap();
    let group = Mc2Group {
        version: Mc2Version::V2,
        name: &name,
        ranks: r as i64,
        rank: comm.rank() as i64,
        experts: (r * l) as i64,
        global_bs: 0,
        tp_ranks: 0,
        shared_experts: 0,
        comm_alg: a2,
    };
    let dispatch = Mc2Dispatch {
        group,
        x: &tx,
        expert_ids: &tids,
        mask: Some(&tmask),
        expand_x: &tex,
        quantize: false,
        dynamic_scales: None,
        assist_info: &tassist,
        expert_token_nums: &tnums,
        recv_counts: &tcounts,
        tp_recv_counts: None,
        expand_scales: None,
    };
    if let Err(e) = dispatch.plan(stream).and_then(|plan| plan.launch()) {
        return Some(e.to_string());
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
    let combine = Mc2Combine {
        group,
        expand_x: &AclTensor::new(&expand, &[a, HIDDEN]).unwrap(),
        expert_ids: &tids,
        assist_info: &AclTensor::new(&zeros, &[a * 128]).unwrap(),
        send_counts: &AclTensor::new(&one, &[r * l]).unwrap(),
        weights: &AclTensor::new(&w, &[1, 1]).unwrap(),
        mask: Some(&tmask),
        tp_send_counts: None,
        out: &AclTensor::new_mut(&mut out, &[1, HIDDEN]).unwrap(),
    };
    combine.plan(stream).unwrap().launch().unwrap();
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
    low_latency_round_trip_at(comm, stream, HIDDEN)
}

/// [`low_latency_round_trip`] at hidden size `hidden`.
pub fn low_latency_round_trip_at(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
    hidden: usize,
) -> Result<EpTransport, ascend_npu::Error> {
    let shape = shape(comm.size(), hidden);
    let x: Vec<bf16> = (0..2 * hidden)
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

/// The hidden size V1's MC2 ops take on A3 (exactly).
pub const V1_A3_HIDDEN: usize = 7168;

/// A raw V1 Dispatch (and, for [`Fault::UnpairedCombine`], a Combine whose `expandIdx` is not
/// the dispatch's) of one token of H 7168 on `comm`, an A3 EP group of 8 (one expert per
/// rank, top-1), synchronised: the stream's error text, or `None`.
pub fn raw_mc2_v1(
    comm: &ascend_npu::runtime::comm::Comm,
    stream: &Stream,
    fault: Fault,
) -> Option<String> {
    use ascend_npu::aclnn::{AclTensor, Mc2Combine, Mc2Dispatch, Mc2Group, Mc2Version};
    let (r, h) = (comm.size() as usize, V1_A3_HIDDEN);
    // One expert per rank, BS 1, top-1: A = BS·R·min(1, 1).
    let a = r;
    let name = std::ffi::CString::new(comm.name().unwrap()).unwrap();
    let x = stream.upload(&vec![bf16::ONE; h]).unwrap();
    let e = if fault == Fault::IdOutOfRange {
        r as i32
    } else {
        0
    };
    let ids = stream.upload(&[e]).unwrap();
    let mut expand = stream.alloc_zeroed::<bf16>(a * h).unwrap();
    let mut scales = stream.alloc_zeroed::<f32>(a).unwrap();
    let mut idx = stream.alloc_zeroed::<i32>(1).unwrap();
    let mut nums = stream.alloc_zeroed::<i64>(1).unwrap();
    let mut counts = stream.alloc_zeroed::<i32>(r).unwrap();
    let mut tp = stream.alloc_zeroed::<i32>(1).unwrap();
    let mut expand_scales = stream.alloc_zeroed::<f32>(a).unwrap();
    let mask = stream.upload(&[1u8]).unwrap();
    let tmask = ascend_npu::aclnn::AclTensor::from_bytes::<ascend_npu::aclnn::AclBool>(&mask, &[1])
        .unwrap();
    let tx = AclTensor::new(&x, &[1, h]).unwrap();
    let tids = AclTensor::new(&ids, &[1, 1]).unwrap();
    let tex = AclTensor::new_mut(&mut expand, &[a, h]).unwrap();
    let tscales = AclTensor::new_mut(&mut scales, &[a]).unwrap();
    let tidx = AclTensor::new_mut(&mut idx, &[1]).unwrap();
    let tnums = AclTensor::new_mut(&mut nums, &[1]).unwrap();
    let tcounts = AclTensor::new_mut(&mut counts, &[r]).unwrap();
    let ttp = AclTensor::new_mut(&mut tp, &[1]).unwrap();
    let texs = AclTensor::new_mut(&mut expand_scales, &[a]).unwrap();
    // What V1's A3 tiling takes: a one-rank TP group, one shared expert without its ranks.
    let group = Mc2Group {
        version: Mc2Version::V1,
        name: &name,
        ranks: r as i64,
        rank: comm.rank() as i64,
        experts: r as i64,
        global_bs: 0,
        tp_ranks: 1,
        shared_experts: 1,
        comm_alg: None,
    };
    let dispatch = Mc2Dispatch {
        group,
        x: &tx,
        expert_ids: &tids,
        mask: (fault == Fault::MaskOnV1).then_some(&tmask),
        expand_x: &tex,
        quantize: false,
        dynamic_scales: Some(&tscales),
        assist_info: &tidx,
        expert_token_nums: &tnums,
        recv_counts: &tcounts,
        tp_recv_counts: Some(&ttp),
        expand_scales: Some(&texs),
    };
    if let Err(e) = dispatch.plan(stream).and_then(|plan| plan.launch()) {
        return Some(e.to_string());
    }
    drop((tex, tscales, tidx, tnums, tcounts, ttp, texs));
    if let Err(e) = stream.synchronize() {
        return Some(e.to_string());
    }
    // The combine: with the dispatch's bookkeeping (Fault::None: the row comes back), its
    // expandIdx one past, or every rank claiming one row from rank 0 and naming its own pair
    // as rank 0's fifth.
    let (counts, idx) = match fault {
        Fault::None => (counts, idx),
        Fault::ShiftedIndexV1 => {
            let shifted: Vec<i32> = idx.to_vec().unwrap().iter().map(|i| i + 1).collect();
            (counts, stream.upload(&shifted).unwrap())
        }
        Fault::UnpairedCombine => {
            let mut one = vec![0i32; r];
            one[0] = 1;
            (
                stream.upload(&one).unwrap(),
                stream.upload(&[5i32]).unwrap(),
            )
        }
        _ => return None,
    };
    let w = stream.upload(&[1.0f32]).unwrap();
    let mut out = stream.alloc_zeroed::<bf16>(h).unwrap();
    {
        let combine = Mc2Combine {
            group,
            expand_x: &AclTensor::new(&expand, &[a, h]).unwrap(),
            expert_ids: &tids,
            assist_info: &AclTensor::new(&idx, &[1]).unwrap(),
            send_counts: &AclTensor::new(&counts, &[r]).unwrap(),
            weights: &AclTensor::new(&w, &[1, 1]).unwrap(),
            mask: None,
            tp_send_counts: Some(&AclTensor::new(&tp, &[1]).unwrap()),
            out: &AclTensor::new_mut(&mut out, &[1, h]).unwrap(),
        };
        combine.plan(stream).unwrap().launch().unwrap();
    }
    if let Err(e) = stream.synchronize() {
        return Some(e.to_string());
    }
    // Identity experts, weight 1: the token comes back as it went.
    assert_eq!(
        out.to_vec().unwrap(),
        vec![bf16::ONE; h],
        "rank {}",
        comm.rank()
    );
    None
}

/// Where V1 cannot carry one rank's routing (a `-1` id, no tokens, an expert named twice in a
/// token), every rank takes all-to-all-v and the round trip still equals the f64 reference; a
/// rank over `max_tokens_per_rank` fails every rank at once, naming it.
pub fn v1_falls_back_where_a_rank_cannot_travel_unmasked(on: Setting) {
    for n in rank_counts(on.ranks) {
        let shape = shape(n, on.hidden);
        // One rank only routes a k to -1, has no tokens, or names an expert twice.
        for (unrouted, empty_rank, twice) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let mut data: Vec<_> = (0..n)
                .map(|r| host(&shape, r, 11, (unrouted && r == 3, empty_rank)))
                .collect();
            if twice {
                data[3].1[1] = data[3].1[0];
            }
            let max_tokens = 5;
            let got = on_ranks(n, |comm, stream| {
                let r = comm.rank() as usize;
                run(
                    stream,
                    comm,
                    &shape,
                    &data[r],
                    EpTransport::Auto,
                    max_tokens,
                )
            });
            let (masked, want) = doubled_round_trip(&shape, &data, max_tokens);
            for (r, g) in got.iter().enumerate() {
                let case = format!(
                    "{n} ranks, unrouted {unrouted}, empty rank {empty_rank}, twice {twice}"
                );
                assert_eq!(g.3, EpTransport::Portable, "{case}: rank {r}'s transport");
                assert_eq!(g.0, masked[r].recv_count, "{case}, rank {r}: counts");
                for (i, (&g, &w)) in g.2.iter().zip(&want[r]).enumerate() {
                    // As in mc2_path_equals_portable_path_and_reference.
                    let bound = 2f64.powi(-8) * w.abs()
                        + 2.0 * TOP_K as f64 * 2f64.powi(-24) * 4.4 * TOP_K as f64;
                    assert!((g.to_f64() - w).abs() <= bound, "{case}, rank {r} [{i}]");
                }
            }
        }
    }
    over_the_token_limit_fails_every_rank(on);
}

/// Rank 2 passes 3 tokens with `max_tokens_per_rank` 2 where the MC2 ops would run (V1, or
/// V2 on A2): every rank returns the error naming rank 2 (the agreement all-reduce carries
/// it), none waits in the ops.
pub fn over_the_token_limit_fails_every_rank(on: Setting) {
    for n in rank_counts(on.ranks) {
        over_the_token_limit_on(&shape(n, on.hidden), n);
    }
}

fn over_the_token_limit_on(shape: &EpShape, n: u32) {
    let errs = on_ranks(n, |comm, stream| {
        let r = comm.rank();
        let mut data = host(shape, r, 13, (false, false));
        let t = if r == 2 { 3 } else { 2 };
        data.0.truncate(t * shape.hidden);
        data.1.truncate(t * TOP_K);
        data.2.truncate(t * TOP_K);
        let x = stream.upload(&data.0).unwrap();
        let ids = stream.upload(&data.1).unwrap();
        let w = stream.upload(&data.2).unwrap();
        let tokens = Tokens {
            x: Payload::Bf16(&x),
            topk_idx: &ids,
            topk_weights: &w,
        };
        low_latency_dispatch(comm, stream, shape, tokens, 2)
            .err()
            .map(|e| e.to_string())
    });
    for (r, e) in errs.iter().enumerate() {
        let e = e.as_deref().unwrap_or_else(|| panic!("rank {r}: no error"));
        // The agreement's words (the portable path says "rank 2 dispatches 3 tokens").
        assert!(
            e.contains("rank 2 dispatches more tokens")
                && e.contains("max_tokens_per_rank = 2 on every rank"),
            "rank {r}: {e}"
        );
    }
}
