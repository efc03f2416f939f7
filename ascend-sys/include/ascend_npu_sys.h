/*
 * ascend_npu_sys.h: the subset of the CANN C interface that ascend-npu binds.
 *
 * Written by the ascend-npu authors from documented interface facts (names, prototypes,
 * enum values and struct layouts); see docs/INTERFACE_FACTS.md for the sources. It is not a
 * copy of any CANN header.
 *
 * Functions are not declared as prototypes: every entry point is described once with
 * ASCEND_API(library, return type, name, (parameters)), which by default expands to a pointer type
 * `PFN_<name>`. `library` names the group of CANN libraries that export the symbol (ACL_RT,
 * NNOPBASE, OPAPI, HCOMM, HCCL); ascend-sys maps each group to its candidate file names. ascend-sys resolves each symbol at run time, from the CANN libraries or from the
 * simulator, into a value of that type. Define ASCEND_NPU_SYS_PROTOTYPES before including this
 * header to get ordinary prototypes as well (for C code that links CANN directly).
 */
#ifndef ASCEND_NPU_SYS_H
#define ASCEND_NPU_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef ASCEND_NPU_SYS_PROTOTYPES
#define ASCEND_API(library, ret, name, params) ret name params; typedef ret(*PFN_##name) params;
#else
#define ASCEND_API(library, ret, name, params) typedef ret(*PFN_##name) params;
#endif

/* ============================================================================================
 * ACL runtime: types
 * ========================================================================================== */

typedef int aclError;
typedef uint16_t aclFloat16;
typedef void *aclrtStream;
typedef void *aclrtEvent;
typedef void *aclrtContext;
typedef void *aclrtNotify;
typedef void *aclrtBinary;
typedef void *aclrtBinHandle;
typedef void *aclrtFuncHandle;
typedef void *aclrtArgsHandle;
typedef void *aclrtParamHandle;
typedef void *aclrtDrvMemHandle;
typedef struct aclDataBuffer aclDataBuffer;
typedef void (*aclrtCallback)(void *userData);
typedef void (*aclrtHostFunc)(void *args);

/* Generic error codes. */
static const aclError ACL_SUCCESS = 0;
static const aclError ACL_ERROR_INVALID_PARAM = 100000;
static const aclError ACL_ERROR_UNINITIALIZE = 100001;
static const aclError ACL_ERROR_REPEAT_INITIALIZE = 100002;
static const aclError ACL_ERROR_INVALID_FILE = 100003;
static const aclError ACL_ERROR_WRITE_FILE = 100004;
static const aclError ACL_ERROR_INVALID_FILE_SIZE = 100005;
static const aclError ACL_ERROR_PARSE_FILE = 100006;
static const aclError ACL_ERROR_FILE_MISSING_ATTR = 100007;
static const aclError ACL_ERROR_FILE_ATTR_INVALID = 100008;
static const aclError ACL_ERROR_INVALID_DUMP_CONFIG = 100009;
static const aclError ACL_ERROR_INVALID_PROFILING_CONFIG = 100010;
static const aclError ACL_ERROR_INVALID_MODEL_ID = 100011;
static const aclError ACL_ERROR_DESERIALIZE_MODEL = 100012;
static const aclError ACL_ERROR_PARSE_MODEL = 100013;
static const aclError ACL_ERROR_READ_MODEL_FAILURE = 100014;
static const aclError ACL_ERROR_MODEL_SIZE_INVALID = 100015;
static const aclError ACL_ERROR_MODEL_MISSING_ATTR = 100016;
static const aclError ACL_ERROR_MODEL_INPUT_NOT_MATCH = 100017;
static const aclError ACL_ERROR_MODEL_OUTPUT_NOT_MATCH = 100018;
static const aclError ACL_ERROR_MODEL_NOT_DYNAMIC = 100019;
static const aclError ACL_ERROR_OP_TYPE_NOT_MATCH = 100020;
static const aclError ACL_ERROR_OP_INPUT_NOT_MATCH = 100021;
static const aclError ACL_ERROR_OP_OUTPUT_NOT_MATCH = 100022;
static const aclError ACL_ERROR_OP_ATTR_NOT_MATCH = 100023;
static const aclError ACL_ERROR_OP_NOT_FOUND = 100024;
static const aclError ACL_ERROR_OP_LOAD_FAILED = 100025;
static const aclError ACL_ERROR_UNSUPPORTED_DATA_TYPE = 100026;
static const aclError ACL_ERROR_FORMAT_NOT_MATCH = 100027;
static const aclError ACL_ERROR_BIN_SELECTOR_NOT_REGISTERED = 100028;
static const aclError ACL_ERROR_KERNEL_NOT_FOUND = 100029;
static const aclError ACL_ERROR_BIN_SELECTOR_ALREADY_REGISTERED = 100030;
static const aclError ACL_ERROR_KERNEL_ALREADY_REGISTERED = 100031;
static const aclError ACL_ERROR_INVALID_QUEUE_ID = 100032;
static const aclError ACL_ERROR_REPEAT_SUBSCRIBE = 100033;
static const aclError ACL_ERROR_STREAM_NOT_SUBSCRIBE = 100034;
static const aclError ACL_ERROR_THREAD_NOT_SUBSCRIBE = 100035;
static const aclError ACL_ERROR_WAIT_CALLBACK_TIMEOUT = 100036;
static const aclError ACL_ERROR_REPEAT_FINALIZE = 100037;
static const aclError ACL_ERROR_NOT_STATIC_AIPP = 100038;
static const aclError ACL_ERROR_COMPILING_STUB_MODE = 100039;
static const aclError ACL_ERROR_GROUP_NOT_SET = 100040;
static const aclError ACL_ERROR_GROUP_NOT_CREATE = 100041;
static const aclError ACL_ERROR_PROF_ALREADY_RUN = 100042;
static const aclError ACL_ERROR_PROF_NOT_RUN = 100043;
static const aclError ACL_ERROR_DUMP_ALREADY_RUN = 100044;
static const aclError ACL_ERROR_DUMP_NOT_RUN = 100045;
static const aclError ACL_ERROR_PROF_REPEAT_SUBSCRIBE = 148046;
static const aclError ACL_ERROR_PROF_API_CONFLICT = 148047;
static const aclError ACL_ERROR_INVALID_MAX_OPQUEUE_NUM_CONFIG = 148048;
static const aclError ACL_ERROR_INVALID_OPP_PATH = 148049;
static const aclError ACL_ERROR_OP_UNSUPPORTED_DYNAMIC = 148050;
static const aclError ACL_ERROR_RELATIVE_RESOURCE_NOT_CLEARED = 148051;
static const aclError ACL_ERROR_UNSUPPORTED_JPEG = 148052;
static const aclError ACL_ERROR_INVALID_BUNDLE_MODEL_ID = 148053;
static const aclError ACL_ERROR_BAD_ALLOC = 200000;
static const aclError ACL_ERROR_API_NOT_SUPPORT = 200001;
static const aclError ACL_ERROR_INVALID_DEVICE = 200002;
static const aclError ACL_ERROR_MEMORY_ADDRESS_UNALIGNED = 200003;
static const aclError ACL_ERROR_RESOURCE_NOT_MATCH = 200004;
static const aclError ACL_ERROR_INVALID_RESOURCE_HANDLE = 200005;
static const aclError ACL_ERROR_FEATURE_UNSUPPORTED = 200006;
static const aclError ACL_ERROR_PROF_MODULES_UNSUPPORTED = 200007;
static const aclError ACL_ERROR_STORAGE_OVER_LIMIT = 300000;
static const aclError ACL_ERROR_INTERNAL_ERROR = 500000;
static const aclError ACL_ERROR_FAILURE = 500001;
static const aclError ACL_ERROR_GE_FAILURE = 500002;
static const aclError ACL_ERROR_RT_FAILURE = 500003;
static const aclError ACL_ERROR_DRV_FAILURE = 500004;
static const aclError ACL_ERROR_PROFILING_FAILURE = 500005;

