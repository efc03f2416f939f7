// Kernel registration: ASCEND_SHIM_KERNEL(name, kind), after a declaration of the kernel, exports
// the C entry described in ascend_shim_abi.h. Kernel sources do not use it: ascend-kernel-build
// generates one translation unit of these from the kernels' own signatures (the kernel manifest).
// The parameter list is taken from the kernel's C++ signature, so the args-blob layout cannot
// drift from the code.
#pragma once

#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core.h"

namespace ascend_shim {

int32_t run_launch(const AscendShimLaunch* launch, const char* name, KernelKind kind, void (*body)(void*), void* ctx);
int32_t launch_error(const AscendShimLaunch* launch, int32_t code, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

template <typename T>
constexpr size_t arg_align() { return std::is_pointer<T>::value ? 8 : alignof(T); }

template <typename... Args>
struct ArgPack {
    void (*fn)(Args...);
    std::tuple<Args...> vals;
    static void run(void* self) {
        ArgPack* p = static_cast<ArgPack*>(self);
        std::apply(p->fn, p->vals);
    }
};

template <typename... Args, size_t... I>
void unpack_args(std::tuple<Args...>& vals, const uint8_t* blob, const size_t* offs, std::index_sequence<I...>) {
    ((std::memcpy(static_cast<void*>(&std::get<I>(vals)), blob + offs[I], sizeof(Args))), ...);
}

template <typename... Args>
int32_t launch_kernel(void (*fn)(Args...), const char* name, KernelKind kind, const AscendShimLaunch* launch) {
    static_assert(((std::is_pointer<Args>::value || std::is_arithmetic<Args>::value ||
                    (std::is_trivially_copyable<Args>::value && std::is_standard_layout<Args>::value)) && ...),
                  "kernel parameters must be GM_ADDR pointers, scalars or POD structs");
    static_assert(((!std::is_pointer<Args>::value || sizeof(Args) == 8) && ...), "pointers are 8 bytes in the args blob");
    if (launch == nullptr) return ASCEND_SHIM_ERR_INVALID_LAUNCH;
    size_t offs[sizeof...(Args) + 1] = {};
    size_t end = 0, i = 0;
    ((end = (end + arg_align<Args>() - 1) / arg_align<Args>() * arg_align<Args>(), offs[i++] = end, end += sizeof(Args)), ...);
    (void)i;
    const size_t end8 = (end + 7) / 8 * 8;
    if (launch->args_size != end && launch->args_size != end8)
        return launch_error(launch, ASCEND_SHIM_ERR_ARGS,
                            "kernel '%s': [args] args_size %zu does not match the kernel's %zu parameter(s), which "
                            "pack to %zu bytes (or %zu with trailing padding)",
                            name, launch->args_size, sizeof...(Args), end, end8);
    if (end != 0 && launch->args == nullptr)
        return launch_error(launch, ASCEND_SHIM_ERR_ARGS, "kernel '%s': [args] args is NULL", name);
    ArgPack<Args...> pack{fn, {}};
    unpack_args(pack.vals, static_cast<const uint8_t*>(launch->args), offs, std::index_sequence_for<Args...>{});
    return run_launch(launch, name, kind, &ArgPack<Args...>::run, &pack);
}

}  // namespace ascend_shim

#define ASCEND_SHIM_KERNEL(name, kind)                                                          \
    extern "C" int32_t ascend_shim_entry_##name(const AscendShimLaunch* launch) {               \
        return ::ascend_shim::launch_kernel(&name, #name, kind, launch);                        \
    }                                                                                           \
    extern "C" uint32_t ascend_shim_kind_##name(void) { return uint32_t(kind); }
