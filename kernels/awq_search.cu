// The AWQ scale search's GPU ops (kernels/awq.cuh): per-channel mean |x| of a linear's calibration
// input, the gather of the evenly spaced search rows, the fake-quantized weight error of one candidate
// scaling (diff = W - Q(W diag(s)) diag(1/s)), and the sum of squares of the error GEMM's output.
// FLOPs: mean |x| 1 per input value; the diff ~10 per weight (scale, min/max, one division per code,
// one to unscale); sum of squares 2 per value. The search's FLOPs are in its error GEMMs
// (2 * rows * in * out per candidate and linear, awq_gpu.cpp). Bytes: mean |x| reads rows*in*4; the
// diff reads the weight twice (min/max pass, then codes: the second read of a warp's 128 values hits
// L1) and writes it once, 8-12 bytes per weight; the sum reads n*4. Bound: DRAM; per candidate the
// diff is about a tenth of its GEMM's time at 7b shapes (awq-gpu notes), so these aim at exactness
// (the diff is bit for bit rtn_fake_quantize_row's) and coalesced access rather than fusion.
#include <string>

#include "kernels/awq.cuh"
#include "kernels/device_common.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per column, rows in order: the same double sum as the CPU's awq_mean_abs. A warp reads
// 32 consecutive floats of a row per step (coalesced); the loads of successive rows are independent,
// so unrolling keeps several in flight.
__global__ void mean_abs_kernel(const float* __restrict__ x, int64_t rows, int in,
                                double* __restrict__ mean) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= in) return;
  double acc = 0.0;
#pragma unroll 8
  for (int64_t r = 0; r < rows; ++r) acc += static_cast<double>(fabsf(x[r * in + i]));
  mean[i] = acc / static_cast<double>(rows > 0 ? rows : 1);
}

__global__ void gather_rows_kernel(const float* __restrict__ x, int in, const int64_t* __restrict__ at, int n,
                                   float* __restrict__ out) {
  const int64_t total = int64_t{n} * in;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = e / in, i = e % in;
    out[e] = x[at[k] * in + i];
  }
}

__device__ __forceinline__ float warp_min(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp per (row, group). rtn_fake_quantize_row's arithmetic (engine/quantize_rtn.cpp), each
// operation rounded as there: v = w*s; scale = fp16(max(hi - lo, 1e-5) / 15); zero =
// clamp(-round(lo / scale), 0, 15); code = clamp(round(v / scale) + zero, 0, 15); q = (code - zero) *
// scale; diff = w - q / s. Rounding is half-to-even (rintf, as nearbyint on the host); the clamps
// are done in float, equal to the host's int clamps wherever those are defined.
constexpr int kDiffWarps = 8;
__global__ void __launch_bounds__(kDiffWarps * 32)
    scaled_rtn_diff_kernel(const float* __restrict__ w, int64_t out, int in, const float* __restrict__ s,
                           int group_size, float* __restrict__ diff) {
  const int lane = threadIdx.x & 31;
  const int groups = in / group_size;
  const int64_t item = int64_t{blockIdx.x} * kDiffWarps + (threadIdx.x >> 5);
  if (item >= out * groups) return;  // warp-uniform: no block barrier below
  const int64_t o = item / groups;
  const int first = static_cast<int>(item % groups) * group_size;
  const float* wr = w + o * in + first;
  const float* sr = s + first;
  float lo = INFINITY, hi = -INFINITY;
  for (int i = lane; i < group_size; i += 32) {
    const float v = __fmul_rn(wr[i], sr[i]);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  lo = warp_min(lo);
  hi = warp_max(hi);
  const float scale = __half2float(__float2half_rn(__fdiv_rn(fmaxf(__fsub_rn(hi, lo), 1e-5f), 15.0f)));
  const float zero = fminf(fmaxf(-rintf(__fdiv_rn(lo, scale)), 0.0f), 15.0f);
  float* dr = diff + o * in + first;
  for (int i = lane; i < group_size; i += 32) {
    const float v = __fmul_rn(wr[i], sr[i]);
    const float code = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(v, scale)), zero), 0.0f), 15.0f);
    const float q = __fmul_rn(__fsub_rn(code, zero), scale);
    dr[i] = __fsub_rn(wr[i], __fdiv_rn(q, sr[i]));
  }
}

// Fixed grid (kAwqSumBlocks blocks of kThreads), so each partial covers the same values every run.
__global__ void sum_squares_kernel(const float* __restrict__ y, int64_t n, double* __restrict__ partial) {
  __shared__ double warp_part[kThreads / 32];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const double v = y[i];
    acc += v * v;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) warp_part[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int k = 0; k < kThreads / 32; ++k) sum += warp_part[k];
    partial[blockIdx.x] = sum;
  }
}

}  // namespace

void awq_mean_abs(const float* x, int64_t rows, int in, double* mean, cudaStream_t stream) {
  const char* op = "awq.mean_abs";
  require(rows >= 0 && in > 0, op, "rows >= 0 and in > 0");
  mean_abs_kernel<<<ceil_div(in, 128), 128, 0, stream>>>(x, rows, in, mean);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_gather_rows(const float* x, int in, const int64_t* at, int n, float* out, cudaStream_t stream) {
  const char* op = "awq.gather_rows";
  require(in > 0 && n >= 0, op, "in > 0 and n >= 0");
  const int64_t total = int64_t{n} * in;
  if (total == 0) return;
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(total, int64_t{kThreads}), 32 * 1024));
  gather_rows_kernel<<<blocks, kThreads, 0, stream>>>(x, in, at, n, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_scaled_rtn_diff(const float* w, int64_t out, int in, const float* s, int group_size, float* diff,
                         cudaStream_t stream) {
  const char* op = "awq.scaled_rtn_diff";
  require(out >= 0 && in > 0 && group_size > 0 && in % group_size == 0, op,
          "group size " + std::to_string(group_size) + " must divide in " + std::to_string(in));
  const int64_t items = out * (in / group_size);
  if (items == 0) return;
  const int64_t blocks = ceil_div(items, int64_t{kDiffWarps});
  require(blocks < (int64_t{1} << 31), op, "too many (row, group) pairs for one launch");
  scaled_rtn_diff_kernel<<<static_cast<unsigned>(blocks), kDiffWarps * 32, 0, stream>>>(w, out, in, s,
                                                                                        group_size, diff);
  RL_CUDA_CHECK_LAUNCH(op);
}

void awq_sum_squares(const float* y, int64_t n, double* partial, cudaStream_t stream) {
  const char* op = "awq.sum_squares";
  require(n >= 0, op, "n >= 0");
  sum_squares_kernel<<<kAwqSumBlocks, kThreads, 0, stream>>>(y, n, partial);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
