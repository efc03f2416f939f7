#!/usr/bin/env bash
# Mutation testing of one named set of files against the test targets that hold them, with
# cargo-mutants. Not part of CI: run it by hand after changing one of these files, and keep
# each set at 90% or more of its non-equivalent mutants caught.
#
#   scripts/mutants.sh SET [extra cargo-mutants options]    e.g. scripts/mutants.sh fp8 --list
#   scripts/mutants.sh --sets                               lists the sets
#
# Needs `cargo install cargo-mutants`. Results land in mutants.out/ (git-ignored); the missed
# mutants are in mutants.out/missed.txt. For hccl and ep, set ASCEND_SIM_HCCL_TIMEOUT_MS=5000: a mutant
# that stops one rank makes its peers wait for the HCCL timeout (120 s by default; a timeout
# counts as caught). A set takes minutes on 2 cores: each mutant rebuilds
# only the crate and runs only the named test targets.
#
# Where a set's suites are slow (mla, mla-vendor), run one file at a time with only the cases that
# reach it: cargo-mutants passes what follows `--` to `cargo test`, so libtest's filter goes after
# a second `--`, e.g. scripts/mutants.sh mla --in-place --re 'absorb\.rs:' -- -- --exact CASE...
# A mutant those cases miss must be re-run with the whole set before it counts as missed.
set -euo pipefail
cd "$(dirname "$0")/.."

# SET -> "files | test targets [| package]", space-separated; the package defaults to ascend-npu.
declare -A SETS=(
  [fp8]="src/fp8/convert.rs src/fp8/quantize.rs | fp8_numerics"
  [moe-reference]="src/reference/moe/routing.rs src/reference/moe/permute.rs | moe_reference"
  [moe-ops]="src/ops/moe/routing.rs src/ops/moe/dispatch.rs | lib moe_device_sim moe_validation_sim"
  [buffers]="src/runtime/device_buffer.rs | runtime_sim bad_calls_sim buffer_lifetime_sim moe_allocations_sim bad_input_sim"
  [tracking]="src/runtime/tracking.rs | runtime_sim"
  [hccl]="src/runtime/comm.rs | hccl_sim hccl_faults_sim hccl_rules_sim"
  [mla-reference]="src/reference/mla/attention.rs src/reference/mla/config.rs src/reference/mla/rope.rs src/reference/mla/prolog.rs src/reference/mla/paged.rs src/reference/mla/fp8_cache.rs src/reference/mla/bounds.rs | mla_reference"
  [ep-reference]="src/reference/ep/mod.rs | ep_reference"
  [status-words]="src/runtime/status.rs | bad_input_sim"
  [rules]="ascend-sim/src/rules/mod.rs ascend-sim/src/rules/call.rs | hardware_rules aclnn_ops runtime | ascend-sim"
  [mla]="src/ops/mla/cache.rs src/ops/mla/table.rs src/ops/mla/rope.rs src/ops/mla/write.rs src/ops/mla/decode.rs src/ops/mla/prefill.rs src/ops/mla/absorb.rs | mla_kernels_sim mla_fp8_sim mla_layer_sim"
  [mla-vendor]="src/ops/mla/vendor.rs | lib mla_vendor_sim mla_vendor_fallback_sim"
  [mc2]="src/ops/ep/mc2.rs src/aclnn/moe_distribute.rs | lib hccl_mc2_sim hccl_mc2_a2_sim hccl_mc2_v1_sim"
  [ep]="src/ops/ep/mod.rs src/ops/ep/layout.rs src/ops/ep/payload.rs src/ops/ep/exchange.rs src/ops/ep/normal.rs src/ops/ep/low_latency.rs src/ops/ep/layer.rs src/ops/ep/integrity.rs src/ops/ep/traffic.rs | expert_parallel_sim expert_parallel_faults_sim expert_parallel_work_sim hccl_mc2_sim hccl_mc2_a2_sim"
  [tool-verdicts]="ascend-npu-cli/src/check.rs ascend-npu-cli/src/bench/compare.rs | bin:ascend-npu cli | ascend-npu-cli"
)

if [ "${1:-}" = "--sets" ] || [ $# -eq 0 ]; then
  for s in "${!SETS[@]}"; do echo "$s: ${SETS[$s]}"; done | sort
  [ $# -eq 0 ] && { echo "usage: $0 SET [cargo-mutants options]" >&2; exit 2; }
  exit 0
fi
set_name=$1; shift
spec=${SETS[$set_name]:-}
[ -n "$spec" ] || { echo "unknown set '$set_name'; see $0 --sets" >&2; exit 2; }
command -v cargo-mutants >/dev/null || { echo "cargo-mutants is missing: cargo install cargo-mutants" >&2; exit 2; }

IFS='|' read -r files tests package <<<"$spec"
package=$(echo "${package:-ascend-npu}" | xargs)
args=()
for f in $files; do args+=(--file "$f"); done
# Each target goes to every cargo invocation (the `cargo test --no-run` build and the `cargo
# test` run), so a mutant builds only these test binaries; with `--cargo-test-arg` the build
# linked every test target of the package (minutes per mutant), and after `--` the arguments
# reach libtest as a name filter matching nothing. `lib` is the library's unit tests, `bin:NAME`
# a binary's.
test_args=()
for t in $tests; do
  case $t in
    bin:*) test_args+=(--cargo-arg=--bin --cargo-arg="${t#bin:}") ;;
    lib) test_args+=(--cargo-arg=--lib) ;;
    *) test_args+=(--cargo-arg=--test --cargo-arg="$t") ;;
  esac
done

cargo mutants --package "$package" "${args[@]}" "${test_args[@]}" "$@"
