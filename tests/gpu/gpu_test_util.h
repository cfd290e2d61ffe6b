// Shared helpers of the GPU tests: whether a GPU answers (any CUDA failure means "no GPU", as on CI
// machines that have the toolkit but no driver), a skip macro that says so visibly, and an RAII
// device buffer that the tests poison before every run so unwritten outputs fail.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "kernels/cuda_check.h"

namespace ridgeline::test {

// True when device 0 can be selected and a context created; otherwise `why` says what failed.
// Checked once per process: the answer does not change.
inline bool gpu_available(std::string* why) {
  static const std::string failure = [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    }
    if (n <= 0) return std::string("no CUDA device");
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaFree(nullptr);  // forces context creation
    if (e != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaSetDevice(0): ") + cudaGetErrorString(e);
    }
    return std::string();
  }();
  if (why != nullptr) *why = failure;
  return failure.empty();
}

// Whether the caller said a GPU must answer (RIDGELINE_REQUIRE_GPU=1: the scripts that run the GPU
// tests on a GPU machine set it), so that a broken driver or context fails the gate instead of
// skipping every test and exiting 0.
inline bool gpu_required() {
  const char* r = std::getenv("RIDGELINE_REQUIRE_GPU");
  return r != nullptr && std::string(r) == "1";
}

// Skips the calling test with "GPU not available: <reason>" where no GPU answers, or fails it where
// one is required (gpu_required()).
#define RL_REQUIRE_GPU()                                                                             \
  do {                                                                                               \
    std::string rl_gpu_why_;                                                                         \
    if (!::ridgeline::test::gpu_available(&rl_gpu_why_)) {                                           \
      if (::ridgeline::test::gpu_required())                                                         \
        GTEST_FAIL() << "GPU required (RIDGELINE_REQUIRE_GPU=1) but not available: " << rl_gpu_why_; \
      GTEST_SKIP() << "GPU not available: " << rl_gpu_why_;                                          \
    }                                                                                                \
  } while (0)

// Device memory for tests (the engine's own owner is cuda::DeviceBuffer): built from a host vector,
// downloaded back, and poison()ed: every byte 0xFF, NaN for half and float and -1 for int, so an
// element a kernel forgot to write shows up in the comparison.
template <typename T>
class TestBuffer {
 public:
  TestBuffer() = default;
  explicit TestBuffer(size_t n) : n_(n) {
    if (n_ > 0) RL_CUDA_CHECK("test", cudaMalloc(&p_, n_ * sizeof(T)));
  }
  explicit TestBuffer(const std::vector<T>& host) : TestBuffer(host.size()) { upload(host); }
  TestBuffer(const TestBuffer&) = delete;
  TestBuffer& operator=(const TestBuffer&) = delete;
  TestBuffer(TestBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  TestBuffer& operator=(TestBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~TestBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    if (!host.empty())
      RL_CUDA_CHECK("test", cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    RL_CUDA_CHECK("test", cudaDeviceSynchronize());
    std::vector<T> host(n_);
    if (n_ > 0) RL_CUDA_CHECK("test", cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void poison() {
    if (n_ > 0) RL_CUDA_CHECK("test", cudaMemset(p_, 0xFF, n_ * sizeof(T)));
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace ridgeline::test
