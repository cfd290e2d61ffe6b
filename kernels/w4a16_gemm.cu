// w4a16_gemm: y[n, out] = x[n, in] W^T for batches above the GEMV's (prefill, large decode
// batches), W in the tile-packed W4A16 layout (kernels/w4a16.cuh), fp16 tensor-core mma with fp32
// accumulation, fp16 or fp32 out. Any n (odd, not a multiple of the tile): missing rows of x are
// zero-filled on the way into shared memory and their outputs never stored.
// FLOPs: 2*n*in*out. Bytes: in*out/2 + out*(in/128)*4 (weights, once per n-tile: L2 serves the
// re-reads) + 2*n*in + 2*n*out (fp16 y).
// Bound: 3.8*n FLOPs per weight byte, so DRAM on the weights up to n ~ 30 and the tensor cores
// (mma.sync, with the unpacking beside it) from there: at n = 64 the kernel must run at about 64 x
// fp16's achieved DRAM bandwidth in FLOP/s (~260 TFLOP/s) to tie cuBLAS fp16, which is still
// reading its 4x larger weights. Targets (bench/kernels/bench_w4a16.cu): never slower than cuBLAS
// fp16 up to n = 64, >= 2.5x faster at n = 16 on the 7b shapes. From n = 128, once its grid holds
// at least 4/11 of a wave, w4a16_gemm hands over to the wide kernel (kernels/w4a16_gemm_wide.cu,
// 256 x 128 blocks: half the unpacking per mma); w4a16_gemm_use_wide below is the one place that
// decides. At 17..127 rows on Hopper the same blocks run on wgmma instead
// (kernels/sm90a/w4a16_gemm_wgmma.cu, w4a16_gemm_use_wgmma below), on some weights in n-tiles of
// 32 and clusters of 2 (w4a16_gemm_wgmma_pairs_of_32).
//
// A block computes a 128-row strip of W (8 mma M tiles) against BN = 16/32/64 rows of x, one group
// (128 inputs = 2 packed tiles per M tile) per pipeline stage, 4 stages of cp.async in flight
// (the Marlin idea: weights stay packed in shared memory and are unpacked in registers right
// before the mma). Stage = 8 KB packed W + 512 B scale/zero + BN*256 B of x (XOR-swizzled 16-byte
// chunks so the ldmatrix of 8 rows is conflict-free). Warp (mg, kg) of 4 x 2 owns M tiles 2mg,
// 2mg+1 and packed tile kg of each stage (4 K steps): every weight is unpacked once per block, and
// the two K halves are summed in shared memory at the end. When strips x n-tiles leave SMs idle,
// a cluster of up to 8 blocks splits the input range and reduces through distributed shared
// memory in rank order (deterministic, one launch, no workspace), as in kernels/w4a16_gemv.cu.
#include <algorithm>
#include <string>

#include "kernels/cp_async.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = w4a16::kStripThreads;
constexpr int kMTiles = 8;  // M tiles (16 rows) per block
constexpr int kRowsPerBlock = 16 * kMTiles;
constexpr int kRedStride = kRowsPerBlock + 4;  // floats per partial-tile row: conflict-free C stores
static_assert(kRowsPerBlock == w4a16::kStripRows, "w4a16::reduce_splits_and_store sums 128-row strips");
// The cluster size of w4a16_gemm_wgmma_pairs_of_32's launches.
constexpr int kPairSplits = 2;

