// w4a16_gemv: y[n, out] = x[n, in] W^T for decode batches of n <= kW4A16GemvMaxRows rows, W in the
// tile-packed W4A16 layout (kernels/w4a16.cuh), fp32 accumulation on tensor cores, fp16 or fp32 out.
// FLOPs: 2*n*in*out. Bytes: in*out/2 (codes) + out*(in/128)*4 (scale, zero) + 2*n*in (x) + y.
// Bound: DRAM bandwidth on the packed weights (4 bits a weight, a quarter of fp16's bytes); the
// target is >= 0.85 of the H200's 4.6 TB/s on the 7b shapes at n = 1, and for small weights a launch
// that costs one DRAM round trip, not several.
//
// Streamed: a block owns `tiles` 16-row strips of W (mma M tiles) and `warps` warps, each of which
// streams one contiguous slice of the input range of those strips (a strip's packed codes are
// consecutive 512-byte tiles along the input, so a slice is one contiguous run of bytes) through
// its own ring of `stages` cp.async stages in shared memory. A stage is one group of 128 inputs:
// the strips' codes (1 KB each), their scale/zero records and the group's 128 inputs of each x row.
// Up to 8 rows x is one mma N tile; 9..16 rows take two, and each dequantized weight fragment feeds
// both (the dequantization, not the mma, is the arithmetic that costs here).
// The weight copies carry no L2 eviction hint: cp.async under a createpolicy.fractional policy died
// with "illegal instruction" on the H200 with nvcc 13 (a known ptxas problem with fractional policies
// on cp.async; Triton stopped emitting them for the same reason).
// Nothing waits for anything outside the warp until the end: no cluster, no block barrier before
// the first weight byte is requested, no x staging pass; stages-1 groups of weights per warp are in
// flight from the first instruction, before the kernel even waits for the one before it to finish
// (an overlapped launch, kernels/overlap.cuh: worth ~1 us per GEMV in the decode step). The codes are
// unpacked to exact integers (w4a16::dequant_codes), the mma sums a group in fp32, and the group's scale is
// applied to that sum in fp32. At the end the warps' partial tiles are summed through shared memory in warp
// order (deterministic). Why not the first kernel (a cluster split-K GEMV, removed once this one measured
// as fast or faster on every 1.8b and 7b weight): at most ~8 16-byte loads per lane in flight over 16 warps
// per SM, a block barrier behind the x staging, and cluster launches of 8 blocks per strip that the GPU
// could not place in one wave; the notes (perf/NOTES.md) carry the numbers.
#include <algorithm>
#include <string>

#include "kernels/cp_async.cuh"
#include "kernels/overlap.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kMaxWarps = 16;
// One stage, per strip: two packed 64-input tiles (32 lanes x 16 B each) and 8 records of 8 B.
constexpr int kCodeBytes = 2 * 32 * 16;
constexpr int kRecordBytes = 8 * 8;
// One stage, per x row: 128 inputs, padded by 16 B so that the ldmatrix of 8 rows (a 272-byte
// stride = 68 words) touches 32 distinct banks.
constexpr int kXRowBytes = kW4A16Group * 2 + 16;

__host__ __device__ constexpr int stage_bytes(int tiles, int n) {
  return tiles * (kCodeBytes + kRecordBytes) + n * kXRowBytes;
}

__device__ __forceinline__ void store_out(half* p, float v) {
  *p = __float2half_rn(v);
}
__device__ __forceinline__ void store_out(float* p, float v) {
  *p = v;
}

