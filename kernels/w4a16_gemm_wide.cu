// w4a16_gemm_wide: y[n, out] = x[n, in] W^T for large batches (prefill, decode batches of hundreds
// of rows), W in the tile-packed W4A16 layout (kernels/w4a16.cuh), fp16 mma.sync m16n8k16 with fp32
// accumulation, fp16 or fp32 out. Chosen over the tiled kernel (kernels/w4a16_gemm.cu) by
// w4a16_gemm_use_wide (kernels/w4a16_gemm_paths.cuh).
// FLOPs: 2*n*in*out. Bytes from DRAM: in*out/2 + out*(in/128)*4 (weights; L2 serves the re-reads of
// the other n-tiles, which run in the same wave) + 2*n*in + 2*n*out (fp16 y). At n >= 128 this is
// compute-bound (>= 512 FLOPs per weight byte); the bound is the tensor rate, and what decides how
// near it gets is the number of other instructions the SM issues per mma and the L2 bytes per FLOP:
//   - A block computes 256 output rows (16 mma M tiles) x 128 batch rows. Warp w owns M tiles 2w and
//     2w+1 for all 128 batch rows: each 8-weight dequantized A fragment (13 instructions,
//     w4a16::dequant) feeds 16 mma, against 8 in the tiled kernel's 64-row tile: per k-step a warp
//     issues 32 mma, 26 dequant instructions and 8 ldmatrix.x4 (the x fragments of 128 rows).
//     Every weight is unpacked once per block, no K split inside the block, no partial-sum merge.
//     (A 4 x 2 warp layout, 4 M tiles x 64 batch rows per warp, measured 6-8% slower everywhere.)
//   - Per group of 128 inputs a block reads 16 KB of codes + 1 KB of scale/zero + 32 KB of x for
//     8.4 MFLOP: 167 FLOP per L2 byte (the tiled 128x64 tile: 85), 2.4 TB/s of L2 at 400 TFLOP/s.
//   - One group per pipeline stage, 4 stages of cp.async (3 in flight while one is multiplied,
//     147 KB per SM), one block of 8 warps per SM (128 fp32 accumulators per thread).
//   - x rows are stored with their 16-byte chunks XOR-swizzled by row (chunk ^ (row & 7)), so every
//     ldmatrix of 8 rows hits 8 distinct bank groups; the codes are read as one 16-byte word per
//     lane (4 k-steps), the scale/zero record as a broadcast.
//   - Blocks run split, then n-tile fastest (blockIdx.x, .y; strips in .z), so a wave holds a few
//     256-row strips of W against every n-tile: W is read from DRAM about once, x stays in L2.
//   - The fp32 tile goes through shared memory (conflict-free stride) and leaves as 16-byte stores
//     of 8 consecutive outputs, so y must be 16-byte aligned (the chooser checks).
//   - When 256 x 128 tiles leave SMs idle (mid batches on the smaller weights), a cluster of up to 4
//     blocks splits a tile's input range; each block keeps its fp32 partial tile in its shared memory
//     and stores its share of the outputs summed over the cluster in rank order (sm_90 distributed
//     shared memory: one launch, no workspace), as the tiled kernel does.
// Rows past n (x zero-filled on the way in) and past out (codes and scales zero-filled) are computed
// as zeros and never stored. Deterministic: fixed summation order within and across blocks.
#include <algorithm>
#include <string>

#include "kernels/cp_async.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMTiles = kW4A16WideRows / kW4A16TileRows;  // 16: two per warp
constexpr int kW = kMTiles * 1024;          // codes of one group: [mtile][packed tile][lane][16 B]
constexpr int kSz = kMTiles * 64;           // scale/zero records: [mtile][gid][8 B]
constexpr int kXRow = kW4A16Group * 2;      // 256 bytes of x per batch row and group
constexpr int kRedLd = kW4A16WideRows + 4;  // floats per batch row of the fp32 tile: conflict-free

