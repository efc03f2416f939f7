/* A plain ACL program: its own declarations of the documented prototypes, no CANN header and
 * not ours. It links against the drop-in libraries by their CANN names and copies a buffer
 * through device memory. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef int aclError;
aclError aclInit(const char *configPath);
aclError aclFinalize(void);
aclError aclrtGetDeviceCount(uint32_t *count);
aclError aclrtSetDevice(int32_t deviceId);
aclError aclrtResetDevice(int32_t deviceId);
aclError aclrtMalloc(void **devPtr, size_t size, int policy);
aclError aclrtFree(void *devPtr);
aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, int kind);
const char *aclGetRecentErrMsg(void);

enum { HUGE_FIRST = 0, HOST_TO_DEVICE = 1, DEVICE_TO_HOST = 2 };

#define CHECK(call)                                                                    \
    do {                                                                               \
        aclError rc_ = (call);                                                         \
        if (rc_ != 0) {                                                                \
            const char *msg_ = aclGetRecentErrMsg();                                   \
            printf("FAIL %s = %d: %s\n", #call, rc_, msg_ ? msg_ : "(no message)");   \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

int main(void) {
    enum { N = 1000 };
    uint32_t host_in[N], host_out[N];
    for (uint32_t i = 0; i < N; ++i) {
        host_in[i] = i * 2654435761u;
        host_out[i] = 0;
    }
    uint32_t count = 0;
    void *dev = NULL;
    CHECK(aclInit(NULL));
    CHECK(aclrtGetDeviceCount(&count));
    CHECK(aclrtSetDevice(0));
    CHECK(aclrtMalloc(&dev, sizeof host_in, HUGE_FIRST));
    CHECK(aclrtMemcpy(dev, sizeof host_in, host_in, sizeof host_in, HOST_TO_DEVICE));
    CHECK(aclrtMemcpy(host_out, sizeof host_out, dev, sizeof host_out, DEVICE_TO_HOST));
    CHECK(aclrtFree(dev));
    /* A second free is a documented error; the simulator names it. */
    aclError again = aclrtFree(dev);
    /* The message lives until the next ACL call on this thread: copy it now. */
    char msg[512];
    const char *recent = aclGetRecentErrMsg();
    snprintf(msg, sizeof msg, "%s", recent ? recent : "(none)");
    CHECK(aclrtResetDevice(0));
    CHECK(aclFinalize());
    printf("devices=%u equal=%d double_free=%d message=%s\n", count,
           memcmp(host_in, host_out, sizeof host_in) == 0, again, msg);
    return 0;
}
