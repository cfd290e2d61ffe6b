// w4a16_gemm_wgmma: y[n, out] = x[n, in] W^T, the tiled W4A16 GEMM's blocks (kernels/w4a16_gemm.cu:
// a 128-row strip of W against BN = 16/32/64 rows of x, one group of 128 inputs a stage, cluster
// split-K) with Hopper's warpgroup mma instead of mma.sync: each warp unpacks its M tile's codes into
// the A fragment in registers, as the tiled kernel does, and one wgmma.m64nBNk16 of the warpgroup
// multiplies it with x straight from shared memory (B by descriptor), asynchronously.
// FLOPs: 2*n*in*out. Bytes: in*out/2 + out*(in/128)*4 (weights, once per n-tile) + 2*n*in + 2*n*out.
// Bound: as the tiled kernel, DRAM on the weights to n ~ 30, then the tensor cores; at 33-64 rows
// both are latency-bound per group of a block (barrier, unpack, mma, wait). Measured (H100,
// BM_W4A16GemmSplits, perf/NOTES.md "forty-first"): a group costs a block ~0.8 us at one block an SM
// against the tiled kernel's ~1.0 (16 and 112 groups unsplit: 1.8b wo 16.4 vs 19.2 us, 7b w2 95.7
// vs 116.5 at M = 64), and at the split-K grids of two blocks an SM the launches are 24-27% shorter
// (7b w2 33.3 -> 25.2 us, 7b w13 57.3 -> 43.6, 7b wqkv 18.2 -> 14.5). Not the tensor cores' pace
// (16 m64n64k16 a group and block, ~512 cycles): each warp unpacks, issues its 8 wgmma and waits.
// Launched overlapped on weights of up to 20 MB of codes (w4a16_gemm_wgmma_overlaps: the weights'
// first stages go out while the kernel before it finishes).
// sm_90a only (wgmma): compiled on its own (CMakeLists.txt), launched only on compute capability 9.0.
//
// Stage layout (1024-byte aligned): x first, in the 128-byte swizzle wgmma reads (two atoms of 64
// inputs, [half][row][128 B], 16-byte chunk c of row r at c ^ (r & 7)), then the packed codes
// [mtile][tile][lane][16 B] and the scale/zero records [mtile][gid][8 B], as the tiled kernel's.
// Warp w: warpgroup w / 4 owns output rows 64 (w / 4).. of the strip, the warp M tile w of it.
#include <algorithm>
#include <string>

#include "kernels/cp_async.cuh"
#include "kernels/overlap.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = w4a16::kStripThreads;
constexpr int kMTiles = w4a16::kStripRows / kW4A16TileRows;  // the 128-row strip's 8 M tiles
constexpr int kRedStride = 16 * kMTiles + 4;

template <int BN>
struct WgConfig {
  static constexpr int kBlocksPerSm = 2;  // the __launch_bounds__ minimum
  // The blocks an SM holds, which the split rule fills (w4a16::strip_splits): three up to BN = 32 (69 KB
  // of shared memory, 78-80 registers a thread at the bound of two), two at 64 (101 KB, 95). Counting
  // three where three fit splits 7b wqkv at 24 / 32 rows in clusters of 6 rather than 4: 10.08 / 10.36
  // us against 12.12 / 12.28 (H100, BM_W4A16GemmSplits, perf/NOTES.md "forty-seventh"; the same
  // binary, so those launches already held three blocks an SM).
  static constexpr int kResidentBlocks = BN <= 32 ? 3 : 2;
  static constexpr int kStages = 4;
  static constexpr int kX = BN * kW4A16Group * 2;  // a multiple of 1024 from BN = 4
  static constexpr int kW = kMTiles * 2 * 512;     // 8 KB
  static constexpr int kSz = kMTiles * 64;         // 512 B
  static constexpr int kStage = (kX + kW + kSz + 1023) / 1024 * 1024;
  static constexpr int kRed = BN * kRedStride * 4;
  static constexpr int kSmem = (kStages * kStage > kRed ? kStages * kStage : kRed) + 1024;  // + alignment
};

// wgmma exists on sm_90a only. nvcc's sm_90a build also runs a device pass for compute_90, without
// the feature: there the kernel traps (see its first line) instead of running without its arithmetic.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RL_WGMMA 1
#endif

__device__ __forceinline__ void fence_proxy_async() {
#ifdef RL_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#ifdef RL_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef RL_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
#ifdef RL_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
#endif
}