// Per block width BN (batch rows): 128 (the automatic choice: 128 accumulators per thread, one
// block per SM, 4 stages of 49 KB) or 64 (an experiment for M = 64..127: 64 accumulators, so two
// blocks per SM in 128 registers, 3 stages of 33 KB each).
template <int BN>
struct Wide {
  static constexpr int kBlocksPerSm = BN == 128 ? 1 : 2;
  static constexpr int kStages = BN == 128 ? 4 : 3;
  static constexpr int kStage = kW + kSz + BN * kXRow;  // 50176 bytes at BN = 128
  static constexpr int kRed = BN * kRedLd * 4;
  static constexpr int kSmem = std::max(kStages * kStage, kRed);
  static_assert(kSmem * kBlocksPerSm <= 227 * 1024, "shared memory of an SM on sm_90");
};

// 8 fp32 -> 8 consecutive outputs, one 16-byte store (two for float).
__device__ __forceinline__ void store8(half* dst, float4 a, float4 b) {
  uint4 v;
  v.x = pack_half2(a.x, a.y), v.y = pack_half2(a.z, a.w), v.z = pack_half2(b.x, b.y),
  v.w = pack_half2(b.z, b.w);
  *reinterpret_cast<uint4*>(dst) = v;
}
__device__ __forceinline__ void store8(float* dst, float4 a, float4 b) {
  reinterpret_cast<float4*>(dst)[0] = a;
  reinterpret_cast<float4*>(dst)[1] = b;
}

