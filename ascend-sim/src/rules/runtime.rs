//! Rules enforced outside the aclnn validator: the aclnn base objects, the runtime, kernel
//! launches and the C++ shim. Each names the code that enforces it and its test; the code
//! reports a violation with [`super::violation`] (or, in C++, the same `[id]` text) so the error
//! names the rule.

use super::{Enforcement, Rule};

/// The test that launches each deliberately broken kernel and checks its rule's tag.
const BROKEN_KERNELS: &str = "tests/kernels_sim.rs::every_broken_kernel_is_caught_with_its_rule";

pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "acl-create-tensor.data-aligned",
        call: "aclCreateTensor",
        statement: "tensorData of a non-empty tensor is a 32-byte aligned device address",
        source: "cann-api-facts §3.2; opbase docs/en/api/nnopbase/aclnn/aclCreateTensor.md",
        test: "ascend-sim/tests/hardware_rules.rs::create_tensor_rejects_unaligned_data",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/operators/aclnn/objects.rs",
        },
    },
    Rule {
        id: "launch.args-in-device-memory",
        call: "aclrtLaunchKernel, aclrtLaunchKernelV2",
        statement: "argsData is device memory of the launching device, read when the kernel starts (a host pointer faults on the AI Core)",
        source: "cann-api-facts errata 1; runtime src/acl/aclrt_impl/kernel.cpp; runtime dev guide 03-03",
        test: "tests/runtime_kernel_args_sim.rs::a_host_blob_as_args_data_is_rejected_with_its_rule",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/kernel_args.rs",
        },
    },
    Rule {
        id: "device-info.attr-by-cann-version",
        call: "aclrtGetDeviceInfo",
        statement: "the function exists from CANN 8.2 with attrs 1/101/201; attr 102 (CUBE_CORE_NUM) from 8.5 only",
        source: "cann-api-facts errata 6; runtime api docs of 8.2, 8.3 and 8.5",
        test: "tests/runtime_cann_versions.rs::core_counts_and_version_under_each_cann_release",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/ffi/device.rs",
        },
    },
    Rule {
        id: "kernel-args.param-in-host-memory",
        call: "aclrtKernelArgsAppend, aclrtKernelArgsParaUpdate",
        statement: "param is the host address of the parameter's value, copied into the list",
        source: "runtime docs api_docs/aclrtKernelArgsAppend.md",
        test: "ascend-sim/src/runtime/kernel_args.rs::host_args_for_a_device_launch_name_the_rule",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/kernel_args.rs",
        },
    },
    Rule {
        id: "kernel-args.finalize-before-launch",
        call: "aclrtKernelArgsAppend, aclrtLaunchKernelWithConfig",
        statement: "parameters are appended before aclrtKernelArgsFinalize, and a list is launched only after it",
        source: "runtime docs api_docs/aclrtKernelArgsFinalize.md",
        test: "ascend-sim/src/runtime/kernel_args.rs::lists_append_update_finalize_in_order",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/kernel_args.rs",
        },
    },
    Rule {
        id: "kernel-args.same-function",
        call: "aclrtLaunchKernelWithConfig",
        statement: "argsHandle was made by aclrtKernelArgsInit for the launched funcHandle",
        source: "runtime docs api_docs/aclrtKernelArgsInit.md",
        test: "ascend-sim/src/runtime/kernel_args.rs::lists_append_update_finalize_in_order",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/kernel_args.rs",
        },
    },
    Rule {
        id: "kernel-binary.whole-elf",
        call: "aclrtBinaryLoadFromFile, aclrtBinaryLoadFromData",
        statement: "the binary is a whole ELF file: its header tables and every segment lie inside it (a truncated library faults with SIGBUS when mapped)",
        source: "issue 10 (SIGBUS on a truncated file); the ELF format",
        test: "ascend-sim/src/runtime/kernel.rs::elf_files_are_checked_whole",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/kernel.rs",
        },
    },
    Rule {
        id: "malloc.within-device-memory",
        call: "aclrtMalloc",
        statement: "an allocation fits the device memory not yet allocated (its actual size: round_up(size, 32) + 32 on A2/A3); otherwise it fails with ACL_ERROR_RT_MEMORY_ALLOCATION and allocates nothing",
        source: "cann-api-facts §2.2 (207001, out of memory), §2.5 (aclrtMalloc actual size)",
        test: "tests/fuzz_corpus_sim.rs::an_output_beyond_device_memory_is_a_typed_allocation_error",
        enforcement: Enforcement::Elsewhere {
            code: "ascend-sim/src/runtime/memory/address_space.rs",
        },
    },
    Rule {
        id: "gemv-mode",
        call: "Mmad (Ascend C kernels, C++ shim)",
        statement: "on A2/A3 an Mmad with m = 1 runs in GEMV mode and reads A as a plain 1 x K row, not in the fractal layout",
        source: "ascendc-facts errata 1 (asc-devkit Mmad docs, GEMV)",
        test: BROKEN_KERNELS,
        enforcement: Enforcement::Elsewhere {
            code: "kernels-ascendc/shim/include/ascend_shim/cube.h",
        },
    },
    Rule {
        id: "capacity",
        call: "TPipe::InitBuffer (Ascend C kernels, C++ shim)",
        statement: "a core's buffers fit its memories: UB 196608 B, L1 512 KB, L0A/L0B 64 KB, L0C 131072 B on 910B",
        source: "ascendc-facts §1.2 (CANN constants and CPU-debug buffer sizes for dav-2201)",
        test: BROKEN_KERNELS,
        enforcement: Enforcement::Elsewhere {
            code: "kernels-ascendc/shim/src/shim_runtime.cpp",
        },
    },
    Rule {
        id: "align",
        call: "local tensors (Ascend C kernels, C++ shim)",
        statement: "local tensors start aligned: 32 B in UB and L1, 512 B in L0A/L0B, 64 B in L0C",
        source: "ascendc-facts §1.2",
        test: BROKEN_KERNELS,
        enforcement: Enforcement::Elsewhere {
            code: "kernels-ascendc/shim/include/ascend_shim/tensor.h",
        },
    },
    Rule {
        id: "datacopy-len",
        call: "DataCopy (Ascend C kernels, C++ shim)",
        statement: "DataCopy moves whole 32-byte blocks, at most 65535 per burst (DataCopyPad for other lengths)",
        source: "ascendc-facts §3.1",
        test: BROKEN_KERNELS,
        enforcement: Enforcement::Elsewhere {
            code: "kernels-ascendc/shim/include/ascend_shim/copy.h",
        },
    },
];
