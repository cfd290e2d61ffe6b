// add_rmsnorm: residual += x (when x is given); out = fp16(residual * rsqrt(mean(residual^2) + eps) * w).
// FLOPs: ~5 per element. Bytes: dim*(4 read + 4 written residual + 2 x + 2 out) per row + 2*dim for w
// (cached across rows). Memory-bound. One block of kNormThreads per row so the sum of squares is a
// block reduction with no second launch; each thread keeps its kChunks 8-wide vectors of the updated
// residual in registers between the reduction and the scaling, so the row is read from DRAM once.
// The arithmetic and the reduction order are kernels/rmsnorm_row.cuh's, which the decode GEMVs'
// norm prologue (gemv_fused, kernels/gemv.cu) shares: the fused and unfused paths give the same bits.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rmsnorm_row.cuh"

namespace ridgeline::cuda {
namespace {

template <int kChunks>
__global__ void __launch_bounds__(kNormThreads)
    add_rmsnorm_kernel(float* __restrict__ residual, const half* __restrict__ x, const half* __restrict__ w,
                       int dim, float eps, half* __restrict__ out) {
  overlap_enter();
  const int64_t row = blockIdx.x;
  float* r = residual + row * dim;
  const int n_chunks = dim / 8;
  float v[kChunks][8];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int c = threadIdx.x + i * kNormThreads;
    if (c < n_chunks) {
      load_float8(r + c * 8, v[i]);
      if (x != nullptr) {
        float xf[8];
        half8_to_float(reinterpret_cast<const uint4*>(x + row * dim)[c], xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) v[i][j] += xf[j];
        store_float8(r + c * 8, v[i]);
      }
      ss = rms_accumulate(v[i], ss);
    }
  }
  ss = block_sum(ss);
  const float inv = rms_inv(ss, dim, eps);
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    int c = threadIdx.x + i * kNormThreads;
    if (c < n_chunks)
      reinterpret_cast<uint4*>(out + row * dim)[c] =
          rms_scale(v[i], inv, reinterpret_cast<const uint4*>(w)[c]);
  }
}

}  // namespace

void add_rmsnorm(float* residual, const half* x, const half* w, int n_tokens, int dim, float eps, half* out,
                 cudaStream_t stream) {
  const char* op = "add_rmsnorm";
  constexpr int kMaxChunks = 16;
  require(n_tokens >= 0 && dim > 0 && dim % 8 == 0 && dim <= kNormThreads * 8 * kMaxChunks, op,
          "dim must be a positive multiple of 8 up to 32768, got " + std::to_string(dim));
  require(aligned16(residual) && aligned16(w) && aligned16(out) && (x == nullptr || aligned16(x)), op,
          "residual, x, w and out must be 16-byte aligned");
  if (n_tokens == 0) return;
  const int chunks = ceil_div(dim / 8, kNormThreads);
  auto kernel = chunks <= 1   ? add_rmsnorm_kernel<1>
                : chunks <= 2 ? add_rmsnorm_kernel<2>
                : chunks <= 4 ? add_rmsnorm_kernel<4>
                : chunks <= 8 ? add_rmsnorm_kernel<8>
                              : add_rmsnorm_kernel<16>;
  launch_overlapped(kernel, n_tokens, kNormThreads, 0, stream, op, residual, x, w, dim, eps, out);
}

}  // namespace ridgeline::cuda
