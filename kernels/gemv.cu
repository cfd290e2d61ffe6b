// gemv: y[n, out] = x[n, in] W^T for decode batches of n <= kGemvMaxRows tokens, W [out, in] fp16
// row-major (a Linear's weight as stored), fp32 accumulation, fp16 or fp32 out.
// FLOPs: 2*n*in*out. Bytes: W once (2*in*out) + x (2*n*in, from L1/L2 after the first warp) + y.
// Bound: DRAM bandwidth on W. One warp per output row streams that row with 16-byte loads, four
// loads in flight per lane before the first FMA, so a 2048x2048 weight (8 MB) is read near the copy
// rate where cuBLASLt's small-N kernels reach about 1 TB/s (bench/results/h100-kernels.json).
// A weight of few rows splits each row's K range over `split` warps of one block (gemv_split: 2 warps
// a row up to 2048 rows, 4 up to 1024), which add their partial sums through shared memory: one warp
// per row left an H200 with 16 warps per SM on 1.8b's w2 (2048 rows of 16 KB), whose row streams ran
// at 0.55 of the read peak where 7b's wo, the same 32 MB as 4096 rows of 8 KB, ran at 0.69 (split 2:
// 13.9 -> 12.1 us; BM_GemvSplits).
// Every output is one warp's shuffle reduction per part, parts added in part order: deterministic.
//
// gemv_fused: the same GEMV with the decode step's small ops folded in (n <= kGemvFusedMaxRows), so a
// B=1 step launches no layer norm and no swiglu kernel:
//   prologue (optional) x = fp16(rmsnorm(residual) * norm_w): every block normalizes the float32
//     residual rows itself (read twice from L2: 8*n*in bytes per block, plus norm_w) into shared
//     memory, with add_rmsnorm's arithmetic and reduction order (kernels/rmsnorm_row.cuh); each warp
//     issues its first weight loads before the prologue, so the DRAM stream is already in flight;
//   epilogue, one of: store y (fp16 or fp32); act[t, j] = silu(g) * u of W13's rows j and j + out
//     (gate then up: one warp streams both, eight 16-byte loads in flight per lane);
//     residual[t, j] += fp16(y) (each element owned by one warp: deterministic); or rope_kv_write's
//     work on qkv = y (wqkv, fp16 cache): one warp streams the rows of dims d and d + head_dim/2 of a
//     head, rotates them (q, k) and stores them into q or the paged cache (kernels/rope.cuh), saving
//     a launch and qkv's round trip a layer.
// FLOPs: the GEMV's plus ~5 per normed or SwiGLU element, ~6 per rotated one. Bytes: W once + x or
// the residual rows and norm_w + y, act, the residual read and written, or q and the new K/V rows. Same bound
// as gemv. Bit-identical to the unfused sequences (add_rmsnorm -> gemv, gemv -> swiglu, gemv -> add_rmsnorm's
// add): each row's dot product runs gemv's per-lane FMA order and shuffle tree (rows_dot is shared), sums are
// rounded to fp16 where gemv stores them, the SwiGLU is swiglu_value (kernels/swiglu_math.cuh), the RoPE
// rope_kv_write's (kernels/rope.cuh), and the residual add is add_rmsnorm's r + float(fp16(proj)).
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rmsnorm_row.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu_math.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
// Every GEMV launches overlapped (kernels/overlap.cuh: the next kernel's blocks issue their first
// weight loads while this one drains) but an add_residual one of more than 8 MB whose input is no
// wider than its output: 7b's wo, which runs behind the attention merge. H200, `ridgeline sweep` B=1
// ctx 1024, fp16 weights, KV fp16 / int8 / int4, us, two runs each (perf/NOTES.md, "twenty-seventh"):
// wo and w2 plain 4107-4112 / 4266-4273 / 4268-4279 (7b); w2 overlapped 4073-4081 / 4243-4244 /
// 4247-4254; wo overlapped 4073-4081 / 4390-4392 / 4400-4406; 1.8b's w2 (33.5 MB) overlapped
// 1190 -> 1176-1178 / 1287 -> 1277 / 1293 -> 1271 (1.8b's wo, 8 MB, overlaps either way). Why an
// early-resident wo costs the quantized-cache steps is not known (the tenth session measured
// the same +135 us); the other residual GEMV, w2, runs behind the SwiGLU GEMV and gains with every
// cache format. (Two earlier readings of the fp16 GEMVs as slower overlapped do not reproduce on a
// clean build; see scripts/refresh-mtimes.sh.)
constexpr int64_t kOverlapAddResidualMaxBytes = int64_t{8} << 20;
static_assert(kWarpsPerBlock * 32 == kNormThreads, "the norm prologue reduces as add_rmsnorm's block does");
constexpr int kUnroll = 4;  // 16-byte W loads in flight per lane and per row
// The normed rows' shared memory: under the 48 KB a launch gets without opt-in, with room for
// block_sum's static shared memory.
constexpr int kNormSmemBytes = 40 * 1024;

