//! The MC2 ops over the simulator's HCCL ranks, both versions ([`Version`]: V2's
//! aclnnMoeDistributeDispatchV2 / CombineV2, V1's aclnnMoeDistributeDispatch / Combine), in
//! their A3 form and A2's forms ([`Form`]), without shared experts or TP, the dispatch
//! unquantized or with quantMode 2 (per-row dynamic INT8, optionally smoothed per expert). The
//! forms move the same rows; they differ in their limits (the rule tables) and in A2's 1-D
//! token mask and longer `epRecvCounts` (V2). The versions differ in the combine's bookkeeping
//! (below) and V1 takes no mask.
//!
//! * **Dispatch**: every active `(token, k)` pair of this rank goes, as one row, to the rank of
//!   its expert (`expert / localExpertNum`). A rank stores what it receives grouped by local
//!   expert, then by source rank, then in the source's `(token, k)` order, in the leading rows
//!   of `expandXOut`; the rest is left as it was (hardware leaves it undefined).
//!   `expertTokenNumsOut` holds the rows per local expert (counts or their cumsum).
//! * **quantMode 2**: the sender quantizes each `(token, k)` row after multiplying it by its
//!   expert's row of `scalesOptional` (if given): INT8 codes in `expandXOut`, the row's scale
//!   in `dynamicScalesOut` (see [`quantize_row`]).
//! * **Combine**: every row goes back to its source, which returns
//!   `xOut[t] = Σ_k expertScales[t,k] · row(t,k)`, summed in fp32 in k order (products
//!   rounded to fp32, as aclnnMoeFinalizeRoutingV2 sums) and rounded once.
//! * `assistInfoForCombineOut` (V2), `expandIdx` (V1) and `epRecvCountsOut` are documented as
//!   opaque ("may differ between products and versions; pass them to combine"). Here V2's
//!   128 ints of a received row start with its `(source rank, token, k)`; V1's `expandIdx`
//!   holds, per sent `(token, k)`, how many earlier pairs of the rank went to the same expert
//!   (its doc's wording), and `epRecvCountsOut[e·R + s]` counts expert `e`'s rows from rank
//!   `s`. V1's combine sends each row back to its source as `(expert, index)`, which the
//!   source finds in its `expandIdx`. Combine checks the bookkeeping against what comes back,
//!   so a combine that does not pair with its dispatch fails on every rank (rules
//!   `moe-distribute-combine-v2.paired-dispatch`, `moe-distribute-combine.paired-dispatch`).
//! * **Meeting**: the k-th MC2 op a rank runs meets the k-th of every other rank of the EP
//!   communicator (numbered when it runs; see [`crate::operators::hccl::Comm::next_mc2`]). A
//!   failure on one rank fails the communicator, so the peers fail too, at once.
//! * Rows travel as fp32 (exact for fp16 and bf16). Damage injected with
//!   [`crate::operators::hccl::inject`] applies to each op's exchange as to an all-to-all-v.

use std::sync::Arc;

use ascend_sys::{HCCL_E_PARA, HCCL_E_TIMEOUT};

use super::Planned;
use crate::base::error::{SimError, SimResult};
use crate::operators::aclnn::executor::Run;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;
use crate::operators::hccl::{Comm, Contribution, HcclError, Use, fault};
pub(crate) use crate::rules::Mc2Form as Form;
use crate::runtime::task::Abort;

/// Finds this rank's EP communicator when the op runs (and checks the SoC): given by the C
/// layer, which owns the communicator registry.
pub(crate) type Link = Arc<dyn Fn() -> SimResult<Arc<Comm>> + Send + Sync>;

/// Which version of the ops runs: a dispatch pairs with the combine of its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The attributes both ops use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) version: Version,
    pub(crate) form: Form,
    pub(crate) ep_world_size: usize,
    pub(crate) ep_rank_id: usize,
    pub(crate) moe_expert_num: usize,
    pub(crate) global_bs: usize,
    /// Dispatch: 0 = cumsum, 1 = counts.
    pub(crate) expert_token_nums_type: i64,
    /// Dispatch: 0 = none, 2 = per-row dynamic INT8.
    pub(crate) quant_mode: i64,
}

