// Device pieces shared by the W4A16 kernels (layout: kernels/w4a16.cuh): unpacking a word of eight
// 4-bit codes into an mma A fragment (scaled in fp16, or exact integers with the scale applied in
// fp32 by the caller), the scale/zero record of a group, cache-hinted cp.async (ldmatrix is
// kernels/mma.cuh's), and the split-K reduction over a thread-block cluster (sm_90 distributed shared
// memory), which sums the partial tiles of the blocks that shared an output strip in a fixed order, so
// results do not depend on timing and no workspace or second launch is needed.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/mma.cuh"
#include "kernels/overlap.h"
#include "kernels/w4a16.cuh"

namespace ridgeline::cuda::w4a16 {

// Most blocks of one cluster the launchers use (8 is the portable cluster size).
inline constexpr int kMaxSplits = 8;

// A lane's scale/zero for one group, prepared for the dequantizer: rows gid ("lo", even nibbles)
// and gid+8 ("hi", odd nibbles), each value broadcast to both halves of a half2.
struct GroupScale {
  half2 s_lo, z_lo;   // z_lo = 1024 + z: subtracted from 1024 + q
  half2 s_hi, nz_hi;  // nz_hi = -(64 + z): added to (1024 + 16q) / 16
};

// From the 8-byte record {s[gid], z[gid], s[gid+8], z[gid+8]}.
__device__ __forceinline__ GroupScale group_scale(uint2 rec) {
  const half2 lo = as_half2(rec.x), hi = as_half2(rec.y);
  GroupScale g;
  g.s_lo = __low2half2(lo);
  g.z_lo = __hadd2(__high2half2(lo), __float2half2_rn(1024.0f));
  g.s_hi = __low2half2(hi);
  g.nz_hi = __hneg2(__hadd2(__high2half2(hi), __float2half2_rn(64.0f)));
  return g;
}

// Eight codes of one packed word -> the four registers of an m16n8k16 A fragment (fp16 weights).
// OR-ing a nibble into the mantissa of 0x6400 (1024.0) gives 1024 + q exactly (a nibble shifted
// left by 4 gives 1024 + 16q, scaled back by an exact 1/16), so unpacking is one lop3 per two
// weights; (q - z) is an exact integer and the product with s rounds once.
// 13 instructions for 8 weights: 4 lop3, 1 shift, 2 HSUB2, 2 HFMA2, 4 HMUL2.
__device__ __forceinline__ void dequant(uint32_t word, const GroupScale& g, uint32_t (&a)[4]) {
  const half2 sixteenth = as_half2(0x2c002c00u);  // 1/16 in both halves
  const uint32_t t0 = int4_pair(word, 0), t1 = int4_pair(word, 1), t2 = int4_pair(word, 2),
                 t3 = int4_pair(word, 3);
  a[0] = as_u32(__hmul2(__hsub2(as_half2(t0), g.z_lo), g.s_lo));
  a[1] = as_u32(__hmul2(__hfma2(as_half2(t1), sixteenth, g.nz_hi), g.s_hi));
  a[2] = as_u32(__hmul2(__hsub2(as_half2(t2), g.z_lo), g.s_lo));
  a[3] = as_u32(__hmul2(__hfma2(as_half2(t3), sixteenth, g.nz_hi), g.s_hi));
}

// Eight codes of one packed word -> an m16n8k16 A fragment of exact integers, the scale left out:
// rows gid (a0, a2) get q - z, rows gid+8 (a1, a3) 16 * (q - z), both exact in fp16 (|16 * 15| =
// 240), so the mma's products and fp32 sums are exact up to fp32 rounding, and the caller applies
// s (rows gid) and s / 16 (rows gid+8) to the group's fp32 sum. 9 instructions for 8 weights: 4
// lop3, 1 shift, 4 HSUB2. `zlo` = 1024 + z[gid], `zhi` = 1024 + 16 * z[gid+8] (see dequant()).
__device__ __forceinline__ void dequant_codes(uint32_t word, half2 zlo, half2 zhi, uint32_t (&a)[4]) {
  const uint32_t t0 = int4_pair(word, 0), t1 = int4_pair(word, 1), t2 = int4_pair(word, 2),
                 t3 = int4_pair(word, 3);
  a[0] = as_u32(__hsub2(as_half2(t0), zlo));
  a[1] = as_u32(__hsub2(as_half2(t1), zhi));
  a[2] = as_u32(__hsub2(as_half2(t2), zlo));
  a[3] = as_u32(__hsub2(as_half2(t3), zhi));
}

// cp.async of 16 bytes through L1 (.ca): data that other warps of the SM read too (x).
__device__ __forceinline__ void cp_async_16_l1(void* smem_dst, const void* gmem_src) {
  const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem_src) : "memory");
}