__device__ __forceinline__ void store(half* y, float v) {
  *y = __float2half_rn(v);
}
__device__ __forceinline__ void store(float* y, float v) {
  *y = v;
}

// One warp's lanes' 16-byte vectors of R weight rows, kUnroll per row at a time from `base`, below
// vector `end`.
template <int R>
__device__ __forceinline__ void load_batch(const uint4* const (&wrow)[R], int end, int base,
                                           uint4 (&wv)[R][kUnroll]) {
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int v = base + u * 32;
      wv[r][u] = v < end ? __ldcs(wrow[r] + v) : make_uint4(0, 0, 0, 0);  // streamed once: no L2 priority
    }
}

// A warp's share of a row split over `split` warps: 16-byte vectors [begin, end) of `in / 8`, the
// whole row at split 1 (so that split 1 streams exactly as one warp per row did).
struct KRange {
  int begin, end;
};
__device__ __forceinline__ KRange k_range(int in, int split, int part) {
  const int vecs = in / 8, per = (vecs + split - 1) / split;
  const int begin = min(vecs, part * per);
  return {begin, min(vecs, begin + per)};
}

// Which unit (output row, SwiGLU pair or RoPE pair) this warp works on, which part of its K range,
// and that range: a block holds kWarpsPerBlock / split units, `split` adjacent warps each.
struct WarpShare {
  int unit, part;
  KRange k;
};
__device__ __forceinline__ WarpShare warp_share(int in, int split) {
  const int warp = threadIdx.x >> 5, part = warp % split;
  return {static_cast<int>(blockIdx.x) * (kWarpsPerBlock / split) + warp / split, part,
          k_range(in, split, part)};
}

// With split > 1: every warp of the block adds its part's sums to shared memory and the part-0 warp
// of each row adds the others to its own, in part order. Block-wide (a barrier): every warp calls it.
template <int R, int N>
__device__ __forceinline__ void add_parts(int split, float (&acc)[R][N]) {
  __shared__ float parts[kWarpsPerBlock][R][N];
  if (split == 1) return;
  const int warp = threadIdx.x >> 5, part = warp % split;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < N; ++t) parts[warp][r][t] = acc[r][t];
  __syncthreads();
  if (part != 0) return;
  for (int s = 1; s < split; ++s)
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < N; ++t) acc[r][t] += parts[warp + s][r][t];
}

template <int R>
__device__ __forceinline__ void row_pointers(const half* w, int in, const int (&rows)[R],
                                             const uint4* (&wrow)[R]) {
#pragma unroll
  for (int r = 0; r < R; ++r)
    wrow[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(rows[r]) * in);
}

