// gemv_tc: y[n, out] = x[n, in] W^T for decode batches of up to kGemvTcMaxRows (16) rows on tensor
// cores (the engine runs it at 3..16 rows: gemv_choice in kernels/gemv.cu), W [out, in] fp16
// row-major (a Linear's weight as stored), fp32 accumulation, fp16 or fp32 out; with `act`, the w13
// GEMV with SwiGLU in its epilogue (act[t, j] = silu(g) * u of W13's gate row j and up row j + out).
// FLOPs: 2*n*in*out. Bytes: W once (2*in*out) + x (2*n*in per block, from L1/L2) + y.
// Bound: DRAM bandwidth on W, as at one row: a decode batch of 4 or 16 rows still reads every weight
// once and does 4..16 multiply-adds on it, far under the ridge (~175 FLOP/B). cuBLASLt's small-N
// kernels read these weights at 0.19 (1.8b wo) to 0.89 (7b w13) of the read peak, and the FMA gemv
// (kernels/gemv.cu) re-reads x from L1 once per weight row and token, which costs more than the
// weights from 4 rows on.
//
// Layout: a block owns one mma M tile of 16 weight rows (SwiGLU: 8 gate rows and their 8 up rows, so
// one thread's accumulators hold a gate and its up) and `split` warps (4, 8 or 16), each streaming a
// contiguous share of the tile's input range straight from DRAM into registers: lane (g, q) loads 16
// bytes of rows g and g + 8 at input offset 32s + 8q of every 32-input step s, kBatch steps in
// flight. Those 8 inputs are the lane's A fragments of two m16n8k16 MMAs if the MMA's k order is
// permuted (logical k 2q, 2q+1, 2q+8, 2q+9 = inputs 8q..8q+3 of the step in the first, 8q+4..8q+7 in
// the second); the B fragment (x, token g of the n tile) is loaded with the same permutation, 16
// bytes a lane, so each dot product still pairs matching inputs, with no shared memory and no
// shuffles. Per 32-input step a warp reads 1 KB of weights and 512 B of x per n tile: x's L1 traffic
// is half the weights' per 8 rows, where the FMA gemv's is 8x at 8 rows.
// The warps' partial tiles are added through shared memory in warp order (deterministic).
//
// Launched overlapped (kernels/overlap.cuh) only for weights of at most 2048 inputs or 2048 outputs
// (all of 1.8b's linears, none of 7b's), plain otherwise. H200, ctx 1024, fp16, B=4 / B=16 (perf/NOTES.md,
// "tenth" and "eleventh"): cuBLASLt before, 1.8b 1679 / 1993 us, 7b 4732 / 5163; every gemv_tc
// overlapped, 1.8b 1435 / 1847 but 7b 4785 / 7961 (the CUPTI timeline: the kernel after each long
// GEMV resident through its whole run, add_rmsnorm starting 52 us before the GEMV ended, 7b's GEMVs
// at less than half their serial speed); the same with the successors add_rmsnorm and rope_kv_write
// launched plain, 7b 4863 / 5581, so it is the successor's residency that costs, not the GEMV's own
// early start (one waiting thread per block did not help either: not the waiting warps' issue
// slots); all plain, 1.8b 1551 / 1967, 7b 4664 / 5281; inputs up to 2048 (the previous rule, 1.8b's
// w2 plain), 1.8b 1477 / 1901. No shape of 7b's was measured to gain. The rule is fitted to these
// two models, not a mechanism: 1.8b's w2 (8192 x 2048, 128 blocks) gains overlapped where 7b's wo,
// as many bytes (4096 x 4096, 256 blocks), loses. Releasing the next kernel only after the main loop
// (griddepcontrol.launch_dependents there) made graph-replayed steps wrong (engine tests; not
// understood) and was no faster.
#include <algorithm>
#include <string>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/mma.cuh"
#include "kernels/overlap.cuh"
#include "kernels/swiglu_math.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kTileRows = 16;         // the MMA's M
constexpr int kStep = 32;             // inputs per lane quad and step: 4 lanes x 8
constexpr int kBatch = 4;             // steps in flight per warp: 8 16-byte weight loads per lane
constexpr int kMaxSplit = 16;         // warps per block
constexpr int kTargetWarps = 2048;    // ~16 resident warps on each of an H200's 132 SMs
constexpr int kOverlapMaxDim = 2048;  // inputs or outputs: see the top of the file

