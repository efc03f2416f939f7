//! MLA on our own Ascend C kernels (`ops::mla`), through the simulator, against
//! `reference::mla`: the cache write (RMSNorm + interleaved RoPE + scatter, bf16 and FP8 rows),
//! the absorbed paged decode, and the checks at the boundary.

mod common;

fn setup() {}

mla_suite!(setup = setup);
