// Ceilings probe: peak DRAM bandwidth two ways and peak fp16 tensor throughput.
//  - copy: cudaMemcpyAsync device-to-device of 1 GiB (20x the H100's L2), bytes = read + written;
//  - read: a streaming sum over 2 GiB with 16-byte loads, bytes = read (the write is one float per
//    block); read-mostly kernels such as decode attention can beat the copy figure;
//  - GEMM: cublasGemmEx 8192^3 fp16 in/out, fp32 compute (2*8192^3 FLOP per call).
// Each is launched back to back between events (no host sync inside), median of the repeats.
#include "bench/probe/probe.h"

#include <algorithm>
#include <vector>

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <string>

#include "engine/cuda/device_buffer.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kRepeats = 15;

__global__ void stream_sum(const uint4* __restrict__ in, int64_t n, float* __restrict__ out) {
  float acc = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint4 v = in[i];
    acc += __uint_as_float(v.x) + __uint_as_float(v.y) + __uint_as_float(v.z) + __uint_as_float(v.w);
  }
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int w = 0; w < int(blockDim.x >> 5); ++w) s += partial[w];
    out[blockIdx.x] = s;  // keeps the loads alive
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Times `launch` kRepeats times back to back; returns per-launch milliseconds.
template <class F>
std::vector<double> time_back_to_back(cudaStream_t s, F&& launch, const char* op) {
  for (int i = 0; i < 3; ++i) launch();  // warm-up
  std::vector<Event> ev;
  for (int i = 0; i <= kRepeats; ++i) ev.emplace_back(true);
  RL_CUDA_CHECK(op, cudaEventRecord(ev[0].get(), s));
  for (int i = 0; i < kRepeats; ++i) {
    launch();
    RL_CUDA_CHECK(op, cudaEventRecord(ev[i + 1].get(), s));
  }
  RL_CUDA_CHECK(op, cudaStreamSynchronize(s));
  std::vector<double> ms(kRepeats);
  for (int i = 0; i < kRepeats; ++i) {
    float t = 0;
    RL_CUDA_CHECK(op, cudaEventElapsedTime(&t, ev[i].get(), ev[i + 1].get()));
    ms[i] = t;
  }
  return ms;
}

}  // namespace

}  // namespace ridgeline::cuda

namespace ridgeline {

GpuCeilings measure_gpu_ceilings() {
  using namespace cuda;
  GpuCeilings p;
  int dev = 0, sm_count = 0;
  RL_CUDA_CHECK("probe", cudaGetDevice(&dev));
  RL_CUDA_CHECK("probe", cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
  Stream stream;
  cudaStream_t s = stream.get();

  {  // copy and read bandwidth over buffers many times the L2
    const int64_t copy_bytes = int64_t(1) << 30;
    DeviceBuffer<half> a(copy_bytes / 2, "probe copy source"), b(copy_bytes / 2, "probe copy destination");
    fill_synthetic(a.get(), copy_bytes / 2, 1, 1, 0, false, s);
    fill_synthetic(b.get(), copy_bytes / 2, 2, 1, 0, false, s);
    auto ms = time_back_to_back(
        s,
        [&] {
          RL_CUDA_CHECK("probe copy",
                        cudaMemcpyAsync(b.get(), a.get(), copy_bytes, cudaMemcpyDeviceToDevice, s));
        },
        "probe copy");
    p.copy_GBps = 2.0 * copy_bytes / (median(ms) * 1e-3) / 1e9;

    const int64_t read_bytes = int64_t(2) << 30;
    DeviceBuffer<half> r(read_bytes / 2, "probe read buffer");
    fill_synthetic(r.get(), read_bytes / 2, 3, 1, 0, false, s);
    const int blocks = sm_count * 8;
    DeviceBuffer<float> sums(blocks, "probe read sums");
    auto rms = time_back_to_back(
        s,
        [&] {
          stream_sum<<<blocks, 512, 0, s>>>(reinterpret_cast<const uint4*>(r.get()), read_bytes / 16,
                                            sums.get());
          RL_CUDA_CHECK_LAUNCH("probe read");
        },
        "probe read");
    p.read_GBps = read_bytes / (median(rms) * 1e-3) / 1e9;
  }

  {  // fp16 tensor-core GEMM, fp32 accumulation
    const int n = 8192;
    DeviceBuffer<half> A(int64_t(n) * n, "probe gemm A"), B(int64_t(n) * n, "probe gemm B"),
        C(int64_t(n) * n, "probe gemm C");
    fill_synthetic(A.get(), int64_t(n) * n, 4, 1, 0, false, s);
    fill_synthetic(B.get(), int64_t(n) * n, 5, 1, 0, false, s);
    cublasHandle_t h = nullptr;
    RL_CUDA_CHECK("probe gemm", cublasCreate(&h));
    struct HandleGuard {
      cublasHandle_t h;
      ~HandleGuard() { cublasDestroy(h); }
    } guard{h};
    RL_CUDA_CHECK("probe gemm", cublasSetStream(h, s));
    const float alpha = 1.0f, beta = 0.0f;
    auto ms = time_back_to_back(
        s,
        [&] {
          RL_CUDA_CHECK("probe gemm", cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, A.get(),
                                                   CUDA_R_16F, n, B.get(), CUDA_R_16F, n, &beta, C.get(),
                                                   CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        },
        "probe gemm");
    p.fp16_tflops = 2.0 * n * double(n) * n / (median(ms) * 1e-3) / 1e12;
  }
  p.repeats = kRepeats;
  p.method =
      "copy: cudaMemcpyAsync D2D 1 GiB, read+written; read: streaming sum over 2 GiB, 16-byte loads; gemm: "
      "cublasGemmEx 8192^3 fp16, fp32 compute; random data, 3 warm-ups, " +
      std::to_string(kRepeats) + " back-to-back launches between events, median";
  return p;
}

}  // namespace ridgeline
