//! Expert parallelism over ranks (`ops::ep`, DeepEP's dispatch and combine over HCCL) against
//! `reference::ep`, and the expert-parallel MoE layer against the f64 layer: exact where the
//! device only moves bytes, within bounds derived from the formats where it rounds.
//!
//! Each case runs on as many ranks as it names, or as there are devices if fewer (the
//! simulator is given enough); with fewer than two devices the family has no cases.

mod ranks;
mod world;

use ascend_npu::fp8::{BlockQuantized, ScaleFormat, quantize_act};
use ascend_npu::kernels::Kernels;
use ascend_npu::ops::ep::{
    EpMoeLayer, EpTransport, Payload, dispatch_layout, low_latency_combine,
    low_latency_dispatch_with, normal_combine, normal_dispatch,
};
use ascend_npu::ops::fp8::Fp8Activations;
use ascend_npu::reference::ep as reference;
use half::bf16;

use super::moe::LayerCase;
use super::{Family, Run};
use crate::check::{self, BF16, FP32, Outcome};
use crate::preset::EpCase;
use world::{Uploaded, World};

/// The family.
pub const EP: Family = Family {
    name: "ep",
    summary: "expert parallelism over ranks: layout, dispatch/combine bf16 and FP8, low latency \
              (all-to-all-v, and MC2 on Atlas A3), the EP MoE layer, vs f64",
    kernels: true,
    aclnn: &[
        "aclnnMoeFinalizeRoutingV2",
        "aclnnMoeGatingTopK",
        "aclnnMoeInitRoutingV2",
        "aclnnCast",
        "aclnnGroupedMatmulV4",
    ],
    run,
};

fn device(e: ascend_npu::Error) -> String {
    e.to_string()
}

fn reference_error(e: impl std::fmt::Display) -> String {
    format!("the reference refused the case: {e}")
}

fn run(run: &mut Run<'_>) {
    for case in run.preset.ep.clone() {
        let shape_name = |n: usize, hidden: usize| {
            format!(
                "R={n} T={} H={hidden} L={} K={}",
                case.tokens, case.local_experts, case.top_k
            )
        };
        let Some(n) = ranks::available(case.ranks) else {
            let name = shape_name(case.ranks, case.hidden);
            run.case("ep", &name, |_, op, c| {
                Ok(Outcome::skipped(
                    op,
                    c,
                    "at least two devices (one rank each)",
                ))
            });
            continue;
        };
        let name = shape_name(n, case.hidden);
        let world = World::new(&case, n, &mut run.rng(&name));
        run.case("layout", &name, |_, op, c| layout(&world, op, c));
        run.cases("dispatch", &format!("bf16 {name}"), |_, op, c| {
            dispatch_bf16(&world, op, c)
        });
        run.case("dispatch", &format!("fp8 {name}"), |_, op, c| {
            dispatch_fp8(&world, op, c)
        });
        run.case("combine", &format!("bf16 {name}"), |_, op, c| {
            combine(&world, op, c)
        });
        run.cases("low-latency", &format!("bf16 {name}"), |_, op, c| {
            low_latency(&world, op, c, EpTransport::Portable)
        });
        // The MC2 ops take hidden sizes of 1024..=8192 only: the case's ranks, tokens and
        // experts at the nearest such size.
        let mc2_case = EpCase {
            hidden: case.hidden.clamp(MC2_HIDDEN.0, MC2_HIDDEN.1),
            ..case
        };
        let name = shape_name(n, mc2_case.hidden);
        let soc = run.session.soc.clone();
        if soc.starts_with(MC2_SOC) {
            let world = World::new(&mc2_case, n, &mut run.rng(&name));
            run.cases("mc2", &format!("bf16 {name}"), |_, op, c| {
                low_latency(&world, op, c, EpTransport::Auto)
            });
        } else {
            run.case("mc2", &format!("bf16 {name}"), |_, op, c| {
                Ok(Outcome::skipped(
                    op,
                    c,
                    format!(
                        "an Atlas A3 SoC ({MC2_SOC}xx) for the MC2 ops at {n} ranks (Atlas A2 \
                         takes them at 16, 32, 64, 128 or 256, which this case does not cover); \
                         this is {soc}"
                    ),
                ))
            });
        }
    }
    for shape in run.preset.moe_layer.clone() {
        // The most ranks (of the EP cases' counts) that split the experts evenly.
        let wanted = run.preset.ep.iter().map(|c| c.ranks).max().unwrap_or(0);
        let n =
            ranks::available(wanted).and_then(|n| (2..=n).rev().find(|r| shape.experts % r == 0));
        match n {
            Some(n) => layer(run, &shape, n),
            None => run.case("layer", &LayerCase::name(&shape), |_, op, c| {
                Ok(Outcome::skipped(
                    op,
                    c,
                    format!(
                        "at least two devices that split its {} experts evenly (one rank each)",
                        shape.experts
                    ),
                ))
            }),
        }
    }
}