// kNT: mma N tiles of 8 batch rows (n <= 8 * kNT); each dequantized A fragment feeds kNT mma.
template <int kTiles, int kNT, int kStages, typename OutT>
__global__ void __launch_bounds__(kMaxWarps * 32, 1)
    w4a16_gemv_kernel(const half* __restrict__ x, W4A16Weights w, int n, OutT* __restrict__ y) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2;
  const int tig = lane & 3;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows, mt0 = blockIdx.x * kTiles;
  const int g0 = warp * groups / warps, ng = (warp + 1) * groups / warps - g0;
  const int sbytes = stage_bytes(kTiles, n);
  unsigned char* ring = smem + size_t(warp) * kStages * sbytes;

  // Group g0 + i into ring slot `slot`: codes and records of each strip (issue_w), then x (issue_x).
  // Lane L copies 16-byte chunk L of each packed tile (the one it reads back), lanes 0..4*kTiles-1
  // the records, and the lanes share the 16*n chunks of x. Strips past the weight's end are neither
  // loaded nor used.
  auto issue_w = [&](int slot, int i) {
    unsigned char* st = ring + slot * sbytes;
    const int g = g0 + i;
#pragma unroll
    for (int r = 0; r < kTiles; ++r) {
      if (mt0 + r >= mtiles) break;
      const uint4* src =
          reinterpret_cast<const uint4*>(w.qweight) + (int64_t{mt0 + r} * tiles_per_row + 2 * g) * 32 + lane;
      cp_async_16(st + ((2 * r) * 32 + lane) * 16, src, true);
      cp_async_16(st + ((2 * r + 1) * 32 + lane) * 16, src + 32, true);
    }
    if (lane < 4 * kTiles && mt0 + (lane >> 2) < mtiles) {
      const uint4* src = reinterpret_cast<const uint4*>(w.scale_zero) +
                         (int64_t{mt0 + (lane >> 2)} * groups + g) * 4 + (lane & 3);
      cp_async_16(st + kTiles * kCodeBytes + lane * 16, src, true);
    }
  };
  auto issue_x = [&](int slot, int i) {
    const int g = g0 + i;
    unsigned char* xs = ring + slot * sbytes + kTiles * (kCodeBytes + kRecordBytes);
    for (int c = lane; c < 16 * n; c += 32) {
      const int row = c >> 4, chunk = c & 15;
      w4a16::cp_async_16_l1(xs + row * kXRowBytes + chunk * 16,
                            x + int64_t{row} * w.in + int64_t{g} * kW4A16Group + chunk * 8);
    }
  };

  // ldmatrix.x4 over a pair of K steps: matrix q = lane / 8 is K step (q >> 1) of the pair, inputs
  // 8 * (q & 1) .. +7, for batch rows 8t + lane % 8 of N tile t (rows past n read row 0: their mma
  // columns are never stored). Register q of lane (gid, tig) is then x[8t + gid][k0 + 2tig .. +1]:
  // b0, b1 of two K steps.
  int xoff[kNT];
#pragma unroll
  for (int t = 0; t < kNT; ++t) {
    const int xrow = 8 * t + (lane & 7) < n ? 8 * t + (lane & 7) : 0;
    xoff[t] = kTiles * (kCodeBytes + kRecordBytes) + xrow * kXRowBytes +
              ((lane >> 4) * 16 + ((lane >> 3) & 1) * 8) * 2;
  }

  float acc[kTiles][kNT][4] = {};
  // One group from ring slot `slot`: per strip, 8 K steps (2 packed tiles x 4 words) summed exactly
  // in `part`, then scaled into acc: rows gid by s, rows gid + 8 by s / 16 (dequant_codes).
  auto compute = [&](int slot) {
    const unsigned char* st = ring + slot * sbytes;
    uint4 raw[kTiles][2];
    uint2 rec[kTiles];
    half2 zlo[kTiles], zhi[kTiles];
    float part[kTiles][kNT][4];
#pragma unroll
    for (int r = 0; r < kTiles; ++r) {
      if (mt0 + r >= mtiles) break;
      raw[r][0] = *reinterpret_cast<const uint4*>(st + ((2 * r) * 32 + lane) * 16);
      raw[r][1] = *reinterpret_cast<const uint4*>(st + ((2 * r + 1) * 32 + lane) * 16);
      rec[r] = *reinterpret_cast<const uint2*>(st + kTiles * kCodeBytes + (r * 8 + gid) * 8);
      zlo[r] = __hadd2(__high2half2(w4a16::as_half2(rec[r].x)), __float2half2_rn(1024.0f));
      zhi[r] = __hfma2(__high2half2(w4a16::as_half2(rec[r].y)), __float2half2_rn(16.0f),
                       __float2half2_rn(1024.0f));
#pragma unroll
      for (int t = 0; t < kNT; ++t)
#pragma unroll
        for (int k = 0; k < 4; ++k) part[r][t][k] = 0.0f;
    }
#pragma unroll
    for (int kp = 0; kp < 4; ++kp) {  // K steps 2kp, 2kp+1 of the group: packed tile kp/2, words 2(kp%2)..+1
      uint32_t b[kNT][4];
#pragma unroll
      for (int t = 0; t < kNT; ++t) w4a16::ldmatrix_x4(b[t], st + xoff[t] + kp * 64);
#pragma unroll
      for (int r = 0; r < kTiles; ++r) {
        if (mt0 + r >= mtiles) break;
        uint32_t a[4];
        w4a16::dequant_codes(w4a16::word_of(raw[r][kp >> 1], 2 * (kp & 1)), zlo[r], zhi[r], a);
#pragma unroll
        for (int t = 0; t < kNT; ++t) mma_m16n8k16(part[r][t], a, b[t][0], b[t][1]);
        w4a16::dequant_codes(w4a16::word_of(raw[r][kp >> 1], 2 * (kp & 1) + 1), zlo[r], zhi[r], a);
#pragma unroll
        for (int t = 0; t < kNT; ++t) mma_m16n8k16(part[r][t], a, b[t][2], b[t][3]);
      }
    }
#pragma unroll
    for (int r = 0; r < kTiles; ++r) {
      if (mt0 + r >= mtiles) break;
      const float s_lo = __low2float(w4a16::as_half2(rec[r].x));
      const float s_hi = __low2float(w4a16::as_half2(rec[r].y)) * 0.0625f;
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        acc[r][t][0] = fmaf(s_lo, part[r][t][0], acc[r][t][0]);
        acc[r][t][1] = fmaf(s_lo, part[r][t][1], acc[r][t][1]);
        acc[r][t][2] = fmaf(s_hi, part[r][t][2], acc[r][t][2]);
        acc[r][t][3] = fmaf(s_hi, part[r][t][3], acc[r][t][3]);
      }
    }
  };

  // The classic multistage pipeline, per warp: group i + kStages - 1 is requested while group i is
  // multiplied. One commit per step (empty ones too) keeps the wait count exact. The __syncwarp
  // after the wait makes every lane's copies of group i visible to the others (x and the records
  // are read across lanes) and proves that every lane has finished with the slot refilled next.
  // The first stages' weights go out before the previous kernel has finished (kernels/overlap.cuh);
  // they join the first commit group, x follows once that kernel's output is visible.
  auto issue = [&](int slot, int i) {
    issue_w(slot, i);
    issue_x(slot, i);
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    if (s < ng) issue_w(s, s);
  overlap_enter();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ng) issue_x(s, s);
    cp_async_commit();
  }
  for (int i = 0; i < ng; ++i) {
    cp_async_wait<kStages - 2>();
    __syncwarp();
    if (i + kStages - 1 < ng) issue((i + kStages - 1) % kStages, i + kStages - 1);
    cp_async_commit();
    compute(i % kStages);
  }
  cp_async_wait<0>();
  __syncwarp();

  // This warp's partial tile into its own ring (no copy is in flight any more): part[c][row] for
  // batch rows c < n and the block's 16 * kTiles output rows. C fragment of N tile t: c0, c1 = row
  // gid, batch rows 8t + 2tig, +1; c2, c3 = row gid + 8.
  constexpr int kRows = 16 * kTiles;
  float* mine = reinterpret_cast<float*>(ring);
