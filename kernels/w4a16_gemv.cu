// w4a16_gemv: y[n, out] = x[n, in] W^T for decode batches of n <= kW4A16GemvMaxRows rows, W in the
// tile-packed W4A16 layout (kernels/w4a16.cuh), fp32 accumulation on tensor cores, fp16 or fp32 out.
// FLOPs: 2*n*in*out. Bytes: in*out/2 (codes) + out*(in/128)*4 (scale, zero) + 2*n*in (x) + y.
// Bound: DRAM bandwidth on the packed weights (4 bits a weight, a quarter of fp16's bytes); the
// target is >= 0.85 of the H200's 4.6 TB/s on the 7b shapes at n = 1, and for small weights a launch
// that costs one DRAM round trip, not several.
//
// At one row every form (plain, normed, SwiGLU, RoPE, residual-add) takes the register kernel instead
// (kernels/w4a16_gemv_regs.cu: no ring, x staged once per block; the same bits at the same input
// split; the w4a16 B=1 step 7b -6.7%, 1.8b -1.5% on the H200): use_registers() below is the one
// choice, fused_regs_layout() the pairs' split.
// Streamed: a block owns `tiles` 16-row strips of W (mma M tiles) and `warps` warps, each of which
// streams one contiguous slice of the input range of those strips (a strip's packed codes are
// consecutive 512-byte tiles along the input, so a slice is one contiguous run of bytes) through
// its own ring of `stages` stages in shared memory (cp.async, or with the norm prologue bulk copies
// on an mbarrier per slot: see the kernel). A stage is one group of 128 inputs: the strips' codes
// (1 KB each), their scale/zero records and the group's 128 inputs of each x row.
// Up to 8 rows x is one mma N tile; 9..16 rows take two and 17..32 four, and each dequantized weight
// fragment feeds all of them (the dequantization, not the mma, is the arithmetic that costs here).
// w4a16_gemv_fused (decode steps of 1-2 rows) is the same kernel with the step's small ops folded in,
// as gemv_fused does for fp16: the RMSNorm of the float32 residual computed by every block into shared
// memory while its first weight stages load (x then comes from there, not from the rings: bytes
// + 8*n*in read from L2 per block), SwiGLU of a gate and an up strip held by one block, or the
// residual add, in the final reduction. It saves a launch and a round trip of x through DRAM/L2 per
// fused op: 72 launches of a 1.8b step, 96 of a 7b one. It can also do rope_kv_write's work on
// wqkv's rows (a block holding the strips of dims d and d + head_dim/2 of one head:
// kernels/rope.cuh), which the engine uses at one row (in the register kernel, with its warps
// holding at most 4 groups of the pair: fused_regs_layout below).
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
#include "kernels/rmsnorm_row.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu_math.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
#include "kernels/w4a16_gemv_common.cuh"

namespace ridgeline::cuda {
namespace {

using w4a16::Epilogue;
using w4a16::GemvArgs;
using w4a16::kMaxWarps;
using w4a16::max_smem_per_block;
using w4a16::RopeArg;

// One stage, per strip: two packed 64-input tiles (32 lanes x 16 B each) and 8 records of 8 B.
constexpr int kCodeBytes = 2 * 32 * 16;
constexpr int kRecordBytes = 8 * 8;
// One stage, per x row: 128 inputs, padded by 16 B so that the ldmatrix of 8 rows (a 272-byte
// stride = 68 words) touches 32 distinct banks.
constexpr int kXRowBytes = kW4A16Group * 2 + 16;

__host__ __device__ constexpr int stage_bytes(int tiles, int n) {
  return tiles * (kCodeBytes + kRecordBytes) + n * kXRowBytes;
}

// Whether a kernel's ring fills by bulk copies on mbarriers (the normed kernels) or by cp.async: the
// kernel and the host's shared-memory sizing (the mbarriers) both ask here.
__host__ __device__ constexpr bool bulk_stages(bool norm) {
  return norm;
}

// kNT: mma N tiles of 8 batch rows (n <= 8 * kNT); each dequantized A fragment feeds kNT mma.
// kNorm: x is fp16(rmsnorm(norm_residual) * norm_w), which the block computes into shared memory
// (after the rings: n rows of in halves, each row padded by 16 B) while its first weight stages load.
// kEpi: the epilogue; with SwiGLU a block's two strips are gate strip b and up strip b + out/32, with
// RoPE the strips of dims 16j.. and head_dim/2 + 16j.. of one qkv head (pair b of the head_dim/32
// pairs a head has).
template <int kTiles, int kNT, int kStages, typename OutT, bool kNorm, Epilogue kEpi>
__global__ void __launch_bounds__(kMaxWarps * 32, 1)
    w4a16_gemv_kernel(const GemvArgs<OutT> p, const RopeArg<kEpi> rope) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr bool kPair = kEpi == Epilogue::swiglu, kRope = kEpi == Epilogue::rope_kv;
  static_assert(!(kPair || kRope) || kTiles == 2, "SwiGLU and RoPE pair two strips");
  const half* __restrict__ x = p.x;
  const W4A16Weights& w = p.w;
  const int n = p.n;
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2;
  const int tig = lane & 3;
  const int groups = w.in / kW4A16Group, tiles_per_row = w.in / kW4A16TileInputs;
  const int mtiles = w.out / kW4A16TileRows, mt0 = blockIdx.x * (kPair ? 1 : kTiles);
  // RoPE: the block's head (in qkv's rows) and its pair of the head's strips.
  int rope_pairs = 1, head_in_row = 0, jj = 0;
  if constexpr (kRope) {
    rope_pairs = rope.cache.head_dim / (2 * kW4A16TileRows);
    head_in_row = blockIdx.x / rope_pairs, jj = blockIdx.x % rope_pairs;
  }
  // The M tile of the block's strip r.
  auto tile_mt = [&](int r) {
    if constexpr (kRope) return (head_in_row * 2 + r) * rope_pairs + jj;
    return kPair ? mt0 + r * (mtiles / 2) : mt0 + r;
  };
  const int g0 = warp * groups / warps, ng = (warp + 1) * groups / warps - g0;
  const int sbytes = stage_bytes(kTiles, kNorm ? 0 : n);
  unsigned char* ring = smem + size_t(warp) * kStages * sbytes;
  unsigned char* x_s = smem + size_t(warps) * kStages * sbytes;  // kNorm: the normed rows
  const int xs_row = w4a16::x_row_bytes(w.in);
  // Strip r exists (the last block of an odd strip count with two strips holds one). Strip 0 and
  // SwiGLU's pair always do; only the normed kernels are told so, which leaves the plain kernels'
  // code (and registers: 80 on the 1-strip layout) as they were measured.
  auto live = [&](int r) { return (kNorm && (r == 0 || kPair || kRope)) || tile_mt(r) < mtiles; };

