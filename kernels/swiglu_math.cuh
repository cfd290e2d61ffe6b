// The one definition of SwiGLU's per-element arithmetic, shared by the swiglu kernel and the fused
// w13 GEMV epilogue (gemv_swiglu) so the two paths compile the same expression and give the same
// bits: silu(g) * u in fp32 from the fp16-rounded gate and up, expf (not __expf) to stay within the
// reference's rounding, the caller rounds the result to fp16.
#pragma once

#include <cuda_fp16.h>

namespace ridgeline::cuda {

__device__ __forceinline__ float swiglu_value(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

}  // namespace ridgeline::cuda