impl Attrs {
    fn local(&self) -> usize {
        self.moe_expert_num / self.ep_world_size
    }

    /// What the k-th exchange of every rank must agree on: the op (of this version) and its
    /// attributes.
    fn signature(&self, op: &str, hidden: usize, k: usize) -> String {
        let op = match self.version {
            Version::V1 => op.to_string(),
            Version::V2 => format!("{op}V2"),
        };
        format!(
            "{op}(epWorldSize {}, moeExpertNum {}, globalBs {}, H {hidden}, K {k}, quantMode {}, {:?})",
            self.ep_world_size, self.moe_expert_num, self.global_bs, self.quant_mode, self.form
        )
    }
}

/// The tensors of a dispatch: inputs `x`, `expertIds`, mask (V2), smooth scales; outputs
/// `expandXOut`, `assistInfoForCombineOut` (V2) or `expandIdx` (V1), `expertTokenNumsOut`,
/// `epRecvCountsOut`, `dynamicScalesOut`.
pub(crate) struct DispatchArgs {
    pub(crate) x: TensorDesc,
    pub(crate) expert_ids: TensorDesc,
    pub(crate) mask: Option<TensorDesc>,
    /// `scalesOptional`: quantMode 2's smoothing, `[moeExpertNum, H]`.
    pub(crate) scales: Option<TensorDesc>,
    pub(crate) expand_x: TensorDesc,
    /// V2's `assistInfoForCombineOut`, V1's `expandIdx`.
    pub(crate) assist_info: TensorDesc,
    pub(crate) expert_token_nums: TensorDesc,
    pub(crate) ep_recv_counts: TensorDesc,
    /// quantMode 2: `[A]`, each row's scale.
    pub(crate) dynamic_scales: Option<TensorDesc>,
}

/// The tensors of a combine: inputs `expandX`, `expertIds`, `assistInfoForCombine` (V2) or
/// `expandIdx` (V1), `epSendCounts`, `expertScales`, mask (V2); output `xOut` (V1: `x`).
pub(crate) struct CombineArgs {
    pub(crate) expand_x: TensorDesc,
    pub(crate) expert_ids: TensorDesc,
    pub(crate) assist_info: TensorDesc,
    pub(crate) ep_send_counts: TensorDesc,
    pub(crate) expert_scales: TensorDesc,
    pub(crate) mask: Option<TensorDesc>,
    pub(crate) x_out: TensorDesc,
}

/// Which `(token, k)` pairs take part: all, or per the 1-D (token) or 2-D (pair) mask. A2's
/// 1-D mask must hold its trues before its falses (rule `moe-distribute.a2-mask-order`).
fn active(
    mask: Option<&TensorView>,
    (tokens, k): (usize, usize),
    form: Form,
) -> SimResult<Vec<bool>> {
    let Some(m) = mask else {
        return Ok(vec![true; tokens * k]);
    };
    let v = m.read_i64();
    if form.is_a2() {
        if let Some(t) = (1..v.len()).find(|&t| v[t] != 0 && v[t - 1] == 0) {
            return Err(crate::rules::violation(
                "moe-distribute.a2-mask-order",
                format!("xActiveMaskOptional[{t}] is true after a false"),
            ));
        }
    }
    Ok(if v.len() == tokens {
        (0..tokens * k).map(|f| v[f / k] != 0).collect()
    } else {
        v.iter().map(|&b| b != 0).collect()
    })
}