  // How the ring slots fill. With the norm prologue (kNorm: wqkv and w13 of a decode step, x already
  // in x_s), by bulk copies (kernels/cp_async.cuh): lane 0 copies each strip's codes (its two
  // packed tiles of the group, 1 KB, as contiguous in global memory as in the slot) and records
  // (64 B), completing on the slot's mbarrier. Otherwise by cp.async, 16 bytes a lane: lane L copies
  // chunk L of each packed tile (the one it reads back), lanes 0..4*kTiles-1 the records, and the
  // lanes share the 16*n chunks of x, one commit group per stage.
  // Why both: the kernel is issue-bound, not DRAM-bound, on the large shapes (ncu, 7b w13 at M=1:
  // 230 instructions issued per group and warp, issue active 66% of cycles, DRAM 52%), and the
  // per-lane copies with their address arithmetic are about a third of those instructions. Bulk
  // copies made the normed GEMVs 3-12% faster (H200, BM_W4A16Fusions) but the plain ones up to 30%
  // slower, where the x rows add a bulk copy per row and stage and the 54-register kernel packs 36
  // warps onto an SM (perf/NOTES.md, "Session 2026-12-01 (fifth)").
  constexpr bool kBulk = bulk_stages(kNorm);
  uint32_t bar0 = 0;
  const unsigned char* wsrc[kTiles];
  const unsigned char* rsrc[kTiles];
  int tx_bytes = 0;
  if constexpr (kBulk) {
    bar0 = smem_addr(x_s + n * xs_row) + warp * kStages * 8;
#pragma unroll
    for (int r = 0; r < kTiles; ++r) {
      const int64_t mt = live(r) ? tile_mt(r) : 0;
      wsrc[r] = reinterpret_cast<const unsigned char*>(w.qweight) + (mt * tiles_per_row + 2 * g0) * 512;
      rsrc[r] = reinterpret_cast<const unsigned char*>(w.scale_zero) + (mt * groups + g0) * 64;
      if (live(r)) tx_bytes += kCodeBytes + kRecordBytes;
    }
    if (lane == 0)
      for (int s = 0; s < kStages; ++s) mbarrier_init(bar0 + s * 8, 1);
    __syncwarp();
  }

  // cp.async: each lane's weight sources of group g0, set up once (16-byte units from the tensors'
  // starts, below 2^31 for any weight under 32 GB); group g0 + i adds 64 * i (codes) and 4 * i
  // (records). Recomputed per copy and stage with 64-bit products, as x's copies still are, they had
  // cost M = 2..8 2-12% on the H200 (7b w2 at M = 4 16.1 -> 14.3 us); the same for x's copies
  // (a pointer stepped per row) cost M = 2..8 up to 12% again, though M = 16 gained up to 6%
  // (perf/NOTES.md, "twenty-sixth").
  const uint4* codes = reinterpret_cast<const uint4*>(w.qweight);
  const uint4* records = reinterpret_cast<const uint4*>(w.scale_zero);
  int code_at[kTiles] = {};
  bool rec_copy = false;
  int rec_at = 0;
  if constexpr (!kBulk) {
#pragma unroll
    for (int r = 0; r < kTiles; ++r)
      if (live(r)) code_at[r] = (tile_mt(r) * tiles_per_row + 2 * g0) * 32 + lane;
    rec_copy = lane < 4 * kTiles && live(lane >> 2);
    if (rec_copy) rec_at = (tile_mt(lane >> 2) * groups + g0) * 4 + (lane & 3);
  }

