// w4a16_gemv_cluster: the first W4A16 GEMV, kept beside kernels/w4a16_gemv.cu while
// bench/kernels/bench_w4a16.cu (BM_W4A16GemvVariants) measures the two on the same shapes; the loser
// goes. Same contract as w4a16_gemv but up to 8 rows: y[n, out] = x[n, in] W^T for n <= 8, W in the
// tile-packed layout (kernels/w4a16.cuh), fp32 accumulation on tensor cores, fp16 or fp32 out.
// FLOPs: 2*n*in*out. Bytes: in*out/2 (codes) + out*(in/128)*4 (scale, zero) + 2*n*in (x) + y.
// Bound: DRAM bandwidth on the packed weights.
//
// Each warp owns one 16-row strip of W (an mma M tile) and streams it along its block's input
// range with 16-byte loads (LDG.128, evict-first), two groups ahead in registers; a block is 8 warps
// = 128 output rows over one slice of the input range, with its slice of x staged once in shared
// memory in B-fragment order. Splits: when out/128 strips cannot fill the GPU (2 blocks per SM), up
// to 8 blocks of a cluster share a strip's input range and sum their partial tiles through
// distributed shared memory in rank order. On the H200 it reached 0.5-2.7 TB/s at n = 1 with a fixed
// cost of ~5-7 us per launch (perf/NOTES.md, "W4A16 GEMV"), the reason for the streamed kernel.
#include <algorithm>
#include <string>

#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kClusterMaxRows = 8;  // one mma N tile
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerBlock = 16 * kWarps;
// Halves of padding after each staged x row: a row stride of 64 (mod 128) bytes keeps the LDS.128
// of lanes gid and gid+1 (one quarter-warp phase) on different banks.
constexpr int kXPad = 32;
// Dynamic shared memory a block may take: two blocks per SM (228 KB) with room for the runtime.
constexpr size_t kMaxSmem = 110 * 1024;

size_t smem_bytes(int n, int k_len) {
  return size_t(n) * kRowsPerBlock * sizeof(float) + size_t(n) * (k_len + kXPad) * sizeof(half);
}

template <typename OutT>
__global__ void __launch_bounds__(kThreads, 2)
    w4a16_gemv_cluster_kernel(const half* __restrict__ x, W4A16Weights w, int n, OutT* __restrict__ y,
                              int splits) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int split = blockIdx.x;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int g0 = split * groups / splits, g1 = (split + 1) * groups / splits, ng = g1 - g0;
  const int k_len = ng * kW4A16Group, xs_stride = k_len + kXPad;
  float* red = reinterpret_cast<float*>(smem);  // [n][128] partial tile
  half* xs = reinterpret_cast<half*>(smem + size_t(n) * kRowsPerBlock * sizeof(float));  // [n][xs_stride]

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int mt = blockIdx.y * kWarps + warp;
  const bool active = mt < w.out / kW4A16TileRows;  // the last strip may be partial
  const uint4* wp = reinterpret_cast<const uint4*>(w.qweight) + int64_t{mt} * tiles_per_row * 32 + lane;
  const uint2* sp = reinterpret_cast<const uint2*>(w.scale_zero) + int64_t{mt} * groups * 8 + gid;

  // Groups gb, gb+1 (relative to g0): two tiles each, plus their scale/zero records.
  auto load = [&](uint4(&wv)[4], uint2(&sv)[2], int gb) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (gb + j < ng) {
        const int64_t g = g0 + gb + j;
        sv[j] = __ldg(sp + g * 8);
        wv[2 * j] = __ldcs(wp + (2 * g) * 32);  // streamed once: evict first
        wv[2 * j + 1] = __ldcs(wp + (2 * g + 1) * 32);
      }
    }
  };
  // Two register buffers, alternating, so the next batch's loads are in flight during the mma.
  // The first batch is requested before x is staged, so DRAM is busy from the start.
  uint4 wa[4] = {}, wb[4] = {};
  uint2 sa[2] = {}, sb[2] = {};
  if (active) load(wa, sa, 0);

  // Stage x[0..n)[k0 .. k0+k_len) in B-fragment order: within each 32-input chunk, input
  // 16a + 8b + 2t + e goes to word 4t + 2a + b, so lane (gid, tig) finds b0, b1 of two
  // consecutive K steps in one 16-byte word at 4*tig. Four loads are issued before their stores,
  // so a long slice waits for L2 a quarter as often.
  {
    constexpr int kBatch = 4;
    const int pieces = k_len / 8;  // 16-byte pieces per row
    const int total = n * pieces;
    const int64_t k0 = int64_t{g0} * kW4A16Group;
    for (int p0 = threadIdx.x; p0 < total; p0 += kBatch * kThreads) {
      uint4 v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int p = p0 + b * kThreads;
        if (p < total)
          v[b] = __ldg(reinterpret_cast<const uint4*>(x + int64_t{p / pieces} * w.in + k0) + p % pieces);
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int p = p0 + b * kThreads;
        if (p >= total) break;
        const int r = p / pieces, c = p % pieces;
        uint32_t* dst = reinterpret_cast<uint32_t*>(xs + size_t(r) * xs_stride) + 16 * (c >> 2) + (c & 3);
        dst[0] = v[b].x, dst[4] = v[b].y, dst[8] = v[b].z, dst[12] = v[b].w;
      }
    }
  }
  __syncthreads();

  float acc[2][4] = {};  // two accumulators: even and odd K steps, for two independent mma chains
  if (active) {
    const bool has_row = gid < n;  // the mma's column gid is batch row gid; others stay zero
    const uint4* xrow = reinterpret_cast<const uint4*>(xs + size_t(has_row ? gid : 0) * xs_stride) + tig;
    auto compute = [&](const uint4(&wv)[4], const uint2(&sv)[2], int gb) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (gb + j >= ng) break;
        const w4a16::GroupScale gs = w4a16::group_scale(sv[j]);
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int chunk = 4 * (gb + j) + 2 * u;  // first 32-input chunk of this tile
          const uint4 zero = make_uint4(0, 0, 0, 0);
          const uint4 xa = has_row ? xrow[4 * chunk] : zero, xb = has_row ? xrow[4 * chunk + 4] : zero;
          uint32_t a[4];
          w4a16::dequant(wv[2 * j + u].x, gs, a);
          mma_m16n8k16(acc[0], a, xa.x, xa.y);
          w4a16::dequant(wv[2 * j + u].y, gs, a);
          mma_m16n8k16(acc[1], a, xa.z, xa.w);
          w4a16::dequant(wv[2 * j + u].z, gs, a);
          mma_m16n8k16(acc[0], a, xb.x, xb.y);
          w4a16::dequant(wv[2 * j + u].w, gs, a);
          mma_m16n8k16(acc[1], a, xb.z, xb.w);
        }
      }
    };
    for (int gb = 0; gb < ng; gb += 4) {
      if (gb + 2 < ng) load(wb, sb, gb + 2);
      compute(wa, sa, gb);
      if (gb + 2 >= ng) break;
      if (gb + 4 < ng) load(wa, sa, gb + 4);
      compute(wb, sb, gb + 2);
    }

    // C fragment: c0, c1 = rows gid, batch rows 2tig, 2tig+1; c2, c3 = rows gid+8.
    const int r = 16 * warp + gid, c = 2 * tig;
    if (c < n) {
      red[c * kRowsPerBlock + r] = acc[0][0] + acc[1][0];
      red[c * kRowsPerBlock + r + 8] = acc[0][2] + acc[1][2];
    }
    if (c + 1 < n) {
      red[(c + 1) * kRowsPerBlock + r] = acc[0][1] + acc[1][1];
      red[(c + 1) * kRowsPerBlock + r + 8] = acc[0][3] + acc[1][3];
    }
  }
  w4a16::reduce_splits_and_store(red, kRowsPerBlock, n, splits, split, y, 0, blockIdx.y * kRowsPerBlock,
                                 w.out);
}