// acc[r][t] = dot(x[t, k], W[rows[r], k]) over the vectors k of `k`, for R weight rows streamed
// together by one warp, reduced over the warp (every lane holds the result). `wv` holds the first
// batch (load_batch at base = k.begin + lane) on entry, so a caller can start the DRAM stream before
// a prologue. The order of the FMAs of one (row, t) pair does not depend on R nor on where x lives:
// gemv and the fused GEMVs give the same bits for the same row and split.
template <int R, int N, bool kXShared>
__device__ __forceinline__ void rows_dot(const half* __restrict__ x, const uint4* const (&wrow)[R], int in,
                                         KRange k, int lane, uint4 (&wv)[R][kUnroll], float (&acc)[R][N]) {
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < N; ++t) acc[r][t] = 0.0f;
  const int first = k.begin + lane;
  for (int base = first; base < k.end; base += 32 * kUnroll) {
    if (base != first) load_batch(wrow, k.end, base, wv);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int v = base + u * 32;
      if (v >= k.end) break;
#pragma unroll
      for (int t = 0; t < N; ++t) {
        const uint4* xrow = reinterpret_cast<const uint4*>(x + static_cast<int64_t>(t) * in);
        uint4 xv;
        if constexpr (kXShared)
          xv = xrow[v];
        else
          xv = __ldg(xrow + v);
        float xf[8];
        half8_to_float(xv, xf);
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
    gemv_kernel(const half* __restrict__ x, const half* __restrict__ w, int in, int out, int split,
                OutT* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const auto [row, part, k] = warp_share(in, split);
  // The first weight loads go out before the previous kernel has finished (kernels/overlap.cuh);
  // warps past `out` load a valid row and discard it (and with split > 1 stream it too: they take
  // part in add_parts' barrier).
  const int rows[1] = {min(row, out - 1)};
  const uint4* wrow[1];
  row_pointers(w, in, rows, wrow);
  uint4 wv[1][kUnroll];
  load_batch(wrow, k.end, k.begin + lane, wv);
  overlap_enter();
  if (split == 1 && row >= out) return;
  float acc[1][N];
  rows_dot<1, N, false>(x, wrow, in, k, lane, wv, acc);
  add_parts(split, acc);
  if (row >= out || part != 0) return;
  if (lane == 0)
#pragma unroll
    for (int t = 0; t < N; ++t) store(y + static_cast<int64_t>(t) * out + row, acc[0][t]);
}

// x_s[t, :] = fp16(residual[t, :] * inv_rms * norm_w) for t < N, by the whole block (kNormThreads).
template <int N>
__device__ __forceinline__ void norm_prologue(const float* __restrict__ residual,
                                              const half* __restrict__ norm_w, int dim, float eps,
                                              half* x_s) {
  const int n_chunks = dim / 8;
#pragma unroll
  for (int t = 0; t < N; ++t) {
    const float* r = residual + static_cast<int64_t>(t) * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < n_chunks; c += kNormThreads) {
      float v[8];
      load_float8(r + c * 8, v);
      ss = rms_accumulate(v, ss);
    }
    const float inv = rms_inv(block_sum(ss), dim, eps);
    for (int c = threadIdx.x; c < n_chunks; c += kNormThreads) {
      float v[8];
      load_float8(r + c * 8, v);
      reinterpret_cast<uint4*>(x_s + static_cast<int64_t>(t) * dim)[c] =
          rms_scale(v, inv, reinterpret_cast<const uint4*>(norm_w)[c]);
    }
  }
  __syncthreads();
}

enum class Epilogue { store_half, store_float, swiglu, add_residual, rope_kv };

// The rope_kv epilogue's kernel argument (the other epilogues take an empty one).
template <Epilogue kEpi>
using RopeArg = RopeKernelArg<kEpi == Epilogue::rope_kv>;

template <int N, bool kNorm, Epilogue kEpi>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_fused_kernel(const GemvFusedParams p, const RopeArg<kEpi> rope) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr bool kRope = kEpi == Epilogue::rope_kv;
  // SwiGLU: the gate row and the up row. RoPE: dims d and d + head_dim/2 of one qkv head.
  constexpr int R = kEpi == Epilogue::swiglu || kRope ? 2 : 1;
  const int lane = threadIdx.x & 31, split = p.split;
  const int units = kRope ? p.out / 2 : p.out;  // rows, SwiGLU pairs or RoPE pairs
  const auto [j, part, k] = warp_share(p.in, split);
  // Start the weight stream before the norm prologue so its DRAM latency overlaps the prologue's L2
  // reads and block reductions (warps past `units` load a valid row and discard it).
  const int jr = min(j, units - 1);
  int rows[R];
  rows[0] = jr;
  if constexpr (kEpi == Epilogue::swiglu) rows[1] = jr + p.out;
  int head_in_row = 0, d = 0;  // RoPE: the pair's qkv head and dim
  RopeKvSlot at[N];
  float cs[N], sn[N];
  if constexpr (kRope) {
    const int half_dim = rope.cache.head_dim / 2;
    head_in_row = jr / half_dim, d = jr % half_dim;
    rows[0] = head_in_row * 2 * half_dim + d, rows[1] = rows[0] + half_dim;
    // Host-written, so read before waiting for the previous kernel (kernels/kernels.cuh).
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < N; ++t) {
        at[t] = rope_kv_slot(rope, t);
        rope_cos_sin(at[t].pos, rope.pos_scale, rope.table[t].inv_freq[d], cs[t], sn[t]);
      }
  }
  const uint4* wrow[R];
  row_pointers(p.w, p.in, rows, wrow);
  uint4 wv[R][kUnroll];
  load_batch(wrow, k.end, k.begin + lane, wv);
  overlap_enter();  // weights and host-written step inputs only above this line (kernels/overlap.cuh)
  const half* x = p.x;
  if constexpr (kNorm) {
    half* x_s = reinterpret_cast<half*>(smem);
    norm_prologue<N>(p.norm_residual, p.norm_w, p.in, p.eps, x_s);  // before any early exit: it syncs
    x = x_s;
  }
  if (split == 1 && j >= units) return;
  float acc[R][N];
  rows_dot<R, N, kNorm>(x, wrow, p.in, k, lane, wv, acc);
  add_parts(split, acc);
  if (j >= units || part != 0) return;
  if constexpr (kRope) {
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < N; ++t)  // qkv rounded to fp16 as gemv stores it and rope_kv_write reads it
        rope_kv_store(rope, t, at[t], head_in_row, d, __half2float(__float2half_rn(acc[0][t])),
                      __half2float(__float2half_rn(acc[1][t])), cs[t], sn[t]);
  } else if constexpr (kEpi == Epilogue::swiglu) {
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < N; ++t) {
        // Round gate and up to fp16 first, as gemv stores gate_up and swiglu reads it back.
        const float g = __half2float(__float2half_rn(acc[0][t]));
        const float u = __half2float(__float2half_rn(acc[1][t]));
        p.act[static_cast<int64_t>(t) * p.out + j] = __float2half_rn(swiglu_value(g, u));
      }
  } else {
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < N; ++t) {
        const int64_t i = static_cast<int64_t>(t) * p.out + j;
        if constexpr (kEpi == Epilogue::store_half) p.y16[i] = __float2half_rn(acc[0][t]);
        if constexpr (kEpi == Epilogue::store_float) p.y32[i] = acc[0][t];
        // add_rmsnorm's add: the sublayer output as gemv stores it (fp16), then added in fp32.
        if constexpr (kEpi == Epilogue::add_residual)
          p.residual[i] += __half2float(__float2half_rn(acc[0][t]));
      }
  }
}