// Word j (0..3) of a 16-byte vector; j is a compile-time constant after unrolling.
__device__ __forceinline__ uint32_t word_of(const uint4& v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}

// Barrier over the blocks that share a strip: the cluster when split, else the block.
__device__ __forceinline__ void split_sync(int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (splits > 1) {
    cooperative_groups::this_cluster().sync();
    return;
  }
#endif
  (void)splits;
  __syncthreads();
}

// The partial tile `red` of block `rank` of the cluster (this block's own when not split).
__device__ __forceinline__ const float* split_partial(const float* red, int splits, int rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (splits > 1) return cooperative_groups::this_cluster().map_shared_rank(red, rank);
#endif
  (void)splits, (void)rank;
  return red;
}

__device__ __forceinline__ void store_out(half* p, float v) {
  *p = __float2half_rn(v);
}
__device__ __forceinline__ void store_out(float* p, float v) {
  *p = v;
}

__device__ __forceinline__ float4 add4(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// 4 fp32 -> 4 consecutive outputs, one 8-byte (half) or 16-byte (float) store.
__device__ __forceinline__ void store4(half* dst, float4 v) {
  *reinterpret_cast<uint2*>(dst) = make_uint2(pack_half2(v.x, v.y), pack_half2(v.z, v.w));
}
__device__ __forceinline__ void store4(float* dst, float4 v) {
  *reinterpret_cast<float4*>(dst) = v;
}

// The cluster barrier before a block leaves, so that none exits while another still reads its shared
// memory (both GEMMs' split-K reductions end with it). Relaxed: those reads have returned (their sums are
// stored) before a thread arrives, so nothing needs ordering, and the release fence of the default barrier
// (MEMBAR.ALL.GPU, which waits for the y stores to complete) is left out: on the tiled GEMM at M = 64 it held
// 6% of the warps' samples (ncu, perf/NOTES.md "fifteenth").
__device__ __forceinline__ void split_exit_sync(int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (splits > 1) {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
    asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
  }
#endif
  (void)splits;
}

// Every block of the cluster (blockIdx.x = rank) has written its fp32 partial tile to shared
// memory: red[c * ld + r] for output rows r in 0..127 (row0 + r of y's columns) and batch rows c
// in 0..cols-1 (col0 + c of y); ld and red 16-byte aligned. Block `rank` sums its share of the
// tile's 4-output quads over the cluster, ranks in order (deterministic), and writes
// y[col0 + c][row0 + r .. + 3] for row0 + r < out (y 16-byte aligned; out and row0 multiples of
// 16, so a quad is wholly inside or outside). Consecutive threads take consecutive quads, so a
// warp's 16-byte loads of one rank's partials are 512 contiguous bytes, and every rank's loads of a
// quad are issued before the first add. H200 (perf/NOTES.md, "fifteenth"): 3-14% faster than one
// scalar output a thread at M = 16-64; 8 consecutive outputs a thread (a 32-byte stride across the
// warp) made the 8-block clusters 25-35% slower through distributed shared memory, and two quads a
// thread cost the unsplit runs 5-14% (registers). Ends with a cluster barrier (split_exit_sync).
template <typename OutT>
__device__ void reduce_splits_and_store(const float* red, int ld, int cols, int splits, int rank, OutT* y,
                                        int64_t col0, int row0, int out) {
  constexpr int kQuads = 128 / 4;
  split_sync(splits);
  const float* part[kMaxSplits];
#pragma unroll
  for (int s = 0; s < kMaxSplits; ++s) part[s] = split_partial(red, splits, s < splits ? s : 0);
  const int rows = min(128, out - row0), quads = cols * kQuads;
  const int e1 = (rank + 1) * quads / splits;
  for (int e = rank * quads / splits + static_cast<int>(threadIdx.x); e < e1; e += blockDim.x) {
    const int c = e / kQuads, r = (e % kQuads) * 4;
    if (r >= rows) continue;
    float4 v[kMaxSplits];
#pragma unroll
    for (int s = 0; s < kMaxSplits; ++s)
      if (s < splits) v[s] = *reinterpret_cast<const float4*>(part[s] + c * ld + r);
#pragma unroll
    for (int s = 1; s < kMaxSplits; ++s)
      if (s < splits) v[0] = add4(v[0], v[s]);
    store4(y + (col0 + c) * out + row0 + r, v[0]);
  }
  split_exit_sync(splits);
}

// Host side: a launch of `grid` in clusters of (splits, 1, 1) (none when splits = 1), overlapped
// with the kernel before it when `overlap` is set and overlapped launches are on (kernels/overlap.cuh:
// the kernel must keep that contract); `attrs` holds the attributes and must outlive the config.
inline cudaLaunchConfig_t cluster_config(dim3 grid, int threads, size_t smem, int splits, cudaStream_t stream,
                                         cudaLaunchAttribute (&attrs)[2], bool overlap = false) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = 0;
  if (splits > 1) {
    cudaLaunchAttribute& a = attrs[cfg.numAttrs++];
    a = {};
    a.id = cudaLaunchAttributeClusterDimension;
    a.val.clusterDim.x = static_cast<unsigned>(splits);
    a.val.clusterDim.y = 1;
    a.val.clusterDim.z = 1;
  }
  if (overlap && overlapped_launches()) {
    cudaLaunchAttribute& a = attrs[cfg.numAttrs++];
    a = {};
    a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    a.val.programmaticStreamSerializationAllowed = 1;
  }
  return cfg;
}