// Two blocks (16 warps) per SM at every n-tile width, 4 stages each (100 KB at BN = 64): at
// BN = 64 a block's warps issue long dependent chains (ldmatrix -> mma, lop3 -> hsub2 -> hmul2)
// and wait at one barrier per 64 mma, so a second block's warps are what hides them. It fits 128
// registers when the k-step loop is unrolled by 2 (unrolled by 4, ptxas keeps the next k-steps'
// fragments live: 156 registers, or spills at 128). Before: one block, 6 stages, at BN = 64.
template <int BN>
struct Config {
  static constexpr int kBlocksPerSm = 2;
  static constexpr int kStages = 4;
  static constexpr int kW = kMTiles * 2 * 512;  // packed codes of one group, [mtile][tile][lane][16 B]
  static constexpr int kSz = kMTiles * 64;      // scale/zero records, [mtile][gid][8 B]
  static constexpr int kX = BN * kW4A16Group * 2;
  static constexpr int kStage = kW + kSz + kX;
  static constexpr int kRed = BN * kRedStride * 4;
  static constexpr int kSmem = kStages * kStage > kRed ? kStages* kStage : kRed;
};

template <int BN, typename OutT>
__global__ void __launch_bounds__(kThreads, Config<BN>::kBlocksPerSm)
    w4a16_gemm_kernel(const half* __restrict__ x, W4A16Weights w, int n, OutT* __restrict__ y, int splits) {
  using S = Config<BN>;
  constexpr int kStages = S::kStages;
  extern __shared__ __align__(128) unsigned char smem[];
  const int split = blockIdx.x, n0 = blockIdx.y * BN, mt0 = blockIdx.z * kMTiles;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows;
  const int g0 = split * groups / splits, g1 = (split + 1) * groups / splits, ng = g1 - g0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int mg = warp & 3, kg = warp >> 2;

  // One group's packed codes, scale/zero records and x columns into stage `slot`. Rows past the
  // weight's end or past n are zero-filled (src-size 0 reads nothing; the address stays valid).
  // Each thread's copies are set up once: group 0's source and the place in a stage; group g adds
  // a fixed step to the source. (Index arithmetic per copy and stage, 64-bit products and bounds
  // tests included, had made a stage's loads 130 instructions a warp, now 48, and the prologue 607,
  // now 378: M = 32..64 ran 6-22% faster on the H200; perf/NOTES.md "twenty-sixth".)
  constexpr int kWCopies = kMTiles * 64 / kThreads;  // 64 16-byte chunks per M tile
  constexpr int kXCopies = BN * 16 / kThreads;       // 16 chunks of 8 inputs per x row
  static_assert(
      kWCopies * kThreads == kMTiles * 64 && kXCopies * kThreads == BN * 16 && kMTiles * 4 <= kThreads,
      "every thread makes the same copies each stage");
  // 32-bit offsets from the block's first row and column (at most BN * in halves of x); 64-bit
  // pointers for every copy spilled at BN = 64.
  const uint4* w_blk = reinterpret_cast<const uint4*>(w.qweight) + int64_t{mt0} * tiles_per_row * 32;
  const uint4* sz_blk = reinterpret_cast<const uint4*>(w.scale_zero) + int64_t{mt0} * groups * 4;
  const half* x_blk = x + int64_t{n0} * w.in;
  int w_off[kWCopies], x_off[kXCopies], x_at[kXCopies];
  bool w_ok[kWCopies], x_ok[kXCopies];
#pragma unroll
  for (int j = 0; j < kWCopies; ++j) {
    const int c = tid + j * kThreads;
    w_ok[j] = mt0 + (c >> 6) < mtiles;
    w_off[j] = (w_ok[j] ? (c >> 6) * tiles_per_row * 32 : 0) + (c & 63);
  }
  const bool sz_copy = tid < kMTiles * 4;  // 4 chunks per M tile
  const bool sz_ok = sz_copy && mt0 + (tid >> 2) < mtiles;
  const int sz_off = (sz_ok ? (tid >> 2) * groups * 4 : 0) + (tid & 3);
#pragma unroll
  for (int j = 0; j < kXCopies; ++j) {
    const int c = tid + j * kThreads, r = c >> 4, ch = c & 15;
    x_ok[j] = n0 + r < n;
    x_off[j] = (x_ok[j] ? r * w.in : 0) + ch * 8;
    x_at[j] = S::kW + S::kSz + r * 256 + ((ch ^ (r & 7)) * 16);
  }
  auto load_stage = [&](int slot, int g) {
    unsigned char* base = smem + slot * S::kStage;
#pragma unroll
    for (int j = 0; j < kWCopies; ++j)  // group g: packed tiles 2g, 2g+1 of 32 chunks each
      cp_async_16(base + (tid + j * kThreads) * 16, w_blk + (w_off[j] + g * 64), w_ok[j]);
    if (sz_copy) cp_async_16(base + S::kW + tid * 16, sz_blk + (sz_off + g * 4), sz_ok);
#pragma unroll
    for (int j = 0; j < kXCopies; ++j)
      cp_async_16(base + x_at[j], x_blk + (x_off[j] + g * kW4A16Group), x_ok[j]);
  };

  float acc[2][BN / 8][4] = {};

  auto compute = [&](int slot, int) {
    const unsigned char* base = smem + slot * S::kStage;
    const uint4* ws = reinterpret_cast<const uint4*>(base);
    const uint2* ss = reinterpret_cast<const uint2*>(base + S::kW);
    const half* xs = reinterpret_cast<const half*>(base + S::kW + S::kSz);
    uint4 raw[2];
    w4a16::GroupScale gs[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int ml = 2 * mg + i;
      raw[i] = ws[(ml * 2 + kg) * 32 + lane];
      gs[i] = w4a16::group_scale(ss[ml * 8 + gid]);
    }
    // ldmatrix rows: lanes 8q..8q+7 address matrix q = (n-tile half q>>1, K half q&1), row lane&7.
    const int q = lane >> 3, rr = lane & 7;
#pragma unroll(BN == 64 ? 2 : 4)
    for (int ks = 0; ks < 4; ++ks) {
      uint32_t a[2][4];
      w4a16::dequant(w4a16::word_of(raw[0], ks), gs[0], a[0]);
      w4a16::dequant(w4a16::word_of(raw[1], ks), gs[1], a[1]);
      const int ch = kg * 8 + ks * 2 + (q & 1);  // 16-byte chunk of this K step (and its upper half)
#pragma unroll
      for (int jp = 0; jp < BN / 16; ++jp) {
        const int row = 16 * jp + 8 * (q >> 1) + rr;
        uint32_t b[4];
        ldmatrix_x4(b, xs + row * kW4A16Group + ((ch ^ rr) * 8));
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mma_m16n8k16(acc[i][2 * jp], a[i], b[0], b[1]);
          mma_m16n8k16(acc[i][2 * jp + 1], a[i], b[2], b[3]);
        }
      }
    }
  };

  block_pipeline<kStages>(
      ng, [&](int slot, int i) { load_stage(slot, g0 + i); }, compute);

  // Sum the two K halves into red[c][r] (c = batch row in the tile, r = output row in the strip).
  float* red = reinterpret_cast<float*>(smem);
  auto put = [&](bool add) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int r = 16 * (2 * mg + i) + gid, c = 8 * j + 2 * tig;
        float* p0 = red + c * kRedStride + r;
        float* p1 = p0 + kRedStride;
        if (add) {
          p0[0] += acc[i][j][0], p1[0] += acc[i][j][1], p0[8] += acc[i][j][2], p1[8] += acc[i][j][3];
        } else {
          p0[0] = acc[i][j][0], p1[0] = acc[i][j][1], p0[8] = acc[i][j][2], p1[8] = acc[i][j][3];
        }
      }
  };
  if (kg == 1) put(false);
  __syncthreads();
  if (kg == 0) put(true);
  w4a16::reduce_splits_and_store(red, kRedStride, n - n0 < BN ? n - n0 : BN, splits, split, y, n0,
                                 mt0 * kW4A16TileRows, w.out);
}

