//! The argument checks of routing and dispatch on the simulator (bodies in
//! `common/moe_validation_cases.rs`), and the simulator-only check that the named aclnn
//! attribute values are ones its rule table accepts.

#![cfg(feature = "sim")]

mod common;

fn setup() {
    common::backend::select();
}

moe_validation_suite!(setup = setup);

/// Set in a child process: the CANN release its simulator answers as.
const CHILD_VAR: &str = "ASCEND_NPU_TEST_MOE_CHILD";

/// Runs test `name` of this binary again, alone (so nothing else moves the simulator's
/// counters), under each of `releases`, and checks that each child passed.
fn in_children(name: &str, releases: &[&str]) {
    let exe = std::env::current_exe().unwrap();
    for release in releases {
        let out = std::process::Command::new(&exe)
            .args(["--exact", name, "--test-threads=1"])
            .env(CHILD_VAR, release)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "under CANN {release}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// In a child: the simulator configured as CANN `release` (before anything else uses it), and
/// a stream on its device 0.
fn child_stream(release: &str) -> ascend_npu::Stream {
    use ascend_npu::sim::{SimConfig, SocModel};
    let version = release.parse().unwrap();
    let config = SimConfig::uniform(SocModel::ascend910b2(), 1)
        .unwrap()
        .with_cann_version(version);
    ascend_npu::sim::configure(config).unwrap();
    ascend_npu::select_backend(ascend_npu::Backend::Sim).unwrap();
    let stream = ascend_npu::Device::open(0).unwrap().new_stream().unwrap();
    assert_eq!(stream.device().cann_version().unwrap(), version);
    stream
}

/// Routing reads its logits once, in the type they come in, unless the bias or gathered
/// weights need them in fp32: the simulator counts the bytes aclnn operators read.
#[test]
fn routing_widens_its_logits_only_when_it_must() {
    use ascend_npu::moe::MoeConfig;
    use ascend_npu::ops::moe;
    use common::moe::{kernels, small_v3};
    use half::bf16;

    let Ok(release) = std::env::var(CHILD_VAR) else {
        return in_children("routing_widens_its_logits_only_when_it_must", &["9.0.0"]);
    };
    let stream = child_stream(&release);
    let k = kernels(&stream);
    let (tokens, e) = (3, 32);
    let mut rng = common::Rng::new(4);
    let logits = rng.vec_f32(tokens * e);
    let narrow: Vec<bf16> = logits.iter().map(|&v| bf16::from_f32(v)).collect();
    let (d32, d16) = (
        stream.upload(&logits).unwrap(),
        stream.upload(&narrow).unwrap(),
    );
    let bias = stream.upload(&vec![0f32; e]).unwrap();
    let none = None::<&ascend_npu::DeviceBuffer<f32>>;
    let read = |work: &dyn Fn()| {
        stream.synchronize().unwrap();
        let before = ascend_npu::sim::counters(0).unwrap().aclnn_read_bytes;
        work();
        stream.synchronize().unwrap();
        ascend_npu::sim::counters(0).unwrap().aclnn_read_bytes - before
    };
    let v2 = MoeConfig::plain_top_k(e, 4);
    let v3 = small_v3();
    let (logit_bytes, bias_bytes) = ((tokens * e) as u64, e as u64 * 4);
    // fp32 logits, with the fp32 bias or none: one operator reading them as they are.
    assert_eq!(
        read(&|| drop(moe::route(&k, &stream, &v3, tokens, &d32, Some(&bias)).unwrap())),
        logit_bytes * 4 + bias_bytes
    );
    assert_eq!(
        read(&|| drop(moe::route(&k, &stream, &v2, tokens, &d32, none).unwrap())),
        logit_bytes * 4
    );
    // bf16 logits and no bias, weights from the operator: read once, as bf16.
    assert_eq!(
        read(&|| drop(moe::route(&k, &stream, &v2, tokens, &d16, none).unwrap())),
        logit_bytes * 2
    );
}

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