struct TcArgs {
  const half* x;
  const half* w;
  int n, in, out;  // out: output rows (SwiGLU: gate rows, W13 holds 2 * out)
  half* y16;
  float* y32;
  half* act;
};

enum class TcEpilogue { store_half, store_float, swiglu };

__device__ __forceinline__ uint4 zero4() {
  return make_uint4(0, 0, 0, 0);
}

// f(nt, c, t) for each token t < n of this lane's C fragment columns: t = nt * 8 + 2q + c.
template <int NT, typename F>
__device__ __forceinline__ void for_each_token(int q, int n, F&& f) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c)
      if (const int t = nt * 8 + 2 * q + c; t < n) f(nt, c, t);
}

// NT: mma N tiles of 8 rows of x (1: n <= 8, 2: n <= 16).
template <int NT, TcEpilogue kEpi>
__global__ void __launch_bounds__(kMaxSplit * 32) gemv_tc_kernel(const TcArgs a) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, split = blockDim.x >> 5;
  const int g = lane >> 2, q = lane & 3;
  // This lane's two weight rows (A fragment rows g and g + 8), clamped into the weight: rows past
  // the end are loaded and never stored.
  int row_a, row_b;
  if constexpr (kEpi == TcEpilogue::swiglu) {
    row_a = min(static_cast<int>(blockIdx.x) * 8 + g, a.out - 1);
    row_b = row_a + a.out;
  } else {
    row_a = min(static_cast<int>(blockIdx.x) * kTileRows + g, a.out - 1);
    row_b = min(static_cast<int>(blockIdx.x) * kTileRows + g + 8, a.out - 1);
  }
  const int steps = a.in / kStep, per = (steps + split - 1) / split;
  const int s0 = min(steps, warp * per), s1 = min(steps, s0 + per);
  // 16-byte vector index of step s for this lane: 4 s + q.
  const uint4* wa = reinterpret_cast<const uint4*>(a.w + static_cast<int64_t>(row_a) * a.in) + q;
  const uint4* wb = reinterpret_cast<const uint4*>(a.w + static_cast<int64_t>(row_b) * a.in) + q;
  uint4 va[kBatch], vb[kBatch];
  auto load_w = [&](int s) {
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const bool ok = s + b < s1;
      va[b] = ok ? __ldcs(wa + 4 * (s + b)) : zero4();  // streamed once: no L2 priority
      vb[b] = ok ? __ldcs(wb + 4 * (s + b)) : zero4();
    }
  };
  // The first weights go out before the previous kernel has finished (kernels/overlap.cuh).
  load_w(s0);
  overlap_enter();
  // x rows of this lane's B fragments: token g of each n tile (rows past n repeat the last row; their
  // columns are never stored).
  const uint4* xr[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
    xr[nt] = reinterpret_cast<const uint4*>(a.x + static_cast<int64_t>(min(nt * 8 + g, a.n - 1)) * a.in) + q;
  uint4 xv[NT][kBatch];
  auto load_x = [&](int s) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int b = 0; b < kBatch; ++b) xv[nt][b] = s + b < s1 ? __ldg(xr[nt] + 4 * (s + b)) : zero4();
  };
  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;
  load_x(s0);
  for (int s = s0; s < s1; s += kBatch) {
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      // Inputs 8q..8q+3 of the step, then 8q+4..8q+7: A = {row g lo, row g+8 lo, row g hi, row g+8 hi}.
      const uint32_t a0[4] = {va[b].x, vb[b].x, va[b].y, vb[b].y};
      const uint32_t a1[4] = {va[b].z, vb[b].z, va[b].w, vb[b].w};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma_m16n8k16(acc[nt], a0, xv[nt][b].x, xv[nt][b].y);
        mma_m16n8k16(acc[nt], a1, xv[nt][b].z, xv[nt][b].w);
      }
    }
    if (s + kBatch < s1) {
      load_w(s + kBatch);
      load_x(s + kBatch);
    }
  }
  // The warps' partial tiles, added by warp 0 in warp order.
  __shared__ float parts[kMaxSplit][NT * 4][32];
  if (split > 1) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) parts[warp][nt * 4 + i][lane] = acc[nt][i];
    __syncthreads();
    if (warp != 0) return;
    for (int w = 1; w < split; ++w)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[nt][i] += parts[w][nt * 4 + i][lane];
  }
  // C fragment: acc[nt][0..1] = rows g, tokens nt*8 + 2q, +1; acc[nt][2..3] = row g + 8, same tokens.
  for_each_token<NT>(q, a.n, [&](int nt, int c, int t) {
    const float lo = acc[nt][c], hi = acc[nt][2 + c];
    if constexpr (kEpi == TcEpilogue::swiglu) {
      const int j = static_cast<int>(blockIdx.x) * 8 + g;
      // Round gate and up to fp16 first, as the GEMM stores gate_up and swiglu reads it back.
      const float gate = __half2float(__float2half_rn(lo)), up = __half2float(__float2half_rn(hi));
      if (j < a.out) a.act[static_cast<int64_t>(t) * a.out + j] = __float2half_rn(swiglu_value(gate, up));
    } else {
      const int r = static_cast<int>(blockIdx.x) * kTileRows + g;
      const int64_t i = static_cast<int64_t>(t) * a.out + r;
      if constexpr (kEpi == TcEpilogue::store_half) {
        if (r < a.out) a.y16[i] = __float2half_rn(lo);
        if (r + 8 < a.out) a.y16[i + 8] = __float2half_rn(hi);
      } else {
        if (r < a.out) a.y32[i] = lo;
        if (r + 8 < a.out) a.y32[i + 8] = hi;
      }
    }
  });
}

