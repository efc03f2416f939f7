//! HCCL's requirements on the collectives we call, enforced in `ffi/hccl.rs` and
//! `operators/hccl/mod.rs` with the rule's id in the error text (`HCCL_E_PARA`).

use super::{Enforcement, Rule};

const CODE: Enforcement = Enforcement::Elsewhere {
    code: "ascend-sim/src/ffi/hccl.rs",
};

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "hccl.comm-config-header",
        call: "HcclCommInitRootInfoConfig, HcclCommInitClusterInfoConfig, HcclCreateSubCommConfig",
        statement: "config is non-null and starts with the header HcclCommConfigInit writes: magicWord 0xf0f0f0f0, a version >= 1, a size of at least the 24-byte header",
        source: "cann-api-facts §6.1 (HcclCommConfig is versioned; HcclCommConfigInit fills the header)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.comm-config-fields",
        call: "HcclCommInitRootInfoConfig, HcclCommInitClusterInfoConfig, HcclCreateSubCommConfig",
        statement: "of the fields the config's size covers, hcclBufferSize (MB) is >= 1, hcclDeterministic is 0 or 1, and hcclCommName ends with a NUL within its 128 bytes (HCCL_COMM_CONFIG_NOT_SET or an empty name keeps the default)",
        source: "hccl docs api_ref HcclCommConfig (hcclBufferSize >= 1 MB, default 200; hcclDeterministic 0 off / 1 on; hcclCommName at most 128 characters); hccl_types.h field types; UNVERIFIED how hardware fails each",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.comm-name-unique",
        call: "HcclCommInitRootInfoConfig, HcclCommInitClusterInfoConfig, HcclCreateSubCommConfig",
        statement: "a configured hcclCommName is not the name of a live communicator with a rank on the caller's device (a name identifies the communicator: HcclGetCommName, the MC2 operators' groupEp)",
        source: "cann-api-facts §4.7 (groupEp is the communicator name HcclGetCommName gives); UNVERIFIED that hardware rejects a repeated name rather than misbehaving later",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.subcomm-members",
        call: "HcclCreateSubCommConfig",
        statement: "rankIds holds rankNum >= 1 distinct ranks of the parent communicator, rankIds[subCommRankId] is the caller's rank, and every member passes the same rankIds for one subCommId",
        source: "cann-api-facts §6.2 (HcclCreateSubCommConfig prototype: rankNum, rankIds, subCommId, subCommRankId)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.rank-table",
        call: "HcclCommInitClusterInfo",
        statement: "clusterInfo is the path (at most 4096 bytes with its NUL) of a readable rank-table JSON file whose rank_ids are 0..n, each once, and which puts `rank` on the caller's device",
        source: "cann-api-facts §6.3 (rank-table JSON path, ≤ 4096 bytes incl. NUL; rank must match the rank_id in the file)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.init-all-devices",
        call: "HcclCommInitAll",
        statement: "devices holds ndev >= 1 existing device ids, each once: rank i runs on devices[i], one rank per device",
        source: "cann-api-facts §6.2 (HcclCommInitAll: single process, multi-device), §6.3 (one thread per device)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.reduce-type-op",
        call: "HcclAllReduce, HcclReduceScatter",
        statement: "A2/A3 reduce int8, int16, int32, int64, fp16, fp32 and bf16 with sum, prod, max or min, and no prod for int16 and bf16",
        source: "cann-api-facts §6.3; hccl docs/zh/api_ref/comm_op_interface (HcclAllReduce)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.element-aligned",
        call: "HcclAllReduce, HcclReduceScatter, HcclAllGather, HcclBroadcast, HcclAlltoAllV, HcclSend, HcclRecv",
        statement: "every buffer is device memory of the rank's device, aligned to its element size",
        source: "cann-api-facts §6.3 (buffers aligned to element size 1/2/4/8 bytes)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.same-call-on-every-rank",
        call: "every collective",
        statement: "all ranks call the same collective with identical counts, data type, op and root",
        source: "cann-api-facts §6.3 (all ranks use identical count/dtype/op)",
        test: "tests/hccl_faults_sim.rs::mismatched_collectives_fail_on_every_rank",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/operators/hccl/mod.rs",
        },
    },
    Rule {
        id: "hccl.alltoallv-distinct-buffers",
        call: "HcclAlltoAllV",
        statement: "recvBuf and sendBuf are different buffers",
        source: "cann-api-facts §6.3 (AlltoAllV: recvBuf ≠ sendBuf)",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.alltoallv-one-type",
        call: "HcclAlltoAllV",
        statement: "sendType and recvType are the same data type (A2/A3 do not convert)",
        source: "cann-api-facts §6.2 prototypes; UNVERIFIED that a mismatch is rejected rather than undefined",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.alltoallv-counts-match",
        call: "HcclAlltoAllV",
        statement: "recvCounts[i] on rank j equals sendCounts[j] on rank i, on every rank",
        source: "cann-api-facts §6.3 (counts and displacements in elements, one per rank)",
        test: "tests/hccl_faults_sim.rs::mismatched_collectives_fail_on_every_rank",
        enforcement: CODE,
    },
    Rule {
        id: "hccl.stream-of-rank-device",
        call: "every collective",
        statement: "the stream belongs to the rank's own device",
        source: "cann-api-facts §6.3 (one thread per device, ops asynchronous on the rank's stream); UNVERIFIED how hardware fails",
        test: "tests/hccl_rules_sim.rs::each_hccl_rule_names_itself_when_violated",
        enforcement: CODE,
    },
];
