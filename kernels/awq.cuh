// Launchers of the AWQ quantizer's GPU ops (engine/cuda/awq_gpu.cpp): the float32 calibration forward
// of one layer (kernels/awq_calib.cu; its GEMMs are cuBLAS SGEMMs) and the scale search
// (kernels/awq_search.cu). Everything is float32, like the CPU quantizer (engine/quantize_awq.cpp)
// whose choices these must reproduce: where the CPU's arithmetic is elementwise, the kernels do the
// same float operations in the same order (no FMA contraction: __fmul_rn and friends where nvcc
// would fuse), so only the GEMMs' and the row reductions' summation order differs.
//
// Conventions as kernels/kernels.cuh: activations row-major [rows, dim], a Linear's weight [out, in].
// Every launcher checks its shape contract (std::invalid_argument naming the op), enqueues on
// `stream`, never synchronises, and checks the launch.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace ridgeline::cuda {

// --- calibration forward (kernels/awq_calib.cu) ---

// out[r] = x[r] * (1 / sqrt(mean(x[r]^2) + eps)) * w, float32 (ref::rmsnorm's expression).
void awq_rmsnorm_f32(const float* x, const float* w, int64_t rows, int dim, float eps, float* out,
                     cudaStream_t stream);

// One sequence's q, k, v out of wqkv's output rows qkv[first .. first+len) (InternLM2's grouped
// layout [q(g heads), k, v] per KV head), rotated (rotate-half RoPE with the host's cos/sin table
// [len, head_dim/2], computed as ref::rope computes them) into per-KV-head blocks for batched GEMMs:
//   q [n_kv][g][len][head_dim], k [n_kv][len][head_dim], v [n_kv][len][head_dim].
struct AwqSplitRopeParams {
  const float* qkv = nullptr;  // [rows, (n_heads + 2*n_kv_heads) * head_dim]
  int64_t first = 0;           // the sequence's first row
  int len = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const float* cos = nullptr;  // [len, head_dim/2]
  const float* sin = nullptr;  // [len, head_dim/2]
  float* q = nullptr;
  float* k = nullptr;
  float* v = nullptr;
};
void awq_split_rope(const AwqSplitRopeParams& p, cudaStream_t stream);

// Causal softmax in place over scores [n_rows, len] (row r is query position r % len: keys beyond it
// get probability 0), float32 with the maximum subtracted (ref::attention's expression).
void awq_causal_softmax(float* scores, int64_t n_rows, int len, cudaStream_t stream);

// The attention output per KV head o [n_kv][g][len][head_dim] back into rows
// out[first + t][(kv*g + j)*head_dim + d] (query head kv*g + j reads KV head kv).
void awq_merge_heads(const float* o, int n_kv_heads, int group, int len, int head_dim, int64_t first,
                     float* out, cudaStream_t stream);

// residual[i] += x[i] over n values.
void awq_add_f32(float* residual, const float* x, int64_t n, cudaStream_t stream);

// out = silu(gate) * up over n values, float32 (ref::swiglu's expression).
void awq_swiglu_f32(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// --- scale search (kernels/awq_search.cu) ---

// mean[i] = sum_r |x[r, i]| / rows, in double, summed in row order (the CPU's order).
void awq_mean_abs(const float* x, int64_t rows, int in, double* mean, cudaStream_t stream);

// out[k] = x[at[k]] for k < n, rows of `in` floats.
void awq_gather_rows(const float* x, int in, const int64_t* at, int n, float* out, cudaStream_t stream);

// diff[o, i] = w[o, i] - Q(w[o, :] * s)[i] / s[i]: the weight error a linear makes once its input
// channels are scaled by s and rounded to 4 bits per group of `group_size` inputs, in AutoAWQ's
// convention bit for bit as rtn_fake_quantize_row (engine/quantize_rtn.h).
void awq_scaled_rtn_diff(const float* w, int64_t out, int in, const float* s, int group_size, float* diff,
                         cudaStream_t stream);

// partial[b] = sum of double(y)^2 over block b's share of y [n] (grid-stride, fixed split), for
// b < kAwqSumBlocks; the host adds the partials in order.
inline constexpr int kAwqSumBlocks = 256;
void awq_sum_squares(const float* y, int64_t n, double* partial, cudaStream_t stream);

}  // namespace ridgeline::cuda