/// The SoC name prefix of Atlas A3, where the MC2 ops (aclnnMoeDistributeDispatchV2 /
/// CombineV2, cann-api-facts §4.7) run at any rank count from 2; `ops::ep` also takes them on
/// Atlas A2 ("fullmesh") at 16 ranks or more, which the presets' EP cases do not reach
/// (`tests/hccl_mc2_a2_sim.rs` covers that form).
const MC2_SOC: &str = "Ascend910_93";
/// The hidden sizes the MC2 ops take.
const MC2_HIDDEN: (usize, usize) = (1024, 8192);

/// Mismatches between two sequences, counting a length difference.
fn mismatches<T: PartialEq>(got: &[T], want: &[T]) -> usize {
    got.iter().zip(want).filter(|(g, w)| g != w).count() + got.len().abs_diff(want.len())
}

fn layout(world: &World, op: &str, case: &str) -> Result<Outcome, String> {
    let k = world.shape.top_k;
    let got = ranks::on_ranks(world.ranks.len(), |comm, stream| {
        let ids = stream
            .upload(&world.ranks[comm.rank() as usize].ids)
            .map_err(device)?;
        dispatch_layout(&world.shape.config, &ids, k).map_err(device)
    })?;
    let mut wrong = 0;
    for (r, got) in got.iter().enumerate() {
        let want = reference::dispatch_layout(&world.shape.config, world.ids(r), k)
            .map_err(reference_error)?;
        wrong += mismatches(&got.num_tokens_per_rank, &want.num_tokens_per_rank)
            + mismatches(&got.num_tokens_per_expert, &want.num_tokens_per_expert)
            + mismatches(&got.is_token_in_rank, &want.is_token_in_rank);
    }
    Ok(Outcome::exact(
        op,
        case,
        "tokens per rank and expert, token-in-rank flags",
        wrong,
        "counting: exact",
    ))
}

fn dispatch_bf16(world: &World, op: &str, case: &str) -> Result<Vec<Outcome>, String> {
    let want =
        reference::normal_dispatch(&world.shape, &world.inputs()).map_err(reference_error)?;
    let got = ranks::on_ranks(world.ranks.len(), |comm, stream| {
        let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]).map_err(device)?;
        let recv = normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Bf16(&up.x)))
            .map_err(device)?;
        let x = recv.x.bf16().ok_or("bf16 rows came back as FP8")?;
        Ok((
            check::widen(&x.to_vec().map_err(device)?),
            recv.topk_idx.to_vec().map_err(device)?,
            recv.topk_weights.to_vec().map_err(device)?,
            recv.handle.recv_src().to_vec(),
            recv.num_recv_tokens_per_expert,
        ))
    })?;
    let (mut rows, mut meta) = (0, 0);
    for ((x, ids, w, src, per_expert), want) in got.iter().zip(&want) {
        rows += mismatches(x, &want.x) + mismatches(src, &want.src);
        let ids: Vec<i64> = ids.iter().map(|&e| i64::from(e)).collect();
        let w: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        meta += mismatches(&ids, &want.topk_idx)
            + mismatches(&w, &want.topk_weights)
            + mismatches(per_expert, &want.num_recv_tokens_per_expert);
    }
    let source = "bytes moved, not computed: exact";
    Ok(vec![
        Outcome::exact(
            op,
            case,
            "received rows and their (rank, token) order",
            rows,
            source,
        ),
        Outcome::exact(
            op,
            case,
            "received local ids, weights and per-expert counts",
            meta,
            source,
        ),
    ])
}