// Launches `kernel` on grid (splits, gy, gz) with clusters of (splits, 1, 1), so the blocks that
// share a strip can reduce through each other's shared memory; `overlap` as in cluster_config.
template <typename... KernelArgs, typename... Args>
void launch_split(void (*kernel)(KernelArgs...), dim3 grid, int threads, size_t smem, int splits,
                  bool overlap, cudaStream_t stream, const char* op, Args... args) {
  cudaLaunchAttribute attrs[2];
  const cudaLaunchConfig_t cfg = cluster_config(grid, threads, smem, splits, stream, attrs, overlap);
  RL_CUDA_CHECK(op, cudaLaunchKernelEx(&cfg, kernel, args...));
}

// How many clusters of `splits` (> 1) blocks of `kernel` the GPU holds at once (at least 1).
template <typename... KernelArgs>
int max_active_clusters(void (*kernel)(KernelArgs...), int threads, size_t smem, int splits, const char* op) {
  cudaLaunchAttribute attrs[2];
  const cudaLaunchConfig_t cfg = cluster_config(dim3(splits), threads, smem, splits, nullptr, attrs);
  int clusters = 0;
  RL_CUDA_CHECK(op, cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg));
  return std::max(clusters, 1);
}

// Host side of the 128-row-strip GEMMs (kernels/w4a16_gemm.cu, kernels/sm90a/w4a16_gemm_wgmma.cu):
// blocks of kStripThreads threads on a grid (splits, n-tiles, strips), each kernel described by its
// dynamic shared memory, block slots an SM and its split rule's two parameters (below).
inline constexpr int kStripThreads = 256;
inline constexpr int kStripRows = 128;  // output rows a block (8 mma M tiles)
struct StripLaunch {
  int smem;           // dynamic shared memory a block
  int blocks_per_sm;  // the blocks an SM holds (the split rule fills these slots)
  int min_groups;     // the split rule's floor of input groups a block
  bool eight_to_six;  // clusters of 8 always become 7 or 6 (see strip_splits)
};

// Spread launches: a launch that the SMs hold at k = ceil(blocks / SMs) blocks each, of a kernel that
// holds more, asks for more than 1 / (k + 1) of an SM's shared memory, so that no SM can take k + 1
// while another idles. In the w4a16 step's graph the block scheduler packed such launches unevenly
// (H100, 1.8b at B = 48, per-block stamps: w2's 96 blocks in clusters of 6 on 78 SMs, wqkv's pairs of 32,
// 128 blocks, on 79, the w13 unsplit, 128 blocks, on 90; perf/NOTES.md "fiftieth",
// bench/results/h100-26735be-wgmma-cta-trace), where alone, back to back, each launch's blocks land
// beside the previous launch's, evenly.
// The blocks an SM a launch is held to: k, or 0 where it is not held (k not below the kernel's `slots`,
// or above 3: beyond that one block more or less an SM matters little). The shared memory that holds
// it there is smem_holding_sm_to(k) (kernels/device_common.cuh, as decode attention holds its grids).
constexpr int spread_blocks_an_sm(int64_t blocks, int sms, int slots) {
  if (blocks <= 0 || sms <= 0) return 0;
  const int64_t k = (blocks + sms - 1) / sms;
  return k < slots && k <= 3 ? int(k) : 0;
}

// All of the SM's unified memory as shared memory, so that the kernel's blocks_per_sm blocks fit;
// once per kernel, before any launch and before the occupancy query of strip_splits, which counts it.
// The limit also admits a spread launch's (at most smem_holding_sm_to(1)).
template <auto kKernel>
void strip_opt_in(const StripLaunch& l, const char* op) {
  static const bool set =
      (set_dynamic_smem(kKernel, std::max(l.smem, smem_holding_sm_to(1, op)), true, op), true);
  (void)set;
}

