//! The argument checks of routing and dispatch on the simulator (bodies in
//! `common/moe_validation_cases.rs`), and the simulator-only check that the named aclnn
//! attribute values are ones its rule table accepts.

#![cfg(feature = "sim")]

mod common;

fn setup() {
    common::backend::select();
}

moe_validation_suite!(setup = setup);

/// The named attribute values the ops pass are values the simulator's rules accept.
#[test]
fn named_attribute_values_are_the_ones_the_rules_accept() {
    use ascend_npu::aclnn::{
        DropPad, FinalizeLayout, GatingNorm, GmmAct, GroupListType, GroupSelect, GroupType,
        RowIdxType, SplitItem, TokenCounts, TokensNumType,
    };
    use ascend_npu::sim::rules::{self, Enforcement, Requirement};
    let allowed = |id: &str| -> Vec<i64> {
        match &rules::rule(id).unwrap().enforcement {
            Enforcement::PhaseOne {
                requirement: Requirement::IntIn(_, v),
                ..
            } => v.to_vec(),
            Enforcement::PhaseOne {
                requirement: Requirement::IntRange(_, lo, hi),
                ..
            } => (*lo..=*hi).collect(),
            other => panic!("{id}: {other:?}"),
        }
    };
    let cases: Vec<(&str, Vec<i64>)> = vec![
        (
            "moe-gating-topk.norm-type",
            vec![GatingNorm::Softmax.value(), GatingNorm::Sigmoid.value()],
        ),
        (
            "moe-gating-topk.group-select-mode",
            vec![GroupSelect::Max.value(), GroupSelect::TopTwoSum.value()],
        ),
        (
            "moe-init-routing-v2.drop-pad-mode",
            vec![DropPad::Dropless.value(), DropPad::Padded.value()],
        ),
        (
            "moe-init-routing-v2.count-flag",
            [TokenCounts::None, TokenCounts::Cumsum, TokenCounts::Counts]
                .map(|v| v.value())
                .to_vec(),
        ),
        (
            "moe-init-routing-v3.tokens-num-type",
            vec![
                TokensNumType::Count.value(),
                TokensNumType::KeyValue.value(),
            ],
        ),
        (
            "moe-init-routing-v3.row-idx-type",
            vec![RowIdxType::Gather.value(), RowIdxType::Scatter.value()],
        ),
        (
            "moe-finalize-routing-v2.drop-pad-mode",
            [
                FinalizeLayout::ColumnDropless,
                FinalizeLayout::ColumnPadded,
                FinalizeLayout::RowDropless,
                FinalizeLayout::RowPadded,
            ]
            .map(|v| v.value())
            .to_vec(),
        ),
        (
            "grouped-matmul-v4.split-item",
            vec![SplitItem::List.value(), SplitItem::Single.value()],
        ),
        (
            "grouped-matmul-v4.group-type",
            [GroupType::None, GroupType::SplitM, GroupType::SplitK]
                .map(|v| v.value())
                .to_vec(),
        ),
        (
            "grouped-matmul-v4.group-list-type",
            [
                GroupListType::Cumsum,
                GroupListType::Counts,
                GroupListType::Pairs,
            ]
            .map(|v| v.value())
            .to_vec(),
        ),
        (
            "grouped-matmul-v4.act-type",
            [
                GmmAct::None,
                GmmAct::Relu,
                GmmAct::GeluTanh,
                GmmAct::FastGelu,
                GmmAct::Silu,
            ]
            .map(|v| v.value())
            .to_vec(),
        ),
    ];
    for (id, values) in cases {
        let ok = allowed(id);
        for v in values {
            assert!(ok.contains(&v), "{id} does not accept {v}");
        }
    }
    // GELU erf is a named value CANN defines, but not on A2/A3.
    assert!(!allowed("grouped-matmul-v4.act-type").contains(&GmmAct::GeluErf.value()));
}
