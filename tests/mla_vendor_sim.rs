//! The MLA vendor operators (aclnnMlaPrologV3WeightNz, aclnnFusedInferAttentionScoreV3) on the simulator, against the f64
//! reference `reference::mla`; cases in `common/mla_vendor_cases.rs`.

mod common;

fn setup() {}

mla_vendor_suite!(setup = setup);

// Rules the hardware does not check (it reads wherever the index points): simulator only.

/// `mla-prolog-v3.cache-index-range`.
#[test]
fn prolog_cache_index_out_of_range_fails_the_stream() {
    common::mla_vendor_cases::prolog_rejects_a_cache_index_out_of_range();
}

/// `fia-v3.block-table-range`.
#[test]
fn decode_block_id_out_of_range_fails_the_stream() {
    common::mla_vendor_cases::decode_rejects_a_block_id_out_of_range();
}