template <int N, bool kNorm>
void launch_fused(const GemvFusedParams& p, int outputs_of, cudaStream_t stream) {
  dim3 block(kWarpsPerBlock * 32);
  const int units_per_block = kWarpsPerBlock / p.split;
  const size_t smem = kNorm ? size_t(N) * p.in * sizeof(half) : 0;
  if (outputs_of == 4) {
    // Only wqkv (behind the norm) takes the RoPE epilogue: gemv_fused refuses it without a norm, so
    // the kNorm = false instantiation never gets here.
    if constexpr (kNorm) {
      const RopeKvArgs rope = rope_kv_args(*p.rope, p.n, p.out, "gemv_fused");
      launch_overlapped(gemv_fused_kernel<N, kNorm, Epilogue::rope_kv>,
                        dim3(ceil_div(p.out / 2, units_per_block)), block, smem, stream, "gemv_fused", p,
                        rope);
    }
    return;
  }
  const bool add_residual = outputs_of == 3;
  auto kernel = outputs_of == 0   ? gemv_fused_kernel<N, kNorm, Epilogue::store_half>
                : outputs_of == 1 ? gemv_fused_kernel<N, kNorm, Epilogue::store_float>
                : outputs_of == 2 ? gemv_fused_kernel<N, kNorm, Epilogue::swiglu>
                                  : gemv_fused_kernel<N, kNorm, Epilogue::add_residual>;
  const bool overlap =
      !add_residual || p.in > p.out || int64_t{2} * p.in * p.out <= kOverlapAddResidualMaxBytes;
  launch_kernel(overlap, kernel, dim3(ceil_div(p.out, units_per_block)), block, smem, stream, "gemv_fused", p,
                NoRopeArgs{});
}