  // Group g0 + i into ring slot `slot`: the strips' codes and records (issue_w), then x (issue_x).
  // Strips past the weight's end are neither loaded nor used.
  auto issue_w = [&](int slot, int i) {
    unsigned char* st = ring + slot * sbytes;
    if constexpr (kBulk) {
      if (lane != 0) return;
      const uint32_t dst = smem_addr(st), bar = bar0 + slot * 8;
      mbarrier_arrive_expect_tx(bar, tx_bytes);
#pragma unroll
      for (int r = 0; r < kTiles; ++r) {
        if (!live(r)) break;
        bulk_copy_g2s(dst + r * kCodeBytes, wsrc[r] + int64_t{i} * kCodeBytes, kCodeBytes, bar);
        bulk_copy_g2s(dst + kTiles * kCodeBytes + r * kRecordBytes, rsrc[r] + int64_t{i} * kRecordBytes,
                      kRecordBytes, bar);
      }
    } else {
#pragma unroll
      for (int r = 0; r < kTiles; ++r) {
        if (!live(r)) break;
        const uint4* src = codes + (code_at[r] + i * 64);
        cp_async_16(st + ((2 * r) * 32 + lane) * 16, src, true);
        cp_async_16(st + ((2 * r + 1) * 32 + lane) * 16, src + 32, true);
      }
      if (rec_copy) cp_async_16(st + kTiles * kCodeBytes + lane * 16, records + (rec_at + i * 4), true);
    }
  };
  // x, 16 chunks of 16 bytes a row and stage. From 9 rows (kNT >= 2) lane L copies chunk L % 16 of
  // rows L / 16, L / 16 + 2, ... through a pointer set up once and stepped by two rows; up to 8 rows
  // each copy splits its index into row and chunk. The stepped form was measured up to 6% faster at
  // 16 rows (7b w2 20.7 -> 19.5 us, H100) and up to 12% slower at 2-8 (more live values there, and
  // ptxas rematerializing the slot address every stage: perf/NOTES.md, "twenty-sixth",
  // "twenty-seventh" and "thirty-ninth"), hence one per kNT.
  const int x_at = (lane >> 4) * kXRowBytes + (lane & 15) * 16;
  const int x_from = (lane >> 4) * w.in + g0 * kW4A16Group + (lane & 15) * 8;
  auto issue_x = [&](int slot, int i) {
    if constexpr (kNorm) {  // with the norm prologue x is in x_s for the whole kernel
    } else if constexpr (kNT >= 2) {
      unsigned char* dst = ring + slot * sbytes + kTiles * (kCodeBytes + kRecordBytes) + x_at;
      const half* src = x + (x_from + i * kW4A16Group);
      for (int row = lane >> 4; row < n; row += 2, dst += 2 * kXRowBytes, src += 2 * w.in)
        w4a16::cp_async_16_l1(dst, src);
    } else {
      const int g = g0 + i;
      unsigned char* xs = ring + slot * sbytes + kTiles * (kCodeBytes + kRecordBytes);
      for (int c = lane; c < 16 * n; c += 32) {
        const int row = c >> 4, chunk = c & 15;
        w4a16::cp_async_16_l1(xs + row * kXRowBytes + chunk * 16,
                              x + int64_t{row} * w.in + int64_t{g} * kW4A16Group + chunk * 8);
      }
    }
  };

  // ldmatrix.x4 over a pair of K steps: matrix q = lane / 8 is K step (q >> 1) of the pair, inputs
  // 8 * (q & 1) .. +7, for batch rows 8t + lane % 8 of N tile t (rows past n read row 0: their mma
  // columns are never stored). Register q of lane (gid, tig) is then x[8t + gid][k0 + 2tig .. +1]:
  // b0, b1 of two K steps.
  // kNorm: the same from x_s, whose rows are xs_row bytes apart (8 x 4 words mod 32 banks: no
  // conflict) and whose group g starts 256 * g bytes into the row.
  int xoff[kNT];
#pragma unroll
  for (int t = 0; t < kNT; ++t) {
    const int xrow = 8 * t + (lane & 7) < n ? 8 * t + (lane & 7) : 0;
    const int in_group = ((lane >> 4) * 16 + ((lane >> 3) & 1) * 8) * 2;
    xoff[t] = kNorm ? xrow * xs_row + in_group
                    : kTiles * (kCodeBytes + kRecordBytes) + xrow * kXRowBytes + in_group;
  }

  float acc[kTiles][kNT][4] = {};
  // Group g0 + i from ring slot `slot`: per strip, 8 K steps (2 packed tiles x 4 words) summed
  // exactly in `part`, then scaled into acc: rows gid by s, rows gid + 8 by s / 16 (dequant_codes).
  auto compute = [&](int slot, int i) {
    const unsigned char* st = ring + slot * sbytes;
    const unsigned char* xb = kNorm ? x_s + (g0 + i) * kW4A16Group * 2 : st;
    uint4 raw[kTiles][2];
    uint2 rec[kTiles];
    half2 zlo[kTiles], zhi[kTiles];
    float part[kTiles][kNT][4];
#pragma unroll
    for (int r = 0; r < kTiles; ++r) {
      if (!live(r)) break;
      raw[r][0] = *reinterpret_cast<const uint4*>(st + ((2 * r) * 32 + lane) * 16);
      raw[r][1] = *reinterpret_cast<const uint4*>(st + ((2 * r + 1) * 32 + lane) * 16);
      rec[r] = *reinterpret_cast<const uint2*>(st + kTiles * kCodeBytes + (r * 8 + gid) * 8);
      zlo[r] = __hadd2(__high2half2(as_half2(rec[r].x)), __float2half2_rn(1024.0f));
      zhi[r] = __hfma2(__high2half2(as_half2(rec[r].y)), __float2half2_rn(16.0f), __float2half2_rn(1024.0f));
#pragma unroll
      for (int t = 0; t < kNT; ++t)
#pragma unroll
        for (int k = 0; k < 4; ++k) part[r][t][k] = 0.0f;
    }
#pragma unroll
    for (int kp = 0; kp < 4; ++kp) {  // K steps 2kp, 2kp+1 of the group: packed tile kp/2, words 2(kp%2)..+1
      uint32_t b[kNT][4];
#pragma unroll
      for (int t = 0; t < kNT; ++t) ldmatrix_x4(b[t], xb + xoff[t] + kp * 64);
#pragma unroll
      for (int r = 0; r < kTiles; ++r) {
        if (!live(r)) break;
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
      if (!live(r)) break;
      const float s_lo = __low2float(as_half2(rec[r].x));
      const float s_hi = __low2float(as_half2(rec[r].y)) * 0.0625f;
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        acc[r][t][0] = fmaf(s_lo, part[r][t][0], acc[r][t][0]);
        acc[r][t][1] = fmaf(s_lo, part[r][t][1], acc[r][t][1]);
        acc[r][t][2] = fmaf(s_hi, part[r][t][2], acc[r][t][2]);
        acc[r][t][3] = fmaf(s_hi, part[r][t][3], acc[r][t][3]);
      }
    }
  };