/// Runs `body` on this rank's communicator, claimed for MC2; an error fails the
/// communicator so that the peers stop waiting.
fn on_comm(link: &Link, body: impl FnOnce(&Comm) -> SimResult<()>) -> SimResult<()> {
    let comm = link()?;
    if let Err(was) = comm.claim(Use::Mc2) {
        let e = crate::rules::violation(
            "moe-distribute.exclusive-comm",
            format!("an MC2 operator on a communicator that ran {was}"),
        );
        comm.record_failure(&HcclError::new(HCCL_E_PARA, e.message.clone()));
        return Err(e);
    }
    body(&comm).inspect_err(|e| {
        let code = if e.message.contains("HCCL_E_TIMEOUT") {
            HCCL_E_TIMEOUT
        } else {
            HCCL_E_PARA
        };
        comm.record_failure(&HcclError::new(code, e.message.clone()));
    })
}

/// The k-th MC2 exchange: `parts[d]` goes to rank `d`; returns every rank's contribution.
fn exchange(
    comm: &Comm,
    signature: String,
    mut parts: Vec<Vec<u8>>,
) -> SimResult<Vec<Arc<Contribution>>> {
    let seq = comm.next_mc2();
    fault::damage_all_to_all(comm.rank, &mut parts);
    let mine = Contribution {
        signature,
        parts,
        expects: Vec::new(),
    };
    comm.exchange(seq, mine, &Abort::default()).map_err(|e| {
        let name = ascend_sys::hccl_result_name(e.code).unwrap_or("HcclResult");
        SimError::new(
            ascend_sys::ACL_ERROR_RT_INTERNAL_ERROR,
            format!("{name}: {}", e.message),
        )
    })
}

/// One row in flight: three u32 (`a`, `b`, `c`), then `H` f32.
fn push_record(part: &mut Vec<u8>, head: [u32; 3], row: &[f32]) {
    for v in head {
        part.extend_from_slice(&v.to_le_bytes());
    }
    for v in row {
        part.extend_from_slice(&v.to_le_bytes());
    }
}

/// The records of a received part, or what is wrong with its length.
fn records(part: &[u8], hidden: usize, from: usize) -> SimResult<Vec<([u32; 3], Vec<f32>)>> {
    let len = 12 + 4 * hidden;
    if part.len() % len != 0 {
        return Err(SimError::param(format!(
            "{} bytes arrived from rank {from}; expected whole rows of {len} bytes (damaged in flight)",
            part.len()
        )));
    }
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Ok(part
        .chunks_exact(len)
        .map(|r| {
            let head = [word(&r[0..]), word(&r[4..]), word(&r[8..])];
            let row = r[12..]
                .chunks_exact(4)
                .map(|b| f32::from_bits(word(b)))
                .collect();
            (head, row)
        })
        .collect())
}

pub(crate) fn plan_dispatch(args: DispatchArgs, attrs: Attrs, link: Link) -> SimResult<Planned> {
    let (tokens, hidden) = (args.x.dims[0] as usize, args.x.dims[1] as usize);
    let k = args.expert_ids.dims[1] as usize;
    let (has_mask, has_scales) = (args.mask.is_some(), args.scales.is_some());
    let mut inputs = vec![("x", args.x), ("expertIds", args.expert_ids)];
    if let Some(m) = args.mask {
        inputs.push(("xActiveMaskOptional", m));
    }
    if let Some(s) = args.scales {
        inputs.push(("scalesOptional", s));
    }
    let names = match attrs.version {
        Version::V2 => [
            "expandXOut",
            "assistInfoForCombineOut",
            "expertTokenNumsOut",
            "epRecvCountsOut",
            "dynamicScalesOut",
        ],
        Version::V1 => [
            "expandX",
            "expandIdx",
            "expertTokenNums",
            "epRecvCounts",
            "dynamicScales",
        ],
    };
    let mut outputs = vec![
        (names[0], args.expand_x),
        (names[1], args.assist_info),
        (names[2], args.expert_token_nums),
        (names[3], args.ep_recv_counts),
    ];
    if let Some(d) = args.dynamic_scales {
        outputs.push((names[4], d));
    }
    let run: Run = Arc::new(move |ins: &[TensorView], outs: &[TensorView]| {
        let mask = has_mask.then(|| &ins[2]);
        let scales = has_scales.then(|| &ins[2 + usize::from(has_mask)]);
        on_comm(&link, |comm| {
            dispatch(comm, attrs, (tokens, hidden, k), (ins, mask, scales), outs)
        })
    });
    Ok(Planned::new(0, inputs, outputs, run))
}

