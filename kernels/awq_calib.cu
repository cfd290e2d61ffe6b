// The AWQ quantizer's float32 calibration forward, the ops between its cuBLAS SGEMMs (kernels/awq.cuh):
// rmsnorm, the split of wqkv's output into per-KV-head q/k/v with RoPE, the causal softmax of one
// sequence's attention scores, the merge of the heads back into rows, the residual add and SwiGLU.
// FLOPs: a few per element (rmsnorm ~3, RoPE 3 per rotated value, softmax ~4 and an exp, SwiGLU ~4 and
// an exp); the layer's FLOPs are in its GEMMs (awq_gpu.cpp). Bytes: each op reads its inputs and
// writes its outputs once, float32; the largest, SwiGLU, moves 12 bytes per intermediate value. Bound:
// DRAM, and the whole forward is a few percent of the layer's GEMM time, so these aim at simple and at
// the CPU reference's expressions (ref::rmsnorm, ref::rope, ref::attention, ref::swiglu) rather than
// at the roofline.
#include <string>

#include "kernels/awq.cuh"
#include "kernels/device_common.cuh"
#include "kernels/rmsnorm_row.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>(ceil_div(n, int64_t{kThreads}), 32 * 1024));
}

// One block per row; the sum of squares is a block reduction (the CPU sums in index order: the
// difference is float rounding), the scaling is ref::rmsnorm's (x * inv) * w.
__global__ void rmsnorm_f32_kernel(const float* __restrict__ x, const float* __restrict__ w, int dim,
                                   float eps, float* __restrict__ out) {
  const float* xr = x + int64_t{blockIdx.x} * dim;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss);
  const float inv = rms_inv(ss, dim, eps);
  float* o = out + int64_t{blockIdx.x} * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], inv), w[i]);
}

// One thread per value of the sequence's qkv rows. Rotated values are ref::rope's
// a*c - b*s and b*c + a*s, rounded after each product as the CPU rounds them.
__global__ void split_rope_kernel(AwqSplitRopeParams p) {
  const int g = p.n_heads / p.n_kv_heads, hd = p.head_dim, half = hd / 2;
  const int block = (g + 2) * hd, width = p.n_kv_heads * block;
  const int64_t n = int64_t{p.len} * width;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < n;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int t = static_cast<int>(e / width), col = static_cast<int>(e % width);
    const int kv = col / block, slot = (col % block) / hd, d = col % hd;
    const float* row = p.qkv + (p.first + t) * width + int64_t{kv} * block + int64_t{slot} * hd;
    float value;
    if (slot == g + 1) {
      value = row[d];
    } else {
      const int j = d < half ? d : d - half;
      const float c = p.cos[int64_t{t} * half + j], s = p.sin[int64_t{t} * half + j];
      const float a = row[j], b = row[j + half];
      value = d < half ? __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s))
                       : __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    }
    float* dst;
    if (slot < g)
      dst = p.q + ((int64_t{kv} * g + slot) * p.len + t) * hd;
    else if (slot == g)
      dst = p.k + (int64_t{kv} * p.len + t) * hd;
    else
      dst = p.v + (int64_t{kv} * p.len + t) * hd;
    dst[d] = value;
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp per row: ref::attention's softmax (max subtracted, exp, sum, divide) over keys 0..t,
// zeros beyond t so that the P V GEMM can run over the whole sequence.
__global__ void causal_softmax_kernel(float* scores, int64_t n_rows, int len) {
  const int64_t r = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (r >= n_rows) return;
  float* row = scores + r * len;
  const int t = static_cast<int>(r % len);
  float mx = -INFINITY;
  for (int k = lane; k <= t; k += 32) mx = fmaxf(mx, row[k]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int k = lane; k <= t; k += 32) {
    const float e = expf(row[k] - mx);
    row[k] = e;
    sum += e;
  }
  sum = warp_sum(sum);
  for (int k = lane; k < len; k += 32) row[k] = k <= t ? row[k] / sum : 0.0f;
}

__global__ void merge_heads_kernel(const float* __restrict__ o, int n_kv, int g, int len, int hd,
                                   int64_t first, float* __restrict__ out) {
  const int qd = n_kv * g * hd;
  const int64_t n = int64_t{len} * qd;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < n;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int t = static_cast<int>(e / qd), col = static_cast<int>(e % qd);
    const int head = col / hd, d = col % hd;  // head = kv * g + j: o's [kv][j] block
    out[(first + t) * qd + col] = o[(int64_t{head} * len + t) * hd + d];
  }
}

__global__ void add_f32_kernel(float* __restrict__ residual, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    residual[i] = __fadd_rn(residual[i], x[i]);
}

__global__ void swiglu_f32_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n,
                                  float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    // Not swiglu_value (kernels/swiglu_math.cuh): there the compiler folds the 1 + exp(-g) into
    // expf's last multiply (an FMA); the _rn intrinsics keep ref::swiglu's roundings.
    const float g = gate[i];
    out[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
  }
}

}  // namespace

void awq_rmsnorm_f32(const float* x, const float* w, int64_t rows, int dim, float eps, float* out,
                     cudaStream_t stream) {
  const char* op = "awq.rmsnorm";
  require(rows >= 0 && rows < (int64_t{1} << 31) && dim > 0, op,
          "rows in [0, 2^31) and dim > 0, got rows " + std::to_string(rows) + ", dim " + std::to_string(dim));
  if (rows == 0) return;
  rmsnorm_f32_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, w, dim, eps, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_split_rope(const AwqSplitRopeParams& p, cudaStream_t stream) {
  const char* op = "awq.split_rope";
  require(p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 && p.head_dim > 0 && p.head_dim % 2 == 0, op,
          "n_heads a multiple of n_kv_heads and an even head_dim");
  require(p.len >= 0 && p.first >= 0, op, "a sequence of len >= 0 from row >= 0");
  if (p.len == 0) return;
  const int64_t n = int64_t{p.len} * (p.n_heads + 2 * p.n_kv_heads) * p.head_dim;
  split_rope_kernel<<<grid_for(n), kThreads, 0, stream>>>(p);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_causal_softmax(float* scores, int64_t n_rows, int len, cudaStream_t stream) {
  const char* op = "awq.causal_softmax";
  require(n_rows >= 0 && len > 0 && n_rows % len == 0, op,
          "rows a multiple of len, got " + std::to_string(n_rows) + " rows of " + std::to_string(len));
  if (n_rows == 0) return;
  const int64_t blocks = ceil_div(n_rows * 32, int64_t{kThreads});
  causal_softmax_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(scores, n_rows, len);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_merge_heads(const float* o, int n_kv_heads, int group, int len, int head_dim, int64_t first,
                     float* out, cudaStream_t stream) {
  const char* op = "awq.merge_heads";
  require(n_kv_heads > 0 && group > 0 && len >= 0 && head_dim > 0 && first >= 0, op, "positive shape");
  const int64_t n = int64_t{len} * n_kv_heads * group * head_dim;
  if (n == 0) return;
  merge_heads_kernel<<<grid_for(n), kThreads, 0, stream>>>(o, n_kv_heads, group, len, head_dim, first, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_add_f32(float* residual, const float* x, int64_t n, cudaStream_t stream) {
  const char* op = "awq.add";
  require(n >= 0, op, "n >= 0");
  if (n == 0) return;
  add_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(residual, x, n);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_swiglu_f32(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  const char* op = "awq.swiglu";
  require(n >= 0, op, "n >= 0");
  if (n == 0) return;
  swiglu_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up, n, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
