/*
 * C ABI between a host-built kernel library (kernels-ascendc/ compiled against our shim) and its
 * caller (the Rust simulator, or shim/tests). The Rust side mirrors these structs with #[repr(C)];
 * any change here must bump ASCEND_SHIM_ABI_VERSION. ascend-sim's build script generates its
 * constants from every integer `#define ASCEND_SHIM_*` below and checks its mirror of
 * AscendShimCounters against the fields here (ascend-kernel-build's `abi` module), so a field or
 * value changed on one side only fails the build.
 *
 * Every kernel source registers itself with ASCEND_SHIM_KERNEL(name, kind), which exports
 *
 *     int32_t ascend_shim_entry_<name>(const AscendShimLaunch* launch);
 *     uint32_t ascend_shim_kind_<name>(void);   (one of ASCEND_SHIM_KIND_*)
 *
 * Args blob: the kernel's parameters back to back in declaration order, each placed at the next
 * offset aligned to its natural alignment (pointers/GM_ADDR: 8 bytes holding the 64-bit *device*
 * address). args_size must equal the end of the last parameter, or that end rounded up to 8.
 *
 * Device addresses are opaque: the shim never dereferences them; every global-memory access goes
 * through host->translate. translate is called concurrently from several worker threads and must
 * be thread-safe. It must return NULL unless [device_addr, device_addr + len) lies inside one live
 * allocation.
 */
#ifndef ASCEND_SHIM_ABI_H
#define ASCEND_SHIM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASCEND_SHIM_ABI_VERSION 4

/* Return codes of ascend_shim_entry_<name>. error_out holds a message for every non-zero code. */
#define ASCEND_SHIM_OK 0
#define ASCEND_SHIM_ERR_INVALID_LAUNCH 1 /* null launch/host/translate, num_blocks outside 1..65535 */
#define ASCEND_SHIM_ERR_ARGS 2           /* args blob does not match the kernel's parameter list */
#define ASCEND_SHIM_ERR_KERNEL 3         /* a block broke one of the chip's rules (message names it) */
#define ASCEND_SHIM_ERR_INTERNAL 4       /* bug or resource failure inside the shim itself */

typedef struct AscendShimHost {
    void* ctx;
    void* (*translate)(void* ctx, uint64_t device_addr, uint64_t len);
} AscendShimHost;

/* Summed over every core of the launch; written even when the launch fails (partial counts). */
/* The unit of vector_repeats below. */
#define ASCEND_SHIM_VECTOR_REPEAT_BYTES 256 /* bytes per vector repeat: 8 blocks of 32 B, 128 halfs or 64 floats (ascendc-facts.md §1.1, §3.5) */

typedef struct AscendShimCounters {
    uint64_t gm_to_local_bytes;    /* DataCopy/DataCopyPad/Nd2Nz GM -> UB/L1 */
    uint64_t local_to_gm_bytes;    /* DataCopy/DataCopyPad UB -> GM, Fixpipe L0C -> GM */
    uint64_t local_to_local_bytes; /* UB -> UB DataCopy, LoadData L1 -> L0A/L0B */
    uint64_t cube_macs;            /* Mmad: m * n * k per call */
    uint64_t vector_elem_ops;      /* level-2 vector APIs: elements processed per call */
    uint64_t cores_run;            /* AIC + AIV cores started */
    /* The busiest block (one core of it) of the launch, for cost models with waves: each field is
       the largest over the cores of that core's own count. */
    uint64_t busiest_gm_read;
    uint64_t busiest_gm_written;
    uint64_t busiest_cube_macs;
    uint64_t busiest_vector_ops;
    /* Repeats issued by the vector APIs: per call ceil(count * width / VECTOR_REPEAT_BYTES), width
       the widest operand element in bytes (a u8 -> half Cast does 128 elements per repeat, a
       half -> int32 Cast 64), so a cost model can charge vector time by width. */
    uint64_t vector_repeats;
    uint64_t busiest_vector_repeats;
    /* Exchange memory, for the simulator's L2 model: global memory the launch writes before it
       reads it (rings between a Mix group's cores, workspaces), recorded per GM_GRANULE_BYTES
       granule over the whole launch, in the order the cores' accesses ran. A granule is exchange
       memory when the launch wrote it, later read it, and never read it before its first write.
       gm_exchange_read_bytes: the part of gm_to_local_bytes read from a granule the launch had
       already written (and had not read before writing); gm_exchange_written_bytes: the part of
       local_to_gm_bytes written to exchange granules; gm_exchange_footprint: the distinct bytes
       of the exchange granules. Scalar GetValue/SetValue mark granules but count no bytes, as
       they count none above. */
    uint64_t gm_exchange_read_bytes;
    uint64_t gm_exchange_written_bytes;
    uint64_t gm_exchange_footprint;
} AscendShimCounters;

/* The unit in which the shim tracks which global memory a launch wrote before reading it. */
#define ASCEND_SHIM_GM_GRANULE_BYTES 32 /* one DataCopy block */

typedef struct AscendShimLaunch {
    uint32_t num_blocks; /* 1..65535; Mix kernels start num_blocks AIC + 2 * num_blocks AIV */
    const void* args;
    size_t args_size;
    const AscendShimHost* host;
    AscendShimCounters* counters_out; /* may be NULL */
    char* error_out;                  /* may be NULL; always NUL-terminated when capacity > 0 */
    size_t error_capacity;
} AscendShimLaunch;

/* Kernel kinds, as returned by ascend_shim_kind_<name>(). */
#define ASCEND_SHIM_KIND_VECTOR 0 /* KERNEL_TYPE_AIV_ONLY */
#define ASCEND_SHIM_KIND_CUBE 1   /* KERNEL_TYPE_AIC_ONLY */
#define ASCEND_SHIM_KIND_MIX_1_2 2 /* KERNEL_TYPE_MIX_AIC_1_2 */

/* Version of this header the library was built with. */
uint32_t ascend_shim_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ASCEND_SHIM_ABI_H */
