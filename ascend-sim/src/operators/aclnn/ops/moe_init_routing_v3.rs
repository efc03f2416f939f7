//! aclnnMoeInitRoutingV3, the dropless subset without quantisation: like V2, plus an active
//! expert range `[start, end)` (the experts local to this device under expert parallelism).
//!
//! Pairs whose expert is outside the range are not placed: the kept pairs are sorted stably by
//! expert into rows `0..kept` of `expandedXOut`; rows past them are not written. `rowIdxType` 0
//! ("gather") gives, per flat pair `t·K+k`, its row, −1 pre-filled for pairs not placed (source
//! to destination); 1 ("scatter") gives, per row, the flat pair it holds (destination to
//! source) and leaves the tail uninitialised, which the simulator makes visible by filling it
//! with [`crate::UNINIT_BYTE`]s. Expert token counts (INT64) cover the range's experts only
//! (cann-api-facts errata 4). Without a scale input, `expandedScaleOut` is not written
//! (unverified; nothing may rely on its contents). The argument rules are in `crate::rules`
//! (`moe-init-routing-v3.*`).

use std::sync::Arc;

use super::Planned;
use crate::base::error::SimResult;
use crate::operators::aclnn::objects::{TensorDesc, invalid};
use crate::operators::aclnn::view::TensorView;
use crate::runtime::memory::UNINIT_BYTE;

/// The attributes the computation uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub(crate) expert_num: i64,
    pub(crate) expert_capacity: i64,
    pub(crate) drop_pad_mode: i64,
    pub(crate) tokens_num_type: i64,
    pub(crate) tokens_num_flag: bool,
    pub(crate) quant_mode: i64,
    pub(crate) range: (i64, i64),
    pub(crate) row_idx_type: i64,
}

/// What an uninitialised INT32 element holds in the simulator.
const POISON_I32: i64 = i32::from_ne_bytes([UNINIT_BYTE; 4]) as i64;

/// The tensors of one call; `counts` is present exactly when requested.
pub(crate) struct Tensors {
    pub(crate) x: TensorDesc,
    pub(crate) expert_idx: TensorDesc,
    pub(crate) expanded_x: TensorDesc,
    pub(crate) expanded_row_idx: TensorDesc,
    pub(crate) counts: Option<TensorDesc>,
    pub(crate) expanded_scale: TensorDesc,
}

/// Plans the operator, whose arguments passed the rules; rejects what the simulator does not
/// implement.
pub(crate) fn plan(t: Tensors, a: Attrs) -> SimResult<Planned> {
    let Tensors {
        x,
        expert_idx,
        expanded_x,
        expanded_row_idx,
        counts,
        expanded_scale,
    } = t;
    let expert_num = a.expert_num;
    if a.drop_pad_mode != 0 || a.expert_capacity != 0 {
        return Err(invalid(format!(
            "dropPadMode {} / expertCapacity {}: the simulator implements the dropless V3 \
             (dropPadMode 0, expertCapacity 0)",
            a.drop_pad_mode, a.expert_capacity
        )));
    }
    if a.quant_mode != -1 {
        return Err(invalid(format!(
            "quantMode {}; the simulator implements -1 (no quantisation)",
            a.quant_mode
        )));
    }
    if a.tokens_num_flag && a.tokens_num_type != 1 {
        return Err(invalid(format!(
            "expertTokensNumType {}; the simulator implements 1 (counts)",
            a.tokens_num_type
        )));
    }
    let (rows, hidden) = (x.dim(0), x.dim(1));
    let k = expert_idx.dim(1);
    let n = rows * k;
    let (start, end) = a.range;
    let local = (end - start) as usize;
    // expandedScaleOut is required but not written without a scale input: it is kept among
    // the outputs so its memory is checked at launch like every other output.
    let mut outputs = vec![
        ("expandedXOut", expanded_x),
        ("expandedRowIdxOut", expanded_row_idx),
        ("expandedScaleOut", expanded_scale),
    ];
    outputs.extend(counts.map(|t| ("expertTokensCountOrCumsumOut", t)));
    let run = Arc::new(move |inputs: &[TensorView], outputs: &[TensorView]| {
        let x = inputs[0].read_f64();
        let ids = inputs[1].read_i64();
        super::check_expert_ids(&ids, k, expert_num)?;
        let mut kept: Vec<usize> = (0..n).filter(|&f| (start..end).contains(&ids[f])).collect();
        kept.sort_by_key(|&f| ids[f]); // stable: flat order within an expert
        // Rows past the kept ones are not written: read them back to keep them.
        let ex = &outputs[0];
        let mut expanded = ex.read_f64();
        let mut index = vec![if a.row_idx_type == 0 { -1 } else { POISON_I32 }; n];
        for (row, &f) in kept.iter().enumerate() {
            let token = f / k;
            expanded[row * hidden..(row + 1) * hidden]
                .copy_from_slice(&x[token * hidden..(token + 1) * hidden]);
            if a.row_idx_type == 0 {
                index[f] = row as i64;
            } else {
                index[row] = f as i64;
            }
        }
        ex.write_f64(&expanded)?;
        outputs[1].write_i64(&index)?;
        // expandedScaleOut (outputs[2]) is not written; its memory was checked at launch.
        if a.tokens_num_flag {
            let mut counts = vec![0i64; local];
            for &f in &kept {
                counts[(ids[f] - start) as usize] += 1;
            }
            outputs[3].write_i64(&counts)?;
        }
        Ok(())
    });
    Ok(Planned::new(
        (n as u64) * 8,
        vec![("x", x), ("expertIdx", expert_idx)],
        outputs,
        run,
    ))
}