template <int BN, typename OutT>
__global__ void __launch_bounds__(kThreads, Wide<BN>::kBlocksPerSm)
    w4a16_gemm_wide_kernel(const half* __restrict__ x, W4A16Weights w, int n, OutT* __restrict__ y,
                           int splits) {
  // kWM = M tiles per warp: 2, so the 8 warps lie along the output rows, each over all BN batch rows.
  constexpr int kWM = 2;
  constexpr int kBN = BN, kStages = Wide<BN>::kStages, kStage = Wide<BN>::kStage;
  constexpr int kWarpsM = kMTiles / kWM, kCols = kBN * kWarpsM / kWarps;  // batch rows per warp
  static_assert(kWarpsM * (kBN / kCols) == kWarps, "the warps tile the block");
  extern __shared__ __align__(128) unsigned char smem[];
  const int split = blockIdx.x, n0 = blockIdx.y * kBN, mt0 = blockIdx.z * kMTiles;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int g0 = split * groups / splits, ng = (split + 1) * groups / splits - g0;  // this block's groups
  const int mtiles = w.out / kW4A16TileRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;

  // Each thread's share of a stage: codes: 16-byte pieces tid + 256i (i < 4) = piece tid & 63 of
  // M tile (tid >> 6) + 4i; scale/zero: threads < 64, piece tid & 3 of M tile tid >> 2; x: rows
  // (tid >> 4) + 16i (i < BN/16), 16-byte chunk tid & 15 (8 inputs). Pieces past the weight's end
  // or past n are zero-filled (src-size 0; the address stays valid).
  // Recomputed per stage from tid and the kernel parameters (a few integer instructions per
  // copy, per 128-256 mma of the warp) rather than held: the accumulators leave no registers spare.
  const uint4* wq = reinterpret_cast<const uint4*>(w.qweight);
  const uint4* wsz = reinterpret_cast<const uint4*>(w.scale_zero);
  auto load_stage = [&](int slot, int g) {
    unsigned char* base = smem + slot * kStage;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int mt = mt0 + (tid >> 6) + 4 * i;
      const bool ok = mt < mtiles;
      cp_async_16(base + tid * 16 + i * (kThreads * 16),
                  wq + (int64_t{ok ? mt : 0} * tiles_per_row + 2 * g) * 32 + (tid & 63), ok);
    }
    if (tid < 4 * kMTiles) {
      const int mt = mt0 + (tid >> 2);
      const bool ok = mt < mtiles;
      cp_async_16(base + kW + tid * 16, wsz + (int64_t{ok ? mt : 0} * groups + g) * 4 + (tid & 3), ok);
    }
    const int x_row = tid >> 4, x_chunk = tid & 15;
    unsigned char* x_dst = base + kW + kSz + x_row * kXRow + ((x_chunk ^ (x_row & 7)) * 16);
#pragma unroll
    for (int i = 0; i < kBN / 16; ++i) {
      const int r = n0 + x_row + 16 * i;
      const bool ok = r < n;
      cp_async_16(x_dst + i * 16 * kXRow, x + int64_t{ok ? r : 0} * w.in + g * kW4A16Group + x_chunk * 8, ok);
    }
  };

  float acc[kWM][kCols / 8][4] = {};
  const int wm = warp % kWarpsM, wn = warp / kWarpsM;  // this warp's M tiles kWM*wm.., batch rows kCols*wn..

  // ldmatrix rows: lanes 8q..8q+7 address matrix q = (n-tile half q >> 1, K half q & 1), row lane & 7.
  const int q = lane >> 3, rr = lane & 7;
  auto compute = [&](int slot, int) {
    const unsigned char* base = smem + slot * kStage;
    const uint4* ws = reinterpret_cast<const uint4*>(base) + kWM * wm * 64 + lane;  // first M tile, tile 0
    const uint2* ss = reinterpret_cast<const uint2*>(base + kW) + kWM * wm * 8 + gid;
    const half* xs =
        reinterpret_cast<const half*>(base + kW + kSz) + (kCols * wn + 8 * (q >> 1) + rr) * kW4A16Group;
    w4a16::GroupScale gs[kWM];
#pragma unroll
    for (int i = 0; i < kWM; ++i) gs[i] = w4a16::group_scale(ss[8 * i]);
      // The group's two packed tiles of 64 inputs. Not unrolled: unrolled, ptxas keeps both tiles'
      // unpacked fragments alive next to the 128 accumulators and spills (255 registers); rolled,
      // 244-252 and none, for one loop branch per 128 mma.
#pragma unroll 1
    for (int kt = 0; kt < 2; ++kt) {
      uint4 raw[kWM];
#pragma unroll
      for (int i = 0; i < kWM; ++i) raw[i] = ws[64 * i + 32 * kt];
#pragma unroll(BN == 64 ? 2 : 4)  // BN = 64: fits 128 registers (unrolled by 4 it spills)
      for (int ks = 0; ks < 4; ++ks) {
        uint32_t a[kWM][4];
#pragma unroll
        for (int i = 0; i < kWM; ++i) w4a16::dequant(w4a16::word_of(raw[i], ks), gs[i], a[i]);
        const half* xk = xs + (((kt * 8 + ks * 2 + (q & 1)) ^ rr) * 8);  // this K step's chunk, swizzled
#pragma unroll
        for (int jp = 0; jp < kCols / 16; ++jp) {
          uint32_t b[4];
          ldmatrix_x4(b, xk + 16 * jp * kW4A16Group);
#pragma unroll
          for (int i = 0; i < kWM; ++i) {
            mma_m16n8k16(acc[i][2 * jp], a[i], b[0], b[1]);
            mma_m16n8k16(acc[i][2 * jp + 1], a[i], b[2], b[3]);
          }
        }
      }
    }
  };

  // After the pipeline every warp is done with the stages: their memory becomes the fp32 tile.
  block_pipeline<kStages>(
      ng, [&](int slot, int i) { load_stage(slot, g0 + i); }, compute);

  // red[c * kRedLd + r]: batch row c, output row r of the strip. Lane (gid, tig) writes banks
  // 8 * tig + gid (kRedLd * 2 = 8 mod 32): no conflicts.
  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int i = 0; i < kWM; ++i)
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
      const int r = 16 * (kWM * wm + i) + gid, c = kCols * wn + 8 * j + 2 * tig;
      float* p0 = red + c * kRedLd + r;
      float* p1 = p0 + kRedLd;
      p0[0] = acc[i][j][0], p1[0] = acc[i][j][1], p0[8] = acc[i][j][2], p1[8] = acc[i][j][3];
    }
  // Every block of the cluster has its partial tile in shared memory (split_sync: the cluster's
  // barrier when split, else the block's). Block `split` sums its share of the 8-output chunks over
  // the ranks in order (deterministic) and stores them: 32 threads per batch row, 8 consecutive
  // outputs each, so a warp stores 256 contiguous outputs. rows and r are multiples of 16 and 8, so
  // r < rows keeps all 8 inside the weight.
  w4a16::split_sync(splits);
  const int cols = min(kBN, n - n0), row0 = mt0 * kW4A16TileRows, rows = min(kW4A16WideRows, w.out - row0);
  const int chunks = cols * 32, e1 = (split + 1) * chunks / splits;
  for (int e = split * chunks / splits + tid; e < e1; e += kThreads) {
    const int c = e >> 5, r = (e & 31) * 8;
    if (r >= rows) continue;
    const float4* p = reinterpret_cast<const float4*>(w4a16::split_partial(red, splits, 0) + c * kRedLd + r);
    float4 a = p[0], b = p[1];
    for (int k = 1; k < splits; ++k) {
      p = reinterpret_cast<const float4*>(w4a16::split_partial(red, splits, k) + c * kRedLd + r);
      a = w4a16::add4(a, p[0]), b = w4a16::add4(b, p[1]);
    }
    store8(y + int64_t{n0 + c} * w.out + row0 + r, a, b);
  }
  w4a16::split_exit_sync(splits);  // no block leaves while another reads its tile
}