/* Runtime error codes: parameter and state. */
static const aclError ACL_ERROR_RT_PARAM_INVALID = 107000;
static const aclError ACL_ERROR_RT_INVALID_DEVICEID = 107001;
static const aclError ACL_ERROR_RT_CONTEXT_NULL = 107002;
static const aclError ACL_ERROR_RT_STREAM_CONTEXT = 107003;
static const aclError ACL_ERROR_RT_MODEL_CONTEXT = 107004;
static const aclError ACL_ERROR_RT_STREAM_MODEL = 107005;
static const aclError ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID = 107006;
static const aclError ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL = 107007;
static const aclError ACL_ERROR_RT_ADDR_UNALIGNED = 107008;
static const aclError ACL_ERROR_RT_FILE_OPEN = 107009;
static const aclError ACL_ERROR_RT_FILE_WRITE = 107010;
static const aclError ACL_ERROR_RT_STREAM_SUBSCRIBE = 107011;
static const aclError ACL_ERROR_RT_THREAD_SUBSCRIBE = 107012;
static const aclError ACL_ERROR_RT_GROUP_NOT_SET = 107013;
static const aclError ACL_ERROR_RT_GROUP_NOT_CREATE = 107014;
static const aclError ACL_ERROR_RT_STREAM_NO_CB_REG = 107015;
static const aclError ACL_ERROR_RT_INVALID_MEMORY_TYPE = 107016;
static const aclError ACL_ERROR_RT_INVALID_HANDLE = 107017;
static const aclError ACL_ERROR_RT_INVALID_MALLOC_TYPE = 107018;
static const aclError ACL_ERROR_RT_WAIT_TIMEOUT = 107019;
static const aclError ACL_ERROR_RT_TASK_TIMEOUT = 107020;
static const aclError ACL_ERROR_RT_SYSPARAMOPT_NOT_SET = 107021;
static const aclError ACL_ERROR_RT_DEVICE_TASK_ABORT = 107022;
static const aclError ACL_ERROR_RT_STREAM_ABORT = 107023;
static const aclError ACL_ERROR_RT_CAPTURE_DEPENDENCY = 107024;
static const aclError ACL_ERROR_RT_STREAM_UNJOINED = 107025;
static const aclError ACL_ERROR_RT_MODEL_CAPTURED = 107026;
static const aclError ACL_ERROR_RT_STREAM_CAPTURED = 107027;
static const aclError ACL_ERROR_RT_EVENT_CAPTURED = 107028;
static const aclError ACL_ERROR_RT_STREAM_NOT_CAPTURED = 107029;
static const aclError ACL_ERROR_RT_CAPTURE_MODE_NOT_SUPPORT = 107030;
static const aclError ACL_ERROR_RT_STREAM_CAPTURE_IMPLICIT = 107031;
static const aclError ACL_ERROR_STREAM_CAPTURE_CONFLICT = 107032;
static const aclError ACL_ERROR_STREAM_TASK_GROUP_STATUS = 107033;
static const aclError ACL_ERROR_STREAM_TASK_GROUP_INTR = 107034;
static const aclError ACL_ERROR_RT_TASK_ABORT_STOP = 107035;
static const aclError ACL_ERROR_RT_STREAM_CAPTURE_UNMATCHED = 107036;
static const aclError ACL_ERROR_RT_MODEL_RUNNING = 107037;
static const aclError ACL_ERROR_RT_STREAM_CAPTURE_WRONG_THREAD = 107038;
static const aclError ACL_ERROR_RT_INSUFFICIENT_INPUT_ARRAY = 107039;
static const aclError ACL_ERROR_RT_MODEL_UPDATE_FAILED = 107040;
static const aclError ACL_ERROR_RT_CAPTURE_MODE_BLOCK_ASYNC = 107041;
static const aclError ACL_ERROR_RT_SYMBOL_NOT_FOUND = 107042;
static const aclError ACL_ERROR_RT_INVALID_SYMBOL = 107043;
static const aclError ACL_ERROR_RT_INVALID_DEVICE_FUNCTION = 107044;
static const aclError ACL_ERROR_RT_SUB_ACLGRAPH_IS_CAPTURING = 107045;

/* Runtime error codes: resources. */
static const aclError ACL_ERROR_RT_FEATURE_NOT_SUPPORT = 207000;
static const aclError ACL_ERROR_RT_MEMORY_ALLOCATION = 207001;
static const aclError ACL_ERROR_RT_MEMORY_FREE = 207002;
static const aclError ACL_ERROR_RT_AICORE_OVER_FLOW = 207003;
static const aclError ACL_ERROR_RT_NO_DEVICE = 207004;
static const aclError ACL_ERROR_RT_RESOURCE_ALLOC_FAIL = 207005;
static const aclError ACL_ERROR_RT_NO_PERMISSION = 207006;
static const aclError ACL_ERROR_RT_NO_EVENT_RESOURCE = 207007;
static const aclError ACL_ERROR_RT_NO_STREAM_RESOURCE = 207008;
static const aclError ACL_ERROR_RT_NO_NOTIFY_RESOURCE = 207009;
static const aclError ACL_ERROR_RT_NO_MODEL_RESOURCE = 207010;
static const aclError ACL_ERROR_RT_NO_CDQ_RESOURCE = 207011;
static const aclError ACL_ERROR_RT_OVER_LIMIT = 207012;
static const aclError ACL_ERROR_RT_QUEUE_EMPTY = 207013;
static const aclError ACL_ERROR_RT_QUEUE_FULL = 207014;
static const aclError ACL_ERROR_RT_REPEATED_INIT = 207015;
static const aclError ACL_ERROR_RT_AIVEC_OVER_FLOW = 207016;
static const aclError ACL_ERROR_RT_OVER_FLOW = 207017;
static const aclError ACL_ERROR_RT_DEVICE_OOM = 207018;
static const aclError ACL_ERROR_RT_FEATURE_NOT_SUPPORT_UPDATE_OP = 207019;
static const aclError ACL_ERROR_RT_TIMEOUT = 207020;
static const aclError ACL_ERROR_RT_LINK_TYPE_NOT_SUPPORTED = 207021;

/* Runtime error codes: internal and device. */
static const aclError ACL_ERROR_RT_INTERNAL_ERROR = 507000;
static const aclError ACL_ERROR_RT_TS_ERROR = 507001;
static const aclError ACL_ERROR_RT_STREAM_TASK_FULL = 507002;
static const aclError ACL_ERROR_RT_STREAM_TASK_EMPTY = 507003;
static const aclError ACL_ERROR_RT_STREAM_NOT_COMPLETE = 507004;
static const aclError ACL_ERROR_RT_END_OF_SEQUENCE = 507005;
static const aclError ACL_ERROR_RT_EVENT_NOT_COMPLETE = 507006;
static const aclError ACL_ERROR_RT_CONTEXT_RELEASE_ERROR = 507007;
static const aclError ACL_ERROR_RT_SOC_VERSION = 507008;
static const aclError ACL_ERROR_RT_TASK_TYPE_NOT_SUPPORT = 507009;
static const aclError ACL_ERROR_RT_LOST_HEARTBEAT = 507010;
static const aclError ACL_ERROR_RT_MODEL_EXECUTE = 507011;
static const aclError ACL_ERROR_RT_REPORT_TIMEOUT = 507012;
static const aclError ACL_ERROR_RT_SYS_DMA = 507013;
static const aclError ACL_ERROR_RT_AICORE_TIMEOUT = 507014;
static const aclError ACL_ERROR_RT_AICORE_EXCEPTION = 507015;
static const aclError ACL_ERROR_RT_AICORE_TRAP_EXCEPTION = 507016;
static const aclError ACL_ERROR_RT_AICPU_TIMEOUT = 507017;
static const aclError ACL_ERROR_RT_AICPU_EXCEPTION = 507018;
static const aclError ACL_ERROR_RT_AICPU_DATADUMP_RSP_ERR = 507019;
static const aclError ACL_ERROR_RT_AICPU_MODEL_RSP_ERR = 507020;
static const aclError ACL_ERROR_RT_PROFILING_ERROR = 507021;
static const aclError ACL_ERROR_RT_IPC_ERROR = 507022;
static const aclError ACL_ERROR_RT_MODEL_ABORT_NORMAL = 507023;
static const aclError ACL_ERROR_RT_KERNEL_UNREGISTERING = 507024;
static const aclError ACL_ERROR_RT_RINGBUFFER_NOT_INIT = 507025;
static const aclError ACL_ERROR_RT_RINGBUFFER_NO_DATA = 507026;
static const aclError ACL_ERROR_RT_KERNEL_LOOKUP = 507027;
static const aclError ACL_ERROR_RT_KERNEL_DUPLICATE = 507028;
static const aclError ACL_ERROR_RT_DEBUG_REGISTER_FAIL = 507029;
static const aclError ACL_ERROR_RT_DEBUG_UNREGISTER_FAIL = 507030;
static const aclError ACL_ERROR_RT_LABEL_CONTEXT = 507031;
static const aclError ACL_ERROR_RT_PROGRAM_USE_OUT = 507032;
static const aclError ACL_ERROR_RT_DEV_SETUP_ERROR = 507033;
static const aclError ACL_ERROR_RT_VECTOR_CORE_TIMEOUT = 507034;
static const aclError ACL_ERROR_RT_VECTOR_CORE_EXCEPTION = 507035;
static const aclError ACL_ERROR_RT_VECTOR_CORE_TRAP_EXCEPTION = 507036;
static const aclError ACL_ERROR_RT_CDQ_BATCH_ABNORMAL = 507037;
static const aclError ACL_ERROR_RT_DIE_MODE_CHANGE_ERROR = 507038;
static const aclError ACL_ERROR_RT_DIE_SET_ERROR = 507039;
static const aclError ACL_ERROR_RT_INVALID_DIEID = 507040;
static const aclError ACL_ERROR_RT_DIE_MODE_NOT_SET = 507041;
static const aclError ACL_ERROR_RT_AICORE_TRAP_READ_OVERFLOW = 507042;
static const aclError ACL_ERROR_RT_AICORE_TRAP_WRITE_OVERFLOW = 507043;
static const aclError ACL_ERROR_RT_VECTOR_CORE_TRAP_READ_OVERFLOW = 507044;
static const aclError ACL_ERROR_RT_VECTOR_CORE_TRAP_WRITE_OVERFLOW = 507045;
static const aclError ACL_ERROR_RT_STREAM_SYNC_TIMEOUT = 507046;
static const aclError ACL_ERROR_RT_EVENT_SYNC_TIMEOUT = 507047;
static const aclError ACL_ERROR_RT_FFTS_PLUS_TIMEOUT = 507048;
static const aclError ACL_ERROR_RT_FFTS_PLUS_EXCEPTION = 507049;
static const aclError ACL_ERROR_RT_FFTS_PLUS_TRAP_EXCEPTION = 507050;
static const aclError ACL_ERROR_RT_SEND_MSG = 507051;
static const aclError ACL_ERROR_RT_COPY_DATA = 507052;
static const aclError ACL_ERROR_RT_DEVICE_MEM_ERROR = 507053;
static const aclError ACL_ERROR_RT_HBM_MULTI_BIT_ECC_ERROR = 507054;
static const aclError ACL_ERROR_RT_SUSPECT_DEVICE_MEM_ERROR = 507055;
static const aclError ACL_ERROR_RT_LINK_ERROR = 507056;
static const aclError ACL_ERROR_RT_SUSPECT_REMOTE_ERROR = 507057;
static const aclError ACL_ERROR_RT_DRV_INTERNAL_ERROR = 507899;
static const aclError ACL_ERROR_RT_AICPU_INTERNAL_ERROR = 507900;
static const aclError ACL_ERROR_RT_SOCKET_CLOSE = 507901;
static const aclError ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR = 507902;
static const aclError ACL_ERROR_RT_STREAM_CAPTURE_INVALIDATED = 507903;
static const aclError ACL_ERROR_RT_COMM_OP_RETRY_FAIL = 507904;
static const aclError ACL_ERROR_RT_L3_PORT_ERROR = 507914;
static const aclError ACL_ERROR_RT_CCU_TIMEOUT = 507915;
static const aclError ACL_ERROR_RT_CCU_EXCEPTION = 507916;

