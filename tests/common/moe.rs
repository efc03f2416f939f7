//! Plain f64 models of the MoE operators' documented semantics, shared by the device tests.

use ascend_npu::moe::MoeConfig;

/// A stream on device 0 of the suite's backend.
#[cfg(feature = "sim")]
pub fn stream() -> ascend_npu::Stream {
    super::backend::select();
    ascend_npu::Device::open(0).unwrap().new_stream().unwrap()
}

/// Our kernels on the stream's device.
pub fn kernels(stream: &ascend_npu::Stream) -> ascend_npu::kernels::Kernels {
    ascend_npu::kernels::Kernels::load(stream.device()).unwrap()
}

/// DeepSeek-V3's routing method on 32 experts in 4 groups, 2 kept, 4 per token.
pub fn small_v3() -> MoeConfig {
    MoeConfig {
        n_routed_experts: 32,
        n_group: 4,
        topk_group: 2,
        top_k: 4,
        ..MoeConfig::deepseek_v3()
    }
}

/// DeepSeek-V3 `noaux_tc` routing (sigmoid, top-2-sum groups) in f64, lowest index first on ties;
/// normalised or not.
pub fn noaux_tc(r: &MoeConfig, logits: &[f32], bias: &[f32]) -> (Vec<f64>, Vec<i32>) {
    let (e, per) = (r.n_routed_experts, r.n_routed_experts / r.n_group);
    let top = |v: &[f64], k: usize| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap().then(a.cmp(&b)));
        idx.truncate(k);
        idx
    };
    let (mut w, mut ids) = (Vec::new(), Vec::new());
    for row in logits.chunks(e) {
        let s: Vec<f64> = row
            .iter()
            .map(|&x| 1.0 / (1.0 + (-f64::from(x)).exp()))
            .collect();
        let b: Vec<f64> = s.iter().zip(bias).map(|(s, b)| s + f64::from(*b)).collect();
        let gs: Vec<f64> = b
            .chunks(per)
            .map(|g| top(g, 2).iter().map(|&i| g[i]).sum())
            .collect();
        let kept = top(&gs, r.topk_group);
        let masked: Vec<f64> = (0..e)
            .map(|i| {
                if kept.contains(&(i / per)) {
                    b[i]
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let chosen = top(&masked, r.top_k);
        let sum: f64 = if r.norm_topk_prob {
            chosen.iter().map(|&i| s[i]).sum()
        } else {
            1.0
        };
        w.extend(chosen.iter().map(|&i| s[i] / sum * r.routed_scaling_factor));
        ids.extend(chosen.iter().map(|&i| i as i32));
    }
    (w, ids)
}
