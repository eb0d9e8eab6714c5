// CUDA backend: host-side declarations.
//
// Plain C++ on purpose: no CUDA header is included, so CPU sources (the C API, the addon)
// may include this file whether or not the toolkit is installed. The definitions live in
// native/cuda/backend.cu, compiled only when the build has the CUDA backend
// (HEALTHGPT_HAVE_CUDA defined for users of healthgpt_engine).
//
// Errors: every function except cuda_device_count() and cuda_free() throws hg::Error
// (core/error.h) with the CUDA error name and message; the C API turns that into a status
// and hg_last_error(). Nothing here aborts the process.
//
// Pointers named `dev` are device pointers (from cuda_malloc or any cudaMalloc'ed memory);
// `stream` is a cudaStream_t passed as void* (nullptr: the legacy default stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hg {

// Number of CUDA devices this process can use. 0, never an error, when there is no driver,
// no device, or the driver is too old for the runtime this was built with. Queried once.
int cuda_device_count() noexcept;

// Why cuda_device_count() is 0: the failed call and CUDA's message ("" when devices exist
// or when the runtime simply reported none).
std::string cuda_status();

struct cuda_device_props {
    std::string name;
    int cc_major = 0; // compute capability, e.g. 9.0 for H100
    int cc_minor = 0;
    size_t total_bytes = 0; // global memory
    int multiprocessors = 0;
};
cuda_device_props cuda_device_properties(int device);

// Selects the device the calling thread's later calls use (cudaSetDevice).
void cuda_set_device(int device);

// Device memory and copies (synchronous with respect to the host: a copy to the device has
// landed when it returns, so any stream may read it).
void *cuda_malloc(size_t bytes);
void cuda_free(void *dev) noexcept;
void cuda_copy_to_device(void *dev_dst, const void *host_src, size_t bytes);
void cuda_copy_to_host(void *host_dst, const void *dev_src, size_t bytes);
// Waits for all work on the current device; reports errors from earlier launches.
void cuda_synchronize();

// Free and total memory of the current device, in bytes (cudaMemGetInfo).
void cuda_memory_info(size_t &free_bytes, size_t &total_bytes);

// Copies enqueued on a stream (host memory may be pageable: the copy then completes before
// the call returns for host-to-device, and before the stream moves on for device-to-host).
void cuda_copy_to_device_async(void *dev_dst, const void *host_src, size_t bytes, void *stream);
void cuda_copy_to_host_async(void *host_dst, const void *dev_src, size_t bytes, void *stream);
void cuda_memset_async(void *dev, int value, size_t bytes, void *stream);

// A stream of its own (non-blocking with respect to the legacy default stream), destroyed
// with the object. synchronize() waits for its work and reports any error it met.
class CudaStream {
  public:
    CudaStream();
    ~CudaStream();
    CudaStream(const CudaStream &) = delete;
    CudaStream &operator=(const CudaStream &) = delete;
    void *get() const { return s_; }
    void synchronize();

  private:
    void *s_ = nullptr;
};

// Page-locked host memory (cudaHostAlloc): copies to and from it can sit in a CUDA graph.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(const PinnedBuffer &) = delete;
    PinnedBuffer &operator=(const PinnedBuffer &) = delete;
    template <class T> T *as() const { return static_cast<T *>(p_); }
    size_t size() const { return bytes_; }

  private:
    void *p_ = nullptr;
    size_t bytes_ = 0;
};

// A CUDA graph recorded from the work enqueued on a stream between begin() and end(), then
// replayed with launch(): one submission for a whole decode step instead of one per kernel.
// If anything throws between begin() and end(), call abandon() so the stream leaves capture.
class CudaGraph {
  public:
    CudaGraph() = default;
    ~CudaGraph();
    CudaGraph(const CudaGraph &) = delete;
    CudaGraph &operator=(const CudaGraph &) = delete;
    void begin(void *stream);
    void end(void *stream); // instantiates; throws on failure (the stream is then out of capture)
    void abandon(void *stream) noexcept;
    void launch(void *stream);
    bool ready() const { return exec_ != nullptr; }

  private:
    void *exec_ = nullptr;
};

// Device memory freed with the object; empty when default-constructed.
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes) : p_(cuda_malloc(bytes)), bytes_(bytes) {}
    ~DeviceBuffer() { cuda_free(p_); }
    DeviceBuffer(DeviceBuffer &&o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
    DeviceBuffer &operator=(DeviceBuffer &&o) noexcept {
        if (this != &o) {
            cuda_free(p_);
            p_ = o.p_, bytes_ = o.bytes_;
            o.p_ = nullptr, o.bytes_ = 0;
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    void *get() const { return p_; }
    template <class T> T *as() const { return static_cast<T *>(p_); }
    size_t size() const { return bytes_; }

  private:
    void *p_ = nullptr;
    size_t bytes_ = 0;
};

// Dequantizes n q8_0 values (n a multiple of 32; blocks of {half d; int8 qs[32]} = 34 bytes,
// x = d * q) from device memory to device f32. Enqueued on `stream`; returns after the launch
// (launch errors are thrown, execution errors appear at the next synchronizing call).
// src needs no alignment.
void cuda_dequantize_q8_0(const void *dev_src, float *dev_dst, int64_t n, void *stream = nullptr);

// Same from host memory to host memory through temporary device buffers; synchronous.
void cuda_dequantize_q8_0_host(const void *host_src, float *host_dst, int64_t n);

} // namespace hg
