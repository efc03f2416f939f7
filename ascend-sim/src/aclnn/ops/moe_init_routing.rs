//! aclnnMoeInitRoutingV2: a stable sort of the flattened (token, k) expert ids, the gather of
//! each token's row to its expanded position, and per-expert counts or their cumulative sums.

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32, ACL_INT64};

use super::Planned;
use crate::aclnn::data::Bound;
use crate::aclnn::objects::{TensorDesc, invalid};
use crate::error::SimResult;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) active_num: i64,
    pub(crate) expert_capacity: i64,
    pub(crate) expert_num: i64,
    pub(crate) drop_pad_mode: i64,
    pub(crate) count_flag: i64,
    pub(crate) before_capacity_flag: bool,
}

pub(crate) fn plan(
    x: TensorDesc,
    expert_idx: TensorDesc,
    a: Attrs,
    expanded_x: TensorDesc,
    expanded_row_idx: TensorDesc,
    counts: Option<TensorDesc>,
    before_capacity: Option<TensorDesc>,
) -> SimResult<Planned> {
    x.expect("x", 2, &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16])?;
    expert_idx.expect("expertIdx", 2, &[ACL_INT32])?;
    let (rows, hidden) = (x.dim(0), x.dim(1));
    if expert_idx.dim(0) != rows {
        return Err(invalid(format!(
            "expertIdx has {} rows but x has {rows}; expected one row of expert ids per token",
            expert_idx.dim(0)
        )));
    }
    let k = expert_idx.dim(1);
    let n = rows * k;
    if a.expert_num < 1 {
        return Err(invalid(format!(
            "expertNum {}; expected at least 1",
            a.expert_num
        )));
    }
    let experts = a.expert_num as usize;
    match a.drop_pad_mode {
        0 => {
            let kept = if a.active_num > 0 {
                n.min(a.active_num as usize)
            } else {
                n
            };
            expanded_x.expect("expandedXOut", 2, &[x.dtype])?;
            expanded_x.expect_dims("expandedXOut", &[kept, hidden])?;
        }
        1 => {
            if a.expert_capacity < 1 {
                return Err(invalid(format!(
                    "expertCapacity {} with dropPadMode 1; expected at least 1",
                    a.expert_capacity
                )));
            }
            expanded_x.expect("expandedXOut", 3, &[x.dtype])?;
            expanded_x.expect_dims(
                "expandedXOut",
                &[experts, a.expert_capacity as usize, hidden],
            )?;
        }
        other => {
            return Err(invalid(format!(
                "dropPadMode {other}; expected 0 (dropless) or 1 (drop/pad)"
            )));
        }
    }
    expanded_row_idx.expect("expandedRowIdxOut", 1, &[ACL_INT32])?;
    expanded_row_idx.expect_dims("expandedRowIdxOut", &[n])?;
    if !(0..=2).contains(&a.count_flag) {
        return Err(invalid(format!(
            "expertTokensCountOrCumsumFlag {}; expected 0 (none), 1 (cumsum) or 2 (counts)",
            a.count_flag
        )));
    }
    if a.count_flag != 0 {
        if a.drop_pad_mode != 0 {
            return Err(invalid(
                "expert token counts are produced in dropless mode only",
            ));
        }
        let c = counts
            .as_ref()
            .ok_or_else(|| invalid("expertTokensCountOrCumsumOut is NULL but requested"))?;
        c.expect("expertTokensCountOrCumsumOut", 1, &[ACL_INT32, ACL_INT64])?;
        c.expect_dims("expertTokensCountOrCumsumOut", &[experts])?;
    }
    if a.before_capacity_flag {
        let c = before_capacity
            .as_ref()
            .ok_or_else(|| invalid("expertTokensBeforeCapacityOut is NULL but requested"))?;
        c.expect("expertTokensBeforeCapacityOut", 1, &[ACL_INT32, ACL_INT64])?;
        c.expect_dims("expertTokensBeforeCapacityOut", &[experts])?;
    }

    let want_counts = a.count_flag != 0;
    let mut outputs = vec![expanded_x, expanded_row_idx];
    if want_counts {
        outputs.extend(counts);
    }
    if a.before_capacity_flag {
        outputs.extend(before_capacity);
    }
    let run = Arc::new(move |inputs: &[TensorDesc], outputs: &[TensorDesc]| {
        let x = Bound::new("x", &inputs[0])?.read_f64();
        let ids = Bound::new("expertIdx", &inputs[1])?.read_i64();
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
                let kept = outputs[0].dim(0);
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
        Bound::new("expandedXOut", &outputs[0])?.write_f64(&expanded)?;
        Bound::new("expandedRowIdxOut", &outputs[1])?.write_i64(&expanded_row_idx)?;
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
            Bound::new("expertTokensCountOrCumsumOut", &outputs[next])?.write_i64(&values)?;
            next += 1;
        }
        if a.before_capacity_flag {
            Bound::new("expertTokensBeforeCapacityOut", &outputs[next])?.write_i64(&counts)?;
        }
        Ok(())
    });
    // The sort needs scratch space on the device: rows·k keys and values.
    let workspace = (n as u64) * 8;
    Ok(Planned {
        workspace,
        inputs: vec![x, expert_idx],
        outputs,
        run,
    })
}