template <int BN, typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits) {
  const char* op = "w4a16_gemm_wide";
  const int strips = ceil_div(w.out, kW4A16WideRows), ntiles = ceil_div(n, BN);
  require(strips <= 65535 && ntiles <= 65535, op, "n or out too large for the grid");
  const int max_splits = std::min(w4a16::max_splits_on_device(op), w.in / kW4A16Group);
  if (splits == 0)
    splits = std::min(w4a16_gemm_wide_splits(n, w.in, w.out, current_sm_count(op)), max_splits);
  require(splits >= 1 && splits <= max_splits, op,
          "splits must be in 1.." + std::to_string(max_splits) + ", got " + std::to_string(splits));
  constexpr int kSmem = Wide<BN>::kSmem;
  static const bool smem_set = (set_dynamic_smem(w4a16_gemm_wide_kernel<BN, OutT>, kSmem, true, op), true);
  (void)smem_set;
  w4a16::launch_split(w4a16_gemm_wide_kernel<BN, OutT>, dim3(splits, ntiles, strips), kThreads, kSmem, splits,
                      false, stream, op, x, w, n, y, splits);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// Split the input range only while the grid is under one wave of SMs, at most 4 ways (a cluster
// of 4 whole-SM blocks still places 4 per GPC) and keeping >= 8 groups per block, so the pipeline
// prologue and the 128 KB partial-tile reduction stay small beside the block's mma work.
int w4a16_gemm_wide_splits(int n, int in, int out, int sms) {
  const int blocks = ceil_div(out, kW4A16WideRows) * ceil_div(n, kW4A16WideBatch);
  return std::clamp(std::min({sms / std::max(1, blocks), in / kW4A16Group / 8, 4}), 1, 4);
}

void w4a16_gemm_wide(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits) {
  kernel == W4A16GemmKernel::wide_64 ? launch<64>(x, w, n, y, stream, splits)
                                     : launch<128>(x, w, n, y, stream, splits);
}
void w4a16_gemm_wide(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits) {
  kernel == W4A16GemmKernel::wide_64 ? launch<64>(x, w, n, y, stream, splits)
                                     : launch<128>(x, w, n, y, stream, splits);
}

}  // namespace ridgeline::cuda