  // The multistage pipeline, per warp: group i + kStages - 1 is requested while group i is
  // multiplied. cp.async: one commit per step (empty ones too) keeps the wait count exact; bulk:
  // slot s completes its (i / kStages)-th phase when group i's bytes have landed. The __syncwarp
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
  // RoPE: thread e < 16n stores row e % 16 of both strips for token e / 16; its position, cache block
  // and angle are host-written inputs, read before waiting for the previous kernel.
  RopeKvSlot rope_at;
  float rope_c = 0.0f, rope_s = 0.0f;
  if constexpr (kRope) {
    if (int(threadIdx.x) < kW4A16TileRows * n) {
      const int t = threadIdx.x / kW4A16TileRows, d = jj * kW4A16TileRows + threadIdx.x % kW4A16TileRows;
      rope_at = rope_kv_slot(rope, t);
      rope_cos_sin(rope_at.pos, rope.pos_scale, rope.table[t].inv_freq[d], rope_c, rope_s);
    }
  }
  overlap_enter();
  if constexpr (kNorm) w4a16::norm_rows(p.norm_residual, p.norm_w, n, w.in, p.eps, x_s, xs_row);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ng) issue_x(s, s);
    if constexpr (!kBulk) cp_async_commit();
  }
  for (int i = 0; i < ng; ++i) {
    if constexpr (kBulk)
      mbarrier_wait(bar0 + (i % kStages) * 8, (i / kStages) & 1);
    else
      cp_async_wait<kStages - 2>();
    __syncwarp();
    if (i + kStages - 1 < ng) issue((i + kStages - 1) % kStages, i + kStages - 1);
    if constexpr (!kBulk) cp_async_commit();
    compute(i % kStages, i);
  }
  if constexpr (!kBulk) cp_async_wait<0>();
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
  auto warp_sums = [&](int col, int row) {
    float v = 0.0f;
    for (int k = 0; k < warps; ++k)
      v += reinterpret_cast<const float*>(smem + size_t(k) * kStages * sbytes)[col * kRows + row];
    return v;
  };
  // One thread an output (a rotated pair with RoPE, a gate/up pair with SwiGLU); the unit is the block's
  // (store: its first strip, row running over its kRows).
  const int outputs = (kPair || kRope ? kW4A16TileRows : kRows) * n, per_col = outputs / n;
  for (int e = threadIdx.x; e < outputs; e += blockDim.x) {
    const int col = e / per_col, row = e % per_col;
    auto rows = [&](int r) { return warp_sums(col, r); };
    if constexpr (kRope)  // the slot and angle thread e < 16n read before the wait
      w4a16::write_output<kEpi>(p, rope, blockIdx.x, col, row, rows, rope_at, rope_c, rope_s);
    else
      w4a16::write_output<kEpi>(p, rope, mt0, col, row, rows);
  }
}

// The rings, and with the norm prologue the normed rows.
size_t smem_bytes(const W4A16GemvConfig& c, int n, int norm_in = 0) {
  const size_t rings = size_t(c.warps) * c.stages * stage_bytes(c.tiles, norm_in > 0 ? 0 : n);
  const size_t barriers =
      bulk_stages(norm_in > 0) ? size_t(c.warps) * c.stages * 8 : 0;  // an mbarrier a slot
  return rings + (norm_in > 0 ? size_t(n) * size_t(w4a16::x_row_bytes(norm_in)) : 0) + barriers;
}

// A layout that does not fit a block's shared memory: 4 stages, then fewer warps.
W4A16GemvConfig shrink_to_fit(W4A16GemvConfig c, int n, int norm_in, const char* op) {
  while (smem_bytes(c, n, norm_in) > size_t(max_smem_per_block(op)) && c.stages > 4) c.stages = 4;
  while (smem_bytes(c, n, norm_in) > size_t(max_smem_per_block(op)) && c.warps > 1) c.warps /= 2;
  return c;
}