// Two blocks of 100 KB an SM (all of its unified memory as shared memory, w4a16::strip_opt_in).
template <int BN>
constexpr w4a16::StripLaunch kLaunch{Config<BN>::kSmem, Config<BN>::kBlocksPerSm, Config<BN>::kStages, false};

// Split the input range only while the strips x n-tiles leave SMs idle (one wave of blocks), in
// clusters of a power of two (or 7 / 6 where 8 would need a second wave, below), and into no fewer
// than kStages groups a block, so every block's pipeline fills. Clusters of 4 or fewer are also halved while
// they do not all fit at once (the GPCs hold fewer whole clusters than SMs / size). H200, BM_W4A16GemmSplits
// and BM_W4A16VsFp16 (perf/NOTES.md, "fifteenth"): 7b wqkv (48 strips) at clusters of 5 took 16.8 / 21.4
// / 31.6 us at M = 16 / 32 / 64, at clusters of 4 11.5 / 14.4 / 21.8; 1.8b wqkv (16 groups) at clusters of 8
// (2 groups a block) 8.6 / 9.7 / 13.8, at 4 7.1 / 8.7 / 12.2; 64 clusters of 4 where ~60 fit
// against 64 of 2: 1.8b wqkv M = 128 18.2 -> 13.7 us, 7b wo 30.1 -> 23.7, 1.8b w2 M = 256 54.7
// -> 43.7. Not for clusters of 8: the occupancy API says 30 of them fit, yet 32 ran faster than
// 32 of 4 where blocks have many groups (7b w2 at M = 64 49.6 vs 58.4 us, 1.8b w2 at 128 31.4 vs 35.0);
// what wins there is one wave of clusters of 7 or 6 ("twenty-fifth", every split 1..8 at M = 48 and
// 64: 7b w2 8 -> 7 49.3 -> 36.7 us, 7b wo 19.4 -> 15.6), so clusters of 8 step down to those. Other
// sizes are not taken: 7b wqkv's 5 (fill's answer at M = 64) lost to 4, 27.1 against 19.7 us; 1.8b
// wqkv's 3 beat 2 and 4 in n-tiles of 64 (11.1 against 13.5 / 12.1 us) but two n-tiles of 32 at 2
// beat it (9.6, two_tiles_of_32); 5 and 6 won on 1.8b wqkv and wo only by splitting below kStages
// groups a block.
template <int BN, typename OutT>
int auto_splits(const W4A16Weights& w, int n, int max_splits, const char* op) {
  return w4a16::strip_splits<w4a16_gemm_kernel<BN, OutT>>(w, n, BN, kLaunch<BN>, max_splits, op);
}