/// quantMode 2 on one row (already smoothed, in fp32): `dynamicScales = 127 / max|x|`, codes
/// `CastToInt8(x · dynamicScales)` (rounded half to even, within ±127), and the scale that
/// travels with them, `1 / dynamicScales`. A row of zeros has codes and scale 0 (the doc's
/// formula divides by zero there; UNVERIFIED what hardware writes).
fn quantize_row(row: &[f32]) -> (Vec<f32>, f32) {
    let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        return (
            vec![0.0; row.len()],
            if amax == 0.0 { 0.0 } else { f32::NAN },
        );
    }
    let dynamic = 127.0 / amax;
    let codes = row
        .iter()
        .map(|&v| (v * dynamic).round_ties_even().clamp(-127.0, 127.0))
        .collect();
    (codes, 1.0 / dynamic)
}

/// A row a rank received: its source rank, token and k, and its values.
type Arrived = (usize, u32, u32, Vec<f32>);

fn dispatch(
    comm: &Comm,
    attrs: Attrs,
    (tokens, hidden, k): (usize, usize, usize),
    (ins, mask, scales): (&[TensorView], Option<&TensorView>, Option<&TensorView>),
    outs: &[TensorView],
) -> SimResult<()> {
    let (r, l, me) = (attrs.ep_world_size, attrs.local(), comm.rank as usize);
    let x = ins[0].read_f32();
    let ids = ins[1].read_i64();
    let on = active(mask, (tokens, k), attrs.form)?;
    let smooth = scales.map(TensorView::read_f32);
    let quant = attrs.quant_mode == 2;
    // A quantized row travels as its codes and then its scale.
    let width = hidden + usize::from(quant);
    let capacity = match attrs.version {
        Version::V1 => "moe-distribute-dispatch.capacity",
        Version::V2 => "moe-distribute-dispatch-v2.capacity",
    };
    let mut parts = vec![Vec::new(); r];
    // V1's expandIdx: per (token, k), the pairs of this rank sent to its expert before it.
    let mut expand_idx = vec![-1i64; tokens * k];
    let mut sent_to = vec![0i64; attrs.moe_expert_num];
    for t in 0..tokens {
        for j in 0..k {
            let f = t * k + j;
            if !on[f] {
                continue;
            }
            let e = ids[f];
            if (0..j).any(|i| on[t * k + i] && ids[t * k + i] == e) {
                return Err(crate::rules::violation(
                    capacity,
                    format!("expertIds[{t}] names expert {e} twice"),
                ));
            }
            if !(0..attrs.moe_expert_num as i64).contains(&e) {
                return Err(crate::rules::violation(
                    capacity,
                    format!(
                        "expertIds[{t}][{j}] = {e} outside 0..{}",
                        attrs.moe_expert_num
                    ),
                ));
            }
            let (dest, local) = (e as usize / l, e as usize % l);
            expand_idx[f] = sent_to[e as usize];
            sent_to[e as usize] += 1;
            let head = [local as u32, t as u32, j as u32];
            let row = &x[t * hidden..(t + 1) * hidden];
            if quant {
                let e = e as usize;
                let smoothed: Vec<f32> = match &smooth {
                    Some(s) => row
                        .iter()
                        .zip(&s[e * hidden..])
                        .map(|(v, s)| v * s)
                        .collect(),
                    None => row.to_vec(),
                };
                let (mut codes, scale) = quantize_row(&smoothed);
                codes.push(scale);
                push_record(&mut parts[dest], head, &codes);
            } else {
                push_record(&mut parts[dest], head, row);
            }
        }
    }
    let all = exchange(comm, attrs.signature("Dispatch", hidden, k), parts)?;
    let max_tokens = if attrs.global_bs == 0 {
        usize::MAX
    } else {
        attrs.global_bs / r
    };
    let mut by_expert: Vec<Vec<Arrived>> = vec![Vec::new(); l];
    for (s, c) in all.iter().enumerate() {
        for ([e, t, j], row) in records(&c.parts[me], width, s)? {
            if e as usize >= l || t as usize >= max_tokens || j as usize >= k {
                return Err(SimError::param(format!(
                    "a row from rank {s} for local expert {e}, token {t}, k {j}: outside {l} experts, \
                     {max_tokens} tokens, {k} (damaged in flight)"
                )));
            }
            by_expert[e as usize].push((s, t, j, row));
        }
    }
    let rows: usize = by_expert.iter().map(Vec::len).sum();
    let a = outs[0].dims()[0];
    if rows > a {
        return Err(crate::rules::violation(
            capacity,
            format!("{rows} rows arrive at rank {me}, expandXOut has {a}"),
        ));
    }
    let mut assist = vec![0i64; a * 128];
    // A2's is longer (its tail is the ops' own bookkeeping, zeros here); the counts lead.
    let mut recv_counts = vec![0i64; outs[3].numel().max(r * l)];
    let mut i = 0;
    for (e, list) in by_expert.iter_mut().enumerate() {
        list.sort_by_key(|&(s, ..)| s); // stable: each source keeps its (token, k) order
        for (s, t, j, row) in list.iter() {
            outs[0].select(i).write_f32(&row[..hidden])?;
            if quant {
                outs[4].select(i).write_f32(&row[hidden..])?;
            }
            assist[i * 128..i * 128 + 3].copy_from_slice(&[*s as i64, *t as i64, *j as i64]);
            recv_counts[e * r + s] += 1;
            i += 1;
        }
    }
    match attrs.version {
        Version::V2 => outs[1].write_i64(&assist)?,
        Version::V1 => outs[1].write_i64(&expand_idx)?,
    }
    let mut nums: Vec<i64> = by_expert.iter().map(|v| v.len() as i64).collect();
    if attrs.expert_token_nums_type == 0 {
        for e in 1..l {
            nums[e] += nums[e - 1];
        }
    }
    outs[2].write_i64(&nums)?;
    outs[3].write_i64(&recv_counts)
}