// The warps per row a launch runs: `split` if given (1, 2 or 4), else gemv_split's.
int resolve_split(int split, int weight_rows, const char* op) {
  require(split == 0 || split == 1 || split == 2 || split == 4, op,
          "split must be 0 (automatic), 1, 2 or 4, got " + std::to_string(split));
  return split != 0 ? split : gemv_split(weight_rows);
}

template <typename OutT>
void launch(const half* x, const half* w, int n, int in, int out, OutT* y, cudaStream_t stream, int split) {
  const char* op = "gemv";
  require(n >= 1 && n <= kGemvMaxRows, op, "n must be in 1.." + std::to_string(kGemvMaxRows));
  require(in > 0 && in % 8 == 0 && out > 0, op,
          "in must be a positive multiple of 8, got " + std::to_string(in));
  require(aligned16(x) && aligned16(w), op, "x and W must be 16-byte aligned");
  split = resolve_split(split, out, op);
  dim3 grid(ceil_div(out, kWarpsPerBlock / split)), block(kWarpsPerBlock * 32);
  constexpr void (*kernels[])(const half*, const half*, int, int, int, OutT*) = {
      gemv_kernel<1, OutT>, gemv_kernel<2, OutT>, gemv_kernel<3, OutT>, gemv_kernel<4, OutT>,
      gemv_kernel<5, OutT>, gemv_kernel<6, OutT>, gemv_kernel<7, OutT>, gemv_kernel<8, OutT>};
  launch_overlapped(kernels[std::min(n, 8) - 1], grid, block, 0, stream, op, x, w, in, out, split, y);
}

}  // namespace

// Measured on an H100 (bench/results/h100-kernels.json, BM_GemmFp16 vs BM_CublasLtFp16): gemv beats
// cuBLASLt by 5-30% at 1-2 rows (1.8b wo: 6.9 vs 10.0 us), ties at 4 and loses at 8, where re-reading
// x from L1 for every row becomes its bottleneck. So it takes n <= 2 only, and gemv_tc (x read once
// per 16 weight rows) the rows above, up to kGemvTcMaxRows.
constexpr int kGemvPreferredRows = 2;
static_assert(kGemvFusedMaxRows <= kGemvPreferredRows, "fused GEMVs run where gemv is the chosen path");
static_assert(kGemvFusedMaxNormDim * kGemvFusedMaxRows * 2 <= kNormSmemBytes,
              "normed rows fit in shared memory");

