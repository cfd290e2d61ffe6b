// gemv: y[n, out] = x[n, in] W^T for decode batches of n <= kGemvMaxRows tokens, W [out, in] fp16
// row-major (a Linear's weight as stored), fp32 accumulation, fp16 or fp32 out.
// FLOPs: 2*n*in*out. Bytes: W once (2*in*out) + x (2*n*in, from L1/L2 after the first warp) + y.
// Bound: DRAM bandwidth on W. One warp per output row streams that row with 16-byte loads, four
// loads in flight per lane before the first FMA, so a 2048x2048 weight (8 MB) is read near the copy
// rate where cuBLASLt's small-N kernels reach about 1 TB/s (bench/results/h100-kernels.json).
// Every output is one warp's shuffle reduction in a fixed order: deterministic.
//
// gemv_swiglu: act[n, inter] = silu(x W1^T) * (x W3^T) for the stacked W13 [2*inter, in] (gate rows
// then up rows), n <= kGemvFusedMaxRows: the w13 GEMV with SwiGLU in its epilogue, so the decode
// step loses the swiglu launch and the gate_up round trip. FLOPs: 4*n*in*inter (+ ~5 per output).
// Bytes: W13 once (4*in*inter) + x + act (2*n*inter). Same bound as gemv. One warp owns output j and
// streams rows j and j + inter together (eight 16-byte loads in flight per lane). Bit-identical to
// gemv + swiglu: each row's dot product runs the same per-lane FMA order and the same shuffle tree
// as gemv's (rows_dot below is shared), the sums are rounded to fp16 as gemv stores them, and the
// epilogue is swiglu_value, the swiglu kernel's own arithmetic (kernels/swiglu_math.cuh).
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/swiglu_math.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 4;  // 16-byte W loads in flight per lane and per row

__device__ __forceinline__ void store(half* y, float v) {
  *y = __float2half_rn(v);
}
__device__ __forceinline__ void store(float* y, float v) {
  *y = v;
}

// acc[r][t] = dot(x[t, :], W[rows[r], :]) for R weight rows streamed together by one warp, reduced
// over the warp (every lane holds the result). The order of the FMAs of one (row, t) pair does not
// depend on R: gemv (R = 1) and gemv_swiglu (R = 2) give the same bits for the same row.
template <int R, int N>
__device__ __forceinline__ void rows_dot(const half* __restrict__ x, const half* __restrict__ w, int in,
                                         const int (&rows)[R], int lane, float (&acc)[R][N]) {
  const int vecs = in / 8;  // 16-byte vectors per row
  const uint4* wrow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    wrow[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(rows[r]) * in);
#pragma unroll
    for (int t = 0; t < N; ++t) acc[r][t] = 0.0f;
  }
  for (int base = lane; base < vecs; base += 32 * kUnroll) {
    uint4 wv[R][kUnroll];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        int v = base + u * 32;
        wv[r][u] = v < vecs ? __ldcs(wrow[r] + v) : make_uint4(0, 0, 0, 0);  // streamed once: no L2 priority
      }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int v = base + u * 32;
      if (v >= vecs) break;
#pragma unroll
      for (int t = 0; t < N; ++t) {
        float xf[8];
        half8_to_float(__ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(t) * in) + v), xf);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float wf[8];
          half8_to_float(wv[r][u], wf);
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[r][t] = fmaf(wf[j], xf[j], acc[r][t]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < N; ++t)
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], o);
}

template <int N, typename OutT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_kernel(const half* __restrict__ x, const half* __restrict__ w, int in, int out,
                OutT* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= out) return;
  const int rows[1] = {row};
  float acc[1][N];
  rows_dot<1, N>(x, w, in, rows, lane, acc);
  if (lane == 0)
#pragma unroll
    for (int t = 0; t < N; ++t) store(y + static_cast<int64_t>(t) * out + row, acc[0][t]);
}

template <int N>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_swiglu_kernel(const half* __restrict__ x, const half* __restrict__ w13, int in, int inter,
                       half* __restrict__ act) {
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (j >= inter) return;
  const int rows[2] = {j, j + inter};  // gate row, up row
  float acc[2][N];
  rows_dot<2, N>(x, w13, in, rows, lane, acc);
  if (lane == 0)
#pragma unroll
    for (int t = 0; t < N; ++t) {
      // Round gate and up to fp16 first, as gemv stores gate_up and swiglu reads it back.
      const float g = __half2float(__float2half_rn(acc[0][t]));
      const float u = __half2float(__float2half_rn(acc[1][t]));
      act[static_cast<int64_t>(t) * inter + j] = __float2half_rn(swiglu_value(g, u));
    }
}

template <typename OutT>
void launch(const half* x, const half* w, int n, int in, int out, OutT* y, cudaStream_t stream) {
  const char* op = "gemv";
  require(n >= 1 && n <= kGemvMaxRows, op, "n must be in 1.." + std::to_string(kGemvMaxRows));
  require(in > 0 && in % 8 == 0 && out > 0, op,
          "in must be a positive multiple of 8, got " + std::to_string(in));
  require(aligned16(x) && aligned16(w), op, "x and W must be 16-byte aligned");
  dim3 grid(ceil_div(out, kWarpsPerBlock)), block(kWarpsPerBlock * 32);
  switch (n) {
    case 1:
      gemv_kernel<1><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 2:
      gemv_kernel<2><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 3:
      gemv_kernel<3><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 4:
      gemv_kernel<4><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 5:
      gemv_kernel<5><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 6:
      gemv_kernel<6><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    case 7:
      gemv_kernel<7><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
    default:
      gemv_kernel<8><<<grid, block, 0, stream>>>(x, w, in, out, y);
      break;
  }
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// Measured on an H100 (bench/results/h100-kernels.json, BM_GemmFp16 vs BM_CublasLtFp16): gemv beats
// cuBLASLt by 5-30% at 1-2 rows (1.8b wo: 6.9 vs 10.0 us), ties at 4 and loses at 8, where re-reading
// x from L1 for every row becomes its bottleneck. So it takes n <= 2 only.
constexpr int kGemvPreferredRows = 2;
static_assert(kGemvFusedMaxRows <= kGemvPreferredRows, "fused GEMVs run where gemv is the chosen path");

bool gemv_preferred(int n, int in, const void* x, const void* w) {
  return n >= 1 && n <= kGemvPreferredRows && in > 0 && in % 8 == 0 && aligned16(x) && aligned16(w);
}

void gemv(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream) {
  launch(x, w, n, in, out, y, stream);
}
void gemv(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream) {
  launch(x, w, n, in, out, y, stream);
}

void gemv_swiglu(const half* x, const half* w13, int n, int in, int inter, half* act, cudaStream_t stream) {
  const char* op = "gemv_swiglu";
  require(n >= 1 && n <= kGemvFusedMaxRows, op, "n must be in 1.." + std::to_string(kGemvFusedMaxRows));
  require(in > 0 && in % 8 == 0 && inter > 0, op,
          "in must be a positive multiple of 8 and inter positive, got in " + std::to_string(in) +
              ", inter " + std::to_string(inter));
  require(aligned16(x) && aligned16(w13), op, "x and W13 must be 16-byte aligned");
  dim3 grid(ceil_div(inter, kWarpsPerBlock)), block(kWarpsPerBlock * 32);
  if (n == 1)
    gemv_swiglu_kernel<1><<<grid, block, 0, stream>>>(x, w13, in, inter, act);
  else
    gemv_swiglu_kernel<2><<<grid, block, 0, stream>>>(x, w13, in, inter, act);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
