// w4a16_gemv, register-streamed: y[n, out] = x[n, in] W^T for decode batches of n <= 8 rows, W in the
// tile-packed W4A16 layout (kernels/w4a16.cuh), fp32 accumulation on tensor cores; with the decode
// step's fusions (norm prologue; residual-add, SwiGLU or RoPE epilogue) as w4a16_gemv_fused asks.
// FLOPs: 2*n*in*out. Bytes: in*out/2 (codes) + out*(in/128)*4 (scale, zero) + 2*n*in (x) + y.
// Bound: DRAM bandwidth on the packed weights; the target is >= 0.85 of the H200's 4.6 TB/s on the
// 7b shapes at n = 1.
//
// Why a second kernel: the ring kernel (kernels/w4a16_gemv.cu) moves every weight byte through a
// per-warp shared-memory ring (cp.async or bulk copies) and back, and ncu counted ~230 instructions
// issued per group of 128 inputs and strip at n = 1, of which only ~84 are the dequantization, the
// mma and the x fragments (issue active 66%, DRAM 52%; perf/NOTES.md, "Session 2026-12-01 (fifth)").
// Here each lane loads the two 16-byte chunks of a group's codes that are its own A fragments
// (ld.global.nc, L1 not allocated) and its 8-byte scale/zero record straight into registers, a batch
// of groups ahead of the one it multiplies (two batches of registers, the loop unrolled over both so
// every index is static); x is staged once per block into shared memory (or normalized there by the
// norm prologue) and read as B fragments by ldmatrix. Per group and strip: 3 loads, 4 ldmatrix, 72
// dequantization instructions, 8 mma and ~10 for the scale. Measured (H200, ncu, 7b w13 at n = 1):
// issue active ~40%, DRAM 55%: no longer issue-bound but latency-bound (a batch of 4 KB a warp at 16
// warps per SM, 121 registers, is too little in flight). The decode step's one-row GEMVs all run
// here (perf/NOTES.md, "Session 2026-12-02 (twelfth)"): the w4a16 B=1 step 7b 2.098 -> 1.958 ms.
//
// Layout: a block of `warps` warps holds warps / slices strip units (a strip, or with SwiGLU/RoPE a
// pair of strips one warp multiplies together), each split along the input over `slices` warps
// (contiguous group ranges). The first batch of weights is requested before the kernel waits for
// the previous one (an overlapped launch, kernels/overlap.cuh); the slices' partial tiles are summed
// through shared memory in slice order (deterministic), and the same threads run the epilogue. Each
// group is summed and scaled as the ring kernel sums it, so with as many slices as the ring kernel
// has warps both give the same bits (w4a16_gemv's default).
#include <string>
#include <type_traits>

#include "kernels/overlap.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemv_common.cuh"

namespace ridgeline::cuda::w4a16 {
namespace {

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

// One batch of kB groups of a warp's kT strips in registers: per group and strip the lane's two
// 16-byte code chunks (packed tiles 2g and 2g + 1) and its scale/zero record.
template <int kB, int kT>
struct Batch {
  uint4 q[kB][kT][2];
  uint2 rec[kB][kT];
};

// kT strips a warp (2: SwiGLU's gate and up strip, or RoPE's strips of dims d and d + head_dim/2);
// kB groups a register batch (2 kT kB code chunks of 16 bytes a lane in flight while a batch is multiplied).
template <int kT, int kB, typename OutT, bool kNorm, Epilogue kEpi>
__global__ void __launch_bounds__(kMaxWarps * 32)
    w4a16_gemv_regs_kernel(const GemvArgs<OutT> p, const RopeArg<kEpi> rope, int slices) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr bool kPair = kEpi == Epilogue::swiglu || kEpi == Epilogue::rope_kv;
  static_assert(kPair == (kT == 2), "SwiGLU and RoPE pair two strips, the others take one");
  const W4A16Weights& w = p.w;
  const int n = p.n, warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows, units = kPair ? mtiles / 2 : mtiles;
  const int per_block = warps / slices, slice = warp % slices;
  const int unit = blockIdx.x * per_block + warp / slices;
  const bool live = unit < units;
  int rope_pairs = 1;
  if constexpr (kEpi == Epilogue::rope_kv) rope_pairs = rope.cache.head_dim / (2 * kW4A16TileRows);
  // The M tile of strip r of a unit.
  auto tile_mt = [&](int u, int r) {
    if constexpr (kEpi == Epilogue::rope_kv) return ((u / rope_pairs) * 2 + r) * rope_pairs + u % rope_pairs;
    return kPair ? u + r * (mtiles / 2) : u;
  };
  const int g0 = slice * groups / slices, ng = live ? (slice + 1) * groups / slices - g0 : 0;