template <TcEpilogue kEpi>
void launch_tc(const TcArgs& a, int split, cudaStream_t stream, const char* op) {
  require(a.n >= 1 && a.n <= kGemvTcMaxRows, op,
          "n must be in 1.." + std::to_string(kGemvTcMaxRows) + ", got " + std::to_string(a.n));
  require(a.in > 0 && a.in % kStep == 0 && a.out > 0, op,
          "in must be a positive multiple of 32 and out positive, got in " + std::to_string(a.in) + ", out " +
              std::to_string(a.out));
  require(aligned16(a.x) && aligned16(a.w), op, "x and W must be 16-byte aligned");
  // SwiGLU: 8 gate rows (and their 8 up rows) a tile.
  const int tiles = kEpi == TcEpilogue::swiglu ? ceil_div(a.out, 8) : ceil_div(a.out, kTileRows);
  require(split == 0 || split == 4 || split == 8 || split == 16, op,
          "split must be 0 (automatic), 4, 8 or 16, got " + std::to_string(split));
  if (split == 0) split = gemv_tc_split(tiles);
  auto kernel = a.n <= 8 ? gemv_tc_kernel<1, kEpi> : gemv_tc_kernel<2, kEpi>;
  launch_kernel(a.in <= kOverlapMaxDim || a.out <= kOverlapMaxDim, kernel, dim3(tiles), dim3(split * 32), 0,
                stream, op, a);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// Warps per 16-row tile: enough tiles x warps to fill the GPU (kTargetWarps), at least 4 (a warp's
// share of the inputs is what it keeps in flight) and at most 16 (a 512-thread block).
int gemv_tc_split(int tiles) {
  int split = 4;
  while (split < kMaxSplit && tiles * split < kTargetWarps) split *= 2;
  return split;
}

void gemv_tc(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream, int split) {
  launch_tc<TcEpilogue::store_half>({x, w, n, in, out, y, nullptr, nullptr}, split, stream, "gemv_tc");
}
void gemv_tc(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream, int split) {
  launch_tc<TcEpilogue::store_float>({x, w, n, in, out, nullptr, y, nullptr}, split, stream, "gemv_tc");
}
void gemv_tc_swiglu(const half* x, const half* w13, int n, int in, int inter, half* act, cudaStream_t stream,
                    int split) {
  require(act != nullptr, "gemv_tc_swiglu", "act must be given");
  launch_tc<TcEpilogue::swiglu>({x, w13, n, in, inter, nullptr, nullptr, act}, split, stream,
                                "gemv_tc_swiglu");
}

}  // namespace ridgeline::cuda