// The fused GEMVs' layouts, and the plain GEMV's from 9 rows (choose_plain_config has its own up to
// 8), as BM_W4A16GemvVariants measured them (H200, 2026-12-01, perf/NOTES.md).
// Up to 8 rows (M = 1 and 8 measured): one strip per block (two were slower everywhere). Warps per
// block by strips per SM: 16 when there are fewer strips than SMs and n <= 2 (1.8b w2 at M=1: 5.6 us
// vs 6.7 with 8), 8 up to two strips per SM, 4 beyond (7b wqkv 7.5 us vs 9.5 with 8, 1.8b w13 9.5 vs
// 12.1, 7b w13 23.4 vs 30.4): with many strips, fewer warps each stream more groups and more blocks
// fit beside each other. 8 stages for n <= 2 at 8+ warps, 4 otherwise (4-warp blocks were as fast
// or faster with 4).
// 9..32 rows (M = 16 and 32 measured; H100, perf/NOTES.md "thirty-ninth"): x is 4.3 KB of a
// stage's 5.4-6.5 KB (8.7 of 9.8-10.9 KB at 17..32 rows), so the rings' depth decides how many warps an
// SM holds, and the warps, not the bytes in flight, are what limits: at 4 stages one 8-warp block an
// SM (4 warps at 17..32 rows), and Nsight Compute finds 7b w2 at M = 16 at 12.5% occupancy, 5.6 cycles
// a warp instruction, mostly waiting on fixed-latency dependencies. 2 stages (one group in flight a
// warp) hold twice the warps: M = 16 7b wo 7.15 -> 6.24 us, w2 19.6 -> 17.7, wqkv 10.1 -> 9.4, 1.8b
// wqkv 4.5 -> 4.0; M = 32 1.8b wo 4.6 -> 3.9, w2 14.1 -> 10.8, 7b wo 10.8 -> 9.4. Two strips a block
// once the one-strip blocks would not fit at once (9..16 rows: two 8-warp blocks an SM; 17..32: one),
// then 16 warps a block (8 at 17..32) while the blocks fit one an SM, else 8 (4).
W4A16GemvConfig choose_config(int n, int in, int out, const char* op) {
  W4A16GemvConfig c;
  const int sms = current_sm_count(op), strips = ceil_div(out, kW4A16TileRows), groups = in / kW4A16Group;
  if (n > 8) {
    const int fit = n > 16 ? sms : 2 * sms, wide = n > 16 ? 8 : 16;
    c.tiles = strips > fit ? 2 : 1;
    c.warps = std::min(ceil_div(strips, c.tiles) <= sms ? wide : wide / 2, groups);
    c.stages = 2;
  } else {
    c.tiles = 1;
    c.warps = std::min(strips < sms && n <= 2 ? 16 : strips <= 2 * sms ? 8 : 4, groups);
    c.stages = n <= 2 && c.warps >= 8 ? 8 : 4;
  }
  return shrink_to_fit(c, n, 0, op);
}

// The plain GEMV's default up to 8 rows (w4a16_gemv asked for no layout; the engine's linears at 3-8
// rows and every benchmark row): 2-stage rings sized so the grid fills the SMs about once, which
// BM_W4A16GemvVariants found faster than choose_config's layouts at M = 1, 2 and 8 on every model
// shape but two (H100, perf/NOTES.md "fortieth"; the three runs of each agree within 2%). By strips
// per SM:
// - up to one (1.8b wo, w2): one strip, 16 warps (1.8b w2 at M = 1 / 2 / 8: 4.8 / 4.7 / 5.0 us vs
//   5.4 / 5.6 / 6.4);
// - up to two (1.8b wqkv, 7b wo, w2): two strips, 16 warps of at least two groups each (7b w2 12.5 /
//   12.2 / 12.7 vs 13.4 / 13.1 / 13.3; 7b wo 4.8 / 4.8 / 5.0 vs 4.8 / 5.4 / 5.7), but 8 warps and 4
//   stages at 1-2 rows on weights of at most 32 groups (7b wo at M = 1 / 2: 4.82 / 4.75 -> 4.63 /
//   4.52 us, H100, BM_W4A16VsFp16 in one A/B run, "forty-second"; 1.8b wqkv at M = 2 level, 3.17
//   -> 3.16);
// - up to three (7b wqkv): one strip, 8 warps (6.1 / 6.0 / 6.1 vs 7.5 / 6.9 / 7.5);
// - beyond (the w13s): one strip, 2 warps, with 4 stages where a warp streams at most 8 groups (1.8b
//   w13 8.4 / 8.2 / 8.3 vs 8.2 / 8.9 / 10.3; with 2 stages 9.8 / 9.7 / 11.6) and 2 beyond (7b w13
//   23.1 / 22.7 / 23.9 vs 23.8 / 23.5 / 27.7; with 4 stages 28.0 / 28.6 / 24.7).
// One row takes the ring kernel too (the other six shapes up to 19% faster: 7b wqkv 7.7 -> 6.1 us),
// but for weights of at most 16 groups (2048 inputs) and more strips than SMs, which keep the
// register kernel (1.8b wqkv 3.2 us; the ring's 3.5; 1.8b w13 level). The fused GEMVs keep
// choose_config's layouts, tuned in the decode step.
W4A16GemvConfig choose_plain_config(int n, int in, int out, const char* op) {
  if (n > 8) return choose_config(n, in, out, op);
  const int sms = current_sm_count(op), strips = ceil_div(out, kW4A16TileRows), groups = in / kW4A16Group;
  if (n <= kW4A16GemvRegsRows && groups <= 16 && strips > sms && w4a16::regs_fit(n, in, op))
    return {.kernel = W4A16GemvKernel::registers};
  W4A16GemvConfig c{.warps = 16, .tiles = 1, .stages = 2, .kernel = W4A16GemvKernel::ring};
  if (strips > 3 * sms) {
    c.warps = 2;
    c.stages = groups / c.warps <= 8 ? 4 : 2;
  } else if (strips > 2 * sms) {
    c.warps = 8;
  } else if (strips > sms) {
    c.tiles = 2;
    c.warps = std::max(1, std::min(16, groups / 2));
    if (n <= 2 && groups <= 32) c.warps = 8, c.stages = 4;
  }
  c.warps = std::min(c.warps, groups);
  return shrink_to_fit(c, n, 0, op);
}