  const uint4* qp[kT];
  const uint2* rp[kT];
#pragma unroll
  for (int r = 0; r < kT; ++r) {
    const int64_t mt = live ? tile_mt(unit, r) : 0;
    qp[r] = reinterpret_cast<const uint4*>(w.qweight) + (mt * tiles_per_row + 2 * g0) * 32 + lane;
    rp[r] = reinterpret_cast<const uint2*>(w.scale_zero) + (mt * groups + g0) * 8 + gid;
  }
  auto load = [&](Batch<kB, kT>& b, int i) {
#pragma unroll
    for (int j = 0; j < kB; ++j) {
      if (i + j >= ng) break;
#pragma unroll
      for (int r = 0; r < kT; ++r) {
        b.q[j][r][0] = load_stream(qp[r] + (i + j) * 64);
        b.q[j][r][1] = load_stream(qp[r] + (i + j) * 64 + 32);
        b.rec[j][r] = load_record(rp[r] + (i + j) * 8);
      }
    }
  };

  Batch<kB, kT> b0, b1;
  load(b0, 0);  // weights are never written during a step: requested before the wait
  overlap_enter();

  // x (or its RMSNorm) into shared memory, whole rows, once per block.
  const int xs_row = x_row_bytes(w.in);
  unsigned char* x_s = smem;
  if constexpr (kNorm) {
    norm_rows(p.norm_residual, p.norm_w, n, w.in, p.eps, x_s, xs_row);
  } else {
    const int chunks = w.in / 8;
    for (int c = threadIdx.x; c < n * chunks; c += blockDim.x) {
      const int row = c / chunks, k = c - row * chunks;
      *reinterpret_cast<uint4*>(x_s + row * xs_row + k * 16) =
          reinterpret_cast<const uint4*>(p.x)[int64_t{row} * chunks + k];
    }
    __syncthreads();
  }

  // ldmatrix.x4 over a pair of K steps: matrix q = lane / 8 is K step q >> 1 of the pair, inputs
  // 8 * (q & 1) .. +7, of x row lane % 8 (rows past n read row 0: their mma columns are never
  // stored). Register q of lane (gid, tig) is then x[gid][k0 + 2tig .. +1]: b0, b1 of two K steps.
  const int xrow = (lane & 7) < n ? (lane & 7) : 0;
  const unsigned char* xb = x_s + xrow * xs_row + ((lane >> 4) * 16 + ((lane >> 3) & 1) * 8) * 2;