typedef enum {
    ACL_MEMCPY_HOST_TO_HOST = 0,
    ACL_MEMCPY_HOST_TO_DEVICE = 1,
    ACL_MEMCPY_DEVICE_TO_HOST = 2,
    ACL_MEMCPY_DEVICE_TO_DEVICE = 3,
    ACL_MEMCPY_DEFAULT = 4,
    ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE = 5,
    ACL_MEMCPY_INNER_DEVICE_TO_DEVICE = 6,
    ACL_MEMCPY_INTER_DEVICE_TO_DEVICE = 7
} aclrtMemcpyKind;

typedef enum {
    ACL_MEM_MALLOC_HUGE_FIRST = 0,
    ACL_MEM_MALLOC_HUGE_ONLY = 1,
    ACL_MEM_MALLOC_NORMAL_ONLY = 2,
    ACL_MEM_MALLOC_HUGE_FIRST_P2P = 3,
    ACL_MEM_MALLOC_HUGE_ONLY_P2P = 4,
    ACL_MEM_MALLOC_NORMAL_ONLY_P2P = 5,
    ACL_MEM_MALLOC_HUGE1G_ONLY = 6,
    ACL_MEM_MALLOC_HUGE1G_ONLY_P2P = 7,
    ACL_MEM_TYPE_LOW_BAND_WIDTH = 0x0100,
    ACL_MEM_TYPE_HIGH_BAND_WIDTH = 0x1000,
    ACL_MEM_ACCESS_USER_SPACE_READONLY = 0x100000
} aclrtMemMallocPolicy;

typedef enum {
    ACL_DDR_MEM = 0,
    ACL_HBM_MEM = 1,
    ACL_DDR_MEM_HUGE = 2,
    ACL_DDR_MEM_NORMAL = 3,
    ACL_HBM_MEM_HUGE = 4,
    ACL_HBM_MEM_NORMAL = 5,
    ACL_DDR_MEM_P2P_HUGE = 6,
    ACL_DDR_MEM_P2P_NORMAL = 7,
    ACL_HBM_MEM_P2P_HUGE = 8,
    ACL_HBM_MEM_P2P_NORMAL = 9,
    ACL_HBM_MEM_HUGE1G = 10,
    ACL_HBM_MEM_P2P_HUGE1G = 11,
    ACL_MEM_NORMAL = 12,
    ACL_MEM_HUGE = 13,
    ACL_MEM_HUGE1G = 14,
    ACL_MEM_P2P_NORMAL = 15,
    ACL_MEM_P2P_HUGE = 16,
    ACL_MEM_P2P_HUGE1G = 17
} aclrtMemAttr;

typedef enum { ACL_CALLBACK_NO_BLOCK = 0, ACL_CALLBACK_BLOCK = 1 } aclrtCallbackBlockType;

/* Deprecated query result; note the order is the opposite of aclrtEventRecordedStatus. */
typedef enum {
    ACL_EVENT_STATUS_COMPLETE = 0,
    ACL_EVENT_STATUS_NOT_READY = 1,
    ACL_EVENT_STATUS_RESERVED = 2
} aclrtEventStatus;

typedef enum {
    ACL_EVENT_RECORDED_STATUS_NOT_READY = 0,
    ACL_EVENT_RECORDED_STATUS_COMPLETE = 1
} aclrtEventRecordedStatus;

typedef enum {
    ACL_STREAM_STATUS_COMPLETE = 0,
    ACL_STREAM_STATUS_NOT_READY = 1,
    ACL_STREAM_STATUS_RESERVED = 0xFFFF
} aclrtStreamStatus;

typedef enum { ACL_DEVICE = 0, ACL_HOST = 1 } aclrtRunMode;

typedef enum {
    ACL_DEV_ATTR_AICPU_CORE_NUM = 1,
    ACL_DEV_ATTR_AICORE_CORE_NUM = 101,
    ACL_DEV_ATTR_CUBE_CORE_NUM = 102,
    ACL_DEV_ATTR_VECTOR_CORE_NUM = 201,
    ACL_DEV_ATTR_WARP_SIZE = 202,
    ACL_DEV_ATTR_MAX_THREAD_PER_VECTOR_CORE = 203,
    ACL_DEV_ATTR_UBUF_PER_VECTOR_CORE = 204,
    ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE = 301,
    ACL_DEV_ATTR_L2_CACHE_SIZE = 302,
    ACL_DEV_ATTR_IS_VIRTUAL = 501,
    ACL_DEV_ATTR_NPU_ARCH = 601
} aclrtDevAttr;

/* Event creation flags. */
static const uint32_t ACL_EVENT_SYNC = 0x1;
static const uint32_t ACL_EVENT_CAPTURE_STREAM_PROGRESS = 0x2;
static const uint32_t ACL_EVENT_TIME_LINE = 0x8;
static const uint32_t ACL_EVENT_DEVICE_USE_ONLY = 0x10;
static const uint32_t ACL_EVENT_EXTERNAL = 0x20;
static const uint32_t ACL_EVENT_IPC = 0x40;

/* Stream creation flags. */
static const uint32_t ACL_STREAM_FAST_LAUNCH = 0x1;
static const uint32_t ACL_STREAM_FAST_SYNC = 0x2;
static const uint32_t ACL_STREAM_PERSISTENT = 0x4;
static const uint32_t ACL_STREAM_HUGE = 0x8;
static const uint32_t ACL_STREAM_CPU_SCHEDULE = 0x10;
static const uint32_t ACL_STREAM_DEVICE_USE_ONLY = 0x20;

/* aclsysGetVersionStr writes at most this many bytes, NUL included. */
static const size_t ACL_PKG_VERSION_MAX_SIZE = 128;
static const size_t ACL_PKG_VERSION_PARTS_MAX_SIZE = 64;

/* The packages aclsysGetCANNVersion can report; ACL_PKG_NAME_CANN is the CANN release itself. */
typedef enum {
    ACL_PKG_NAME_CANN = 0,
    ACL_PKG_NAME_RUNTIME = 1,
    ACL_PKG_NAME_COMPILER = 2,
    ACL_PKG_NAME_HCCL = 3,
    ACL_PKG_NAME_TOOLKIT = 4,
    ACL_PKG_NAME_OPP = 5,
    ACL_PKG_NAME_OPP_KERNEL = 6,
    ACL_PKG_NAME_DRIVER = 7
} aclCANNPackageName;