pub(crate) fn plan_combine(args: CombineArgs, attrs: Attrs, link: Link) -> SimResult<Planned> {
    let (tokens, k) = (
        args.expert_ids.dims[0] as usize,
        args.expert_ids.dims[1] as usize,
    );
    let hidden = args.expand_x.dims[1] as usize;
    let has_mask = args.mask.is_some();
    let mut inputs = vec![
        ("expandX", args.expand_x),
        ("expertIds", args.expert_ids),
        (
            match attrs.version {
                Version::V1 => "expandIdx",
                Version::V2 => "assistInfoForCombine",
            },
            args.assist_info,
        ),
        ("epSendCounts", args.ep_send_counts),
        ("expertScales", args.expert_scales),
    ];
    if let Some(m) = args.mask {
        inputs.push(("xActiveMaskOptional", m));
    }
    let run: Run = Arc::new(move |ins: &[TensorView], outs: &[TensorView]| {
        on_comm(&link, |comm| {
            combine(comm, attrs, (tokens, hidden, k), (ins, has_mask), &outs[0])
        })
    });
    let out = match attrs.version {
        Version::V1 => "x",
        Version::V2 => "xOut",
    };
    Ok(Planned::new(0, inputs, vec![(out, args.x_out)], run))
}

fn combine(
    comm: &Comm,
    attrs: Attrs,
    (tokens, hidden, k): (usize, usize, usize),
    (ins, has_mask): (&[TensorView], bool),
    out: &TensorView,
) -> SimResult<()> {
    let (r, l, me) = (attrs.ep_world_size, attrs.local(), comm.rank as usize);
    let paired = match attrs.version {
        Version::V1 => "moe-distribute-combine.paired-dispatch",
        Version::V2 => "moe-distribute-combine-v2.paired-dispatch",
    };
    let bad = |what: String| crate::rules::violation(paired, what);
    let mut counts = ins[3].read_i64();
    // A2's epSendCounts lead with the counts; the ops' own bookkeeping follows.
    counts.truncate(r * l);
    let rows: i64 = counts.iter().map(|&c| c.max(0)).sum();
    let a = ins[0].dims()[0];
    if counts.iter().any(|&c| c < 0) || rows as usize > a {
        return Err(bad(format!(
            "epSendCounts {counts:?} for {a} rows of expandX"
        )));
    }
    let assist = ins[2].read_i64();
    let mut parts = vec![Vec::new(); r];
    match attrs.version {
        // Each row names its (source, token, k).
        Version::V2 => {
            for i in 0..rows as usize {
                let [s, t, j] = [assist[i * 128], assist[i * 128 + 1], assist[i * 128 + 2]];
                if !(0..r as i64).contains(&s) || t < 0 || j < 0 {
                    return Err(bad(format!("row {i} names rank {s}, token {t}, k {j}")));
                }
                let row = ins[0].select(i).read_f32();
                push_record(&mut parts[s as usize], [t as u32, j as u32, 0], &row);
            }
        }
        // The rows of local expert e from source s are block (e, s) of the counts, in the
        // source's order: each goes back as (expert, its index in the block).
        Version::V1 => {
            let mut i = 0;
            for e in 0..l {
                for s in 0..r {
                    for n in 0..counts[e * r + s] as usize {
                        let row = ins[0].select(i).read_f32();
                        push_record(&mut parts[s], [(me * l + e) as u32, n as u32, 0], &row);
                        i += 1;
                    }
                }
            }
        }
    }
    let all = exchange(comm, attrs.signature("Combine", hidden, k), parts)?;
    let ids = ins[1].read_i64();
    // V1: the pair each (expert, index) names, from this rank's expandIdx.
    let named: std::collections::HashMap<(i64, i64), usize> = match attrs.version {
        Version::V1 => (0..tokens * k)
            .filter(|&f| assist[f] >= 0)
            .map(|f| ((ids[f], assist[f]), f))
            .collect(),
        Version::V2 => Default::default(),
    };
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; tokens * k];
    for (s, c) in all.iter().enumerate() {
        for ([a, b, _], row) in records(&c.parts[me], hidden, s)? {
            let pair = match attrs.version {
                Version::V2 => {
                    let (t, j) = (a as usize, b as usize);
                    (t < tokens && j < k).then_some(t * k + j)
                }
                Version::V1 => named
                    .get(&(i64::from(a), i64::from(b)))
                    .copied()
                    .filter(|_| a as usize / l == s),
            };
            match pair {
                Some(f) if slots[f].is_none() => slots[f] = Some(row),
                _ => {
                    return Err(bad(format!(
                        "rank {s} returns ({a}, {b}) to rank {me}, which has {tokens} tokens of top-{k}: \
                         no pair it sent there, or that pair twice"
                    )));
                }
            }
        }
    }
    let on = active(has_mask.then(|| &ins[5]), (tokens, k), attrs.form)?;
    let scales = ins[4].read_f32();
    let mut acc = vec![0f32; tokens * hidden];
    for t in 0..tokens {
        let sum = &mut acc[t * hidden..(t + 1) * hidden];
        for j in 0..k {
            let f = t * k + j;
            let sent = on[f] && (0..attrs.moe_expert_num as i64).contains(&ids[f]);
            match (&slots[f], sent) {
                (Some(row), true) => {
                    let w = scales[f];
                    for (a, v) in sum.iter_mut().zip(row) {
                        *a += w * v;
                    }
                }
                (None, false) => {}
                (got, _) => {
                    return Err(bad(format!(
                        "token {t}, k {j} of rank {me}: {} came back for a pair that was {}sent",
                        if got.is_some() { "a row" } else { "nothing" },
                        if sent { "" } else { "not " }
                    )));
                }
            }
        }
    }
    out.write_f32(&acc)
}
