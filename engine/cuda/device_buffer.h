// RAII owners for the CUDA resources the engine holds: device memory, pinned host memory, a stream,
// an event and an instantiated graph. Allocation failures throw (RL_CUDA_CHECK, naming what was
// being allocated); releases never throw, because they run in destructors, often while an earlier
// error is already unwinding the stack.
#pragma once

#include <cstddef>
#include <utility>

#include <cuda_runtime.h>

#include "kernels/cuda_check.h"

namespace ridgeline::cuda {

// `n` elements of T in device memory (cudaMalloc: 256-byte aligned, uninitialised).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t n, const char* what) : n_(n) {
    if (n > 0) RL_CUDA_CHECK(what, cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  void release() noexcept {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

// `n` elements of T in page-locked host memory, so that cudaMemcpyAsync really is asynchronous
// (a copy from pageable memory is staged by the driver and blocks the host).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(size_t n, const char* what) : n_(n) {
    if (n > 0) RL_CUDA_CHECK(what, cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  ~PinnedBuffer() { release(); }
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* get() const { return p_; }
  T& operator[](size_t i) const { return p_[i]; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  void release() noexcept {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

// A non-blocking stream: it does not synchronise with the legacy default stream, so nothing
// another library enqueues there can serialise the engine's work.
class Stream {
 public:
  Stream() { RL_CUDA_CHECK("stream", cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  // `timing` false gives a lighter event for ordering and host waits only.
  explicit Event(bool timing = false) {
    RL_CUDA_CHECK("event", cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~Event() {
    if (e_) cudaEventDestroy(e_);
  }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      if (e_) cudaEventDestroy(e_);
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// An instantiated CUDA graph, made by recording what `body` enqueues on `stream`.
class GraphExec {
 public:
  GraphExec() = default;
  ~GraphExec() {
    if (exec_) cudaGraphExecDestroy(exec_);
  }
  GraphExec(GraphExec&& o) noexcept : exec_(std::exchange(o.exec_, nullptr)) {}
  GraphExec& operator=(GraphExec&& o) noexcept {
    if (this != &o) {
      if (exec_) cudaGraphExecDestroy(exec_);
      exec_ = std::exchange(o.exec_, nullptr);
    }
    return *this;
  }
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;

  // Relaxed capture mode: a launcher may query device attributes or set kernel attributes while
  // being captured without invalidating the capture. If `body` throws, the capture is ended and
  // discarded so that the stream is usable again, and the exception propagates.
  template <typename Body>
  static GraphExec capture(cudaStream_t stream, const char* what, Body&& body) {
    RL_CUDA_CHECK(what, cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    try {
      body();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();  // clear the capture-invalidated error a failed launch may have left
      throw;
    }
    cudaGraph_t graph = nullptr;
    RL_CUDA_CHECK(what, cudaStreamEndCapture(stream, &graph));
    GraphExec g;
    cudaError_t e = cudaGraphInstantiate(&g.exec_, graph, 0);
    cudaGraphDestroy(graph);
    RL_CUDA_CHECK(what, e);
    return g;
  }

  void launch(cudaStream_t stream, const char* what) const {
    RL_CUDA_CHECK(what, cudaGraphLaunch(exec_, stream));
  }
  explicit operator bool() const { return exec_ != nullptr; }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace ridgeline::cuda
