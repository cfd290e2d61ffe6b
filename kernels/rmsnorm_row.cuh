// The one definition of RMSNorm's arithmetic over a row, shared by add_rmsnorm and the GEMVs that
// normalize their input in a prologue (gemv_fused with a norm, kernels/gemv.cu), so both give the
// same bits: a block of kNormThreads threads, thread p summing the squares of the 8-wide chunks
// p, p + kNormThreads, ... in that order (fmaf), then block_sum; inv = 1/sqrt(ss/dim + eps) (a
// division, as the reference); out = fp16(v * inv * w). The order does not depend on the row's
// length or on the kernel, only on kNormThreads, which both kernels launch with.
#pragma once

#include <cuda_fp16.h>

#include "kernels/device_common.cuh"

namespace ridgeline::cuda {

inline constexpr int kNormThreads = 256;

__device__ __forceinline__ float rms_accumulate(const float (&v)[8], float ss) {
#pragma unroll
  for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
  return ss;
}

__device__ __forceinline__ float rms_inv(float sum_squares, int dim, float eps) {
  return 1.0f / sqrtf(sum_squares / dim + eps);  // 1/sqrt rather than rsqrtf: the reference divides
}

__device__ __forceinline__ uint4 rms_scale(const float (&v)[8], float inv, const uint4& w_raw) {
  float wf[8], o[8];
  half8_to_float(w_raw, wf);
#pragma unroll
  for (int j = 0; j < 8; ++j) o[j] = v[j] * inv * wf[j];
  return float_to_half8(o);
}

}  // namespace ridgeline::cuda