// Whether 33..64 rows run as two n-tiles of 32 instead of one of 64: (a) where BN = 64's split
// leaves its longest block's input range inside its ring (at most kStages groups: the pipeline
// never reaches a steady state) and BN = 32's gives its blocks more, or (b) where BN = 64's clusters
// leave an SM without a block (half the block slots empty) and BN = 32's fill every SM. H200,
// BM_W4A16VsFp16 at M = 48 / 64, BN = 64 -> 32, us (perf/NOTES.md, "twenty-fourth"): (a) 1.8b wqkv
// 11.5 -> 9.2 / 12.1 -> 9.7 (4 groups a block -> 8); the others (5-16 groups a block at BN = 64)
// lose up to 25% at BN = 32 (7b w13 66.9 -> 83.2) or tie (7b w2), and 1.8b wo (4 groups a block
// both ways) loses 3%. BM_W4A16GemmSplits ("twenty-fifth"): (b) 1.8b w2 128 blocks of 8 groups ->
// 224 of 9-10 (clusters of 7) at M = 64 20.0 -> 15.6; measured on that shape only (not on GPUs
// without clusters, where it does not apply, nor on the 20b shapes).
template <typename OutT>
bool two_tiles_of_32(const W4A16Weights& w, int n, int max_splits, const char* op) {
  if (n <= 32 || n > 64) return false;
  const int groups = w.in / kW4A16Group, strips = ceil_div(w.out, kRowsPerBlock), sms = current_sm_count(op);
  const int splits_64 = auto_splits<64, OutT>(w, n, max_splits, op);
  const int splits_32 = auto_splits<32, OutT>(w, n, max_splits, op);
  const int per_block_64 = ceil_div(groups, splits_64);
  return (per_block_64 <= Config<64>::kStages && ceil_div(groups, splits_32) > per_block_64) ||
         (splits_64 > 1 && strips * splits_64 < sms && 2 * strips * splits_32 > sms);
}