/* NUL-terminated strings: the whole version ("8.1.RC1", "8.5.0") and its parts; a part the
 * runtime cannot find is "0". */
typedef struct {
    char version[128];
    char majorVersion[64];
    char minorVersion[64];
    char releaseVersion[64];
    char patchVersion[64];
    char reserved[128];
} aclCANNPackageVersion;

/* Data types (shared by the runtime and aclnn). Values 33-41 exist only on Ascend 950. */
typedef enum {
    ACL_DT_UNDEFINED = -1,
    ACL_FLOAT = 0,
    ACL_FLOAT16 = 1,
    ACL_INT8 = 2,
    ACL_INT32 = 3,
    ACL_UINT8 = 4,
    ACL_INT16 = 6,
    ACL_UINT16 = 7,
    ACL_UINT32 = 8,
    ACL_INT64 = 9,
    ACL_UINT64 = 10,
    ACL_DOUBLE = 11,
    ACL_BOOL = 12,
    ACL_STRING = 13,
    ACL_COMPLEX64 = 16,
    ACL_COMPLEX128 = 17,
    ACL_BF16 = 27,
    ACL_INT4 = 29,
    ACL_UINT1 = 30,
    ACL_COMPLEX32 = 33,
    ACL_HIFLOAT8 = 34,
    ACL_FLOAT8_E5M2 = 35,
    ACL_FLOAT8_E4M3FN = 36,
    ACL_FLOAT8_E8M0 = 37,
    ACL_FLOAT6_E3M2 = 38,
    ACL_FLOAT6_E2M3 = 39,
    ACL_FLOAT4_E2M1 = 40,
    ACL_FLOAT4_E1M2 = 41
} aclDataType;

typedef enum {
    ACL_FORMAT_UNDEFINED = -1,
    ACL_FORMAT_NCHW = 0,
    ACL_FORMAT_NHWC = 1,
    ACL_FORMAT_ND = 2,
    ACL_FORMAT_NC1HWC0 = 3,
    ACL_FORMAT_FRACTAL_Z = 4,
    ACL_FORMAT_NC1HWC0_C04 = 12,
    ACL_FORMAT_HWCN = 16,
    ACL_FORMAT_NDHWC = 27,
    ACL_FORMAT_FRACTAL_NZ = 29,
    ACL_FORMAT_NCDHW = 30,
    ACL_FORMAT_NDC1HWC0 = 32,
    ACL_FRACTAL_Z_3D = 33,
    ACL_FORMAT_NC = 35,
    ACL_FORMAT_NCL = 47,
    ACL_FORMAT_FRACTAL_NZ_C0_16 = 50,
    ACL_FORMAT_FRACTAL_NZ_C0_32 = 51,
    ACL_FORMAT_FRACTAL_NZ_C0_2 = 52,
    ACL_FORMAT_FRACTAL_NZ_C0_4 = 53,
    ACL_FORMAT_FRACTAL_NZ_C0_8 = 54
} aclFormat;

/* Kernel binaries and launch configuration. */
typedef enum {
    ACL_RT_BINARY_LOAD_OPT_LAZY_LOAD = 1,
    ACL_RT_BINARY_LOAD_OPT_MAGIC = 2,
    ACL_RT_BINARY_LOAD_OPT_CPU_KERNEL_MODE = 3
} aclrtBinaryLoadOptionType;

typedef union {
    uint32_t isLazyLoad;
    uint32_t magic;
    int32_t cpuKernelMode;
    uint32_t rsv[4];
} aclrtBinaryLoadOptionValue;

typedef struct {
    aclrtBinaryLoadOptionType type;
    aclrtBinaryLoadOptionValue value;
} aclrtBinaryLoadOption;

typedef struct {
    aclrtBinaryLoadOption *options;
    size_t numOpt;
} aclrtBinaryLoadOptions;

static const uint32_t ACL_RT_BINARY_MAGIC_ELF_AICORE = 0x43554245;
static const uint32_t ACL_RT_BINARY_MAGIC_ELF_VECTOR_CORE = 0x41415246;
static const uint32_t ACL_RT_BINARY_MAGIC_ELF_CUBE_CORE = 0x41494343;

typedef enum {
    ACL_RT_LAUNCH_KERNEL_ATTR_SCHEM_MODE = 1,
    ACL_RT_LAUNCH_KERNEL_ATTR_DYN_UBUF_SIZE = 2,
    ACL_RT_LAUNCH_KERNEL_ATTR_ENGINE_TYPE = 3,
    ACL_RT_LAUNCH_KERNEL_ATTR_BLOCKDIM_OFFSET = 4,
    ACL_RT_LAUNCH_KERNEL_ATTR_BLOCK_TASK_PREFETCH = 5,
    ACL_RT_LAUNCH_KERNEL_ATTR_DATA_DUMP = 6,
    ACL_RT_LAUNCH_KERNEL_ATTR_TIMEOUT = 7,
    ACL_RT_LAUNCH_KERNEL_ATTR_TIMEOUT_US = 8,
    ACL_RT_LAUNCH_KERNEL_ATTR_ENABLE_PROFILING = 9
} aclrtLaunchKernelAttrId;

typedef enum { ACL_RT_ENGINE_TYPE_AIC = 0, ACL_RT_ENGINE_TYPE_AIV = 1 } aclrtEngineType;

/* The members for each attribute id are not declared here: write the value into rsv. */
typedef union {
    uint32_t rsv[4];
} aclrtLaunchKernelAttrValue;

typedef struct {
    aclrtLaunchKernelAttrId id;
    aclrtLaunchKernelAttrValue value;
} aclrtLaunchKernelAttr;

typedef struct {
    aclrtLaunchKernelAttr *attrs;
    size_t numAttrs;
} aclrtLaunchKernelCfg;

typedef struct {
    uint32_t addrOffset;
    uint32_t dataOffset;
} aclrtPlaceHolderInfo;

/* ============================================================================================
 * ACL runtime: functions
 * ========================================================================================== */

/* Init, version, diagnostics. */
ASCEND_API(ACL_RT, aclError, aclInit, (const char *configPath))
ASCEND_API(ACL_RT, aclError, aclFinalize, (void))
ASCEND_API(ACL_RT, aclError, aclrtGetVersion, (int32_t *majorVersion, int32_t *minorVersion, int32_t *patchVersion))
ASCEND_API(ACL_RT, aclError, aclsysGetVersionStr, (char *pkgName, char *versionStr))
ASCEND_API(ACL_RT, aclError, aclsysGetVersionNum, (char *pkgName, int32_t *versionNum))
ASCEND_API(ACL_RT, aclError, aclsysGetCANNVersion, (aclCANNPackageName name, aclCANNPackageVersion *version))
ASCEND_API(ACL_RT, const char *, aclrtGetSocName, (void))
ASCEND_API(ACL_RT, const char *, aclGetRecentErrMsg, (void))

/* Devices. */
ASCEND_API(ACL_RT, aclError, aclrtSetDevice, (int32_t deviceId))
ASCEND_API(ACL_RT, aclError, aclrtResetDevice, (int32_t deviceId))
ASCEND_API(ACL_RT, aclError, aclrtResetDeviceForce, (int32_t deviceId))
ASCEND_API(ACL_RT, aclError, aclrtGetDevice, (int32_t *deviceId))
ASCEND_API(ACL_RT, aclError, aclrtGetDeviceCount, (uint32_t *count))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeDevice, (void))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeDeviceWithTimeout, (int32_t timeout))
ASCEND_API(ACL_RT, aclError, aclrtGetRunMode, (aclrtRunMode *runMode))
ASCEND_API(ACL_RT, aclError, aclrtGetDeviceInfo, (uint32_t deviceId, aclrtDevAttr attr, int64_t *value))
ASCEND_API(ACL_RT, aclError, aclrtDeviceCanAccessPeer, (int32_t *canAccessPeer, int32_t deviceId, int32_t peerDeviceId))
ASCEND_API(ACL_RT, aclError, aclrtDeviceEnablePeerAccess, (int32_t peerDeviceId, uint32_t flags))
ASCEND_API(ACL_RT, aclError, aclrtDeviceDisablePeerAccess, (int32_t peerDeviceId))
ASCEND_API(ACL_RT, aclError, aclrtGetDevicesTopo, (uint32_t deviceId, uint32_t otherDeviceId, uint64_t *value))

/* Contexts. */
ASCEND_API(ACL_RT, aclError, aclrtCreateContext, (aclrtContext *context, int32_t deviceId))
ASCEND_API(ACL_RT, aclError, aclrtDestroyContext, (aclrtContext context))
ASCEND_API(ACL_RT, aclError, aclrtSetCurrentContext, (aclrtContext context))
ASCEND_API(ACL_RT, aclError, aclrtGetCurrentContext, (aclrtContext *context))