/// The FP8 payload: each rank's rows quantized on the host (1×128 tiles, fp32 scales) must
/// arrive as the same codes and scales, in the reference's order.
fn dispatch_fp8(world: &World, op: &str, case: &str) -> Result<Outcome, String> {
    let h = world.shape.hidden;
    let want =
        reference::normal_dispatch(&world.shape, &world.inputs()).map_err(reference_error)?;
    let tokens = world.tokens();
    let q: Vec<BlockQuantized> = world
        .ranks
        .iter()
        .zip(&tokens)
        .map(|(t, &n)| quantize_act(&t.x, n, h, ScaleFormat::Fp32).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let got = ranks::on_ranks(world.ranks.len(), |comm, stream| {
        let r = comm.rank() as usize;
        let up = Uploaded::new(stream, &world.ranks[r]).map_err(device)?;
        let fp8 = Fp8Activations::from_quantized(stream, &q[r]).map_err(device)?;
        let recv = normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Fp8(&fp8)))
            .map_err(device)?;
        let a = recv.x.fp8().ok_or("FP8 rows came back as bf16")?;
        let codes: Vec<u8> = a
            .codes()
            .to_vec()
            .map_err(device)?
            .iter()
            .map(|c| c.to_bits())
            .collect();
        Ok((codes, a.scales().to_vec().map_err(device)?))
    })?;
    let tiles = h.div_ceil(128);
    let mut wrong = 0;
    for ((codes, scales), want) in got.iter().zip(&want) {
        let mut sent_codes = Vec::with_capacity(codes.len());
        let mut sent_scales = Vec::with_capacity(scales.len());
        for &(s, tok) in &want.src {
            sent_codes.extend(
                q[s].codes()[tok * h..(tok + 1) * h]
                    .iter()
                    .map(|c| c.to_bits()),
            );
            sent_scales.extend_from_slice(&q[s].scales()[tok * tiles..(tok + 1) * tiles]);
        }
        wrong += mismatches(codes, &sent_codes) + mismatches(scales, &sent_scales);
    }
    Ok(Outcome::exact(
        op,
        case,
        "received E4M3 codes and tile scales",
        wrong,
        "bytes moved, not computed: exact",
    ))
}

/// Combine of results that differ per rank (`y = bf16(x·(1 + rank)/3)`), so order and
/// rounding matter.
fn combine(world: &World, op: &str, case: &str) -> Result<Outcome, String> {
    let received =
        reference::normal_dispatch(&world.shape, &world.inputs()).map_err(reference_error)?;
    let scale = |r: usize, v: f64| bf16::from_f64(v * (1.0 + r as f64) / 3.0);
    let y: Vec<Vec<f64>> = received
        .iter()
        .enumerate()
        .map(|(r, rec)| rec.x.iter().map(|&v| scale(r, v).to_f64()).collect())
        .collect();
    let abs_y: Vec<Vec<f64>> = y
        .iter()
        .map(|v| v.iter().map(|x| x.abs()).collect())
        .collect();
    let tokens = world.tokens();
    let want =
        reference::normal_combine(&world.shape, &received, &y, &tokens).map_err(reference_error)?;
    let magnitude = reference::normal_combine(&world.shape, &received, &abs_y, &tokens)
        .map_err(reference_error)?;
    let got = ranks::on_ranks(world.ranks.len(), |comm, stream| {
        let r = comm.rank() as usize;
        let up = Uploaded::new(stream, &world.ranks[r]).map_err(device)?;
        let recv = normal_dispatch(comm, stream, &world.shape, up.tokens(Payload::Bf16(&up.x)))
            .map_err(device)?;
        let x = recv.x.bf16().ok_or("bf16 rows came back as FP8")?;
        let y: Vec<bf16> = x
            .to_vec()
            .map_err(device)?
            .iter()
            .map(|v| scale(r, v.to_f64()))
            .collect();
        let y = stream.upload(&y).map_err(device)?;
        let out = normal_combine(comm, stream, &recv.handle, &y, None).map_err(device)?;
        Ok(check::widen(&out.to_vec().map_err(device)?))
    })?;
    let (got, want, magnitude) = (got.concat(), want.concat(), magnitude.concat());
    // At most R parts summed in fp32, each step within 2^-24 of Σ|y|, then one rounding to
    // bf16 (2^-8 relative).
    let r = world.ranks.len() as f64;
    Ok(check::within(
        op,
        case,
        &got,
        &want,
        |i| BF16.u * want[i].abs() + r * FP32.u * magnitude[i] + BF16.tiny,
        "R-term fp32 sum ≤ R·2^-24·Σ|y|, then bf16 (2^-8 rel)",
    ))
}