template <int kTiles, int kNT, int kStages, typename OutT, bool kNorm = false,
          Epilogue kEpi = Epilogue::store>
void launch_config(const GemvArgs<OutT>& a, cudaStream_t stream, int warps, size_t smem, const char* op,
                   const RopeArg<kEpi>& rope = {}) {
  constexpr auto kernel = w4a16_gemv_kernel<kTiles, kNT, kStages, OutT, kNorm, kEpi>;
  static const bool smem_set = (w4a16::opt_in_smem(kernel, op), true);
  (void)smem_set;
  const int strips = a.w.out / kW4A16TileRows;
  const int blocks =
      kEpi == Epilogue::swiglu || kEpi == Epilogue::rope_kv ? strips / 2 : ceil_div(strips, kTiles);
  launch_overlapped(kernel, blocks, warps * 32, smem, stream, op, a, rope);
}

template <int kNT, typename OutT>
void launch_tiles(const GemvArgs<OutT>& a, cudaStream_t stream, const W4A16GemvConfig& c, size_t smem,
                  const char* op) {
  if (c.tiles == 1 && c.stages == 8) return launch_config<1, kNT, 8>(a, stream, c.warps, smem, op);
  if (c.tiles == 1 && c.stages == 2) return launch_config<1, kNT, 2>(a, stream, c.warps, smem, op);
  if (c.tiles == 1) return launch_config<1, kNT, 4>(a, stream, c.warps, smem, op);
  if (c.stages == 8) return launch_config<2, kNT, 8>(a, stream, c.warps, smem, op);
  if (c.stages == 2) return launch_config<2, kNT, 2>(a, stream, c.warps, smem, op);
  launch_config<2, kNT, 4>(a, stream, c.warps, smem, op);
}

void check_config(const W4A16GemvConfig& c, size_t smem, int n, const char* op) {
  require(c.tiles == 1 || c.tiles == 2, op, "tiles must be 1 or 2, got " + std::to_string(c.tiles));
  require(c.stages == 2 || c.stages == 4 || c.stages == 8, op,
          "stages must be 2, 4 or 8, got " + std::to_string(c.stages));
  require(c.warps >= 1 && c.warps <= kMaxWarps, op,
          "warps must be in 1.." + std::to_string(kMaxWarps) + ", got " + std::to_string(c.warps));
  require(smem <= size_t(max_smem_per_block(op)), op,
          std::to_string(c.warps) + " warps x " + std::to_string(c.stages) + " stages x " +
              std::to_string(c.tiles) + " tiles need " + std::to_string(smem) +
              " bytes of shared memory at n=" + std::to_string(n) + ", more than a block may have");
}

// Whether a config leaves every layout field to the defaults.
bool unset(const W4A16GemvConfig& c) {
  return c.warps == 0 && c.tiles == 0 && c.stages == 0 && c.slices == 0;
}

// The one choice between the two kernels (W4A16GemvKernel): asked; or, for a config that sets no
// field, by rows; a config that sets ring fields (warps, tiles, stages) without naming a kernel gets
// the ring kernel.
bool use_registers(const W4A16GemvConfig& c, int n, int in, const char* op) {
  if (c.kernel != W4A16GemvKernel::automatic) return c.kernel == W4A16GemvKernel::registers;
  return unset(c) && n <= kW4A16GemvRegsRows && w4a16::regs_fit(n, in, op);
}

// The register kernel's layout: by default each strip split into as many input slices as
// choose_config gives the ring kernel warps for this weight and n (the fused GEMVs' layout; the plain
// GEMV's own, choose_plain_config, may differ). Both kernels sum a group on the tensor cores in the same
// order, scale it into the warp's fp32 total in group order and add the warps' totals in slice order,
// so with the same slices their outputs are the same bits (a test holds them to it), and the fused
// GEMVs can take either kernel without breaking the bit-identity of fused and unfused chains. Blocks
// of 8 warps or more (x is staged once per block), whole strips each.
w4a16::RegsLayout regs_layout(const W4A16GemvConfig& c, int n, int in, int out, const char* op) {
  const int slices = c.slices ? c.slices : choose_config(n, in, out, op).warps;
  const int warps = c.warps ? c.warps : slices >= 8 ? slices : slices * (8 / slices);
  return {warps, slices, c.stages};
}