/* Streams. */
ASCEND_API(ACL_RT, aclError, aclrtCreateStream, (aclrtStream *stream))
ASCEND_API(ACL_RT, aclError, aclrtCreateStreamWithConfig, (aclrtStream *stream, uint32_t priority, uint32_t flag))
ASCEND_API(ACL_RT, aclError, aclrtDestroyStream, (aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtDestroyStreamForce, (aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeStream, (aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeStreamWithTimeout, (aclrtStream stream, int32_t timeout))
ASCEND_API(ACL_RT, aclError, aclrtStreamQuery, (aclrtStream stream, aclrtStreamStatus *status))
ASCEND_API(ACL_RT, aclError, aclrtStreamWaitEvent, (aclrtStream stream, aclrtEvent event))

/* Events. */
ASCEND_API(ACL_RT, aclError, aclrtCreateEvent, (aclrtEvent *event))
ASCEND_API(ACL_RT, aclError, aclrtCreateEventWithFlag, (aclrtEvent *event, uint32_t flag))
ASCEND_API(ACL_RT, aclError, aclrtCreateEventExWithFlag, (aclrtEvent *event, uint32_t flag))
ASCEND_API(ACL_RT, aclError, aclrtDestroyEvent, (aclrtEvent event))
ASCEND_API(ACL_RT, aclError, aclrtRecordEvent, (aclrtEvent event, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtResetEvent, (aclrtEvent event, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtQueryEvent, (aclrtEvent event, aclrtEventStatus *status))
ASCEND_API(ACL_RT, aclError, aclrtQueryEventStatus, (aclrtEvent event, aclrtEventRecordedStatus *status))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeEvent, (aclrtEvent event))
ASCEND_API(ACL_RT, aclError, aclrtSynchronizeEventWithTimeout, (aclrtEvent event, int32_t timeout))
ASCEND_API(ACL_RT, aclError, aclrtEventElapsedTime, (float *ms, aclrtEvent startEvent, aclrtEvent endEvent))
ASCEND_API(ACL_RT, aclError, aclrtEventGetTimestamp, (aclrtEvent event, uint64_t *timestamp))

/* Memory. */
ASCEND_API(ACL_RT, aclError, aclrtMalloc, (void **devPtr, size_t size, aclrtMemMallocPolicy policy))
ASCEND_API(ACL_RT, aclError, aclrtMallocAlign32, (void **devPtr, size_t size, aclrtMemMallocPolicy policy))
ASCEND_API(ACL_RT, aclError, aclrtMallocCached, (void **devPtr, size_t size, aclrtMemMallocPolicy policy))
ASCEND_API(ACL_RT, aclError, aclrtFree, (void *devPtr))
ASCEND_API(ACL_RT, aclError, aclrtMallocHost, (void **hostPtr, size_t size))
ASCEND_API(ACL_RT, aclError, aclrtFreeHost, (void *hostPtr))
ASCEND_API(ACL_RT, aclError, aclrtMemcpy, (void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind))
ASCEND_API(ACL_RT, aclError, aclrtMemcpyAsync,
           (void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtMemcpy2d,
           (void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
            aclrtMemcpyKind kind))
ASCEND_API(ACL_RT, aclError, aclrtMemcpy2dAsync,
           (void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
            aclrtMemcpyKind kind, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtMemset, (void *devPtr, size_t maxCount, int32_t value, size_t count))
ASCEND_API(ACL_RT, aclError, aclrtMemsetAsync, (void *devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtGetMemInfo, (aclrtMemAttr attr, size_t *free, size_t *total))

/* Host work on a stream. */
ASCEND_API(ACL_RT, aclError, aclrtSubscribeReport, (uint64_t threadId, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtLaunchCallback,
           (aclrtCallback fn, void *userData, aclrtCallbackBlockType blockType, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtProcessReport, (int32_t timeout))
ASCEND_API(ACL_RT, aclError, aclrtUnSubscribeReport, (uint64_t threadId, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtLaunchHostFunc, (aclrtStream stream, aclrtHostFunc fn, void *args))

/* Kernel binaries and launch. */
ASCEND_API(ACL_RT, aclError, aclrtBinaryLoadFromFile,
           (const char *binPath, aclrtBinaryLoadOptions *options, aclrtBinHandle *binHandle))
ASCEND_API(ACL_RT, aclError, aclrtBinaryLoadFromData,
           (const void *data, size_t length, const aclrtBinaryLoadOptions *options, aclrtBinHandle *binHandle))
ASCEND_API(ACL_RT, aclError, aclrtBinaryUnLoad, (aclrtBinHandle binHandle))
ASCEND_API(ACL_RT, aclError, aclrtBinaryGetFunction,
           (const aclrtBinHandle binHandle, const char *kernelName, aclrtFuncHandle *funcHandle))
ASCEND_API(ACL_RT, aclError, aclrtKernelArgsInit, (aclrtFuncHandle funcHandle, aclrtArgsHandle *argsHandle))
ASCEND_API(ACL_RT, aclError, aclrtKernelArgsAppend,
           (aclrtArgsHandle argsHandle, void *param, size_t paramSize, aclrtParamHandle *paramHandle))
ASCEND_API(ACL_RT, aclError, aclrtKernelArgsParaUpdate,
           (aclrtArgsHandle argsHandle, aclrtParamHandle paramHandle, void *param, size_t paramSize))
ASCEND_API(ACL_RT, aclError, aclrtKernelArgsFinalize, (aclrtArgsHandle argsHandle))
ASCEND_API(ACL_RT, aclError, aclrtLaunchKernelWithConfig,
           (aclrtFuncHandle funcHandle, uint32_t numBlocks, aclrtStream stream, aclrtLaunchKernelCfg *cfg,
            aclrtArgsHandle argsHandle, void *reserve))
ASCEND_API(ACL_RT, aclError, aclrtLaunchKernel,
           (aclrtFuncHandle funcHandle, uint32_t numBlocks, const void *argsData, size_t argsSize,
            aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtLaunchKernelV2,
           (aclrtFuncHandle funcHandle, uint32_t numBlocks, const void *argsData, size_t argsSize,
            aclrtLaunchKernelCfg *cfg, aclrtStream stream))
ASCEND_API(ACL_RT, aclError, aclrtLaunchKernelWithHostArgs,
           (aclrtFuncHandle funcHandle, uint32_t numBlocks, aclrtStream stream, aclrtLaunchKernelCfg *cfg,
            void *hostArgs, size_t argsSize, aclrtPlaceHolderInfo *placeHolderArray, size_t placeHolderNum))

/* Helpers. */
ASCEND_API(ACL_RT, size_t, aclDataTypeSize, (aclDataType dataType))
ASCEND_API(ACL_RT, float, aclFloat16ToFloat, (aclFloat16 value))
ASCEND_API(ACL_RT, aclFloat16, aclFloatToFloat16, (float value))

/* ============================================================================================
 * aclnn base (libnnopbase)
 * ========================================================================================== */

typedef struct aclOpExecutor aclOpExecutor;
typedef struct aclTensor aclTensor;
typedef struct aclScalar aclScalar;
typedef struct aclIntArray aclIntArray;
typedef struct aclFloatArray aclFloatArray;
typedef struct aclBoolArray aclBoolArray;
typedef struct aclTensorList aclTensorList;
typedef struct aclScalarList aclScalarList;
typedef int32_t aclnnStatus;

/* Activation fused into aclnnGroupedMatmulV4/V5 (actType). */
typedef enum {
    GMM_ACT_TYPE_NONE = 0,
    GMM_ACT_TYPE_RELU = 1,
    GMM_ACT_TYPE_GELU_TANH = 2,
    GMM_ACT_TYPE_GELU_ERR_FUNC = 3,
    GMM_ACT_TYPE_FAST_GELU = 4,
    GMM_ACT_TYPE_SILU = 5
} GMMActType;

static const aclnnStatus ACLNN_SUCCESS = 0;
static const aclnnStatus ACLNN_ERR_PARAM_NULLPTR = 161001;
static const aclnnStatus ACLNN_ERR_PARAM_INVALID = 161002;
static const aclnnStatus ACLNN_ERR_RUNTIME_ERROR = 361001;
static const aclnnStatus ACLNN_ERR_INNER = 561000;
static const aclnnStatus ACLNN_ERR_INNER_INFERSHAPE_ERROR = 561001;
static const aclnnStatus ACLNN_ERR_INNER_TILING_ERROR = 561002;
static const aclnnStatus ACLNN_ERR_INNER_FIND_KERNEL_ERROR = 561003;
static const aclnnStatus ACLNN_ERR_INNER_CREATE_EXECUTOR = 561101;
static const aclnnStatus ACLNN_ERR_INNER_NOT_TRANS_EXECUTOR = 561102;
static const aclnnStatus ACLNN_ERR_INNER_NULLPTR = 561103;
static const aclnnStatus ACLNN_ERR_INNER_WRONG_ATTR_INFO_SIZE = 561104;
static const aclnnStatus ACLNN_ERR_INNER_KEY_CONFLICT = 561105;
static const aclnnStatus ACLNN_ERR_INNER_INVALID_IMPL_MODE = 561106;
static const aclnnStatus ACLNN_ERR_INNER_OPP_PATH_NOT_FOUND = 561107;
static const aclnnStatus ACLNN_ERR_INNER_LOAD_JSON_FAILED = 561108;
static const aclnnStatus ACLNN_ERR_INNER_JSON_VALUE_NOT_FOUND = 561109;
static const aclnnStatus ACLNN_ERR_INNER_JSON_FORMAT_INVALID = 561110;
static const aclnnStatus ACLNN_ERR_INNER_JSON_DTYPE_INVALID = 561111;
static const aclnnStatus ACLNN_ERR_INNER_OPP_KERNEL_PKG_NOT_FOUND = 561112;
static const aclnnStatus ACLNN_ERR_INNER_OP_FILE_INVALID = 561113;
static const aclnnStatus ACLNN_ERR_INNER_ATTR_NUM_OUT_OF_BOUND = 561114;
static const aclnnStatus ACLNN_ERR_INNER_ATTR_LEN_NOT_ENOUGH = 561115;
static const aclnnStatus ACLNN_ERR_INNER_INPUT_NUM_IN_JSON_TOO_LARGE = 561116;
static const aclnnStatus ACLNN_ERR_INNER_INPUT_JSON_IS_NULL = 561117;
static const aclnnStatus ACLNN_ERR_INNER_STATIC_WORKSPACE_INVALID = 561118;
static const aclnnStatus ACLNN_ERR_INNER_STATIC_BLOCK_DIM_INVALID = 561119;

ASCEND_API(NNOPBASE, aclTensor *, aclCreateTensor,
           (const int64_t *viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t *stride,
            int64_t offset, aclFormat format, const int64_t *storageDims, uint64_t storageDimsNum,
            void *tensorData))
ASCEND_API(NNOPBASE, aclScalar *, aclCreateScalar, (void *value, aclDataType dataType))
ASCEND_API(NNOPBASE, aclIntArray *, aclCreateIntArray, (const int64_t *value, uint64_t size))
ASCEND_API(NNOPBASE, aclFloatArray *, aclCreateFloatArray, (const float *value, uint64_t size))
ASCEND_API(NNOPBASE, aclBoolArray *, aclCreateBoolArray, (const bool *value, uint64_t size))
ASCEND_API(NNOPBASE, aclTensorList *, aclCreateTensorList, (const aclTensor *const *value, uint64_t size))
ASCEND_API(NNOPBASE, aclScalarList *, aclCreateScalarList, (const aclScalar *const *value, uint64_t size))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyTensor, (const aclTensor *tensor))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyScalar, (const aclScalar *scalar))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyIntArray, (const aclIntArray *array))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyFloatArray, (const aclFloatArray *array))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyBoolArray, (const aclBoolArray *array))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyTensorList, (const aclTensorList *array))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyScalarList, (const aclScalarList *array))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetViewShape, (const aclTensor *tensor, int64_t **viewDims, uint64_t *viewDimsNum))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetStorageShape,
           (const aclTensor *tensor, int64_t **storageDims, uint64_t *storageDimsNum))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetViewStrides, (const aclTensor *tensor, int64_t **stridesValue, uint64_t *stridesNum))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetViewOffset, (const aclTensor *tensor, int64_t *offset))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetFormat, (const aclTensor *tensor, aclFormat *format))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetDataType, (const aclTensor *tensor, aclDataType *dataType))