/// Low-latency dispatch into the masked layout, and its combine `Σ_k w_k·y_k` with identity
/// experts whose unused slab rows are NaN (a read of one would show), over `transport`:
/// `Portable` (all-to-all-v) or `Auto` where the MC2 ops must take it (an A3 SoC; a case
/// whose dispatch fell back to all-to-all-v is skipped, saying why).
fn low_latency(
    world: &World,
    op: &str,
    case: &str,
    transport: EpTransport,
) -> Result<Vec<Outcome>, String> {
    let h = world.shape.hidden;
    let tokens = world.tokens();
    let max_tokens = tokens.iter().copied().max().unwrap_or(0) + 2;
    let inputs = world.inputs();
    let masked = reference::low_latency_dispatch(&world.shape, &inputs, max_tokens)
        .map_err(reference_error)?;
    let y: Vec<Vec<f64>> = masked.iter().map(|m| m.x.clone()).collect();
    let want = reference::low_latency_combine(&world.shape, &inputs, &masked, &y)
        .map_err(reference_error)?;
    let abs_y: Vec<Vec<f64>> = y
        .iter()
        .map(|v| v.iter().map(|x| x.abs()).collect())
        .collect();
    let magnitude = reference::low_latency_combine(&world.shape, &inputs, &masked, &abs_y)
        .map_err(reference_error)?;
    let got = ranks::on_ranks(world.ranks.len(), |comm, stream| {
        let up = Uploaded::new(stream, &world.ranks[comm.rank() as usize]).map_err(device)?;
        let recv = low_latency_dispatch_with(
            comm,
            stream,
            &world.shape,
            up.tokens(Payload::Bf16(&up.x)),
            max_tokens,
            transport,
        )
        .map_err(device)?;
        let used = recv.handle.transport();
        let x = recv.x.bf16().ok_or("bf16 rows came back as FP8")?;
        let rows = x.to_vec().map_err(device)?;
        let slab = recv.handle.slab_rows();
        let mut y = vec![bf16::NAN; rows.len()];
        for (e, &count) in recv.recv_count.iter().enumerate() {
            let part = e * slab * h..(e * slab + count) * h;
            y[part.clone()].copy_from_slice(&rows[part]);
        }
        let dy = stream.upload(&y).map_err(device)?;
        let out = low_latency_combine(comm, stream, &recv.handle, &dy, &up.w).map_err(device)?;
        Ok((
            recv.recv_count,
            recv.handle.recv_src().map(<[_]>::to_vec),
            y,
            check::widen(&out.to_vec().map_err(device)?),
            used,
        ))
    })?;
    if transport == EpTransport::Auto && got.iter().any(|g| g.4 != EpTransport::Auto) {
        return Ok(vec![Outcome::skipped(
            op,
            case,
            "the MC2 ops and their limits (CANN with aclnnMoeDistributeDispatchV2/CombineV2 or \
             V1's, HCCL_BUFFSIZE for the slabs): this dispatch fell back to all-to-all-v",
        )]);
    }
    let mut wrong = 0;
    for ((count, src, y, _, _), m) in got.iter().zip(&masked) {
        wrong += mismatches(count, &m.recv_count);
        // The portable path keeps (rank, token, k) order; the MC2 ops keep the rows' sources
        // opaque and their order within an expert undocumented, so there each expert's rows
        // are compared as a multiset (sorted by their bits).
        match src {
            Some(src) => wrong += mismatches(src, &m.src),
            None if transport == EpTransport::Auto => {}
            None => wrong += 1,
        }
        for (e, &c) in m.recv_count.iter().enumerate() {
            let part = e * m.slab_rows * h..(e * m.slab_rows + c) * h;
            let mut rows = y.get(part.clone()).map_or_else(Vec::new, check::widen);
            let mut want = m.x[part].to_vec();
            if src.is_none() {
                rows = sorted_rows(&rows, h);
                want = sorted_rows(&want, h);
            }
            wrong += mismatches(&rows, &want);
        }
    }
    let out: Vec<f64> = got.iter().flat_map(|g| g.3.iter().copied()).collect();
    let (want, magnitude) = (want.concat(), magnitude.concat());
    // Σ_k w_k·y_k over K terms in fp32 (each product and sum within 2^-24 of Σ|w·y|), then
    // one rounding to bf16.
    let k = world.shape.top_k as f64;
    Ok(vec![
        Outcome::exact(
            op,
            case,
            if transport == EpTransport::Auto {
                "slab rows (as a set per expert) and receive counts"
            } else {
                "slab rows, receive counts and (rank, token, k) order"
            },
            wrong,
            "bytes moved, not computed: exact",
        ),
        check::within(
            op,
            &format!("{case} combine"),
            &out,
            &want,
            |i| BF16.u * want[i].abs() + 2.0 * k * FP32.u * magnitude[i] + BF16.tiny,
            "K-term fp32 Σ w·y ≤ 2K·2^-24·Σ|w·y|, then bf16 (2^-8 rel)",
        ),
    ])
}