// The fused GEMV's register layout: regs_layout's, except for the two pairs and the residual GEMVs
// (measured, H200, w4a16 B=1 ctx 1024; perf/NOTES.md, "twenty-third" and "twenty-fourth"):
// - The RoPE pair's warps take at most kRopePairWarpGroups groups (more slices, one pair a block). A
//   pair warp's register batches hold 2 groups of its two strips against the plain warp's 4 of one,
//   and the kernel is latency-bound, so at 7b's width (32 groups, 4 slices: 8 groups a warp, 4
//   batches) the fused wqkv had been slower than the plain GEMV plus rope_kv_write: 7b 1.930 ms
//   unfused, 1.993 fused at 4 slices, 1.889 at 8. 1.8b (16 groups, 8 slices: 2 a warp) is unchanged.
// - The SwiGLU pair goes the other way: the fewest slices (halving from regs_layout's) whose grid of
//   8-warp blocks still gives every SM one. 7b's w13 (896 pairs; 4 slices: 448 blocks, 1.7 waves of
//   2 an SM) alone at one row: 4 slices 21.0 us, 2 (224 blocks) 18.5, 1 (112 blocks, SMs left idle)
//   22.7, 8 23.7; the 7b step 1.880 -> 1.803 ms at 2. 1.8b (512 pairs) keeps 4: at 2 its 128 blocks
//   leave SMs idle (w13 7.2 -> 8.2 us, the step 0.728 -> 0.787 ms).
// - The residual GEMVs (wo, w2) give each warp at least kResidualWarpGroups groups: 1.8b's wo (16
//   groups) 16 slices of one group -> 8 of two, fused alone at one row 2.58 -> 2.45 us (8 of four
//   groups a batch; of two, 2.46). The other residual GEMVs have 4 or more groups a warp already;
//   their best layouts differ from regs_layout's only by 16-warp blocks at 7b's w2 (11.81 -> 11.32
//   us alone), which did not carry into the step (7b 1.827 -> 1.837 ms; likely because a block that
//   fills its SM leaves no room for the next kernel's early blocks), so they stay
//   (perf/wip/w4a16-layout-sweep.sh).
// With other slices than w4a16_gemv's default the outputs differ from the unfused chain's in
// rounding; w4a16_gemv_fused_slices() tells a caller the split, and the unfused chain at that split
// gives the same bits.
constexpr int kRopePairWarpGroups = 4;
constexpr int kResidualWarpGroups = 2;

w4a16::RegsLayout fused_regs_layout(const W4A16GemvFusedParams& p, const char* op) {
  w4a16::RegsLayout l = regs_layout({}, p.n, p.w.in, p.w.out, op);
  if (p.rope) {
    const int slices = std::min(kMaxWarps, ceil_div(p.w.in / kW4A16Group, kRopePairWarpGroups));
    if (slices > l.slices) l.slices = l.warps = slices;
  }
  if (p.act && l.warps == 8) {
    const int pairs = p.w.out / (2 * kW4A16TileRows), sms = current_sm_count(op);
    while (l.slices > 1 && ceil_div(pairs, 8 / (l.slices / 2)) >= sms) l.slices /= 2;
  }
  if (p.residual) {  // fewer slices, in blocks as regs_layout sizes them for that count
    const int groups = p.w.in / kW4A16Group;
    int slices = l.slices;
    while (slices > 1 && groups / slices < kResidualWarpGroups) slices /= 2;
    if (slices != l.slices) l = regs_layout({.slices = slices}, p.n, p.w.in, p.w.out, op);
  }
  return l;
}

template <typename OutT>
void launch(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, W4A16GemvConfig c) {
  const char* op = "w4a16_gemv";
  w4a16::check_weights(w, op);
  require(n >= 0 && n <= kW4A16GemvMaxRows, op,
          "n must be in 0.." + std::to_string(kW4A16GemvMaxRows) + ", got " + std::to_string(n));
  require(aligned16(x), op, "x must be 16-byte aligned");
  if (n == 0) return;
  GemvArgs<OutT> a;
  a.x = x, a.w = w, a.n = n, a.y = y;
  if (c.kernel == W4A16GemvKernel::automatic && unset(c)) c = choose_plain_config(n, w.in, w.out, op);
  if (use_registers(c, n, w.in, op)) {
    const w4a16::RegsLayout l = regs_layout(c, n, w.in, w.out, op);
    return w4a16::launch_regs(a, Epilogue::store, l, stream, op);
  }
  const W4A16GemvConfig chosen = choose_config(n, w.in, w.out, op);
  if (c.tiles == 0) c.tiles = chosen.tiles;
  if (c.warps == 0) c.warps = chosen.warps;
  if (c.stages == 0) c.stages = chosen.stages;
  const size_t smem = smem_bytes(c, n);
  check_config(c, smem, n, op);
  if (n <= 8) return launch_tiles<1>(a, stream, c, smem, op);
  if (n <= 16) return launch_tiles<2>(a, stream, c, smem, op);
  launch_tiles<4>(a, stream, c, smem, op);
}

// The fused GEMV's layout: the plain GEMV's choice for the same weight and rows (the same warps, so
// the same per-warp group ranges and sums: the bits of the unfused sequence), except that SwiGLU's
// blocks hold a gate and an up strip each, and that the normed rows take their shared memory first
// (fewer stages if the rings do not fit beside them; fewer warps only past that, which keeps the
// results within rounding but not bit-identical).
W4A16GemvConfig choose_fused_config(const W4A16GemvFusedParams& p, const char* op) {
  W4A16GemvConfig c = choose_config(p.n, p.w.in, p.w.out, op);
  if (p.act || p.rope) c.tiles = 2;
  return shrink_to_fit(c, p.n, p.norm_residual ? p.w.in : 0, op);
}

