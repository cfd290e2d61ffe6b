// Small device helpers shared by the kernels: 16-byte vector access to fp16 and float32 rows, warp
// reductions, and the host-side argument checks every launcher runs before it enqueues anything.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"

namespace ridgeline::cuda {

// ---- host-side contract checks -------------------------------------------------------------------

// Throws std::invalid_argument("<op>: <what>") when a launcher's shape contract is broken.
inline void require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(op) + ": " + what);
}
// A literal message builds no string unless it is thrown (launchers run every decode step).
inline void require(bool ok, const char* op, const char* what) {
  if (!ok) throw std::invalid_argument(std::string(op) + ": " + what);
}

// 16-byte vector loads need 16-byte aligned base pointers (cudaMalloc gives 256).
inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

inline int ceil_div(int a, int b) {
  return (a + b - 1) / b;
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// One attribute of the current device, e.g. cudaDevAttrMultiProcessorCount.
inline int current_device_attribute(cudaDeviceAttr attr, const char* op) {
  int dev = 0, v = 0;
  RL_CUDA_CHECK(op, cudaGetDevice(&dev));
  RL_CUDA_CHECK(op, cudaDeviceGetAttribute(&v, attr, dev));
  return v;
}

// Multiprocessor count of the current device (split-K and grid sizing).
inline int current_sm_count(const char* op) {
  return current_device_attribute(cudaDevAttrMultiProcessorCount, op);
}

// Memory bus width of the current device in bits (with the SM count, what tells an H100 SXM, 5120,
// from an H200, 6144, for kernels' measured tables).
inline int current_memory_bus_bits(const char* op) {
  return current_device_attribute(cudaDevAttrGlobalMemoryBusWidth, op);
}

// Dynamic shared memory a block asks for so that at most k blocks share an SM of `sm_bytes` whose
// blocks each reserve `reserved` bytes beside their own: more than 1 / (k + 1) of the SM, less the
// reserve, rounded up to the 128-byte allocation unit (k of them still fit for k <= 3).
constexpr int smem_holding_sm_to(int k, int sm_bytes, int reserved) {
  return (sm_bytes / (k + 1) - reserved + 1 + 127) & ~127;
}
// The same on the current device, whose attributes are asked once.
inline int smem_holding_sm_to(int k, const char* op) {
  static const int per_sm = current_device_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor, op);
  static const int reserved = current_device_attribute(cudaDevAttrReservedSharedMemoryPerBlock, op);
  return smem_holding_sm_to(k, per_sm, reserved);
}

// Lets `kernel` take `bytes` of dynamic shared memory (launches above 48 KB need the opt-in). With
// `max_shared` the SM's unified L1/shared memory is carved out as shared memory, so that several
// large blocks fit beside each other (the kernels that ask for it load through cp.async.cg, which
// bypasses L1). Call it once per kernel instantiation (a function-local static at the launcher).
template <typename Kernel>
void set_dynamic_smem(Kernel kernel, int bytes, bool max_shared, const char* op) {
  RL_CUDA_CHECK(op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (max_shared)
    RL_CUDA_CHECK(op, cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                           int(cudaSharedmemCarveoutMaxShared)));
}

// ---- device helpers --------------------------------------------------------------------------------

// Eight fp16 values moved as one 16-byte transaction.
union Half8 {
  uint4 raw;
  half2 h2[4];
};

__device__ __forceinline__ void half8_to_float(const uint4& raw, float (&f)[8]) {
  Half8 v;
  v.raw = raw;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 p = __half22float2(v.h2[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ uint4 float_to_half8(const float (&f)[8]) {
  Half8 v;
#pragma unroll
  for (int i = 0; i < 4; ++i) v.h2[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
  return v.raw;
}

__device__ __forceinline__ void load_float8(const float* p, float (&f)[8]) {
  float4 a = reinterpret_cast<const float4*>(p)[0];
  float4 b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
  f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

__device__ __forceinline__ void store_float8(float* p, const float (&f)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The sum of n_warps (at most 32) warp sums in shared memory, added by warp 0 in one warp_sum
// behind a barrier on each side; every thread gets it. block_sum's second half, and the W4A16 GEMV's
// norm prologue's, whose warps play add_rmsnorm's (kernels/w4a16_gemv.cu).
__device__ __forceinline__ float sum_of_warp_sums(const float* partial, int n_warps) {
  __shared__ float total;
  const int lane = threadIdx.x & 31;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = lane < n_warps ? partial[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// Sum over all threads of a block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  return sum_of_warp_sums(partial, blockDim.x >> 5);
}

}  // namespace ridgeline::cuda