#pragma unroll
  for (int r = 0; r < kTiles; ++r) {
    const int row = 16 * r + gid;
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
      const int c = 8 * t + 2 * tig;
      const float(&a)[4] = acc[r][t];
      if (c < n) mine[c * kRows + row] = a[0], mine[c * kRows + row + 8] = a[2];
      if (c + 1 < n) mine[(c + 1) * kRows + row] = a[1], mine[(c + 1) * kRows + row + 8] = a[3];
    }
  }
  __syncthreads();
  // Sum over the warps in order; consecutive threads take consecutive output rows (coalesced).
  for (int e = threadIdx.x; e < kRows * n; e += blockDim.x) {
    const int col = e / kRows, row = e % kRows, o = mt0 * kW4A16TileRows + row;
    if (o >= w.out) continue;
    float v = 0.0f;
    for (int k = 0; k < warps; ++k)
      v += reinterpret_cast<const float*>(smem + size_t(k) * kStages * sbytes)[col * kRows + row];
    store_out(y + int64_t{col} * w.out + o, v);
  }
}

// Shared memory a block may take (the opt-in maximum of the device), asked once.
int max_smem_per_block(const char* op) {
  static const int bytes = [op] {
    int dev = 0, v = 0;
    RL_CUDA_CHECK(op, cudaGetDevice(&dev));
    RL_CUDA_CHECK(op, cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return v;
  }();
  return bytes;
}

size_t smem_bytes(const W4A16GemvConfig& c, int n) {
  return size_t(c.warps) * c.stages * stage_bytes(c.tiles, n);
}

// The defaults, as BM_W4A16GemvVariants measured them (H200, 2026-12-01, perf/NOTES.md).
// Up to 8 rows (M = 1 and 8 measured): one strip per block (two were slower everywhere). Warps per
// block by strips per SM: 16 when there are fewer strips than SMs and n <= 2 (1.8b w2 at M=1: 5.6 us
// vs 6.7 with 8), 8 up to two strips per SM, 4 beyond (7b wqkv 7.5 us vs 9.5 with 8, 1.8b w13 9.5 vs
// 12.1, 7b w13 23.4 vs 30.4): with many strips, fewer warps each stream more groups and more blocks
// fit beside each other. 8 stages for n <= 2 at 8+ warps, 4 otherwise (4-warp blocks were as fast
// or faster with 4).
// 9..16 rows (M = 16 measured): x is 4.3 KB a stage, so it is what limits. Two strips per block
// (each staged x row serves twice the weights) once there are as many strips as SMs, else one (1.8b
// wo and w2, 128 strips: 3.0 and 8.1 us with one, 3.6 and 11.8 with two); 8 warps while the blocks
// fit in one wave, 4 beyond (7b wqkv, 192 blocks: 10.9 us with 4, 13.5 with 8); 4 stages.
W4A16GemvConfig choose_config(int n, int in, int out, const char* op) {
  W4A16GemvConfig c;
  const int sms = current_sm_count(op), strips = ceil_div(out, kW4A16TileRows), groups = in / kW4A16Group;
  if (n > 8) {
    c.tiles = strips >= sms ? 2 : 1;
    c.warps = std::min(ceil_div(strips, c.tiles) <= sms ? 8 : 4, groups);
    c.stages = 4;
  } else {
    c.tiles = 1;
    c.warps = std::min(strips < sms && n <= 2 ? 16 : strips <= 2 * sms ? 8 : 4, groups);
    c.stages = n <= 2 && c.warps >= 8 ? 8 : 4;
  }
  while (smem_bytes(c, n) > size_t(max_smem_per_block(op)) && c.stages > 4) c.stages = 4;
  while (smem_bytes(c, n) > size_t(max_smem_per_block(op)) && c.warps > 1) c.warps /= 2;
  return c;
}

template <int kTiles, int kNT, int kStages, typename OutT>
void launch_config(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int warps,
                   size_t smem, const char* op) {
  static const bool smem_set = [op] {
    RL_CUDA_CHECK(op,
                  cudaFuncSetAttribute(w4a16_gemv_kernel<kTiles, kNT, kStages, OutT>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, max_smem_per_block(op)));
    return true;
  }();
  (void)smem_set;
  const int blocks = ceil_div(w.out / kW4A16TileRows, kTiles);
  launch_overlapped(w4a16_gemv_kernel<kTiles, kNT, kStages, OutT>, blocks, warps * 32, smem, stream, op, x, w,
                    n, y);
}

template <int kNT, typename OutT>
void launch_tiles(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream,
                  const W4A16GemvConfig& c, size_t smem, const char* op) {
  if (c.tiles == 1 && c.stages == 8) return launch_config<1, kNT, 8>(x, w, n, y, stream, c.warps, smem, op);
  if (c.tiles == 1) return launch_config<1, kNT, 4>(x, w, n, y, stream, c.warps, smem, op);
  if (c.stages == 8) return launch_config<2, kNT, 8>(x, w, n, y, stream, c.warps, smem, op);
  launch_config<2, kNT, 4>(x, w, n, y, stream, c.warps, smem, op);
}

template <typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, W4A16GemvConfig c) {
  const char* op = "w4a16_gemv";
  w4a16::check_weights(w, op);
  require(n >= 0 && n <= kW4A16GemvMaxRows, op,
          "n must be in 0.." + std::to_string(kW4A16GemvMaxRows) + ", got " + std::to_string(n));
  require(aligned16(x), op, "x must be 16-byte aligned");
  if (n == 0) return;
  const W4A16GemvConfig chosen = choose_config(n, w.in, w.out, op);
  if (c.tiles == 0) c.tiles = chosen.tiles;
  if (c.warps == 0) c.warps = chosen.warps;
  if (c.stages == 0) c.stages = chosen.stages;
  require(c.tiles == 1 || c.tiles == 2, op, "tiles must be 1 or 2, got " + std::to_string(c.tiles));
  require(c.stages == 4 || c.stages == 8, op, "stages must be 4 or 8, got " + std::to_string(c.stages));
  require(c.warps >= 1 && c.warps <= kMaxWarps, op,
          "warps must be in 1.." + std::to_string(kMaxWarps) + ", got " + std::to_string(c.warps));
  const size_t smem = smem_bytes(c, n);
  require(smem <= size_t(max_smem_per_block(op)), op,
          std::to_string(c.warps) + " warps x " + std::to_string(c.stages) + " stages x " +
              std::to_string(c.tiles) + " tiles need " + std::to_string(smem) +
              " bytes of shared memory at n=" + std::to_string(n) + ", more than a block may have");
  if (n <= 8) return launch_tiles<1>(x, w, n, y, stream, c, smem, op);
  launch_tiles<2>(x, w, n, y, stream, c, smem, op);
}

}  // namespace

void w4a16_gemv(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                const W4A16GemvConfig& config) {
  launch(x, w, n, y, stream, config);
}
void w4a16_gemv(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                const W4A16GemvConfig& config) {
  launch(x, w, n, y, stream, config);
}

}  // namespace ridgeline::cuda
