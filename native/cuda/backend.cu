// CUDA backend: device query, device memory, and the first kernel (q8_0 -> f32).
// Declarations and the error contract: native/cuda/backend.h.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "cuda/backend.h"

namespace hg {
namespace {

constexpr int QK8_0 = 32;
constexpr int Q8_0_BLOCK_BYTES = 2 + QK8_0; // uint16 d (IEEE half) + int8 qs[32]
static_assert(Q8_0_BLOCK_BYTES == 34, "q8_0 block is 34 bytes");

// hg::Error is header-only, so this library needs nothing from the engine to link.
[[noreturn]] void cuda_fail(const char *what, cudaError_t e) {
    (void)cudaGetLastError(); // a non-sticky error must not be reported again by the next check
    throw Error(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) cuda_fail(what, e);
}

struct device_census {
    int count = 0;
    std::string status;
};

const device_census &census() {
    static const device_census c = [] {
        device_census r;
        int n = 0;
        const cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) {
            // No driver (cudaErrorInsufficientDriver), no device (cudaErrorNoDevice), ...:
            // not an error for a machine without a GPU. Clear it so it does not linger.
            (void)cudaGetLastError();
            r.status = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
            n = 0;
        }
        r.count = n > 0 ? n : 0;
        return r;
    }();
    return c;
}

void require_device() {
    if (census().count == 0) {
        const std::string &s = census().status;
        throw Error("no CUDA device" + (s.empty() ? std::string() : ": " + s));
    }
}

// One thread per value; a warp covers one block, so the 32 int8 loads and the 32 f32 stores
// of a warp are contiguous. d is read byte by byte: blocks are 34 bytes, so a tensor inside a
// mapped file need not be 2-byte aligned. Grid-stride over 64-bit indices.
__global__ void dequantize_q8_0_kernel(const uint8_t *__restrict__ src, float *__restrict__ dst, int64_t n) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint8_t *b = src + (i / QK8_0) * Q8_0_BLOCK_BYTES;
        const unsigned short bits = (unsigned short)(b[0] | (b[1] << 8)); // little-endian
        const float d = __half2float(__ushort_as_half(bits));
        const int8_t q = (int8_t)b[2 + (i % QK8_0)];
        dst[i] = d * (float)q;
    }
}

void check_q8_0_count(int64_t n) {
    if (n < 0 || n % QK8_0 != 0) throw Error("q8_0: " + std::to_string(n) + " values is not a multiple of 32");
    // the f32 output (4 bytes a value) is the larger of the two buffers
    if ((uint64_t)n > std::numeric_limits<size_t>::max() / sizeof(float))
        throw Error("q8_0: " + std::to_string(n) + " values is too many");
}

} // namespace

int cuda_device_count() noexcept {
    try {
        return census().count;
    } catch (...) { // std::string allocation inside the census; never let it escape
        return 0;
    }
}

std::string cuda_status() { return census().status; }

cuda_device_props cuda_device_properties(int device) {
    require_device();
    if (device < 0 || device >= census().count)
        throw Error("CUDA device " + std::to_string(device) + " out of range (" + std::to_string(census().count) +
                    " devices)");
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    cuda_device_props r;
    r.name = p.name;
    r.cc_major = p.major;
    r.cc_minor = p.minor;
    r.total_bytes = p.totalGlobalMem;
    r.multiprocessors = p.multiProcessorCount;
    return r;
}

void cuda_set_device(int device) {
    require_device();
    check(cudaSetDevice(device), "cudaSetDevice");
}

void *cuda_malloc(size_t bytes) {
    require_device();
    void *p = nullptr;
    check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    return p;
}

void cuda_free(void *dev) noexcept {
    if (dev) (void)cudaFree(dev);
}

