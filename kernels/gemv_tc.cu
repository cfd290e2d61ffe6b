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
//
// gemv_tc_fused (n <= kGemvTcNormMaxRows): the decode step's RMSNorms folded in, as gemv_fused does at
// 1-2 rows. wo and w2 add their output into the float32 residual (add_rmsnorm's r + float(fp16(y)),
// the old values read before the main loop) and each 16-row tile writes its rows' sum of squares
// per token (norm_sums [n, out / 16]); wqkv and w13 read a row's sums (a warp per token, a fixed
// order), so every warp normalizes only its own input share of the residual rows, 8 fp32 values and
// 8 norm_w values a step, with rms_scale. Why sums and not gemv_fused's prologue: a block that
// reduced whole rows would re-read them from L2 (64 MB for 1.8b's w13 at 16 rows). The prologue's
// residual values and norm_w take registers, so it keeps 2 steps in flight, not 4, and caps at 80
// registers (three 8-warp blocks an SM; at 88, 7b's 384 wqkv blocks needed a second wave), and it
// runs NT = 1 only (at 2 n tiles it spilled). Measured (perf/NOTES.md "thirty-third"): per op the
// normed wqkv is 4-12% and 7b's normed w13 3-4% slower than gemv_tc on a normed x; the two norm
// launches it removes cost more, and the step gains 0.3-1.1% at B=4 and 8 on both presets.
#include <algorithm>
#include <string>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/mma.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rmsnorm_row.cuh"
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
  // The norm prologue (kNorm; x unused): x = fp16(norm_residual * inv_rms * norm_w), inv_rms from
  // the residual's sums of squares per 16 inputs, norm_sums [n, in / 16].
  const float* norm_residual = nullptr;
  const half* norm_w = nullptr;
  const float* norm_sums = nullptr;
  float eps = 0.0f;
  // The residual epilogue: residual[t, r] += fp16(y[t, r]); norm_sums_out[t, tile] = the sum of the
  // 16 new values' squares of the tile's rows.
  float* residual = nullptr;
  float* norm_sums_out = nullptr;
};