ASCEND_API(NNOPBASE, aclnnStatus, aclSetAclOpExecutorRepeatable, (aclOpExecutor *executor))
ASCEND_API(NNOPBASE, aclnnStatus, aclDestroyAclOpExecutor, (aclOpExecutor *executor))
ASCEND_API(NNOPBASE, aclnnStatus, aclSetInputTensorAddr,
           (aclOpExecutor *executor, const size_t index, aclTensor *tensor, void *addr))
ASCEND_API(NNOPBASE, aclnnStatus, aclSetOutputTensorAddr,
           (aclOpExecutor *executor, const size_t index, aclTensor *tensor, void *addr))
ASCEND_API(NNOPBASE, aclnnStatus, aclSetRawTensorAddr, (aclTensor *tensor, void *addr))
ASCEND_API(NNOPBASE, aclnnStatus, aclGetRawTensorAddr, (const aclTensor *tensor, void **addr))
ASCEND_API(NNOPBASE, aclnnStatus, aclnnInit, (const char *configPath))
ASCEND_API(NNOPBASE, aclnnStatus, aclnnFinalize, (void))

/* ============================================================================================
 * aclnn operators (two phases: <Op>GetWorkspaceSize creates the executor, <Op> launches it)
 * ========================================================================================== */

/* MoE routing: gating top-k with groups (DeepSeek-V3 style). */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeGatingTopKGetWorkspaceSize,
           (const aclTensor *x, const aclTensor *biasOptional, int64_t k, int64_t kGroup, int64_t groupCount,
            int64_t groupSelectMode, int64_t renorm, int64_t normType, bool outFlag, double routedScalingFactor,
            double eps, const aclTensor *yOut, const aclTensor *expertIdxOut, const aclTensor *outOut,
            uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeGatingTopK,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* MoE dispatch: sort (token, k) pairs by expert and gather the rows. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeInitRoutingV2GetWorkspaceSize,
           (const aclTensor *x, const aclTensor *expertIdx, int64_t activeNum, int64_t expertCapacity,
            int64_t expertNum, int64_t dropPadMode, int64_t expertTokensCountOrCumsumFlag,
            bool expertTokensBeforeCapacityFlag, const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
            const aclTensor *expertTokensCountOrCumsumOut, const aclTensor *expertTokensBeforeCapacityOut,
            uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeInitRoutingV2,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* MoE dispatch, V3: adds quantisation, an active expert range (expert parallelism) and the
 * gather/scatter choice of the row index. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeInitRoutingV3GetWorkspaceSize,
           (const aclTensor *x, const aclTensor *expertIdx, const aclTensor *scaleOptional,
            const aclTensor *offsetOptional, int64_t activeNum, int64_t expertCapacity, int64_t expertNum,
            int64_t dropPadMode, int64_t expertTokensNumType, bool expertTokensNumFlag, int64_t quantMode,
            const aclIntArray *activeExpertRangeOptional, int64_t rowIdxType, const aclTensor *expandedXOut,
            const aclTensor *expandedRowIdxOut, const aclTensor *expertTokensCountOrCumsumOut,
            const aclTensor *expandedScaleOut, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeInitRoutingV3,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* MoE combine: weighted sum of each token's expert outputs. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeFinalizeRoutingV2GetWorkspaceSize,
           (const aclTensor *expandedX, const aclTensor *expandedRowIdx, const aclTensor *x1Optional,
            const aclTensor *x2Optional, const aclTensor *biasOptional, const aclTensor *scalesOptional,
            const aclTensor *expertIdxOptional, int64_t dropPadMode, const aclTensor *out,
            uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeFinalizeRoutingV2,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* The first version of the MC2 ops (CANN 8.1; V2 replaced expandIdx [BS*K] with
 * assistInfoForCombine [A*128] and added commAlg). Dispatch pairs with Combine only. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeDispatchGetWorkspaceSize,
           (const aclTensor *x, const aclTensor *expertIds, const aclTensor *scales, const aclTensor *xActiveMask,
            const aclTensor *expertScales, const char *groupEp, int64_t epWorldSize, int64_t epRankId,
            int64_t moeExpertNum, const char *groupTp, int64_t tpWorldSize, int64_t tpRankId,
            int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t quantMode,
            int64_t globalBs, int64_t expertTokenNumsType, aclTensor *expandX, aclTensor *dynamicScales,
            aclTensor *expandIdx, aclTensor *expertTokenNums, aclTensor *epRecvCounts, aclTensor *tpRecvCounts,
            aclTensor *expandScales, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeDispatch,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeCombineGetWorkspaceSize,
           (const aclTensor *expandX, const aclTensor *expertIds, const aclTensor *expandIdx,
            const aclTensor *epSendCounts, const aclTensor *expertScales, const aclTensor *tpSendCounts,
            const aclTensor *xActiveMask, const aclTensor *activationScale, const aclTensor *weightScale,
            const aclTensor *groupList, const aclTensor *expandScales, const char *groupEp, int64_t epWorldSize,
            int64_t epRankId, int64_t moeExpertNum, const char *groupTp, int64_t tpWorldSize, int64_t tpRankId,
            int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t globalBs,
            int64_t outDtype, int64_t commQuantMode, int64_t groupListType, aclTensor *x, uint64_t *workspaceSize,
            aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeCombine,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Expert-parallel MoE dispatch and combine over an HCCL communicator named by groupEp (the
 * "MC2" ops; HcclGetCommName gives the name). V2 pairs with CombineV2 only. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeDispatchV2GetWorkspaceSize,
           (const aclTensor *x, const aclTensor *expertIds, const aclTensor *scalesOptional,
            const aclTensor *xActiveMaskOptional, const aclTensor *expertScalesOptional, const char *groupEp,
            int64_t epWorldSize, int64_t epRankId, int64_t moeExpertNum, const char *groupTp, int64_t tpWorldSize,
            int64_t tpRankId, int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum,
            int64_t quantMode, int64_t globalBs, int64_t expertTokenNumsType, const char *commAlg,
            aclTensor *expandXOut, aclTensor *dynamicScalesOut, aclTensor *assistInfoForCombineOut,
            aclTensor *expertTokenNumsOut, aclTensor *epRecvCountsOut, aclTensor *tpRecvCountsOut,
            aclTensor *expandScalesOut, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeDispatchV2,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeCombineV2GetWorkspaceSize,
           (const aclTensor *expandX, const aclTensor *expertIds, const aclTensor *assistInfoForCombine,
            const aclTensor *epSendCounts, const aclTensor *expertScales, const aclTensor *tpSendCountsOptional,
            const aclTensor *xActiveMaskOptional, const aclTensor *activationScaleOptional,
            const aclTensor *weightScaleOptional, const aclTensor *groupListOptional,
            const aclTensor *expandScalesOptional, const aclTensor *sharedExpertXOptional, const char *groupEp,
            int64_t epWorldSize, int64_t epRankId, int64_t moeExpertNum, const char *groupTp, int64_t tpWorldSize,
            int64_t tpRankId, int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum,
            int64_t globalBs, int64_t outDtype, int64_t commQuantMode, int64_t groupListType, const char *commAlg,
            aclTensor *xOut, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMoeDistributeCombineV2,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Grouped matmul (MoE experts). */
ASCEND_API(OPAPI, aclnnStatus, aclnnGroupedMatmulV4GetWorkspaceSize,
           (const aclTensorList *x, const aclTensorList *weight, const aclTensorList *biasOptional,
            const aclTensorList *scaleOptional, const aclTensorList *offsetOptional,
            const aclTensorList *antiquantScaleOptional, const aclTensorList *antiquantOffsetOptional,
            const aclTensorList *perTokenScaleOptional, const aclTensor *groupListOptional,
            const aclTensorList *activationInputOptional, const aclTensorList *activationQuantScaleOptional,
            const aclTensorList *activationQuantOffsetOptional, int64_t splitItem, int64_t groupType,
            int64_t groupListType, int64_t actType, aclTensorList *out, aclTensorList *activationFeatureOutOptional,
            aclTensorList *dynQuantScaleOutOptional, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnGroupedMatmulV4,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Element type conversion (ops-math aclnnCast): out = self converted to dtype, same shape. */
ASCEND_API(OPAPI, aclnnStatus, aclnnCastGetWorkspaceSize,
           (const aclTensor *self, aclDataType dtype, aclTensor *out, uint64_t *workspaceSize,
            aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnCast,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Dense matmul (ops-nn matmul/mat_mul_v3, aclnnMatmul.md): out = self @ mat2, 1-6-D with
 * broadcasting, FLOAT16/BF16/FLOAT. cubeMathType: 0 KEEP_DTYPE, 1 ALLOW_FP32_DOWN_PRECISION,
 * 2 USE_FP16, 3 USE_HF32, 4 USE_FP32_ADD. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMatmulGetWorkspaceSize,
           (const aclTensor *self, const aclTensor *mat2, aclTensor *out, int8_t cubeMathType,
            uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMatmul,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Weight-quantized matmul (ops-nn matmul/weight_quant_batch_matmul_v2,
 * aclnnWeightQuantBatchMatmulV2.md): y = x @ ((weight + antiquantOffset) * antiquantScale) + bias,
 * optionally quantized to INT8 by quantScale/quantOffset. antiquantGroupSize is 0 unless the
 * scales are per group along K. */
ASCEND_API(OPAPI, aclnnStatus, aclnnWeightQuantBatchMatmulV2GetWorkspaceSize,
           (const aclTensor *x, const aclTensor *weight, const aclTensor *antiquantScale,
            const aclTensor *antiquantOffsetOptional, const aclTensor *quantScaleOptional,
            const aclTensor *quantOffsetOptional, const aclTensor *biasOptional, int antiquantGroupSize,
            const aclTensor *y, uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnWeightQuantBatchMatmulV2,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* MLA prolog V3, weights in FRACTAL_NZ (ops-transformer attention/mla_prolog_v3): q down-projection and
 * RmsNorm, q up-projection split into nope/rope, absorption with W_UK, kv down-projection, RmsNorm of the
 * latent, RoPE of q_rope and k_rope, and the scatter of the latent and the roped key into the caches. */
ASCEND_API(OPAPI, aclnnStatus, aclnnMlaPrologV3WeightNzGetWorkspaceSize,
           (const aclTensor *tokenX, const aclTensor *weightDq, const aclTensor *weightUqQr, const aclTensor *weightUk,
            const aclTensor *weightDkvKr, const aclTensor *rmsnormGammaCq, const aclTensor *rmsnormGammaCkv,
            const aclTensor *ropeSin, const aclTensor *ropeCos, aclTensor *kvCacheRef, aclTensor *krCacheRef,
            const aclTensor *cacheIndexOptional, const aclTensor *dequantScaleXOptional,
            const aclTensor *dequantScaleWDqOptional, const aclTensor *dequantScaleWUqQrOptional,
            const aclTensor *dequantScaleWDkvKrOptional, const aclTensor *quantScaleCkvOptional,
            const aclTensor *quantScaleCkrOptional, const aclTensor *smoothScalesCqOptional,
            const aclTensor *actualSeqLenOptional, double rmsnormEpsilonCq, double rmsnormEpsilonCkv,
            char *cacheModeOptional, bool queryNormFlag, int64_t weightQuantMode, int64_t kvCacheQuantMode,
            int64_t queryQuantMode, int64_t ckvkrRepoMode, int64_t quantScaleRepoMode, int64_t tileSize,
            double kNopeClipAlpha, double qcQrScale, double kcScale, const aclTensor *queryOut,
            const aclTensor *queryRopeOut, const aclTensor *dequantScaleQNopeOutOptional,
            const aclTensor *queryNormOutOptional, const aclTensor *dequantScaleQNormOutOptional,
            uint64_t *workspaceSize, aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnMlaPrologV3WeightNz,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* Fused inference attention V3 (ops-transformer attention/fused_infer_attention_score): V2 plus the separate
 * rope parts of query and key, the MLA decode form over a paged latent cache. */
ASCEND_API(OPAPI, aclnnStatus, aclnnFusedInferAttentionScoreV3GetWorkspaceSize,
           (const aclTensor *query, const aclTensorList *key, const aclTensorList *value,
            const aclTensor *pseShiftOptional, const aclTensor *attenMaskOptional,
            const aclIntArray *actualSeqLengthsOptional, const aclIntArray *actualSeqLengthsKvOptional,
            const aclTensor *deqScale1Optional, const aclTensor *quantScale1Optional,
            const aclTensor *deqScale2Optional, const aclTensor *quantScale2Optional,
            const aclTensor *quantOffset2Optional, const aclTensor *antiquantScaleOptional,
            const aclTensor *antiquantOffsetOptional, const aclTensor *blockTableOptional,
            const aclTensor *queryPaddingSizeOptional, const aclTensor *kvPaddingSizeOptional,
            const aclTensor *keyAntiquantScaleOptional, const aclTensor *keyAntiquantOffsetOptional,
            const aclTensor *valueAntiquantScaleOptional, const aclTensor *valueAntiquantOffsetOptional,
            const aclTensor *keySharedPrefixOptional, const aclTensor *valueSharedPrefixOptional,
            const aclIntArray *actualSharedPrefixLenOptional, const aclTensor *queryRopeOptional,
            const aclTensor *keyRopeOptional, const aclTensor *keyRopeAntiquantScaleOptional, int64_t numHeads,
            double scaleValue, int64_t preTokens, int64_t nextTokens, char *inputLayout, int64_t numKeyValueHeads,
            int64_t sparseMode, int64_t innerPrecise, int64_t blockSize, int64_t antiquantMode,
            bool softmaxLseFlag, int64_t keyAntiquantMode, int64_t valueAntiquantMode,
            const aclTensor *attentionOut, const aclTensor *softmaxLse, uint64_t *workspaceSize,
            aclOpExecutor **executor))
ASCEND_API(OPAPI, aclnnStatus, aclnnFusedInferAttentionScoreV3,
           (void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream))

/* ============================================================================================
 * HCCL
 * ========================================================================================== */

typedef void *HcclComm;

typedef enum {
    HCCL_SUCCESS = 0,
    HCCL_E_PARA = 1,
    HCCL_E_PTR = 2,
    HCCL_E_MEMORY = 3,
    HCCL_E_INTERNAL = 4,
    HCCL_E_NOT_SUPPORT = 5,
    HCCL_E_NOT_FOUND = 6,
    HCCL_E_UNAVAIL = 7,
    HCCL_E_SYSCALL = 8,
    HCCL_E_TIMEOUT = 9,
    HCCL_E_OPEN_FILE_FAILURE = 10,
    HCCL_E_TCP_CONNECT = 11,
    HCCL_E_ROCE_CONNECT = 12,
    HCCL_E_TCP_TRANSFER = 13,
    HCCL_E_ROCE_TRANSFER = 14,
    HCCL_E_RUNTIME = 15,
    HCCL_E_DRV = 16,
    HCCL_E_PROFILING = 17,
    HCCL_E_CCE = 18,
    HCCL_E_NETWORK = 19,
    HCCL_E_AGAIN = 20,
    HCCL_E_REMOTE = 21,
    HCCL_E_SUSPENDING = 22,
    HCCL_E_OPRETRY_FAIL = 23,
    HCCL_E_OOM = 24,
    HCCL_E_IN_STATUS = 1041,
    HCCL_E_RESERVED = 1042
} HcclResult;

typedef enum {
    HCCL_REDUCE_SUM = 0,
    HCCL_REDUCE_PROD = 1,
    HCCL_REDUCE_MAX = 2,
    HCCL_REDUCE_MIN = 3,
    HCCL_REDUCE_RESERVED = 255
} HcclReduceOp;

/* Note: numbered differently from aclDataType. */
typedef enum {
    HCCL_DATA_TYPE_INT8 = 0,
    HCCL_DATA_TYPE_INT16 = 1,
    HCCL_DATA_TYPE_INT32 = 2,
    HCCL_DATA_TYPE_FP16 = 3,
    HCCL_DATA_TYPE_FP32 = 4,
    HCCL_DATA_TYPE_INT64 = 5,
    HCCL_DATA_TYPE_UINT64 = 6,
    HCCL_DATA_TYPE_UINT8 = 7,
    HCCL_DATA_TYPE_UINT16 = 8,
    HCCL_DATA_TYPE_UINT32 = 9,
    HCCL_DATA_TYPE_FP64 = 10,
    HCCL_DATA_TYPE_BFP16 = 11,
    HCCL_DATA_TYPE_INT128 = 12,
    HCCL_DATA_TYPE_HIF8 = 14,
    HCCL_DATA_TYPE_FP8E4M3 = 15,
    HCCL_DATA_TYPE_FP8E5M2 = 16,
    HCCL_DATA_TYPE_FP8E8M0 = 17,
    HCCL_DATA_TYPE_RESERVED = 255
} HcclDataType;

#define HCCL_ROOT_INFO_BYTES 4108
typedef struct HcclRootInfoDef {
    char internal[HCCL_ROOT_INFO_BYTES];
} HcclRootInfo;

/* HcclGetCommName writes at most this many bytes, NUL included. */
#define COMM_NAME_MAX_LENGTH 128

typedef enum { HCCL_SEND = 0, HCCL_RECV = 1, HCCL_SEND_RECV_RESERVED = 2 } HcclSendRecvType;

typedef struct HcclSendRecvItemDef {
    HcclSendRecvType sendRecvType;
    void *buf;
    uint64_t count;
    HcclDataType dataType;
    uint32_t remoteRank;
} HcclSendRecvItem;

/* A versioned struct: HCCL reads its first `size` bytes. After the 24-byte header come the
 * fields of the old (version 2) layout, the smallest one; newer versions append fields. The
 * header-inline HcclCommConfigInit is not exported: callers fill the header themselves and set
 * the fields they leave alone to HCCL_COMM_CONFIG_NOT_SET. Field types as hccl_types.h (HM) and
 * the HcclCommConfig doc give them: hcclBufferSize in MB (>= 1), hcclDeterministic 0 or 1,
 * hcclCommName NUL-terminated (an empty name lets HCCL make one). */
#define HCCL_COMM_CONFIG_MAGIC_WORD 0xf0f0f0f0
#define HCCL_COMM_CONFIG_VERSION 2
#define HCCL_COMM_CONFIG_NOT_SET 0xffffffff
typedef struct HcclCommConfigDef {
    size_t size;
    uint32_t magicWord;
    uint32_t version;
    uint64_t reserved;
    uint32_t hcclBufferSize;
    uint32_t hcclDeterministic;
    char hcclCommName[COMM_NAME_MAX_LENGTH];
} HcclCommConfig;

/* Communicator management. */
ASCEND_API(HCOMM, HcclResult, HcclGetRootInfo, (HcclRootInfo *rootInfo))
ASCEND_API(HCOMM, HcclResult, HcclCommInitRootInfo,
           (uint32_t nRanks, const HcclRootInfo *rootInfo, uint32_t rank, HcclComm *comm))
ASCEND_API(HCOMM, HcclResult, HcclCommInitRootInfoConfig,
           (uint32_t nRanks, const HcclRootInfo *rootInfo, uint32_t rank, const HcclCommConfig *config,
            HcclComm *comm))
ASCEND_API(HCOMM, HcclResult, HcclCommInitAll, (uint32_t ndev, int32_t *devices, HcclComm *comms))
/* clusterInfo: the path of a rank-table JSON file. */
ASCEND_API(HCOMM, HcclResult, HcclCommInitClusterInfo, (const char *clusterInfo, uint32_t rank, HcclComm *comm))
ASCEND_API(HCOMM, HcclResult, HcclCommInitClusterInfoConfig,
           (const char *clusterInfo, uint32_t rank, HcclCommConfig *config, HcclComm *comm))
ASCEND_API(HCOMM, HcclResult, HcclCreateSubCommConfig,
           (HcclComm *comm, uint32_t rankNum, uint32_t *rankIds, uint64_t subCommId, uint32_t subCommRankId,
            HcclCommConfig *config, HcclComm *subComm))
ASCEND_API(HCOMM, HcclResult, HcclCommDestroy, (HcclComm comm))
ASCEND_API(HCOMM, HcclResult, HcclGetRankSize, (HcclComm comm, uint32_t *rankSize))
ASCEND_API(HCOMM, HcclResult, HcclGetRankId, (HcclComm comm, uint32_t *rank))
ASCEND_API(HCOMM, HcclResult, HcclGetCommName, (HcclComm comm, char *commName))
ASCEND_API(HCOMM, HcclResult, HcclBarrier, (HcclComm comm, aclrtStream stream))
ASCEND_API(HCOMM, HcclResult, HcclGetCommAsyncError, (HcclComm comm, HcclResult *asyncError))
ASCEND_API(HCOMM, const char *, HcclGetErrorString, (HcclResult code))

/* Collectives and point-to-point; counts are in elements. */
ASCEND_API(HCCL, HcclResult, HcclAllReduce,
           (void *sendBuf, void *recvBuf, uint64_t count, HcclDataType dataType, HcclReduceOp op, HcclComm comm,
            aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclBroadcast,
           (void *buf, uint64_t count, HcclDataType dataType, uint32_t root, HcclComm comm, aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclReduceScatter,
           (void *sendBuf, void *recvBuf, uint64_t recvCount, HcclDataType dataType, HcclReduceOp op,
            HcclComm comm, aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclAllGather,
           (void *sendBuf, void *recvBuf, uint64_t sendCount, HcclDataType dataType, HcclComm comm,
            aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclAlltoAllV,
           (const void *sendBuf, const void *sendCounts, const void *sdispls, HcclDataType sendType,
            const void *recvBuf, const void *recvCounts, const void *rdispls, HcclDataType recvType,
            HcclComm comm, aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclSend,
           (void *sendBuf, uint64_t count, HcclDataType dataType, uint32_t destRank, HcclComm comm,
            aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclRecv,
           (void *recvBuf, uint64_t count, HcclDataType dataType, uint32_t srcRank, HcclComm comm,
            aclrtStream stream))
ASCEND_API(HCCL, HcclResult, HcclBatchSendRecv,
           (HcclSendRecvItem *sendRecvInfo, uint32_t itemNum, HcclComm comm, aclrtStream stream))

#undef ASCEND_API

#ifdef __cplusplus
}
#endif

#endif /* ASCEND_NPU_SYS_H */
