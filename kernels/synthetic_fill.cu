// fill_synthetic writes a synthetic weight tensor (kernels/synthetic.h) straight into fp16 device
// memory, so a preset model never crosses PCIe; the convert_* kernels turn host-uploaded bf16 or
// fp32 checkpoint tensors into the fp16 the engine computes with (round to nearest even).
// FLOPs: a few integer hashes per element. Bytes: 2 written (+2 or 4 read) per element.
// Memory-bound at load time; grid-stride loops, one element per thread per step.
#include <cuda_bf16.h>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/synthetic.h"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>(ceil_div(n, int64_t{kThreads}), 65536));
}

__global__ void fill_synthetic_kernel(half* __restrict__ out, int64_t n, uint64_t seed, uint64_t tensor_id,
                                      int shift, bool norm) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = norm ? synthetic_norm_value(seed, tensor_id, i) : synthetic_value(seed, tensor_id, i, shift);
    out[i] = __float2half_rn(v);  // exact: synthetic values are fp16-representable by construction
  }
}

__global__ void bf16_to_fp16_kernel(const uint16_t* __restrict__ in, int64_t n, half* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // bf16 is the top half of a float32, so widening is a shift; fp16 rounding happens once.
    float f = __uint_as_float(static_cast<uint32_t>(in[i]) << 16);
    out[i] = __float2half_rn(f);
  }
}

__global__ void fp32_to_fp16_kernel(const float* __restrict__ in, int64_t n, half* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(in[i]);
}

}  // namespace

void fill_synthetic(half* out, int64_t n, uint64_t seed, uint64_t tensor_id, int shift, bool norm,
                    cudaStream_t stream) {
  const char* op = "fill_synthetic";
  require(n >= 0 && shift >= 0 && shift < 16, op, "n must be >= 0 and shift in [0, 16)");
  if (n == 0) return;
  fill_synthetic_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, tensor_id, shift, norm);
  RL_CUDA_CHECK_LAUNCH(op);
}

void convert_bf16_to_fp16(const uint16_t* in, int64_t n, half* out, cudaStream_t stream) {
  const char* op = "convert_bf16_to_fp16";
  require(n >= 0, op, "n must be >= 0");
  if (n == 0) return;
  bf16_to_fp16_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, n, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

void convert_fp32_to_fp16(const float* in, int64_t n, half* out, cudaStream_t stream) {
  const char* op = "convert_fp32_to_fp16";
  require(n >= 0, op, "n must be >= 0");
  if (n == 0) return;
  fp32_to_fp16_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, n, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
