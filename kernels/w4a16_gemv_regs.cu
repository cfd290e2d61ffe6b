// w4a16_gemv, register-streamed: y[n, out] = x[n, in] W^T for decode batches of n <= 8 rows, W in the
// tile-packed W4A16 layout (kernels/w4a16.cuh), fp32 accumulation on tensor cores, fp16 or fp32 out,
// or (wo and w2 of a decode step) residual[t, j] += fp16(y[t, j]) as w4a16_gemv_fused asks.
// FLOPs: 2*n*in*out. Bytes: in*out/2 (codes) + out*(in/128)*4 (scale, zero) + 2*n*in (x) + y.
// Bound: DRAM bandwidth on the packed weights; the target is >= 0.85 of the H200's 4.6 TB/s on the
// 7b shapes at n = 1.
//
// Why a second kernel: the ring kernel (kernels/w4a16_gemv.cu) moves every weight byte through a
// per-warp shared-memory ring and back, and ncu counted ~230 instructions issued per group of 128
// inputs and strip at n = 1, of which only ~84 are the dequantization, the mma and the x fragments
// (issue active 66%, DRAM 52%; perf/NOTES.md, "Session 2026-12-01 (fifth)"). Here each lane loads the
// two 16-byte chunks of a group's codes that are its own A fragments (ld.global.nc, L1 not
// allocated) and its 8-byte scale/zero record straight into registers, a batch of groups ahead of
// the one it multiplies (two batches of registers, the loop unrolled over both so every index is
// static); x is staged once per block into shared memory and read as B fragments by ldmatrix.
// Measured (H200, ncu, 7b w13 at n = 1): issue active ~40%, DRAM 55%: no longer issue-bound but
// latency-bound, a batch of 4 KB a warp at 16 warps per SM (121 registers) being too little in flight.
// 1.06-1.14x faster than the ring kernel on 6 of the 8 model shapes at n = 1, mixed at n = 2.
//
// Layout: a block of `warps` warps holds warps / slices strips, each split along the input over
// `slices` warps (contiguous group ranges). The first batch of weights is requested before the
// kernel waits for the previous one (an overlapped launch, kernels/overlap.cuh); the slices' partial
// tiles are summed through shared memory in slice order (deterministic), as the ring kernel sums its
// warps: with as many slices as the ring kernel has warps, both give the same bits.
#include <algorithm>
#include <string>

#include "kernels/overlap.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemv_common.cuh"

