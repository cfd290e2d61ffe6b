// Block-wide argmax of one float32 row with the reference's rules (ref::argmax): the largest value,
// the lowest index among equals, NaN never wins, 0 for a row of NaNs. Shared by argmax and by the
// greedy rows of sample.
#pragma once

#include <climits>
#include <cstdint>

#include <cuda_runtime.h>

namespace ridgeline::cuda {

__device__ __forceinline__ bool argmax_better(float v, int i, float best_v, int best_i) {
  return !isnan(v) && (v > best_v || (v == best_v && i < best_i));
}

__device__ __forceinline__ void argmax_take(float v, int i, float& best_v, int& best_i) {
  if (argmax_better(v, i, best_v, best_i)) {
    best_v = v;
    best_i = i;
  }
}

// blockDim.x must be a multiple of 32. Every thread returns the row's index.
// A thread scans its indices in increasing order, so a strict `>` keeps its lowest on ties; the
// cross-thread reduction breaks ties by index explicitly. Aligned rows are read as float4, four
// vectors in flight per thread, since a single block streams a whole vocab-sized row.
__device__ __forceinline__ int block_argmax(const float* __restrict__ row, int n) {
  __shared__ float warp_v[32];
  __shared__ int warp_i[32];
  float best_v = -INFINITY;
  int best_i = INT_MAX;
  int scalar_from = 0;
  if ((reinterpret_cast<uintptr_t>(row) & 15u) == 0) {
    const float4* row4 = reinterpret_cast<const float4*>(row);
    const int n4 = n / 4;
    for (int base = threadIdx.x; base < n4; base += 4 * blockDim.x) {
      float4 v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        int idx = base + u * blockDim.x;
        v[u] = idx < n4 ? row4[idx] : make_float4(NAN, NAN, NAN, NAN);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        int i0 = 4 * (base + u * blockDim.x);
        argmax_take(v[u].x, i0, best_v, best_i);
        argmax_take(v[u].y, i0 + 1, best_v, best_i);
        argmax_take(v[u].z, i0 + 2, best_v, best_i);
        argmax_take(v[u].w, i0 + 3, best_v, best_i);
      }
    }
    scalar_from = 4 * n4;
  }
  for (int i = scalar_from + threadIdx.x; i < n; i += blockDim.x) argmax_take(row[i], i, best_v, best_i);

#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, best_v, off);
    int oi = __shfl_xor_sync(0xffffffffu, best_i, off);
    argmax_take(ov, oi, best_v, best_i);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    warp_v[warp] = best_v;
    warp_i[warp] = best_i;
  }
  __syncthreads();
  if (warp == 0) {
    int n_warps = blockDim.x >> 5;
    best_v = lane < n_warps ? warp_v[lane] : -INFINITY;
    best_i = lane < n_warps ? warp_i[lane] : INT_MAX;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, best_v, off);
      int oi = __shfl_xor_sync(0xffffffffu, best_i, off);
      argmax_take(ov, oi, best_v, best_i);
    }
    if (lane == 0) warp_i[0] = best_i == INT_MAX ? 0 : best_i;
  }
  __syncthreads();
  return warp_i[0];
}

}  // namespace ridgeline::cuda
