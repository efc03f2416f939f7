//! aclnnMoeInitRoutingV3, the dropless subset without quantisation: like V2, plus an active
//! expert range `[start, end)` (the experts local to this device under expert parallelism).
//!
//! Pairs whose expert is outside the range are not placed: the kept pairs are sorted stably by
//! expert into rows `0..kept` of `expandedXOut` (the tail stays zero). `rowIdxType` 1
//! ("scatter") gives, per flat pair `t·K+k`, its row or −1; 0 ("gather") gives, per row, the
//! flat pair it holds, −1 in the tail. Expert token numbers cover the range's experts only:
//! type 0 cumulative sums, 1 counts (deepseek-ops §2.3).

use std::sync::Arc;

use ascend_sys::{ACL_BF16, ACL_FLOAT, ACL_FLOAT16, ACL_INT32, ACL_INT64};

use super::Planned;
use crate::aclnn::data::Bound;
use crate::aclnn::objects::{TensorDesc, invalid};
use crate::error::SimResult;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) expert_num: i64,
    pub(crate) drop_pad_mode: i64,
    pub(crate) tokens_num_type: i64,
    pub(crate) tokens_num_flag: bool,
    pub(crate) quant_mode: i64,
    pub(crate) range: Option<(i64, i64)>,
    pub(crate) row_idx_type: i64,
}

pub(crate) fn plan(
    x: TensorDesc,
    expert_idx: TensorDesc,
    a: Attrs,
    expanded_x: TensorDesc,
    expanded_row_idx: TensorDesc,
    counts: Option<TensorDesc>,
) -> SimResult<Planned> {
    x.expect("x", 2, &[ACL_FLOAT, ACL_FLOAT16, ACL_BF16])?;
    expert_idx.expect("expertIdx", 2, &[ACL_INT32])?;
    let (rows, hidden) = (x.dim(0), x.dim(1));
    if expert_idx.dim(0) != rows {
        return Err(invalid(format!(
            "expertIdx has {} rows but x has {rows}",
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
    if a.drop_pad_mode != 0 {
        return Err(invalid(
            "dropPadMode must be 0: the simulator implements the dropless V3",
        ));
    }
    if a.quant_mode != -1 {
        return Err(invalid(format!(
            "quantMode {}; the simulator implements -1 (no quantisation)",
            a.quant_mode
        )));
    }
    let (start, end) = a.range.unwrap_or((0, a.expert_num));
    if !(0 <= start && start < end && end <= a.expert_num) {
        return Err(invalid(format!(
            "activeExpertRange [{start}, {end}); expected 0 <= start < end <= expertNum ({})",
            a.expert_num
        )));
    }
    if a.row_idx_type != 0 && a.row_idx_type != 1 {
        return Err(invalid(format!(
            "rowIdxType {}; expected 0 (gather) or 1 (scatter)",
            a.row_idx_type
        )));
    }
    expanded_x.expect("expandedXOut", 2, &[x.dtype])?;
    expanded_x.expect_dims("expandedXOut", &[n, hidden])?;
    expanded_row_idx.expect("expandedRowIdxOut", 1, &[ACL_INT32])?;
    expanded_row_idx.expect_dims("expandedRowIdxOut", &[n])?;
    let local = (end - start) as usize;
    if a.tokens_num_flag {
        if a.tokens_num_type != 0 && a.tokens_num_type != 1 {
            return Err(invalid(format!(
                "expertTokensNumType {}; the simulator implements 0 (cumsum) and 1 (counts)",
                a.tokens_num_type
            )));
        }
        let c = counts
            .as_ref()
            .ok_or_else(|| invalid("expertTokensNumFlag is set but the count output is NULL"))?;
        c.expect("expertTokensCountOrCumsumOut", 1, &[ACL_INT32, ACL_INT64])?;
        c.expect_dims("expertTokensCountOrCumsumOut", &[local])?;
    }
    let mut outputs = vec![expanded_x, expanded_row_idx];
    if a.tokens_num_flag {
        outputs.extend(counts);
    }
    let run = Arc::new(move |inputs: &[TensorDesc], outputs: &[TensorDesc]| {
        let x = Bound::new("x", &inputs[0])?.read_f64();
        let ids = Bound::new("expertIdx", &inputs[1])?.read_i64();
        super::check_expert_ids(&ids, k, a.expert_num)?;
        let mut kept: Vec<usize> = (0..n).filter(|&f| (start..end).contains(&ids[f])).collect();
        kept.sort_by_key(|&f| ids[f]); // stable: flat order within an expert
        let mut expanded = vec![0.0; n * hidden];
        let mut scatter = vec![-1i64; n];
        let mut gather = vec![-1i64; n];
        for (row, &f) in kept.iter().enumerate() {
            let token = f / k;
            expanded[row * hidden..(row + 1) * hidden]
                .copy_from_slice(&x[token * hidden..(token + 1) * hidden]);
            scatter[f] = row as i64;
            gather[row] = f as i64;
        }
        Bound::new("expandedXOut", &outputs[0])?.write_f64(&expanded)?;
        let idx = if a.row_idx_type == 1 { scatter } else { gather };
        Bound::new("expandedRowIdxOut", &outputs[1])?.write_i64(&idx)?;
        if a.tokens_num_flag {
            let mut counts = vec![0i64; local];
            for &f in &kept {
                counts[(ids[f] - start) as usize] += 1;
            }
            if a.tokens_num_type == 0 {
                let mut acc = 0;
                for c in &mut counts {
                    acc += *c;
                    *c = acc;
                }
            }
            Bound::new("expertTokensCountOrCumsumOut", &outputs[2])?.write_i64(&counts)?;
        }
        Ok(())
    });
    Ok(Planned {
        workspace: (n as u64) * 8,
        inputs: vec![x, expert_idx],
        outputs,
        run,
    })
}
