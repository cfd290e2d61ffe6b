// embed: residual[t, :] = float(table[ids[t], :]) — an fp16 row gather widened to the float32
// residual stream.
// FLOPs: 0. Bytes: n_tokens*dim*(2 read + 4 written) + ids. Memory-bound; each thread moves one
// 16-byte vector of 8 halves in and two 16-byte float4s out, so a warp touches 512 contiguous
// bytes of the row per load.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"

namespace ridgeline::cuda {
namespace {

__global__ void embed_kernel(const half* __restrict__ table, const int* __restrict__ ids, int dim,
                             float* __restrict__ out) {
  overlap_enter();
  int t = blockIdx.x;
  const half* row = table + static_cast<int64_t>(ids[t]) * dim;
  float* dst = out + static_cast<int64_t>(t) * dim;
  for (int c = threadIdx.x; c < dim / 8; c += blockDim.x) {
    float f[8];
    half8_to_float(reinterpret_cast<const uint4*>(row)[c], f);
    store_float8(dst + c * 8, f);
  }
}

}  // namespace

void embed(const half* table, const int* ids, int n_tokens, int dim, float* residual_out,
           cudaStream_t stream) {
  const char* op = "embed";
  require(n_tokens >= 0 && dim > 0 && dim % 8 == 0, op,
          "dim must be a positive multiple of 8 (16-byte rows), got " + std::to_string(dim));
  require(aligned16(table) && aligned16(residual_out), op, "table and residual must be 16-byte aligned");
  if (n_tokens == 0) return;
  int threads = std::min(256, ((dim / 8 + 31) / 32) * 32);
  launch_overlapped(embed_kernel, n_tokens, threads, 0, stream, op, table, ids, dim, residual_out);
}

}  // namespace ridgeline::cuda
