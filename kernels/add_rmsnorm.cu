// add_rmsnorm: residual += x (when x is given); out = fp16(residual * rsqrt(mean(residual^2) + eps) * w).
// FLOPs: ~5 per element. Bytes: dim*(4 read + 4 written residual + 2 x + 2 out) per row + 2*dim for w
// (cached across rows). Memory-bound. One block per row so the sum of squares is a block reduction
// with no second launch; each thread keeps its kChunks 8-wide vectors of the updated residual in
// registers between the reduction and the scaling, so the row is read from DRAM once.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {
namespace {

template <int kChunks>
__global__ void add_rmsnorm_kernel(float* __restrict__ residual, const half* __restrict__ x,
                                   const half* __restrict__ w, int dim, float eps, half* __restrict__ out) {
  const int64_t row = blockIdx.x;
  float* r = residual + row * dim;
  const int n_chunks = dim / 8;
  float v[kChunks][8];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int c = threadIdx.x + i * blockDim.x;
    if (c < n_chunks) {
      load_float8(r + c * 8, v[i]);
      if (x != nullptr) {
        float xf[8];
        half8_to_float(reinterpret_cast<const uint4*>(x + row * dim)[c], xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) v[i][j] += xf[j];
        store_float8(r + c * 8, v[i]);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += v[i][j] * v[i][j];
    }
  }
  ss = block_sum(ss);
  // 1/sqrt rather than rsqrtf: the reference divides, and the extra cycles are free here.
  const float inv = 1.0f / sqrtf(ss / dim + eps);
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int c = threadIdx.x + i * blockDim.x;
    if (c < n_chunks) {
      float wf[8], o[8];
      half8_to_float(reinterpret_cast<const uint4*>(w)[c], wf);
#pragma unroll
      for (int j = 0; j < 8; ++j) o[j] = v[i][j] * inv * wf[j];
      reinterpret_cast<uint4*>(out + row * dim)[c] = float_to_half8(o);
    }
  }
}

}  // namespace

void add_rmsnorm(float* residual, const half* x, const half* w, int n_tokens, int dim, float eps, half* out,
                 cudaStream_t stream) {
  const char* op = "add_rmsnorm";
  constexpr int kMaxThreads = 1024, kMaxChunks = 4;
  require(n_tokens >= 0 && dim > 0 && dim % 8 == 0 && dim <= kMaxThreads * 8 * kMaxChunks, op,
          "dim must be a positive multiple of 8 up to 32768, got " + std::to_string(dim));
  require(aligned16(residual) && aligned16(w) && aligned16(out) && (x == nullptr || aligned16(x)), op,
          "residual, x, w and out must be 16-byte aligned");
  if (n_tokens == 0) return;
  int n_chunks = dim / 8;
  int threads = std::min(kMaxThreads, ((n_chunks + 31) / 32) * 32);
  int chunks = ceil_div(n_chunks, threads);
  switch (chunks) {
    case 1:
      add_rmsnorm_kernel<1><<<n_tokens, threads, 0, stream>>>(residual, x, w, dim, eps, out);
      break;
    case 2:
      add_rmsnorm_kernel<2><<<n_tokens, threads, 0, stream>>>(residual, x, w, dim, eps, out);
      break;
    case 3:
      add_rmsnorm_kernel<3><<<n_tokens, threads, 0, stream>>>(residual, x, w, dim, eps, out);
      break;
    default:
      add_rmsnorm_kernel<4><<<n_tokens, threads, 0, stream>>>(residual, x, w, dim, eps, out);
      break;
  }
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