// K-major operand in the 128-byte swizzle: 8-row groups 1024 B apart (stride offset), the leading
// offset unused (16 inputs never cross a 128-byte row); +32 B selects the next 16 inputs.
__device__ __forceinline__ uint64_t sw128_desc(uint32_t smem) {
  return uint64_t((smem & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

// d[64 x BN] += A[64 x 16] B[BN x 16]^T: A from registers (the warp's 16 rows in the m16n8k16 A
// fragment layout), B (x rows, K-major) by descriptor. Thread t holds d[4j + r] = D(16 (t / 32 % 4) +
// (t % 32) / 4 + 8 (r / 2), 8j + 2 (t % 4) + r % 2), the m16n8 C layout of each 8-column tile j.
template <int BN>
__device__ __forceinline__ void wgmma_rs(float (&d)[BN / 2], const uint32_t (&a)[4], uint64_t b);

#define RL_F4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
template <>
__device__ __forceinline__ void wgmma_rs<16>(float (&d)[8], const uint32_t (&a)[4], uint64_t b) {
#ifdef RL_WGMMA
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, 1, 1, 1, 0;\n"
      : RL_F4(0), RL_F4(4)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
      : "memory");
#else
  (void)d, (void)a, (void)b;
#endif
}
template <>
__device__ __forceinline__ void wgmma_rs<32>(float (&d)[16], const uint32_t (&a)[4], uint64_t b) {
#ifdef RL_WGMMA
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "{%16, %17, %18, %19}, %20, 1, 1, 1, 0;\n"
      : RL_F4(0), RL_F4(4), RL_F4(8), RL_F4(12)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
      : "memory");
#else
  (void)d, (void)a, (void)b;
#endif
}
template <>
__device__ __forceinline__ void wgmma_rs<64>(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
#ifdef RL_WGMMA
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
      : RL_F4(0), RL_F4(4), RL_F4(8), RL_F4(12), RL_F4(16), RL_F4(20), RL_F4(24), RL_F4(28)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
      : "memory");
#else
  (void)d, (void)a, (void)b;
#endif
}
#undef RL_F4

// kOverlapped: launched overlapped (w4a16_gemm_wgmma_overlaps), the prologue below; otherwise each
// stage's x and weights together, as the plain launches were measured.
template <int BN, typename OutT, bool kOverlapped>
__global__ void __launch_bounds__(kThreads, WgConfig<BN>::kBlocksPerSm)
    w4a16_gemm_wgmma_kernel(const half* __restrict__ x, W4A16Weights w, int n, OutT* __restrict__ y,
                            int splits) {
#if defined(__CUDA_ARCH__) && !defined(RL_WGMMA)
  __trap();
#endif
  using S = WgConfig<BN>;
  constexpr int kStages = S::kStages;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  const int split = blockIdx.x, n0 = blockIdx.y * BN, mt0 = blockIdx.z * kMTiles;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows;
  const int g0 = split * groups / splits, g1 = (split + 1) * groups / splits, ng = g1 - g0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;

  // Copies, set up once as in the tiled kernel: 8 KB of codes, 512 B of records, BN x 256 B of x.
  constexpr int kWCopies = kMTiles * 64 / kThreads;
  constexpr int kXCopies = BN * 16 / kThreads;
  static_assert(
      kWCopies * kThreads == kMTiles * 64 && kXCopies * kThreads == BN * 16 && kMTiles * 4 <= kThreads,
      "every thread makes the same copies each stage");
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
  const bool sz_copy = tid < kMTiles * 4;
  const bool sz_ok = sz_copy && mt0 + (tid >> 2) < mtiles;
  const int sz_off = (sz_ok ? (tid >> 2) * groups * 4 : 0) + (tid & 3);
#pragma unroll
  for (int j = 0; j < kXCopies; ++j) {
    const int c = tid + j * kThreads, r = c >> 4, ch = c & 15;
    x_ok[j] = n0 + r < n;
    x_off[j] = (x_ok[j] ? r * w.in : 0) + ch * 8;
    x_at[j] = (ch >> 3) * BN * 128 + r * 128 + (((ch & 7) ^ (r & 7)) * 16);
  }
  auto load_x = [&](int slot, int g) {
    unsigned char* base = smem + slot * S::kStage;
#pragma unroll
    for (int j = 0; j < kXCopies; ++j)
      cp_async_16(base + x_at[j], x_blk + (x_off[j] + g * kW4A16Group), x_ok[j]);
  };
  auto load_w = [&](int slot, int g) {
    unsigned char* base = smem + slot * S::kStage;
#pragma unroll
    for (int j = 0; j < kWCopies; ++j)
      cp_async_16(base + S::kX + (tid + j * kThreads) * 16, w_blk + (w_off[j] + g * 64), w_ok[j]);
    if (sz_copy) cp_async_16(base + S::kX + S::kW + tid * 16, sz_blk + (sz_off + g * 4), sz_ok);
  };
  auto load_stage = [&](int slot, int g) {
    load_x(slot, g);
    load_w(slot, g);
  };

  // One group a stage, the warpgroups in step: unpack, 8 wgmma, wait for them. The unpacking of
  // the next group cannot overlap this group's wgmmas inside a warp (ptxas serializes a wgmma whose
  // A registers are written while an earlier one is in flight: C7513), so the overlap comes from
  // the other block on the SM.
  float acc[BN / 2] = {};
  const int ml = warp;  // this warp's M tile in the strip (warpgroup warp / 4, rows 16 (warp % 4)..)
  if constexpr (kOverlapped) {
    // Weights are never written during a step: the first stages' codes and records go out before
    // the kernel before this one has finished (kernels/overlap.cuh) and join the first commit group;
    // x, that kernel's output, after the wait.
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s)
      if (s < ng) load_w(s, g0 + s);
    overlap_enter();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ng) {
      load_x(s, g0 + s);
      if constexpr (!kOverlapped) load_w(s, g0 + s);
    }
    cp_async_commit();
  }
  for (int i = 0; i < ng; ++i) {
    cp_async_wait<kStages - 2>();
    fence_proxy_async();  // this thread's copies of stage i, visible to wgmma (the async proxy)
    __syncthreads();      // everyone's; and every warpgroup's wgmma of stage i - 1 has completed
    const int next = i + kStages - 1;
    if (next < ng) load_stage(next % kStages, g0 + next);
    cp_async_commit();

    const unsigned char* base = smem + (i % kStages) * S::kStage;
    const uint4* ws = reinterpret_cast<const uint4*>(base + S::kX);
    const uint2* ss = reinterpret_cast<const uint2*>(base + S::kX + S::kW);
    const uint4 raw0 = ws[(ml * 2) * 32 + lane], raw1 = ws[(ml * 2 + 1) * 32 + lane];
    const w4a16::GroupScale gs = w4a16::group_scale(ss[ml * 8 + gid]);
    uint32_t a[8][4];
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      w4a16::dequant(w4a16::word_of(raw0, ks), gs, a[ks]);
      w4a16::dequant(w4a16::word_of(raw1, ks), gs, a[4 + ks]);
    }
    const uint32_t xb = smem_addr(base);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
      wgmma_rs<BN>(acc, a[kk], sw128_desc(xb + uint32_t((kk >> 2) * BN * 128 + (kk & 3) * 32)));
    wgmma_commit();
    wgmma_wait<0>();
  }
  cp_async_wait<0>();
  __syncthreads();

  // The strip's partial tile, red[c][r] (c = batch row in the tile, r = output row in the strip).
  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int r = 16 * ml + gid, c = 8 * j + 2 * tig;
    float* p0 = red + c * kRedStride + r;
    float* p1 = p0 + kRedStride;
    p0[0] = acc[4 * j], p1[0] = acc[4 * j + 1], p0[8] = acc[4 * j + 2], p1[8] = acc[4 * j + 3];
  }
  w4a16::reduce_splits_and_store(red, kRedStride, n - n0 < BN ? n - n0 : BN, splits, split, y, n0,
                                 mt0 * kW4A16TileRows, w.out);
}