template <int BN, typename OutT>
void launch_bn(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits,
               int max_splits, const char* op) {
  w4a16::launch_strips<w4a16_gemm_kernel<BN, OutT>>(x, w, n, y, stream, splits, max_splits, BN, kLaunch<BN>,
                                                    op);
}

template <typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, W4A16GemmKernel kernel,
            int splits) {
  const char* op = "w4a16_gemm";
  w4a16::check_weights(w, op);
  require(n >= 0, op, "n must be >= 0, got " + std::to_string(n));
  require(aligned16(x) && aligned16(y), op, "x and y must be 16-byte aligned");
  if (n == 0) return;
  const int max_splits = std::min(w4a16::max_splits_on_device(op), w.in / kW4A16Group);
  const int sms = current_sm_count(op);
  if (kernel == W4A16GemmKernel::automatic && splits == 0 && w4a16_gemm_use_wide(n, w.out, sms))
    kernel = W4A16GemmKernel::wide;
  if (kernel == W4A16GemmKernel::wide || kernel == W4A16GemmKernel::wide_64)
    return w4a16_gemm_wide(x, w, n, y, stream, kernel, splits);
  // From 17 rows on Hopper the same blocks on wgmma (w4a16_gemm_use_wgmma), in n-tiles of 32 and
  // clusters of 2 where w4a16_gemm_wgmma_pairs_of_32 says (two_tiles_of_32 is the tiled kernel's rule),
  // else at the measured split where w4a16_gemm_wgmma_tuned_splits has one (0: the kernel's rule).
  if (kernel == W4A16GemmKernel::automatic && w4a16_gemm_use_wgmma(n)) {
    if (splits == 0) {
      if (w4a16_gemm_wgmma_pairs_of_32(n, w.in, w.out, sms))
        return w4a16_gemm_wgmma(x, w, n, y, stream, kPairSplits, 32);
      splits = std::min(max_splits,
                        w4a16_gemm_wgmma_tuned_splits(n, w.in, w.out, sms, current_memory_bus_bits(op)));
    }
    kernel = W4A16GemmKernel::wgmma;
  }
  if (kernel == W4A16GemmKernel::wgmma) return w4a16_gemm_wgmma(x, w, n, y, stream, splits);
  if (kernel == W4A16GemmKernel::wgmma_32) return w4a16_gemm_wgmma(x, w, n, y, stream, splits, 32);
  if (kernel == W4A16GemmKernel::tiled_32) return launch_bn<32>(x, w, n, y, stream, splits, max_splits, op);
  // The smallest n-tile that holds the batch, so small batches do not multiply zero rows.
  if (n <= 16)
    launch_bn<16>(x, w, n, y, stream, splits, max_splits, op);
  else if (n <= 32 || (splits == 0 && two_tiles_of_32<OutT>(w, n, max_splits, op)))
    launch_bn<32>(x, w, n, y, stream, splits, max_splits, op);
  else
    launch_bn<64>(x, w, n, y, stream, splits, max_splits, op);
}

}  // namespace

