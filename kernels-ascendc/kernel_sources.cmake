# Generated from the kernel manifest (the kernels' extern "C" __global__ __aicore__ signatures).
# Do not edit: a test fails when this list and the kernel sources disagree, and prints the
# expected content.
set(ASCEND_NPU_KERNEL_SOURCES
  fp8_dequant.cpp
  fp8_gemm.cpp
  fp8_quant.cpp
  fp8_weight_quant.cpp
  matmul.cpp
  mla_cache_write.cpp
  mla_decode.cpp
  mla_lse_merge.cpp
  mla_swap_axes.cpp
  moe_gather_scores.cpp
  swiglu.cpp
)