template <bool kNorm, Epilogue kEpi>
void launch_fused(const GemvArgs<half>& a, cudaStream_t stream, const W4A16GemvConfig& c, size_t smem,
                  const char* op, const RopeArg<kEpi>& rope = {}) {
  if constexpr (kEpi == Epilogue::swiglu || kEpi == Epilogue::rope_kv) {
    if (c.stages == 8) return launch_config<2, 1, 8, half, kNorm, kEpi>(a, stream, c.warps, smem, op, rope);
    return launch_config<2, 1, 4, half, kNorm, kEpi>(a, stream, c.warps, smem, op, rope);
  } else {
    if (c.tiles == 1 && c.stages == 8)
      return launch_config<1, 1, 8, half, kNorm, kEpi>(a, stream, c.warps, smem, op);
    if (c.tiles == 1) return launch_config<1, 1, 4, half, kNorm, kEpi>(a, stream, c.warps, smem, op);
    if (c.stages == 8) return launch_config<2, 1, 8, half, kNorm, kEpi>(a, stream, c.warps, smem, op);
    launch_config<2, 1, 4, half, kNorm, kEpi>(a, stream, c.warps, smem, op);
  }
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

void w4a16_gemv_fused(const W4A16GemvFusedParams& p, cudaStream_t stream) {
  const char* op = "w4a16_gemv_fused";
  w4a16::check_weights(p.w, op);
  require(p.n >= 1 && p.n <= kW4A16GemvFusedMaxRows, op,
          "n must be in 1.." + std::to_string(kW4A16GemvFusedMaxRows) + ", got " + std::to_string(p.n));
  const bool norm = p.norm_residual != nullptr;
  require(norm == (p.norm_w != nullptr) && norm != (p.x != nullptr), op,
          "give x, or norm_residual and norm_w (the input is their RMSNorm), not both");
  require(!p.x || aligned16(p.x), op, "x must be 16-byte aligned");
  require(!norm || (aligned16(p.norm_residual) && aligned16(p.norm_w)), op,
          "norm_residual and norm_w must be 16-byte aligned");
  const int outputs = (p.y != nullptr) + (p.residual != nullptr) + (p.act != nullptr) + (p.rope != nullptr);
  require(outputs == 1, op, "give exactly one of y, residual (+= y), act (SwiGLU of y) and rope (RoPE of y)");
  require(!p.act || p.w.out % (2 * kW4A16TileRows) == 0, op,
          "SwiGLU needs the gate and up halves of out to be whole 16-row strips, got out=" +
              std::to_string(p.w.out));
  require(!p.act || norm, op, "SwiGLU is fused only behind the norm prologue (w13 of a decode step)");
  require(!p.rope || norm, op,
          "the rope_kv_write epilogue is fused only behind the norm prologue (wqkv of a decode step)");
  require(!p.residual || !norm, op, "the residual add is fused only into a GEMV that reads x (wo, w2)");
  GemvArgs<half> a;
  a.x = p.x, a.w = p.w, a.n = p.n, a.y = p.y;
  a.norm_residual = p.norm_residual, a.norm_w = p.norm_w, a.eps = p.eps;
  a.residual = p.residual, a.act = p.act;
  const Epilogue epi = p.act        ? Epilogue::swiglu
                       : p.rope     ? Epilogue::rope_kv
                       : p.residual ? Epilogue::add_residual
                                    : Epilogue::store;
  const RopeKvArgs rope = p.rope ? rope_kv_args(*p.rope, p.n, p.w.out, op) : RopeKvArgs{};
  // One row: the register kernel, with the ring kernel's slices (the same bits) but for the two
  // pairs' and the residual GEMVs' (fused_regs_layout). H200, w4a16 B=1 ctx 1024 step (perf/NOTES.md,
  // "Session 2026-12-02 (twelfth)"): 7b 2.098 -> 1.958 ms, 1.8b 0.797 -> 0.785 against the ring kernel for
  // the normed GEMVs. (With one slice per SwiGLU pair, 112 blocks of 8 warps for 7b's w13, it had lost: 26.4
  // -> 35.8 us a layer.)
  if (use_registers({}, p.n, p.w.in, op))
    return w4a16::launch_regs(a, epi, fused_regs_layout(p, op), stream, op, &rope);
  const W4A16GemvConfig c = choose_fused_config(p, op);
  const size_t smem = smem_bytes(c, p.n, norm ? p.w.in : 0);
  check_config(c, smem, p.n, op);
  switch (epi) {
    case Epilogue::swiglu:
      return launch_fused<true, Epilogue::swiglu>(a, stream, c, smem, op);
    case Epilogue::rope_kv:
      return launch_fused<true, Epilogue::rope_kv>(a, stream, c, smem, op, rope);
    case Epilogue::add_residual:
      return launch_fused<false, Epilogue::add_residual>(a, stream, c, smem, op);
    case Epilogue::store:
      break;
  }
  if (norm) return launch_fused<true, Epilogue::store>(a, stream, c, smem, op);
  launch_fused<false, Epilogue::store>(a, stream, c, smem, op);
}

int w4a16_gemv_fused_slices(const W4A16GemvFusedParams& p) {
  const char* op = "w4a16_gemv_fused";
  if (use_registers({}, p.n, p.w.in, op)) return fused_regs_layout(p, op).slices;
  return choose_fused_config(p, op).warps;
}

}  // namespace ridgeline::cuda
