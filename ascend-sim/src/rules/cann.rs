//! What differs between the CANN releases we target, and what no simulator can settle: the
//! data of the last two sections of `docs/HARDWARE_RULES.md`.

use ascend_sys::CannVersion;

/// One function or attribute we use, per CANN release.
#[derive(Debug)]
pub struct VersionRow {
    /// The function, attribute or behaviour.
    pub what: &'static str,
    /// 8.1, 8.2, 8.3, 8.5, 9.x: "yes", "no", or a short note; "?" where no public source says.
    pub versions: [&'static str; 5],
    /// What the library does about it.
    pub we_do: &'static str,
}

pub(super) const RELEASES: [&str; 5] = ["8.1", "8.2", "8.3", "8.5", "9.x"];

/// The CANN version matrix of `docs/HARDWARE_RULES.md`, for tools that report what a release
/// offers (the `ascend-npu info` command) without copying it.
#[derive(Clone, Copy, Debug)]
pub struct VersionTable {
    /// The column headings of [`VersionRow::versions`]: `8.1`, `8.2`, `8.3`, `8.5`, `9.x`.
    pub releases: [&'static str; 5],
    /// One row per function, attribute or behaviour.
    pub rows: &'static [VersionRow],
    /// What stays unverified until the hardware twins run on an NPU.
    pub unverifiable: &'static [&'static str],
}

impl VersionTable {
    /// The column that describes `version`: the latest listed release not after it (8.4 reads
    /// as 8.3, 9.1 as 9.x), or `None` before 8.1.
    pub fn column(&self, version: CannVersion) -> Option<usize> {
        let starts = [
            CannVersion::V8_1_RC1,
            CannVersion::V8_2_RC1,
            CannVersion::V8_3_RC1,
            CannVersion::rc(8, 5, 1),
            CannVersion::rc(9, 0, 1),
        ];
        starts.iter().rposition(|start| version >= *start)
    }
}

/// The CANN version matrix: what each release offers of the calls we make.
pub fn version_table() -> VersionTable {
    VersionTable {
        releases: RELEASES,
        rows: VERSIONS,
        unverifiable: UNVERIFIABLE,
    }
}

pub(super) const VERSIONS: &[VersionRow] = &[
    VersionRow {
        what: "runtime core: aclInit, aclrtSetDevice, contexts, streams, events, aclrtMalloc/Free, aclrtMemcpy(Async), aclrtMemsetAsync",
        versions: ["yes", "yes", "yes", "yes", "yes"],
        we_do: "call them directly",
    },
    VersionRow {
        what: "runtime library name",
        versions: [
            "libascendcl.so",
            "libascendcl.so",
            "libascendcl.so",
            "libascendcl.so",
            "libacl_rt.so (libascendcl.so kept)",
        ],
        we_do: "ascend-sys tries each name in order (§1.1)",
    },
    VersionRow {
        what: "aclnn operator library",
        versions: [
            "libopapi.so",
            "libopapi.so",
            "libopapi.so",
            "libopapi.so",
            "libopapi_transformer/_nn/_math.so",
        ],
        we_do: "ascend-sys tries each name in order (§1.1)",
    },
    VersionRow {
        what: "aclsysGetCANNVersion",
        versions: ["?", "?", "?", "yes", "yes (deprecated)"],
        we_do: "Device::cann_version chooses calls by release; the simulator has it on every release and answers as ASCEND_SIM_CANN_VERSION",
    },
    VersionRow {
        what: "aclrtGetDeviceInfo",
        versions: [
            "no",
            "attrs 1/101/201",
            "attrs 1/101/201",
            "adds 102 (CUBE_CORE_NUM)",
            "yes",
        ],
        we_do: "Device::cube_cores: attr 102 from 8.5, AICORE_CORE_NUM on 8.2/8.3, the SoC table (ascend_sys::SOC_CORES) on 8.1 (errata 6)",
    },
    VersionRow {
        what: "aclrtBinaryLoadFromFile, aclrtBinaryGetFunction, aclrtLaunchKernel",
        versions: ["? (rt* API era)", "yes", "yes", "yes", "yes"],
        we_do: "required for our Ascend C kernels; KernelBinary refuses a release without them clearly; aclrtLaunchKernel is never given a host blob",
    },
    VersionRow {
        what: "aclrtKernelArgsInit/Append/ParaUpdate/Finalize, aclrtLaunchKernelWithConfig",
        versions: ["?", "yes", "yes", "yes", "yes"],
        we_do: "Stream::launch before 9.x: one list per kernel, built once, updated per launch (errata 1)",
    },
    VersionRow {
        what: "aclrtLaunchKernelV2, aclrtLaunchKernelWithHostArgs, aclrtBinaryLoadFromData",
        versions: ["no", "no", "?", "?", "yes"],
        we_do: "9.x: Stream::launch uses WithHostArgs, our embedded kernels load with LoadFromData (before: a private temporary file); the simulator treats 8.3/8.5 as lacking them",
    },
    VersionRow {
        what: "aclnnMoeGatingTopK: normType, groupSelectMode",
        versions: [
            "ignored: always sigmoid, top-2-sum groups, renormalised",
            "honoured",
            "honoured",
            "honoured",
            "honoured",
        ],
        we_do: "DeepSeek-V3 routing everywhere; under 8.1 route refuses other methods with Error::Unsupported naming the release (errata 2)",
    },
    VersionRow {
        what: "aclnnMoeGatingTopK: outOut",
        versions: ["required", "required", "required", "required", "required"],
        we_do: "always pass an FP32 [rows, experts] tensor",
    },
    VersionRow {
        what: "aclnnMoeGatingTopK: yOut renormalised",
        versions: [
            "always",
            "normType 1 only",
            "normType 1 only",
            "normType 1 only",
            "normType 1 only",
        ],
        we_do: "sigmoid normalised and softmax unnormalised use yOut; sigmoid unnormalised is gathered from outOut; softmax normalised is Error::Unsupported",
    },
    VersionRow {
        what: "aclnnMoeInitRoutingV2: count output",
        versions: ["INT32", "INT32", "INT32", "INT32", "INT32"],
        we_do: "INT32 counts, cast to INT64 with aclnnCast for aclnnGroupedMatmulV4",
    },
    VersionRow {
        what: "aclnnMoeInitRoutingV3",
        versions: ["?", "?", "?", "?", "yes"],
        we_do: "only for a local expert range (expert parallelism)",
    },
    VersionRow {
        what: "aclnnGroupedMatmulV4 (single tensor, split M)",
        versions: ["?", "?", "?", "?", "yes"],
        we_do: "group sizes sum to M; a local range passes its own M",
    },
    // hiascend's API references list aclnnMatmul with this prototype (cubeMathType) for
    // CANN 8.0.0 (canncommercial/800), 8.1.RC1 (CANNCommunityEdition/81RC1alpha002) and 8.2.RC1
    // (82RC1alpha001); cann-api-facts §4.1 reads ops-nn (9.x). No 8.3 or 8.5 page was read.
    VersionRow {
        what: "aclnnMatmul (2-D, cubeMathType)",
        versions: ["yes", "yes", "?", "?", "yes"],
        we_do: "the bench and conformance compare our matmul kernel with it (aclnn::matmul)",
    },
    // hiascend's API references list aclnnWeightQuantBatchMatmulV2 with this prototype for
    // CANN 8.2.RC1 (canncommercial/82RC1) and 8.3.RC1 (CANNCommunityEdition/83RC1alpha001); no
    // 8.1 or 8.5 page was read.
    VersionRow {
        what: "aclnnWeightQuantBatchMatmulV2 (INT8 weights, per channel or group)",
        versions: ["?", "yes", "yes", "?", "yes"],
        we_do: "the bench and conformance compare our W8A16 FP8 GEMM with it (aclnn::weight_quant_matmul)",
    },
    VersionRow {
        what: "aclnnMoeFinalizeRoutingV2, aclnnCast",
        versions: ["yes", "yes", "yes", "yes", "yes"],
        we_do: "call them directly",
    },
    VersionRow {
        what: "aclnnMlaPrologV3WeightNz",
        versions: ["?", "?", "?", "?", "yes"],
        we_do: "ops::mla::MlaAttention's prolog where vendor_fit takes the model (DeepSeek's widths, a listed hidden size, a power-of-two head count up to 128, an AscendSplit cache of 16- or 128-token blocks) on an Atlas A2/A3 whose CANN exports both vendor ops; our matmuls and mla_cache_write kernels otherwise (tests/mla_vendor_fallback_sim.rs takes them away)",
    },
    VersionRow {
        what: "aclnnFusedInferAttentionScoreV3 with queryRope/keyRope (paged MLA decode)",
        versions: ["?", "?", "?", "?", "yes"],
        we_do: "MlaAttention's decode on the vendor path (s_q up to 16, bottom-right causal above 1); our mla_decode kernels otherwise",
    },
    VersionRow {
        what: "aclnnMoeDistributeDispatchV2, aclnnMoeDistributeCombineV2 (MC2)",
        versions: ["?", "yes", "yes", "yes", "yes"],
        we_do: "ops::ep's low-latency dispatch and combine on an A3 SoC where the ops' limits fit (bf16, H 1024..=8192, at most 512 tokens per rank, the communicator's buffer), on a communicator split for them; HCCL all-to-all-v otherwise; low_latency_dispatch_int8 (quantMode 2) on them only",
    },
];

/// What stays unverified until someone runs the hardware twins on a 910B.
pub(super) const UNVERIFIABLE: &[&str] = &[
    "Which CANN release introduced aclnnMoeInitRoutingV3 and aclnnGroupedMatmulV4; the table above marks these `?`.",
    "Which CANN release introduced aclnnMlaPrologV3WeightNz and aclnnFusedInferAttentionScoreV3's rope inputs; the table above marks these `?`.",
    "Which CANN 8.x releases document aclnnMatmul and aclnnWeightQuantBatchMatmulV2 as we call them (our sources are the 9.x op docs), and the precision in which the latter dequantizes the weight (the simulator rounds it to the activations' type, the cube's input).",
    "Whether aclnnGroupedMatmulV4 tolerates group sizes summing to less than M (vllm-ascend relies on it; the simulator rejects it).",
    "The tie order of equal expert ids in aclnnMoeInitRoutingV2/V3's sort (the simulator keeps flat-index order).",
    "What aclnnMoeInitRoutingV3 writes to expandedScaleOut without quantisation (the simulator leaves it unwritten).",
    "Whether the weights of aclnnMoeGatingTopK are gathered from biased or unbiased scores on every kernel variant (the simulator uses unbiased, as the generalized kernel does).",
    "Whether aclTensor objects may be destroyed between the two phases (we keep them alive until phase two is queued).",
    "Rounding of the device's fp32 accumulation order in grouped matmul and routing (tests allow for it in their tolerances).",
    "aclnnCast of floats outside the integer type's range, and of integers into narrower ones (the simulator saturates the first, wraps the second; the doc states neither).",
    "Which experts and weights aclnnMoeGatingTopK gives for NaN or infinite logits (route documents only that ids stay distinct and in range; the simulator ranks NaN last).",
    "The order of the rows of one expert in aclnnMoeDistributeDispatchV2's expandXOut (undocumented; the simulator orders them by source rank, then token and k), and the contents of assistInfoForCombineOut and epRecvCountsOut (documented as opaque; ops::ep never reads them).",
    "Whether aclnnMoeDistributeDispatchV2 on A3 takes a 2-D xActiveMask with masked-off pairs naming expert 0 (how ops::ep sends a token's -1 ids), and a rank whose only row is masked off (a rank without tokens).",
    "Timing, bandwidth and occupancy: the simulator models none of them.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_map_to_the_latest_column_not_after_them() {
        let table = version_table();
        let column = |s: &str| table.column(s.parse().unwrap());
        assert_eq!(column("8.0.RC3"), None);
        assert_eq!(column("8.1.RC1"), Some(0));
        assert_eq!(column("8.2.RC1"), Some(1));
        assert_eq!(column("8.4.0"), Some(2));
        assert_eq!(column("8.5.0"), Some(3));
        assert_eq!(column("9.0.0"), Some(4));
        assert_eq!(column("10.1.0"), Some(4));
        assert!(table.rows.iter().all(|r| !r.what.is_empty()));
    }
}