// H100, BM_W4A16GemmSplits at 16-64 rows (perf/NOTES.md "forty-first"): at 48 and 64 rows the wgmma
// blocks beat the tiled kernel's best split on 6 of the 8 model shapes (7b w13 57.1 -> 41.9 us, 7b w2
// 32.5 -> 24.4, 7b wqkv 18.1 -> 14.4, 1.8b wo 7.1 -> 6.3 at 48; the other two, 1.8b wqkv and w2,
// were within 1-4% of the wgmma's best in the tiled kernel's n-tiles of 32, two_tiles_of_32, until
// the wgmma kernel launched overlapped: see w4a16_gemm_wgmma_pairs_of_32). From 17 rows since it is
// launched overlapped and splits for three blocks an SM at n-tiles of 32 ("forty-seventh", 24 / 32
// rows, where the GEMV does not take them): 7b wqkv 12.24 / 12.12 -> 10.08 / 10.36 us, 7b w13 34.53 /
// 34.63 -> 31.39 / 31.73, 1.8b w2 (the GEMV's before, kW4A16GemvFourTileMaxInWgmma) 9.85 / 10.96 ->
// 8.06 / 8.12; 1.8b w13 12.48 / 12.32 -> 12.59 / 12.60 and 7b w2 20.14 / 19.97 -> 20.44 / 20.65
// lose 1-3%. At 16 rows the GEMV or the tiled kernel is as fast or faster (7b w2 16.6 vs 18.8).
// Not measured between 65 and 127 rows.
bool w4a16_gemm_use_wgmma(int n) {
  return n > 16 && n < kW4A16WideBatch && w4a16_gemm_has_wgmma();
}

// H100, BM_W4A16GemmSplits at 16..64 rows with the wgmma kernel overlapped (perf/NOTES.md
// "forty-sixth"): at 48 / 64 rows the wgmma kernel in n-tiles of 32 and clusters of 2 beat every other
// kernel, n-tile and split on the two shapes where those 2 x 2 x strips blocks fill one wave at a block
// an SM (twice that would not) and hold at most 16 groups each: 1.8b wqkv 6.38 / 6.42 us (the tiled
// kernel's n-tiles of 32, two_tiles_of_32's pick, 7.88 / 8.25; the wgmma kernel's own best 7.08 /
// 7.91; fp16 8.34 / 9.24), 7b wo 10.38 / 10.52 (wgmma's own 10.42 / 11.08). Where the blocks keep
// more groups (7b w2, 56: 33.7 against 24.9) or fill half the SMs (1.8b wo, w2: 16 strips; clusters of
// 4 to fill them lose, 1.8b w2 15.3 against 11.0) or need two waves (7b wqkv, w13s), the wgmma kernel's
// own n-tile and split rule is the faster.
bool w4a16_gemm_wgmma_pairs_of_32(int n, int in, int out, int sms) {
  constexpr int kTiles = 2, kMaxGroupsPerBlock = 16;  // 33..64 rows in n-tiles of 32
  if (n <= 32 || n > 64) return false;
  const int blocks = kTiles * kPairSplits * ceil_div(out, kRowsPerBlock), groups = in / kW4A16Group;
  return blocks <= sms && 2 * blocks > sms && groups >= kPairSplits &&
         groups <= kPairSplits * kMaxGroupsPerBlock;
}