// Enough blocks for one wave of two per SM: split the input range only as far as the strips leave
// SMs idle, and further where one block's slice of x would not fit in shared memory.
int choose_splits(int n, int in, int out, int max_splits) {
  const int groups = in / kW4A16Group, strips = ceil_div(out, kRowsPerBlock);
  const int limit = std::min(max_splits, groups);
  int splits = std::clamp(2 * current_sm_count("w4a16_gemv_cluster") / strips, 1, limit);
  while (splits < limit && smem_bytes(n, ceil_div(groups, splits) * kW4A16Group) > kMaxSmem) ++splits;
  return splits;
}

template <typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits) {
  const char* op = "w4a16_gemv_cluster";
  w4a16::check_weights(w, op);
  require(n >= 0 && n <= kClusterMaxRows, op,
          "n must be in 0.." + std::to_string(kClusterMaxRows) + ", got " + std::to_string(n));
  require(aligned16(x), op, "x must be 16-byte aligned");
  if (n == 0) return;
  const int groups = w.in / kW4A16Group, max_splits = std::min(w4a16::max_splits_on_device(op), groups);
  if (splits == 0) splits = choose_splits(n, w.in, w.out, max_splits);
  require(splits >= 1 && splits <= max_splits, op,
          "splits must be in 1.." + std::to_string(max_splits) + ", got " + std::to_string(splits));
  const size_t smem = smem_bytes(n, ceil_div(groups, splits) * kW4A16Group);
  require(
      smem <= kMaxSmem, op,
      "in=" + std::to_string(w.in) + " is too long for " + std::to_string(n) + " rows of x in shared memory");
  static const bool smem_set = [op] {
    RL_CUDA_CHECK(op, cudaFuncSetAttribute(w4a16_gemv_cluster_kernel<OutT>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(kMaxSmem)));
    return true;
  }();
  (void)smem_set;
  const dim3 grid(splits, ceil_div(w.out, kRowsPerBlock));
  w4a16::launch_split(w4a16_gemv_cluster_kernel<OutT>, grid, kThreads, smem, splits, stream, op, x, w, n, y,
                      splits);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

void w4a16_gemv_cluster(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                        int splits) {
  launch(x, w, n, y, stream, splits);
}
void w4a16_gemv_cluster(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                        int splits) {
  launch(x, w, n, y, stream, splits);
}

}  // namespace ridgeline::cuda