// The dynamic shared memory of a launch of `clusters` clusters of `splits` blocks: spread (above) where
// spread_blocks_an_sm holds it to k and every cluster still fits at once at k blocks an SM; else l.smem.
// Unsplit blocks always fit (k * SMs >= blocks, k < slots); clusters must also fit a GPC's SMs.
template <auto kKernel>
int strip_launch_smem(const StripLaunch& l, int splits, int clusters, const char* op) {
  const int k = spread_blocks_an_sm(int64_t{splits} * clusters, current_sm_count(op), l.blocks_per_sm);
  if (k == 0) return l.smem;
  const int smem = std::max(l.smem, smem_holding_sm_to(k, op));
  if (splits == 1) return smem;
  static std::array<std::array<int, 4>, kMaxSplits + 1> fit{};  // clusters held at once, 0: not asked
  int& f = fit[splits][k];
  if (f == 0) f = max_active_clusters(kKernel, kStripThreads, smem, splits, op);
  return clusters <= f ? smem : l.smem;
}

// The cluster split-K rule (its reasons and measurements at kernels/w4a16_gemm.cu's auto_splits):
// split the input range only while the strips x n-tiles of bn rows leave block slots idle (one wave),
// in clusters of a power of two and into at least `min_groups` groups a block; clusters of 2-4 halved
// while they do not all fit at once. A choice of 8 steps down to 7 where 8 needs a second wave and 7
// fits in one, and otherwise: to 6 where `eight_to_six` (the wgmma kernel), or where that fits in one
// wave and 7 does not (the tiled kernel). kKernel is a template argument so that each kernel asks the
// occupancy API once.
template <auto kKernel>
int strip_splits(const W4A16Weights& w, int n, int bn, const StripLaunch& l, int max_splits, const char* op) {
  strip_opt_in<kKernel>(l, op);
  const int strips = ceil_div(w.out, kStripRows), ntiles = ceil_div(n, bn);
  const int fill = l.blocks_per_sm * current_sm_count(op) / std::max(1, strips * ntiles);
  const int deep = std::max(1, w.in / kW4A16Group / l.min_groups);
  int splits = int(std::bit_floor(unsigned(std::clamp(fill, 1, std::min(max_splits, deep)))));
  if (splits == 1) return 1;
  // Clusters of each size the rule can pick resident at once, asked once (splits > 1 means sm_90).
  static const std::array<int, kMaxSplits + 1> fit = [&] {
    std::array<int, kMaxSplits + 1> f{};
    for (int s : {2, 4, 6, 7, 8}) f[s] = max_active_clusters(kKernel, kStripThreads, l.smem, s, op);
    return f;
  }();
  const int tiles = strips * ntiles;
  while (splits > 1 && splits <= 4 && tiles > fit[splits]) splits /= 2;
  if (splits == 8 && tiles > fit[8] && tiles <= fit[7]) return 7;
  if (splits == 8 && (l.eight_to_six || (tiles > fit[8] && tiles <= fit[6]))) return 6;
  return splits;
}

// One launch of kKernel(x, w, n, y, splits) over n-tiles of bn rows; splits 0 asks strip_splits.
template <auto kKernel, typename OutT>
void launch_strips(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits,
                   int max_splits, int bn, const StripLaunch& l, const char* op, bool overlap = false) {
  const int strips = ceil_div(w.out, kStripRows), ntiles = ceil_div(n, bn);
  require(ntiles <= 65535 && strips <= 65535, op, "n or out too large for the grid");
  strip_opt_in<kKernel>(l, op);
  if (splits == 0) splits = strip_splits<kKernel>(w, n, bn, l, max_splits, op);
  require(splits >= 1 && splits <= max_splits, op,
          "splits must be in 1.." + std::to_string(max_splits) + ", got " + std::to_string(splits));
  launch_split(kKernel, dim3(splits, ntiles, strips), kStripThreads,
               strip_launch_smem<kKernel>(l, splits, ntiles * strips, op), splits, overlap, stream, op, x, w,
               n, y, splits);
  RL_CUDA_CHECK_LAUNCH(op);
}

// Clusters exist from sm_90 on; older devices run unsplit.
inline int max_splits_on_device(const char* op) {
  static const int max_splits =
      current_device_attribute(cudaDevAttrComputeCapabilityMajor, op) >= 9 ? kMaxSplits : 1;
  return max_splits;
}

// The contract both kernels share.
inline void check_weights(const W4A16Weights& w, const char* op) {
  require(w.group == kW4A16Group, op, "group size must be 128, got " + std::to_string(w.group));
  require(w4a16_shape_ok(w.in, w.out), op,
          "in must be a positive multiple of 128 and out of 16, got in=" + std::to_string(w.in) +
              " out=" + std::to_string(w.out));
  require(w.qweight != nullptr && w.scale_zero != nullptr, op, "weight pointers must be set");
  require(aligned16(w.qweight) && aligned16(w.scale_zero), op, "weights must be 16-byte aligned");
}

}  // namespace ridgeline::cuda::w4a16