// At 17..32 rows (one n-tile of 32, three blocks an SM) the wgmma kernel's split rule misses the
// fastest split by 11-24% on three model weights, the same on every H100 SXM map (BM_W4A16GemmSplits
// at 24 / 32 rows, five machines within 1% of each other; bench/results/h100-w4a16-mid-rows-verify-4dc4cc7,
// h100-aa22f79-verify, h100-accbc49-mid-rows, perf/NOTES.md "forty-seventh".."fiftieth"), us at 24 / 32:
//   1.8b w13 (2048 x 16384, 128 strips)  rule's 2: 12.66 / 12.62   1: 11.08 / 11.15
//   7b w2    (14336 x 4096, 32 strips)   rule's 6: 20.66 / 20.58   7: 18.56 / 18.53
//   7b wo    (4096 x 4096, 32 strips)    rule's 6:  9.83 /  9.95   8:  7.91 /  8.04 (when the GEMM runs it)
// The landscapes are jagged (7b wo, clusters of 3..8: 9.67, 9.09, 8.58, 9.82, 9.13, 7.91 us), so they
// are a table, not a rule, keyed on the GPU: 132 SMs and a 5120-bit bus is the H100 SXM. The H200
// (6144 bits; the same SM count, other clocks and bandwidth) keeps the rule until a map there agrees:
// the tiled kernel's landscapes at 32 rows matched the H100's for 7b w2 and wo (clusters of 7 the
// fastest on both) but not for 1.8b w13 (H200, ff87d49: clusters of 2 13.8 us, 1 15.9; H100, accbc49:
// 12.4 and 12.6). In the w4a16 step (ctx 1024, A / B / A on one H100;
// bench/results/h100-ba5a60b-tuned-splits) 1.8b B = 24 / 32 -4.0 / -6.2%, 7b -1.5 / -1.4%. A split moves the
// step by more than its kernel time alone says, either way: the w13 entry stretched to 33..64 rows (unsplit;
// 10% slower alone) lost 5% in the step (h100-2e91963-w13-unsplit-48-64, h100-67f9a4c-w13-timeline), so
// entries are kept to the rows the step was measured at. A per-block trace of the step then tied that
// to placement: inside the graph the block scheduler packs a launch's blocks unevenly where the kernel
// holds more an SM than the grid needs (h100-26735be-wgmma-cta-trace). Since launches are spread
// (w4a16::strip_launch_smem) the table moves the steps less (h100-spread-one-an-sm, table / rule at
// B = 24 / 32): 1.8b level (1988.6 / 1995.7, 2230.2 / 2233.5 us), 7b -0.9 / -1.1%. The 1.8b w13 entry
// stays for its kernel time alone (13% faster), which no longer costs the step anything.
namespace {
struct TunedSplit {
  int sms, bus_bits, min_n, max_n, in, out, splits;
};
constexpr TunedSplit kWgmmaTunedSplits[] = {
    {132, 5120, 17, 32, 2048, 16384, 1},  // 1.8b w13
    {132, 5120, 17, 32, 14336, 4096, 7},  // 7b w2
    {132, 5120, 17, 32, 4096, 4096, 8},   // 7b wo
};
}  // namespace

int w4a16_gemm_wgmma_tuned_splits(int n, int in, int out, int sms, int bus_bits) {
  for (const TunedSplit& t : kWgmmaTunedSplits)
    if (t.sms == sms && t.bus_bits == bus_bits && n >= t.min_n && n <= t.max_n && t.in == in && t.out == out)
      return t.splits;
  return 0;
}

// Measured, not modelled (BM_W4A16GemmKernels, H200, 2026-12-01, all 8 model shapes at M = 64..2048):
// the wide kernel wins once its unsplit grid has at least ~0.36 of a wave of 256 x 128 blocks
// (48 on 132 SMs: 7b wqkv at M=256 258 vs 190 TFLOP/s, M=2048 everywhere 367-389 vs 236-272) and
// loses below, where its split-K does not make up for the few blocks (7b wo at M=256, 32 blocks:
// 141 vs 222; 1.8b w2 at M=512: 166 vs 250). The helper's first wave model (the wide kernel 1.5x
// faster per output) sent those three to the wide kernel at a third of the tiled speed. Below
// M = 128 the tiled kernel (or, at M = 64 on w13, the 256 x 64 wide variant by 5-10%) is faster.
bool w4a16_gemm_use_wide(int n, int out, int sms) {
  if (n < kW4A16WideBatch || sms <= 0) return false;
  const int64_t wide_blocks = int64_t{ceil_div(out, kW4A16WideRows)} * ceil_div(n, kW4A16WideBatch);
  return wide_blocks * 11 >= int64_t{sms} * 4;
}

void w4a16_gemm(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream, int splits) {
  launch(x, w, n, y, stream, W4A16GemmKernel::automatic, splits);
}
void w4a16_gemm(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream, int splits) {
  launch(x, w, n, y, stream, W4A16GemmKernel::automatic, splits);
}
void w4a16_gemm_with(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits) {
  launch(x, w, n, y, stream, kernel, splits);
}
void w4a16_gemm_with(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits) {
  launch(x, w, n, y, stream, kernel, splits);
}

}  // namespace ridgeline::cuda
