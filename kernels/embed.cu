// embed: residual[t, :] = float(table[ids[t], :]) — an fp16 row gather widened to the float32
// residual stream; optionally also the new rows' sums of squares per 16 dims (gemv_tc_fused's norm).
// FLOPs: 0. Bytes: n_tokens*dim*(2 read + 4 written) + ids. Memory-bound; each thread moves one
// 16-byte vector of 8 halves in and two 16-byte float4s out, so a warp touches 512 contiguous
// bytes of the row per load.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rmsnorm_row.cuh"

namespace ridgeline::cuda {
namespace {

__global__ void embed_kernel(const half* __restrict__ table, const int* __restrict__ ids, int dim,
                             float* __restrict__ out, float* __restrict__ norm_sums) {
  overlap_enter();
  int t = blockIdx.x;
  const half* row = table + static_cast<int64_t>(ids[t]) * dim;
  float* dst = out + static_cast<int64_t>(t) * dim;
  const int chunks = dim / 8;
  // Whole passes of the block, so that the two lanes of a 16-dim pair (chunks 2p, 2p + 1) shuffle
  // together.
  for (int base = 0; base < chunks; base += blockDim.x) {
    const int c = base + threadIdx.x;
    float ss = 0.0f;
    if (c < chunks) {
      float f[8];
      half8_to_float(reinterpret_cast<const uint4*>(row)[c], f);
      store_float8(dst + c * 8, f);
      ss = rms_accumulate(f, 0.0f);
    }
    if (norm_sums == nullptr) continue;
    ss += __shfl_xor_sync(0xffffffffu, ss, 1);
    if (c < chunks && c % 2 == 0) norm_sums[static_cast<int64_t>(t) * (dim / 16) + c / 2] = ss;
  }
}

}  // namespace

void embed(const half* table, const int* ids, int n_tokens, int dim, float* residual_out, cudaStream_t stream,
           float* norm_sums) {
  const char* op = "embed";
  require(n_tokens >= 0 && dim > 0 && dim % 8 == 0, op,
          "dim must be a positive multiple of 8 (16-byte rows), got " + std::to_string(dim));
  require(aligned16(table) && aligned16(residual_out), op, "table and residual must be 16-byte aligned");
  require(norm_sums == nullptr || dim % 16 == 0, op,
          "norm_sums needs dim a multiple of 16, got " + std::to_string(dim));
  if (n_tokens == 0) return;
  int threads = std::min(256, ((dim / 8 + 31) / 32) * 32);
  launch_overlapped(embed_kernel, n_tokens, threads, 0, stream, op, table, ids, dim, residual_out, norm_sums);
}

}  // namespace ridgeline::cuda
