#!/usr/bin/env bash
# Builds ascend-sim as drop-in CANN libraries and lays them out in one directory: the library
# once, and libacl_rt.so, libascendcl.so, libnnopbase.so, libopapi*.so, libhccl.so, libhcomm.so
# as links to it. It also links this crate's kernels, built for the simulator, as
# libascend_npu_sim_kernels.so (the cann provider takes kernels from ASCEND_NPU_DEVICE_KERNELS).
# Prints the directory. Then the cann provider runs against the simulator:
#
#   dir=$(scripts/sim-cann-libs.sh)
#   ASCEND_NPU_BACKEND=cann ASCEND_NPU_CANN_PATH="$dir" \
#     ASCEND_NPU_DEVICE_KERNELS="$dir/libascend_npu_sim_kernels.so" cargo test --test runtime_sim
#
# Usage: scripts/sim-cann-libs.sh [dir] [cargo build options, e.g. --release]
# The default directory is sim-cann/ in cargo's target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  dir="$1"
  shift
fi
profile_dir=debug
for arg in "$@"; do
  [ "$arg" = "--release" ] && profile_dir=release
done
target_dir="${CARGO_TARGET_DIR:-target}"
[ -n "$dir" ] || dir="$target_dir/sim-cann"

# The library and the layout tool (both in this package), with the same options.
cargo build -q -p ascend-sim-cann "$@"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
"$target_dir/$profile_dir/sim-cann-libs" "$dir" >/dev/null

# build.rs reports where it put the kernel library: its package's out_dir.
out_dir=$(cargo build -q -p ascend-npu --message-format=json "$@" \
  | grep '"reason":"build-script-executed"' | grep '#ascend-npu@' \
  | grep -o '"out_dir":"[^"]*"' | cut -d'"' -f4)
kernels="$out_dir/libascend_npu_sim_kernels.so"
[ -f "$kernels" ] || { echo "sim-cann-libs.sh: no kernel library at $kernels" >&2; exit 1; }
ln -sfn "$kernels" "$dir/libascend_npu_sim_kernels.so"
echo "$dir"
