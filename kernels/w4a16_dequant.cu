// w4a16_dequantize_fp16: output rows [row0, row0 + rows) of a tile-packed W4A16 weight
// (kernels/w4a16.cuh) -> a row-major fp16 slab dst [rows, in], W[o][i] = fp16((q - z) * s) rounded
// once to nearest even: the fp16 weight layout Gemm::run (engine/cuda/gemm.h) takes, so that large
// batches and prefill can run cuBLASLt's fp16 GEMM (wgmma, 680-810 TFLOP/s on the H200 at M = 2048)
// on 4-bit weights instead of the mma.sync W4A16 GEMMs (240-390). Gemm::run_w4a16_dequant walks a
// weight in slabs of w4a16_dequant_slab_rows rows (kernels/w4a16_gemm_paths.cuh), dequantize then
// GEMM per slab; w4a16_use_dequant_gemm decides where that path runs.
// Bit-exact: (q - z) is an exact small integer in fp16 and the one product with s rounds once, as
// __float2half_rn of the CPU reference w4a16_dequantize_rows (whose float32 product is exact) does;
// it is the GEMM kernels' own unpacking (w4a16::dequant, kernels/w4a16_device.cuh).
// FLOPs: none worth counting (13 instructions per 8 weights). Bytes: rows*in/2 codes + rows*(in/128)*4
// scale/zero read, rows*in*2 written (2.53 bytes per weight, 80% of them writes).
// Bound: memory. The slab (<= 16 MB) is written with ordinary stores so it can stay in the H200's
// 50 MB L2 for the GEMM that reads it next; the codes and records, read once, come in with
// evict-first loads (__ldcs) so they do not push it out. A 2048 x 4096 slab moves 4.5 MB in and
// 16.8 MB out: ~4.4 us at the HBM's 4.8 TB/s if the writes reached DRAM, less where L2 absorbs them.
//
// A warp owns one (16-row strip, group of 128 inputs) task: two packed tiles, one 16-byte load per
// lane each (a coalesced 512-byte block), one 8-byte scale/zero record per lane. The dequantized A
// fragments (per k-step a lane holds four fp16 of row gid and four of gid+8) go through the warp's
// shared-memory tile [16][128 + 8] (the 8-half pad makes the 4-byte fragment stores conflict-free)
// and leave as 16-byte stores, 16 lanes per 256-byte row segment. Consecutive warps take
// consecutive groups of the same strip, so a block writes 2 KB runs of each row.
#include <string>

#include "kernels/device_common.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kStageRow = kW4A16Group + 8;  // halves per staged row: 272 bytes, 16-byte aligned

// Grid: one warp per (strip, group) task of the slab; strips = rows / 16, starting at strip mt0.
__global__ void __launch_bounds__(kThreads)
    w4a16_dequant_kernel(W4A16Weights w, int mt0, int strips, half* __restrict__ dst) {
  __shared__ __align__(16) half stage[kWarps][16][kStageRow];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int groups = w.in / kW4A16Group;
  const int64_t task = int64_t{blockIdx.x} * kWarps + warp;
  if (task >= int64_t{strips} * groups) return;  // no block-wide barrier below: idle warps may leave
  const int s = static_cast<int>(task / groups), g = static_cast<int>(task % groups);
  const int64_t mt = mt0 + s;

  // Packed tiles 2g and 2g+1 of strip mt (512 bytes each), and this lane's record {s, z, s, z} of
  // rows gid and gid+8 for group g.
  const uint4* codes = reinterpret_cast<const uint4*>(w.qweight) + (mt * (w.in / 64) + 2 * g) * 32 + lane;
  const uint4 tile0 = __ldcs(codes), tile1 = __ldcs(codes + 32);
  const uint2 rec = __ldcs(reinterpret_cast<const uint2*>(w.scale_zero) + (mt * groups + g) * 8 + gid);
  const w4a16::GroupScale scale = w4a16::group_scale(rec);

  // Fragment register r of k-step j: rows gid (r = 0, 2) or gid+8 (r = 1, 3), inputs 16j + 2tig
  // (r = 0, 1) or 16j + 2tig + 8 (r = 2, 3), two consecutive inputs per register.
  half(*tile)[kStageRow] = stage[warp];
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t a[4];
      w4a16::dequant(w4a16::word_of(t == 0 ? tile0 : tile1, j), scale, a);
      const int col = 64 * t + 16 * j + 2 * tig;
      *reinterpret_cast<uint32_t*>(&tile[gid][col]) = a[0];
      *reinterpret_cast<uint32_t*>(&tile[gid + 8][col]) = a[1];
      *reinterpret_cast<uint32_t*>(&tile[gid][col + 8]) = a[2];
      *reinterpret_cast<uint32_t*>(&tile[gid + 8][col + 8]) = a[3];
    }
  __syncwarp();

  // 16 rows x 16 chunks of 16 bytes: lanes 0-15 one row, 16-31 the next, per store.
  half* out = dst + int64_t{s} * 16 * w.in + int64_t{g} * kW4A16Group;
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int e = lane + 32 * k, r = e >> 4, c = e & 15;
    *reinterpret_cast<uint4*>(out + int64_t{r} * w.in + 8 * c) =
        *reinterpret_cast<const uint4*>(&tile[r][8 * c]);
  }
}

}  // namespace

void w4a16_dequantize_fp16(const W4A16Weights& w, int row0, int rows, half* dst, cudaStream_t stream) {
  const char* op = "w4a16_dequantize_fp16";
  w4a16::check_weights(w, op);
  require(row0 >= 0 && rows >= 0 && row0 % kW4A16TileRows == 0 && rows % kW4A16TileRows == 0 &&
              int64_t{row0} + rows <= w.out,
          op,
          "rows " + std::to_string(row0) + ".." + std::to_string(int64_t{row0} + rows) +
              " must be whole 16-row strips of the weight's " + std::to_string(w.out) + " rows");
  require(dst != nullptr && aligned16(dst), op, "the fp16 destination must be set and 16-byte aligned");
  if (rows == 0) return;
  const int strips = rows / kW4A16TileRows;
  const int64_t tasks = int64_t{strips} * (w.in / kW4A16Group);
  const auto blocks = static_cast<unsigned>(ceil_div(tasks, int64_t{kWarps}));
  w4a16_dequant_kernel<<<blocks, kThreads, 0, stream>>>(w, row0 / kW4A16TileRows, strips, dst);
  RL_CUDA_CHECK_LAUNCH(op);
}

// The threshold and its measurements: kW4A16DequantGemmMinRows (kernels/w4a16_gemm_paths.cuh). The
// arithmetic that predicted it: per weight the slab pass moves ~2.53 bytes (0.4-0.7 ps) plus ~2 us
// per slab, the GEMM does 2n FLOPs (n = 512: 1.5-2.0 ps at cuBLAS's 500-700 TFLOP/s), against
// 2.6-2.9 ps for the mma.sync W4A16 GEMMs; the slab pass's share falls as 1/n.
bool w4a16_use_dequant_gemm(int n) {
  return n >= kW4A16DequantGemmMinRows;
}

}  // namespace ridgeline::cuda