namespace ridgeline::cuda::w4a16 {
namespace {

constexpr int kMaxWarps = 16;

// 16 bytes of weights that no other kernel writes and no other warp of this SM reads again.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 load_record(const uint2* p) {
  uint2 v;
  asm("ld.global.nc.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

// One batch of kB groups of a warp's strip in registers: per group the lane's two 16-byte code
// chunks (packed tiles 2g and 2g + 1) and its scale/zero record.
template <int kB>
struct Batch {
  uint4 q[kB][2];
  uint2 rec[kB];
};

// x rows in shared memory are in * 2 + 16 bytes apart: ldmatrix's 8 row addresses then fall in 8
// distinct 16-byte bank groups.
__host__ __device__ constexpr int x_row_bytes(int in) {
  return in * 2 + 16;
}

// kB groups a register batch (2 kB code chunks of 16 bytes a lane in flight while a batch is
// multiplied); kEpi store or add_residual.
template <int kB, typename OutT, Epilogue kEpi>
__global__ void __launch_bounds__(kMaxWarps * 32) w4a16_gemv_regs_kernel(const GemvArgs<OutT> p, int slices) {
  extern __shared__ __align__(16) unsigned char smem[];
  static_assert(kEpi == Epilogue::store || kEpi == Epilogue::add_residual, "no norm, SwiGLU or RoPE here");
  const W4A16Weights& w = p.w;
  const int n = p.n, warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows;
  const int per_block = warps / slices, slice = warp % slices;
  const int mt = blockIdx.x * per_block + warp / slices;
  const bool live = mt < mtiles;
  const int g0 = slice * groups / slices, ng = live ? (slice + 1) * groups / slices - g0 : 0;

  // Group g0 + i of the strip: packed tiles 2g and 2g + 1 (lane's chunk of each), 1 KB apart a group.
  const uint4* qp = reinterpret_cast<const uint4*>(w.qweight) +
                    (int64_t{live ? mt : 0} * tiles_per_row + 2 * g0) * 32 + lane;
  const uint2* rp =
      reinterpret_cast<const uint2*>(w.scale_zero) + (int64_t{live ? mt : 0} * groups + g0) * 8 + gid;
  auto load = [&](Batch<kB>& b, int i) {
#pragma unroll
    for (int j = 0; j < kB; ++j) {
      if (i + j >= ng) break;
      b.q[j][0] = load_stream(qp + (i + j) * 64);
      b.q[j][1] = load_stream(qp + (i + j) * 64 + 32);
      b.rec[j] = load_record(rp + (i + j) * 8);
    }
  };

  Batch<kB> b0, b1;
  load(b0, 0);  // weights are never written during a step: requested before the wait
  overlap_enter();

  // x into shared memory, whole rows, once per block.
  const int xs_row = x_row_bytes(w.in), chunks = w.in / 8;
  unsigned char* x_s = smem;
  for (int c = threadIdx.x; c < n * chunks; c += blockDim.x) {
    const int row = c / chunks, k = c - row * chunks;
    *reinterpret_cast<uint4*>(x_s + row * xs_row + k * 16) =
        reinterpret_cast<const uint4*>(p.x)[int64_t{row} * chunks + k];
  }
  __syncthreads();

  // ldmatrix.x4 over a pair of K steps: matrix q = lane / 8 is K step q >> 1 of the pair, inputs
  // 8 * (q & 1) .. +7, of x row lane % 8 (rows past n read row 0: their mma columns are never
  // stored). Register q of lane (gid, tig) is then x[gid][k0 + 2tig .. +1]: b0, b1 of two K steps.
  const int xrow = (lane & 7) < n ? (lane & 7) : 0;
  const unsigned char* xb = x_s + xrow * xs_row + ((lane >> 4) * 16 + ((lane >> 3) & 1) * 8) * 2;

  // Per group: 8 K steps summed exactly in `part` (dequant_codes gives exact integers), then scaled
  // into acc: rows gid by s, rows gid + 8 by s / 16. The ring kernel's arithmetic, in its order.
  float acc[4] = {};
  auto compute = [&](const Batch<kB>& b, int i) {
#pragma unroll
    for (int j = 0; j < kB; ++j) {
      if (i + j >= ng) break;
      const unsigned char* xg = xb + (g0 + i + j) * kW4A16Group * 2;
      const half2 zlo = __hadd2(__high2half2(as_half2(b.rec[j].x)), __float2half2_rn(1024.0f));
      const half2 zhi =
          __hfma2(__high2half2(as_half2(b.rec[j].y)), __float2half2_rn(16.0f), __float2half2_rn(1024.0f));
      float part[4] = {};
#pragma unroll
      for (int kp = 0; kp < 4; ++kp) {  // K steps 2kp, 2kp+1: packed tile kp/2, words 2(kp%2)..+1
        uint32_t bx[4], a[4];
        ldmatrix_x4(bx, xg + kp * 64);
        dequant_codes(word_of(b.q[j][kp >> 1], 2 * (kp & 1)), zlo, zhi, a);
        mma_m16n8k16(part, a, bx[0], bx[1]);
        dequant_codes(word_of(b.q[j][kp >> 1], 2 * (kp & 1) + 1), zlo, zhi, a);
        mma_m16n8k16(part, a, bx[2], bx[3]);
      }
      const float s_lo = __low2float(as_half2(b.rec[j].x));
      const float s_hi = __low2float(as_half2(b.rec[j].y)) * 0.0625f;
      acc[0] = fmaf(s_lo, part[0], acc[0]);
      acc[1] = fmaf(s_lo, part[1], acc[1]);
      acc[2] = fmaf(s_hi, part[2], acc[2]);
      acc[3] = fmaf(s_hi, part[3], acc[3]);
    }
  };
  // Two batches in registers: the next is in flight while this one is multiplied.
  for (int i = 0; i < ng;) {
    load(b1, i + kB);
    compute(b0, i);
    i += kB;
    if (i >= ng) break;
    load(b0, i + kB);
    compute(b1, i);
    i += kB;
  }

  // Partial tiles: warp v's part[c][row] at red + v * n * 16, batch rows c < n, the strip's 16
  // rows. C fragment: c0, c1 = row gid, batch rows 2tig, +1; c2, c3 = row gid + 8.
  float* red = reinterpret_cast<float*>(smem + n * xs_row);
  float* mine = red + warp * n * kW4A16TileRows;
  const int c = 2 * tig;
  if (c < n) mine[c * 16 + gid] = acc[0], mine[c * 16 + gid + 8] = acc[2];
  if (c + 1 < n) mine[(c + 1) * 16 + gid] = acc[1], mine[(c + 1) * 16 + gid + 8] = acc[3];
  __syncthreads();
  // One thread an output, the slices summed in order; consecutive threads on consecutive rows.
  for (int e = threadIdx.x; e < per_block * n * kW4A16TileRows; e += blockDim.x) {
    const int u = e / (n * kW4A16TileRows), col = e / kW4A16TileRows % n, row = e % kW4A16TileRows;
    const int o = (blockIdx.x * per_block + u) * kW4A16TileRows + row;
    if (o >= w.out) continue;
    float v = 0.0f;
    for (int s = 0; s < slices; ++s) v += red[((u * slices + s) * n + col) * kW4A16TileRows + row];
    if constexpr (kEpi == Epilogue::add_residual)  // add_rmsnorm's add: r + float(fp16(y))
      p.residual[int64_t{col} * w.out + o] += __half2float(__float2half_rn(v));
    else
      store_out(p.y + int64_t{col} * w.out + o, v);
  }
}

template <typename OutT, Epilogue kEpi>
void launch_layout(const GemvArgs<OutT>& a, const RegsLayout& l, size_t smem, cudaStream_t stream,
                   const char* op) {
  const int strips = a.w.out / kW4A16TileRows, per_block = l.warps / l.slices;
  auto go = [&](auto kernel) {
    static const bool smem_set = (opt_in_smem(kernel, op), true);
    (void)smem_set;
    launch_overlapped(kernel, ceil_div(strips, per_block), l.warps * 32, smem, stream, op, a, l.slices);
  };
  if (l.batch == 2) return go(w4a16_gemv_regs_kernel<2, OutT, kEpi>);
  go(w4a16_gemv_regs_kernel<4, OutT, kEpi>);
}

template <typename OutT>
void launch_checked(const GemvArgs<OutT>& a, bool add_residual, RegsLayout l, cudaStream_t stream,
                    const char* op) {
  if (l.batch == 0) l.batch = 4;
  const int groups = a.w.in / kW4A16Group;
  require(
      a.n >= 1 && a.n <= kRegsMaxRows, op,
      "the register kernel takes 1.." + std::to_string(kRegsMaxRows) + " rows, got " + std::to_string(a.n));
  require(l.warps >= 1 && l.warps <= kMaxWarps, op,
          "warps must be in 1.." + std::to_string(kMaxWarps) + ", got " + std::to_string(l.warps));
  require(l.slices >= 1 && l.slices <= groups && l.warps % l.slices == 0, op,
          "slices must divide the warps and be at most in/128 = " + std::to_string(groups) + ", got " +
              std::to_string(l.slices) + " of " + std::to_string(l.warps) + " warps");
  require(l.batch == 2 || l.batch == 4, op, "batch must be 2 or 4 groups, got " + std::to_string(l.batch));
  const size_t smem = regs_smem_bytes(l, a.n, a.w.in);
  require(smem <= size_t(max_smem_per_block(op)), op,
          "n=" + std::to_string(a.n) + " rows of " + std::to_string(a.w.in) + " inputs need " +
              std::to_string(smem) + " bytes of shared memory, more than a block may have");
  if (add_residual) {
    if constexpr (std::is_same_v<OutT, half>)
      return launch_layout<OutT, Epilogue::add_residual>(a, l, smem, stream, op);
  }
  launch_layout<OutT, Epilogue::store>(a, l, smem, stream, op);
}

}  // namespace

size_t regs_smem_bytes(const RegsLayout& l, int n, int in) {
  return size_t(n) * x_row_bytes(in) + size_t(l.warps) * n * kW4A16TileRows * sizeof(float);
}

bool regs_fit(int n, int in, const char* op) {
  return n >= 1 && n <= kRegsMaxRows &&
         regs_smem_bytes({kMaxWarps, 1}, n, in) <= size_t(max_smem_per_block(op));
}

void launch_regs(const GemvArgs<half>& a, bool add_residual, RegsLayout l, cudaStream_t stream,
                 const char* op) {
  launch_checked(a, add_residual, l, stream, op);
}
void launch_regs(const GemvArgs<float>& a, RegsLayout l, cudaStream_t stream, const char* op) {
  launch_checked(a, false, l, stream, op);
}

}  // namespace ridgeline::cuda::w4a16