// The tiled kernel's split rule (w4a16::strip_splits) with blocks of at least 2 groups, not 4, and
// clusters of 8 always made 6 or 7: H100, BM_W4A16GemmSplits at 48 / 64 rows (perf/NOTES.md
// "forty-first"), 1.8b wo 16 groups over 6 6.3 / 6.7 us against 4 (the tiled rule's floor of 4
// groups a block) 6.9 / 7.0; 1.8b w2 (16 clusters) in 6 13.0 / 13.3 against 8 14.2 / 14.6.
template <int BN>
constexpr w4a16::StripLaunch kLaunch{WgConfig<BN>::kSmem, WgConfig<BN>::kResidentBlocks, 2, true};

template <int BN, typename OutT>
void launch_bn(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits,
               int max_splits, const char* op) {
  if (w4a16_gemm_wgmma_overlaps(w.in, w.out))
    return w4a16::launch_strips<w4a16_gemm_wgmma_kernel<BN, OutT, true>>(
        x, w, n, y, stream, splits, max_splits, BN, kLaunch<BN>, op, true);
  w4a16::launch_strips<w4a16_gemm_wgmma_kernel<BN, OutT, false>>(x, w, n, y, stream, splits, max_splits, BN,
                                                                 kLaunch<BN>, op);
}

template <typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, int splits, int bn) {
  const char* op = "w4a16_gemm_wgmma";
  require(w4a16_gemm_has_wgmma(), op, "needs a compute capability 9.0 GPU (wgmma, sm_90a)");
  const int max_splits = std::min(w4a16::max_splits_on_device(op), w.in / kW4A16Group);
  if (bn == 32) return launch_bn<32>(x, w, n, y, stream, splits, max_splits, op);
  if (n <= 16) return launch_bn<16>(x, w, n, y, stream, splits, max_splits, op);
  if (n <= 32) return launch_bn<32>(x, w, n, y, stream, splits, max_splits, op);
  launch_bn<64>(x, w, n, y, stream, splits, max_splits, op);
}

}  // namespace

bool w4a16_gemm_has_wgmma() {
  static const bool has =
      current_device_attribute(cudaDevAttrComputeCapabilityMajor, "w4a16_gemm_wgmma") == 9 &&
      current_device_attribute(cudaDevAttrComputeCapabilityMinor, "w4a16_gemm_wgmma") == 0;
  return has;
}

void w4a16_gemm_wgmma(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream, int splits,
                      int bn) {
  launch(x, w, n, y, stream, splits, bn);
}
void w4a16_gemm_wgmma(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream, int splits,
                      int bn) {
  launch(x, w, n, y, stream, splits, bn);
}

}  // namespace ridgeline::cuda