GemvKernel gemv_choice(int n, int in, const void* x, const void* w) {
  if (n < 1 || in <= 0 || in % 8 != 0 || !aligned16(x) || !aligned16(w)) return GemvKernel::none;
  if (n <= kGemvPreferredRows) return GemvKernel::fma;
  if (n <= kGemvTcMaxRows && in % 32 == 0) return GemvKernel::tensor_core;
  return GemvKernel::none;
}

// Rows times warps per row of at least 4096 (an H200's 132 SMs at ~31 warps each), capped at 4 warps
// a row: 1.8b's wo and w2 (2048 rows) split in two, the tiny model's linears in four, every 7b
// linear and 1.8b's wqkv and w13 not at all. The rule depends on the weight alone, so gemv and
// gemv_fused split a row alike and stay bit-identical (BM_GemvSplits has the measurements).
int gemv_split(int weight_rows) {
  return std::clamp(4096 / std::max(weight_rows, 1), 1, 4);
}

void gemv(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream, int split) {
  launch(x, w, n, in, out, y, stream, split);
}
void gemv(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream, int split) {
  launch(x, w, n, in, out, y, stream, split);
}

void gemv_fused(const GemvFusedParams& p, cudaStream_t stream) {
  const char* op = "gemv_fused";
  require(p.n >= 1 && p.n <= kGemvFusedMaxRows, op, "n must be in 1.." + std::to_string(kGemvFusedMaxRows));
  require(p.in > 0 && p.in % 8 == 0 && p.out > 0, op,
          "in must be a positive multiple of 8 and out positive, got in " + std::to_string(p.in) + ", out " +
              std::to_string(p.out));
  require(aligned16(p.w), op, "W must be 16-byte aligned");
  const bool norm = p.norm_residual != nullptr;
  if (norm) {
    require(p.x == nullptr && p.norm_w != nullptr, op,
            "a norm prologue takes norm_residual and norm_w, not x");
    require(p.in <= kGemvFusedMaxNormDim, op,
            "a norm prologue needs in <= " + std::to_string(kGemvFusedMaxNormDim) + ", got " +
                std::to_string(p.in));
    require(aligned16(p.norm_residual) && aligned16(p.norm_w), op,
            "norm_residual and norm_w must be 16-byte aligned");
  } else {
    require(p.x != nullptr && aligned16(p.x), op, "x must be given and 16-byte aligned");
  }
  const int outputs = (p.y16 != nullptr) + (p.y32 != nullptr) + (p.act != nullptr) + (p.residual != nullptr) +
                      (p.rope != nullptr);
  require(outputs == 1, op, "exactly one of y16, y32, act, residual and rope must be given");
  require(!p.rope || norm, op, "the rope_kv_write epilogue runs only behind the norm prologue (wqkv)");
  const int which = p.y16 ? 0 : p.y32 ? 1 : p.act ? 2 : p.residual ? 3 : 4;
  GemvFusedParams q = p;
  q.split = resolve_split(p.split, p.act ? 2 * p.out : p.out, op);  // W13 holds 2 * out rows
  if (q.n == 1)
    norm ? launch_fused<1, true>(q, which, stream) : launch_fused<1, false>(q, which, stream);
  else
    norm ? launch_fused<2, true>(q, which, stream) : launch_fused<2, false>(q, which, stream);
  RL_CUDA_CHECK_LAUNCH(op);
}

void gemv_swiglu(const half* x, const half* w13, int n, int in, int inter, half* act, cudaStream_t stream) {
  if (n > kGemvFusedMaxRows) return gemv_tc_swiglu(x, w13, n, in, inter, act, stream);  // both check
  gemv_fused({.w = w13, .n = n, .in = in, .out = inter, .x = x, .act = act}, stream);
}

}  // namespace ridgeline::cuda
