//! aclnnMoeInitRoutingV2: a stable sort of the flattened (token, k) expert ids, the gather of
//! each token's row to its expanded position, and per-expert counts or their cumulative sums
//! (INT32 only, cann-api-facts errata 3).

use std::sync::Arc;

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::TensorDesc;
use crate::operators::aclnn::view::TensorView;

/// The attributes the computation uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) expert_capacity: i64,
    pub(crate) expert_num: i64,
    pub(crate) drop_pad_mode: i64,
    pub(crate) count_flag: i64,
    pub(crate) before_capacity_flag: bool,
}

/// Plans the operator; the arguments passed the rules (`moe-init-routing-v2.*`), and `counts` /
/// `before_capacity` are present exactly when requested.
pub(crate) fn plan(
    x: TensorDesc,
    expert_idx: TensorDesc,
    a: Attrs,
    expanded_x: TensorDesc,
    expanded_row_idx: TensorDesc,
    counts: Option<TensorDesc>,
    before_capacity: Option<TensorDesc>,
) -> SimResult<Planned> {
    let (rows, hidden) = (x.dim(0), x.dim(1));
    let k = expert_idx.dim(1);
    let n = rows * k;
    let experts = a.expert_num as usize;
    let want_counts = a.count_flag != 0;
    let mut outputs = vec![
        ("expandedXOut", expanded_x),
        ("expandedRowIdxOut", expanded_row_idx),
    ];
    if want_counts {
        outputs.extend(counts.map(|t| ("expertTokensCountOrCumsumOut", t)));
    }
    if a.before_capacity_flag {
        outputs.extend(before_capacity.map(|t| ("expertTokensBeforeCapacityOut", t)));
    }
    let run = Arc::new(move |inputs: &[TensorView], outputs: &[TensorView]| {
        let x = inputs[0].read_f64();
        let ids = inputs[1].read_i64();
        super::check_expert_ids(&ids, k, experts as i64)?;
        // Stable: equal expert ids keep their flat (token-major) order.
        let mut sorted: Vec<usize> = (0..n).collect();
        sorted.sort_by_key(|&i| ids[i]);
        let mut counts = vec![0i64; experts];
        for &e in &ids {
            counts[e as usize] += 1;
        }
        let mut expanded_row_idx = vec![-1i64; n];
        let expanded = match a.drop_pad_mode {
            0 => {
                let kept = outputs[0].dims()[0];
                let mut out = Vec::with_capacity(kept * hidden);
                for (pos, &flat) in sorted.iter().enumerate() {
                    expanded_row_idx[flat] = pos as i64;
                    if pos < kept {
                        let token = flat / k;
                        out.extend_from_slice(&x[token * hidden..(token + 1) * hidden]);
                    }
                }
                out
            }
            _ => {
                let capacity = a.expert_capacity as usize;
                let mut out = vec![0.0; experts * capacity * hidden];
                let mut filled = vec![0usize; experts];
                for &flat in &sorted {
                    let e = ids[flat] as usize;
                    if filled[e] < capacity {
                        let slot = e * capacity + filled[e];
                        let token = flat / k;
                        out[slot * hidden..(slot + 1) * hidden]
                            .copy_from_slice(&x[token * hidden..(token + 1) * hidden]);
                        expanded_row_idx[flat] = slot as i64;
                        filled[e] += 1;
                    }
                }
                out
            }
        };
        outputs[0].write_f64(&expanded)?;
        outputs[1].write_i64(&expanded_row_idx)?;
        let mut next = 2;
        if want_counts {
            let values: Vec<i64> = if a.count_flag == 1 {
                counts
                    .iter()
                    .scan(0, |acc, c| {
                        *acc += c;
                        Some(*acc)
                    })
                    .collect()
            } else {
                counts.clone()
            };
            outputs[next].write_i64(&values)?;
            next += 1;
        }
        if a.before_capacity_flag {
            outputs[next].write_i64(&counts)?;
        }
        Ok(())
    });
    // The sort needs scratch space on the device: rows·k keys and values.
    let workspace = (n as u64) * 8;
    Ok(Planned::new(
        workspace,
        vec![("x", x), ("expertIdx", expert_idx)],
        outputs,
        run,
    ))
}