/// `[n, h]` rows in the order of their values' bits (a multiset compares as a sorted list).
fn sorted_rows(rows: &[f64], h: usize) -> Vec<f64> {
    let mut chunks: Vec<&[f64]> = rows.chunks(h.max(1)).collect();
    chunks.sort_by(|a, b| {
        let key = |r: &[f64]| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        key(a).cmp(&key(b))
    });
    chunks.concat()
}

/// The expert-parallel layer on `n` ranks, each with every rank's tokens' share of the
/// experts, against the whole layer in f64.
fn layer(run: &mut Run<'_>, shape: &crate::preset::MoeCase, n: usize) {
    let case = format!("{} R={n}", LayerCase::name(shape));
    run.case("layer", &case, |run, op, case| {
        let layer = LayerCase::new(run, shape, case)?;
        let (tokens, hidden) = (shape.tokens, shape.hidden);
        let local = shape.experts / n;
        // Every rank runs the same tokens, so each rank's result is compared with one
        // reference.
        let got = ranks::on_ranks(n, |comm, stream| {
            let r = comm.rank() as usize;
            let kernels = Kernels::load(stream.device()).map_err(device)?;
            let weights = layer.upload(stream, r * local..(r + 1) * local)?;
            let ep =
                EpMoeLayer::new(layer.config, hidden, (n, r), weights, kernels).map_err(device)?;
            let x = stream.upload(&layer.x).map_err(device)?;
            let out = ep.forward(comm, stream, &x, tokens).map_err(device)?;
            Ok(check::widen(&out.to_vec().map_err(device)?))
        })?;
        // One more bf16 rounding per path than the single-device layer: each rank's partial
        // sum of a token is rounded before the ranks' parts are added (DeepEP's bf16 combine).
        Ok(layer.outcome(
            op,
            case,
            &got.concat(),
            5.0,
            "5 bf16 roundings per path (GEMMs, SwiGLU, per-rank partial, combine) × 2^-8",
        ))
    });
}