  float acc[kT][4] = {};
  auto compute = [&](const Batch<kB, kT>& b, int i) {
#pragma unroll
    for (int j = 0; j < kB; ++j) {
      if (i + j >= ng) break;
      const unsigned char* xg = xb + (g0 + i + j) * kW4A16Group * 2;
      half2 zlo[kT], zhi[kT];
      float part[kT][4];
#pragma unroll
      for (int r = 0; r < kT; ++r) {
        zlo[r] = __hadd2(__high2half2(as_half2(b.rec[j][r].x)), __float2half2_rn(1024.0f));
        zhi[r] = __hfma2(__high2half2(as_half2(b.rec[j][r].y)), __float2half2_rn(16.0f),
                         __float2half2_rn(1024.0f));
#pragma unroll
        for (int k = 0; k < 4; ++k) part[r][k] = 0.0f;
      }
#pragma unroll
      for (int kp = 0; kp < 4; ++kp) {  // K steps 2kp, 2kp+1: packed tile kp/2, words 2(kp%2)..+1
        uint32_t bx[4];
        ldmatrix_x4(bx, xg + kp * 64);
#pragma unroll
        for (int r = 0; r < kT; ++r) {
          uint32_t a[4];
          dequant_codes(word_of(b.q[j][r][kp >> 1], 2 * (kp & 1)), zlo[r], zhi[r], a);
          mma_m16n8k16(part[r], a, bx[0], bx[1]);
          dequant_codes(word_of(b.q[j][r][kp >> 1], 2 * (kp & 1) + 1), zlo[r], zhi[r], a);
          mma_m16n8k16(part[r], a, bx[2], bx[3]);
        }
      }
#pragma unroll
      for (int r = 0; r < kT; ++r) {  // rows gid by s, rows gid + 8 by s / 16 (dequant_codes)
        const float s_lo = __low2float(as_half2(b.rec[j][r].x));
        const float s_hi = __low2float(as_half2(b.rec[j][r].y)) * 0.0625f;
        acc[r][0] = fmaf(s_lo, part[r][0], acc[r][0]);
        acc[r][1] = fmaf(s_lo, part[r][1], acc[r][1]);
        acc[r][2] = fmaf(s_hi, part[r][2], acc[r][2]);
        acc[r][3] = fmaf(s_hi, part[r][3], acc[r][3]);
      }
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

  // Partial tiles: warp v's part[c][row] at red + v * n * kRows, batch rows c < n, the unit's
  // 16 * kT output rows. C fragment: c0, c1 = row gid, batch rows 2tig, +1; c2, c3 = row gid + 8.
  constexpr int kRows = 16 * kT;
  float* red = reinterpret_cast<float*>(smem + n * xs_row);
  float* mine = red + warp * n * kRows;
#pragma unroll
  for (int r = 0; r < kT; ++r) {
    const int row = 16 * r + gid, c = 2 * tig;
    if (c < n) mine[c * kRows + row] = acc[r][0], mine[c * kRows + row + 8] = acc[r][2];
    if (c + 1 < n) mine[(c + 1) * kRows + row] = acc[r][1], mine[(c + 1) * kRows + row + 8] = acc[r][3];
  }
  __syncthreads();
  // Unit u of the block, batch row col, row of its kRows: the slices summed in order.
  auto sum = [&](int u, int col, int row) {
    float v = 0.0f;
    for (int s = 0; s < slices; ++s) v += red[((u * slices + s) * n + col) * kRows + row];
    return v;
  };
  // One thread per output (per rotated pair with RoPE, per gate/up pair with SwiGLU), consecutive
  // threads on consecutive rows of a unit (coalesced stores).
  for (int e = threadIdx.x; e < per_block * n * kW4A16TileRows; e += blockDim.x) {
    const int u = e / (n * kW4A16TileRows), col = e / kW4A16TileRows % n, row = e % kW4A16TileRows;
    const int gu = blockIdx.x * per_block + u;
    if (gu >= units) continue;
    auto rows = [&](int r) { return sum(u, col, r); };
    if constexpr (kEpi == Epilogue::rope_kv) {
      const RopeKvSlot at = rope_kv_slot(rope, col);
      float c = 0.0f, s = 0.0f;
      rope_cos_sin(at.pos, rope.pos_scale, rope.table[col].inv_freq[gu % rope_pairs * kW4A16TileRows + row],
                   c, s);
      write_output<kEpi>(p, rope, gu, col, row, rows, at, c, s);
    } else {
      write_output<kEpi>(p, rope, gu, col, row, rows);
    }
  }
}

template <int kT, typename OutT, bool kNorm, Epilogue kEpi>
void launch_layout(const GemvArgs<OutT>& a, const RopeArg<kEpi>& rope, const RegsLayout& l, size_t smem,
                   cudaStream_t stream, const char* op) {
  const int units = a.w.out / kW4A16TileRows / kT, per_block = l.warps / l.slices;
  auto go = [&](auto kernel) {
    static const bool smem_set = (opt_in_smem(kernel, op), true);
    (void)smem_set;
    launch_overlapped(kernel, ceil_div(units, per_block), l.warps * 32, smem, stream, op, a, rope, l.slices);
  };
  if constexpr (kT == 1) {
    if (l.batch == 4) return go(w4a16_gemv_regs_kernel<kT, 4, OutT, kNorm, kEpi>);
  }
  go(w4a16_gemv_regs_kernel<kT, 2, OutT, kNorm, kEpi>);
}

template <typename OutT>
void launch_checked(const GemvArgs<OutT>& a, Epilogue epi, RegsLayout l, cudaStream_t stream, const char* op,
                    const RopeKvArgs* rope) {
  const bool pair = epi == Epilogue::swiglu || epi == Epilogue::rope_kv, norm = a.norm_residual != nullptr;
  if (l.batch == 0) l.batch = pair ? 2 : 4;
  const int groups = a.w.in / kW4A16Group;
  require(
      a.n >= 1 && a.n <= kRegsMaxRows, op,
      "the register kernel takes 1.." + std::to_string(kRegsMaxRows) + " rows, got " + std::to_string(a.n));
  require(l.warps >= 1 && l.warps <= kMaxWarps, op,
          "warps must be in 1.." + std::to_string(kMaxWarps) + ", got " + std::to_string(l.warps));
  require(l.slices >= 1 && l.slices <= groups && l.warps % l.slices == 0, op,
          "slices must divide the warps and be at most in/128 = " + std::to_string(groups) + ", got " +
              std::to_string(l.slices) + " of " + std::to_string(l.warps) + " warps");
  require(l.batch == 2 || (l.batch == 4 && !pair), op,
          "batch must be 2 groups, or 4 for one strip a warp (4 with two strips spills), got " +
              std::to_string(l.batch));
  const size_t smem = regs_smem_bytes(l, a.n, a.w.in, pair);
  require(smem <= size_t(max_smem_per_block(op)), op,
          "n=" + std::to_string(a.n) + " rows of " + std::to_string(a.w.in) + " inputs need " +
              std::to_string(smem) + " bytes of shared memory, more than a block may have");
  if constexpr (std::is_same_v<OutT, half>) {
    if (epi == Epilogue::swiglu)
      return launch_layout<2, OutT, true, Epilogue::swiglu>(a, {}, l, smem, stream, op);
    if (epi == Epilogue::rope_kv)
      return launch_layout<2, OutT, true, Epilogue::rope_kv>(a, *rope, l, smem, stream, op);
    if (epi == Epilogue::add_residual)
      return launch_layout<1, OutT, false, Epilogue::add_residual>(a, {}, l, smem, stream, op);
  }
  if (norm) return launch_layout<1, OutT, true, Epilogue::store>(a, {}, l, smem, stream, op);
  launch_layout<1, OutT, false, Epilogue::store>(a, {}, l, smem, stream, op);
}

}  // namespace

size_t regs_smem_bytes(const RegsLayout& l, int n, int in, bool pair) {
  return size_t(n) * x_row_bytes(in) + size_t(l.warps) * n * 16 * (pair ? 2 : 1) * sizeof(float);
}

bool regs_fit(int n, int in, const char* op) {
  return n >= 1 && n <= kRegsMaxRows &&
         regs_smem_bytes({kMaxWarps, 1}, n, in, true) <= size_t(max_smem_per_block(op));
}

void launch_regs(const GemvArgs<half>& a, Epilogue epi, RegsLayout l, cudaStream_t stream, const char* op,
                 const RopeKvArgs* rope) {
  launch_checked(a, epi, l, stream, op, rope);
}
void launch_regs(const GemvArgs<float>& a, Epilogue epi, RegsLayout l, cudaStream_t stream, const char* op) {
  launch_checked(a, epi, l, stream, op, nullptr);
}

}  // namespace ridgeline::cuda::w4a16