void cuda_copy_to_device(void *dev_dst, const void *host_src, size_t bytes) {
    if (bytes == 0) return;
    check(cudaMemcpy(dev_dst, host_src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
    // From pageable memory cudaMemcpy may return before its DMA lands, and the kernels that
    // read these weights run on non-blocking streams, which do not wait for the legacy one.
    check(cudaStreamSynchronize(cudaStreamLegacy), "cudaStreamSynchronize after a copy to the device");
}

void cuda_copy_to_host(void *host_dst, const void *dev_src, size_t bytes) {
    if (bytes == 0) return;
    check(cudaMemcpy(host_dst, dev_src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void cuda_synchronize() {
    require_device();
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void cuda_memory_info(size_t &free_bytes, size_t &total_bytes) {
    require_device();
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
}

void cuda_copy_to_device_async(void *dev_dst, const void *host_src, size_t bytes, void *stream) {
    if (bytes == 0) return;
    check(cudaMemcpyAsync(dev_dst, host_src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream),
          "cudaMemcpyAsync to device");
}

void cuda_copy_to_host_async(void *host_dst, const void *dev_src, size_t bytes, void *stream) {
    if (bytes == 0) return;
    check(cudaMemcpyAsync(host_dst, dev_src, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream),
          "cudaMemcpyAsync to host");
}

void cuda_memset_async(void *dev, int value, size_t bytes, void *stream) {
    if (bytes == 0) return;
    check(cudaMemsetAsync(dev, value, bytes, (cudaStream_t)stream), "cudaMemsetAsync");
}

CudaStream::CudaStream() {
    require_device();
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    s_ = s;
}

CudaStream::~CudaStream() {
    if (s_) (void)cudaStreamDestroy((cudaStream_t)s_);
}

void CudaStream::synchronize() { check(cudaStreamSynchronize((cudaStream_t)s_), "cudaStreamSynchronize"); }

PinnedBuffer::PinnedBuffer(size_t bytes) {
    require_device();
    check(cudaHostAlloc(&p_, bytes ? bytes : 1, cudaHostAllocDefault), "cudaHostAlloc");
    bytes_ = bytes;
}

PinnedBuffer::~PinnedBuffer() {
    if (p_) (void)cudaFreeHost(p_);
}

CudaGraph::~CudaGraph() {
    if (exec_) (void)cudaGraphExecDestroy((cudaGraphExec_t)exec_);
}

void CudaGraph::begin(void *stream) {
    if (exec_) {
        (void)cudaGraphExecDestroy((cudaGraphExec_t)exec_);
        exec_ = nullptr;
    }
    check(cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

void CudaGraph::end(void *stream) {
    cudaGraph_t g = nullptr;
    check(cudaStreamEndCapture((cudaStream_t)stream, &g), "cudaStreamEndCapture");
    cudaGraphExec_t e = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&e, g, 0);
    (void)cudaGraphDestroy(g);
    check(err, "cudaGraphInstantiate");
    exec_ = e;
}

void CudaGraph::abandon(void *stream) noexcept {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing((cudaStream_t)stream, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
        cudaGraph_t g = nullptr;
        if (cudaStreamEndCapture((cudaStream_t)stream, &g) == cudaSuccess && g) (void)cudaGraphDestroy(g);
    }
    (void)cudaGetLastError();
}

void CudaGraph::launch(void *stream) {
    if (!exec_) throw Error("CUDA graph launched before it was recorded");
    check(cudaGraphLaunch((cudaGraphExec_t)exec_, (cudaStream_t)stream), "cudaGraphLaunch");
}

void cuda_dequantize_q8_0(const void *dev_src, float *dev_dst, int64_t n, void *stream) {
    check_q8_0_count(n);
    if (n == 0) return;
    require_device();
    if (!dev_src || !dev_dst) throw Error("q8_0: null device pointer");
    constexpr int threads = 256;
    const int64_t want = (n + threads - 1) / threads;
    const unsigned blocks = (unsigned)(want < (1 << 20) ? want : (1 << 20)); // grid-stride beyond
    dequantize_q8_0_kernel<<<blocks, threads, 0, (cudaStream_t)stream>>>(static_cast<const uint8_t *>(dev_src), dev_dst,
                                                                         n);
    check(cudaGetLastError(), "dequantize_q8_0 launch");
}

void cuda_dequantize_q8_0_host(const void *host_src, float *host_dst, int64_t n) {
    check_q8_0_count(n);
    if (n == 0) return;
    const size_t src_bytes = (size_t)(n / QK8_0) * Q8_0_BLOCK_BYTES;
    const size_t dst_bytes = (size_t)n * sizeof(float);
    DeviceBuffer src(src_bytes), dst(dst_bytes);
    cuda_copy_to_device(src.get(), host_src, src_bytes);
    cuda_dequantize_q8_0(src.get(), dst.as<float>(), n, nullptr);
    cuda_copy_to_host(host_dst, dst.get(), dst_bytes); // synchronizes with the default stream
}

} // namespace hg