enum class TcEpilogue { store_half, store_float, swiglu, add_residual };

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
// The norm prologue runs at most kNormMaxSplit warps a block and at most 80 registers, so that three
// 8-warp blocks fit an SM as the plain kernel's do (88 registers cost 7b's wqkv, 384 blocks, a
// second wave on an H200's 132 SMs).
constexpr int kNormMaxSplit = 8;
template <int NT, TcEpilogue kEpi, bool kNorm>
__global__ void __launch_bounds__(kNorm ? kNormMaxSplit * 32 : kMaxSplit * 32, kNorm ? 3 : 1)
    gemv_tc_kernel(const TcArgs a) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, split = blockDim.x >> 5;
  // Steps in flight: the norm prologue's fp32 residual values and norm_w take the registers of two
  // more steps, so it keeps two (ptxas: 128 registers at four, which cost 7b's wqkv a second wave).
  constexpr int kSteps = kNorm ? kBatch / 2 : kBatch;
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
  uint4 va[kSteps], vb[kSteps];
  auto load_w = [&](int s) {
#pragma unroll
    for (int b = 0; b < kSteps; ++b) {
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
  int token[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) token[nt] = min(nt * 8 + g, a.n - 1);
  const uint4* xr[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
    xr[nt] = reinterpret_cast<const uint4*>(a.x + static_cast<int64_t>(token[nt]) * a.in) + q;
  uint4 xv[NT][kSteps];
  // With the norm prologue the B fragment is add_rmsnorm's output computed in registers: each row's
  // 1/rms from the per-16-input sums of squares that the residual's writer left (a warp per token,
  // partials in a fixed order, so every block gets the same bits), then the lane's 8 residual values
  // times it and norm_w, rounded to fp16 (rms_scale). A warp reads only its input share of the rows.
  float inv[NT];
  const float4* rr[NT];
  float4 rv[kNorm ? NT : 1][kSteps][2];
  uint4 gv[kNorm ? kSteps : 1];
  if constexpr (kNorm)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      rr[nt] =
          reinterpret_cast<const float4*>(a.norm_residual + static_cast<int64_t>(token[nt]) * a.in) + 2 * q;
  auto load_x = [&](int s) {
    if constexpr (kNorm) {
      const uint4* gw = reinterpret_cast<const uint4*>(a.norm_w) + q;
#pragma unroll
      for (int b = 0; b < kSteps; ++b) {
        const bool ok = s + b < s1;
        gv[b] = ok ? __ldg(gw + 4 * (s + b)) : zero4();
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            rv[nt][b][h] = ok ? __ldg(rr[nt] + 8 * (s + b) + h) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    } else {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int b = 0; b < kSteps; ++b) xv[nt][b] = s + b < s1 ? __ldg(xr[nt] + 4 * (s + b)) : zero4();
    }
  };
  // The first residual values go out before the sums are read: one L2 round trip for both.
  load_x(s0);
  if constexpr (kNorm) {
    __shared__ float inv_s[kGemvTcMaxRows];
    const int sums4 = a.in / 64;
    for (int t = warp; t < a.n; t += split) {
      const float4* p = reinterpret_cast<const float4*>(a.norm_sums + static_cast<int64_t>(t) * (a.in / 16));
      float ss = 0.0f;
      for (int i = lane; i < sums4; i += 32) {
        const float4 v = p[i];
        ss += v.x;
        ss += v.y;
        ss += v.z;
        ss += v.w;
      }
      ss = warp_sum(ss);
      if (lane == 0) inv_s[t] = rms_inv(ss, a.in, a.eps);
    }
    __syncthreads();
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) inv[nt] = inv_s[token[nt]];
  }
  // The residual epilogue's old values, read now rather than behind the main loop.
  float old_res[kEpi == TcEpilogue::add_residual ? NT : 1][2][2] = {};
  if constexpr (kEpi == TcEpilogue::add_residual) {
    const int r = static_cast<int>(blockIdx.x) * kTileRows + g;
    if (warp == 0)
      for_each_token<NT>(q, a.n, [&](int nt, int c, int t) {
        const float* res = a.residual + static_cast<int64_t>(t) * a.out + r;
        if (r < a.out) old_res[nt][c][0] = res[0];
        if (r + 8 < a.out) old_res[nt][c][1] = res[8];
      });
  }
  // kNorm: the loaded residual values and norm_w as the normed fp16 B fragments.
  auto normalize_x = [&]() {
    if constexpr (kNorm) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int b = 0; b < kSteps; ++b) {
          const float v[8] = {rv[nt][b][0].x, rv[nt][b][0].y, rv[nt][b][0].z, rv[nt][b][0].w,
                              rv[nt][b][1].x, rv[nt][b][1].y, rv[nt][b][1].z, rv[nt][b][1].w};
          xv[nt][b] = rms_scale(v, inv[nt], gv[b]);
        }
    }
  };
  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;
  for (int s = s0; s < s1; s += kSteps) {
    normalize_x();
#pragma unroll
    for (int b = 0; b < kSteps; ++b) {
      // Inputs 8q..8q+3 of the step, then 8q+4..8q+7: A = {row g lo, row g+8 lo, row g hi, row g+8 hi}.
      const uint32_t a0[4] = {va[b].x, vb[b].x, va[b].y, vb[b].y};
      const uint32_t a1[4] = {va[b].z, vb[b].z, va[b].w, vb[b].w};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma_m16n8k16(acc[nt], a0, xv[nt][b].x, xv[nt][b].y);
        mma_m16n8k16(acc[nt], a1, xv[nt][b].z, xv[nt][b].w);
      }
    }
    if (s + kSteps < s1) {
      load_w(s + kSteps);
      load_x(s + kSteps);
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
  float squares[NT][2] = {};  // add_residual: this lane's two new values' squares per token
  for_each_token<NT>(q, a.n, [&](int nt, int c, int t) {
    const float lo = acc[nt][c], hi = acc[nt][2 + c];
    if constexpr (kEpi == TcEpilogue::swiglu) {
      const int j = static_cast<int>(blockIdx.x) * 8 + g;
      // Round gate and up to fp16 first, as the GEMM stores gate_up and swiglu reads it back.
      const float gate = __half2float(__float2half_rn(lo)), up = __half2float(__float2half_rn(hi));
      if (j < a.out) a.act[static_cast<int64_t>(t) * a.out + j] = __float2half_rn(swiglu_value(gate, up));
    } else if constexpr (kEpi == TcEpilogue::add_residual) {
      const int r = static_cast<int>(blockIdx.x) * kTileRows + g;
      float* res = a.residual + static_cast<int64_t>(t) * a.out + r;
      // add_rmsnorm's add: r + float(fp16(proj)).
      float nlo = 0.0f, nhi = 0.0f;
      if (r < a.out) *res = nlo = old_res[nt][c][0] + __half2float(__float2half_rn(lo));
      if (r + 8 < a.out) res[8] = nhi = old_res[nt][c][1] + __half2float(__float2half_rn(hi));
      squares[nt][c] = fmaf(nhi, nhi, nlo * nlo);
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
  if constexpr (kEpi == TcEpilogue::add_residual) {
    // The tile's sum of squares per token: the 8 lanes of a token (g = 0..7) in a fixed tree.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float ss = squares[nt][c];
        for (int o = 4; o < 32; o <<= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const int t = nt * 8 + 2 * q + c;
        if (g == 0 && t < a.n) a.norm_sums_out[static_cast<int64_t>(t) * gridDim.x + blockIdx.x] = ss;
      }
  }
}

template <TcEpilogue kEpi, bool kNorm = false>
void launch_tc(const TcArgs& a, int split, cudaStream_t stream, const char* op) {
  require(a.n >= 1 && a.n <= kGemvTcMaxRows, op,
          "n must be in 1.." + std::to_string(kGemvTcMaxRows) + ", got " + std::to_string(a.n));
  require(a.in > 0 && a.in % kStep == 0 && a.out > 0, op,
          "in must be a positive multiple of 32 and out positive, got in " + std::to_string(a.in) + ", out " +
              std::to_string(a.out));
  require((kNorm || aligned16(a.x)) && aligned16(a.w), op, "x and W must be 16-byte aligned");
  // SwiGLU: 8 gate rows (and their 8 up rows) a tile.
  const int tiles = kEpi == TcEpilogue::swiglu ? ceil_div(a.out, 8) : ceil_div(a.out, kTileRows);
  require(split == 0 || split == 4 || split == 8 || split == 16, op,
          "split must be 0 (automatic), 4, 8 or 16, got " + std::to_string(split));
  if constexpr (kNorm)
    require(split <= kNormMaxSplit, op,
            "a norm prologue runs up to 8 warps a tile, got " + std::to_string(split));
  if (split == 0) split = kNorm ? std::min(gemv_tc_split(tiles), kNormMaxSplit) : gemv_tc_split(tiles);
  // The norm prologue holds each step's fp32 residual values and norm_w in flight: 128 registers at
  // one n tile, spills at two (ptxas), so it runs up to kGemvTcNormMaxRows rows.
  require(!kNorm || a.n <= kGemvTcNormMaxRows, op,
          "a norm prologue runs up to " + std::to_string(kGemvTcNormMaxRows) + " rows, got " +
              std::to_string(a.n));
  auto kernel = gemv_tc_kernel<1, kEpi, kNorm>;
  if constexpr (!kNorm)
    if (a.n > 8) kernel = gemv_tc_kernel<2, kEpi, kNorm>;
  // The normed GEMV launches plain: overlapped behind the residual GEMV it made 1.8b's B=8 step 16%
  // slower (H100 and H200, perf/NOTES.md "thirty-third"; not understood), plain 0.3-1% faster than
  // add_rmsnorm + an overlapped gemv_tc.
  const bool overlap = !kNorm && (a.in <= kOverlapMaxDim || a.out <= kOverlapMaxDim);
  launch_kernel(overlap, kernel, dim3(tiles), dim3(split * 32), 0, stream, op, a);
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

void gemv_tc_fused(const GemvFusedParams& p, cudaStream_t stream) {
  const char* op = "gemv_tc_fused";
  const bool norm = p.norm_residual != nullptr;
  require(p.rope == nullptr && p.y32 == nullptr, op, "the tensor-core GEMV has no RoPE or fp32 epilogue");
  require(p.norm_sums != nullptr && aligned16(p.norm_sums), op,
          "norm_sums must be given and 16-byte aligned");
  TcArgs a{p.x, p.w, p.n, p.in, p.out, p.y16, nullptr, p.act};
  if (norm) {
    require(p.x == nullptr && p.norm_w != nullptr && p.residual == nullptr &&
                (p.y16 != nullptr) != (p.act != nullptr),
            op, "a norm prologue takes norm_residual and norm_w, not x, and writes y16 or act");
    require(p.in % 64 == 0, op, "a norm prologue needs in a multiple of 64, got " + std::to_string(p.in));
    require(aligned16(p.norm_residual) && aligned16(p.norm_w), op,
            "norm_residual and norm_w must be 16-byte aligned");
    a.norm_residual = p.norm_residual, a.norm_w = p.norm_w, a.norm_sums = p.norm_sums, a.eps = p.eps;
    if (p.act != nullptr) return launch_tc<TcEpilogue::swiglu, true>(a, p.split, stream, op);
    return launch_tc<TcEpilogue::store_half, true>(a, p.split, stream, op);
  }
  require(p.x != nullptr && p.residual != nullptr && p.y16 == nullptr && p.act == nullptr, op,
          "without a norm prologue the tensor-core GEMV takes x and adds into residual");
  require(p.out % 64 == 0 && aligned16(p.residual), op,
          "a residual epilogue needs out a multiple of 64 and a 16-byte aligned residual, got out " +
              std::to_string(p.out));
  a.residual = p.residual, a.norm_sums_out = p.norm_sums;
  launch_tc<TcEpilogue::add_residual>(a, p.split, stream, op);
}

}  // namespace ridgeline::cuda
