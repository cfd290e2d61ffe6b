// decode_attention: one new query token per sequence attends to its whole paged KV cache.
// FLOPs: 4*ctx*head_dim per query head (QK^T and PV). Bytes: 2*ctx*n_kv*(head_dim*bits/8 [+4 for the
// int8/int4 scale and zero]) (K and V) per sequence + q/out, so intensity is ~2*group FLOP/byte at
// fp16 (4x that at int4): memory-bound at any batch (each sequence reads its own cache). Aim: the
// DRAM read rate, at every KV format: the bytes per token shrink 2x (int8) and 4x (int4), so the
// arithmetic per byte must stay far below the issue rate.
// That is why both products run on tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate): a
// CUDA-core dot product spreads a token's row over 16 lanes and pays a shuffle reduction, a
// conversion per element and a softmax per lane for every token, which made int8/int4 no faster
// than fp16 (perf/NOTES.md). S^T = K Q^T has 16 tokens as M rows (a K fragment per lane, all of
// it cache data) and the GQA group's query heads as the N = 8 columns (group <= 8; the rest are
// zeros); O^T = V^T P^T has head dims as M rows, tokens as K and the group as N, so every
// accumulator register holds a real output. S^T's C fragment (rows = tokens gid, gid+8, columns =
// heads 2*tig, 2*tig+1), each 8x8 block transposed by one movmatrix, is P^T's B fragment. (With Q as
// the A operand, S = Q K^T, half of every QK MMA's rows were zeros: twice the MMAs and the register
// moves of the padding; and a head's softmax state lived in one quad, so the max was reduced every
// tile. Now a lane holds two heads' state and the max is only reduced when it moves.)
// One CTA per (KV head, sequence, context split); each warp streams its own tiles of 16 tokens (32 at
// int4) with its own online softmax (fp32, log2 domain); the warps merge through shared memory at the
// end, and with several splits a second small kernel merges the splits' unnormalized partials with
// log-sum-exp weights (an overlapped launch, kernels/overlap.cuh: its blocks are placed during the
// tail and wait there for the whole grid). The split count fills the last wave of CTAs
// (choose_splits), capped by the context; small batches stop at two CTAs an SM. Where the batch's
// (sequence, KV head) pairs alone about fill the SMs once (B=15-16 on 8 KV heads) and contexts are
// at most 8192, one wide CTA a pair with the splits' warps instead, and no merge kernel
// (choose_warps).
// Operand layout: the order of dims inside the dot product and of tokens inside a tile is free, so
// every lane reads whole 16-byte units of the cache (kernels.cuh's layout) and uses them in place:
//  - K: lane (gid, tig) holds token row `gid` of the tile, dim chunks tig, tig+4, ...; Q^T's B
//    fragment is loaded in the same dim order. S^T row n of an m-tile = token row n % 8 of n-tile
//    2kk + n / 8.
//  - V: lane (gid, tig) holds token rows 2*tig and 2*tig+1, dim chunks gid, gid+8: exactly the tokens
//    of its P^T fragment, and as V^T's A rows gid and gid+8 of m-tile t the dims t and t+kMTiles of
//    its own chunks; two tokens' values at one dim are paired by byte permutes.
//  A "row" is one 16-byte unit's tokens: 1 (fp16), 2 (int8), 4 (int4), each its own n-tile of 8
//  tokens; two n-tiles make an m-tile of S^T and a k-step of the PV product.
// Quantized K/V (x = s*c + z per token and KV head) run the MMAs on the codes as they come out of one
// PRMT or LOP3 per pair: with a zero exponent field, the fp16 subnormal c * 2^-24 (exact; the tensor
// cores take subnormal operands as they are). Scale, zero and the 2^24 come off per score and once
// at the end of O, not per element:
//   q.k = 2^24 * s * (q.(c * 2^-24)) + z*sum(q)
//   sum_t p_t*v_t = 2^24 * sum_t (p_t*s_t)*(c_t * 2^-24) + sum_t p_t*z_t
// int4's odd dims are masked in place, 16*c: Q goes in divided by 16 there and O comes out divided by
// 16. (The codes under the exponent of 1024, 1024 + c, cost an offset to take off every tile of O:
// left in for the whole stream, it made the error grow with the square of the tiles a warp streams,
// perf/NOTES.md "seventeenth"; taken off per tile, 6 shuffles and 4 * kMTiles adds a tile.)
// Loads: each warp streams its own tiles through its own cp.async ring in shared memory, kStages-1
// tiles ahead, with no block barrier while streaming (__syncwarp orders the lanes' copies and reads).
// A tile's rows are contiguous in the cache (a paged block holds a head's rows back to back), so the
// warp copies it as consecutive 16-byte units: one cp.async instruction moves 512 contiguous bytes,
// the fewest L2 requests per byte (per-lane fragment copies moved 64-byte pieces, and the L2, not
// DRAM, became the limit). In shared memory a row's units sit XOR-swizzled (unit c of row r at
// c ^ swizzle(r)) so that both fragment reads, K's (rows gid, units 4c+tig) and V's (rows 2tig+rr,
// units 8c+gid), hit 8 distinct 16-byte bank groups per quarter warp.
// Measured (H200, perf/NOTES.md, reports/baselines/): fp16 at 0.94-1.00 of the read peak from B=16,
// ctx 8192; int8 1.77-1.92x and int4 2.95-3.27x faster than fp16 from there. Not DRAM-bound at
// int8/int4: with the arithmetic taken out (perf/wip/attention-streaming-floor.patch) B=16 ctx 8192
// streamed in 65.9 us (int8) and 36.9 us (int4); with it now 70.8 and 42.1. int4 is bound by issue
// and the ALU pipe (nibble unpacks, PRMTs, shifts, selects): ncu, B=16 ctx 8192, 513 warp
// instructions a 32-token tile in the streaming loop (575 with the codes under the exponent of 1024
// and their per-tile offset, ~800 before the unpack became one LOP3 a pair, `and_or`). B=1 reaches
// ~0.55 of the peak at ctx 8192: 3 tiles per warp.
// With DecodeAttentionRope (Fusions::rope_in_attention: every decode step whose wqkv GEMV does not
// rotate) the kernel also does rope_kv_write's work: each CTA reads its group's query heads from the
// wqkv output (InternLM2's grouped layout) instead of q and rotates them at the sequence's position
// (context - 1), and the one CTA of (sequence, KV head) whose split holds that position rotates the
// new k and stores k and v into the cache (quantized for int8/int4) before any tile holding it is
// copied. Bytes per sequence: qkv read instead of q ((n_heads + 2*n_kv)*head_dim*2; each split reads
// its query heads again, from L2), the new K and V rows written (2*n_kv*(head_dim*bits/8 [+4])), a
// RoPE table of head_dim/2 floats read (dynamic NTK: each sequence its own base); FLOPs ~6 per rotated
// element more. Why: as its own launch rope_kv_write took 5.7-6.7 us a layer at B=1 with an int8/int4
// cache (H200: 137 us of a 1.8b step, 201 us of a 7b one), which made quantized-KV B=1 steps slower
// than fp16-KV ones although they read fewer bytes (an fp16 cache at B <= 2, B = 1 with w4a16 weights,
// has that work in wqkv's epilogue instead, Fusions::rope_in_wqkv). q and k come from kernels/rope.cuh's
// arithmetic and the stored rows from kernels/kv_write.cuh, both rope_kv_write's own, so q, the cache and
// the output are bit-identical to the two launches'.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/block_div.h"
#include "kernels/cp_async.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/kv_write.cuh"
#include "kernels/mma.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rope.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarps = 4;  // a split CTA's warps
constexpr int kMaxSplits = 32;
constexpr int kMinTokensPerSplit = 64;
// CTAs that fit beside each other on an SM: 64 KB of fp16 staging each (3), ~52 KB of int8/int4
// staging and at most 128 registers (4).
constexpr int ctas_per_sm(int bits) {
  return bits == 16 ? 3 : 4;
}
// A wide CTA (choose_warps): as many warps as ctas_per_sm split CTAs, alone on its SM.
constexpr int wide_warps(int bits) {
  return kWarps * ctas_per_sm(bits);
}
constexpr int kMaxGroup = 8;
constexpr float kRescaleSlack = 8.0f;  // log2 units: p below 2^8 between rescales

// 2^x as the MUFU computes it (ex2.approx.ftz). exp2f adds a range test and two predicated multiplies
// a call to keep denormal results, which p = 2^(s - m) never needs: the fp16 P operand flushes them
// and the fp32 sums of p (at least 1) do not see them. Same bits as exp2f for x >= -126.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The shape of one warp's tile, per head_dim and KV format.
template <int kHeadDim, int kBits>
struct Tile {
  static constexpr int kT = 16 / kBits;                  // tokens per 16-byte unit (per "row")
  static constexpr int kRowTiles = kBits == 16 ? 2 : 1;  // groups of 8 rows: 16 tokens at fp16
  static constexpr int kRows = kRowTiles * 8;
  static constexpr int kTokens = kRows * kT;      // 16, 16, 32
  static constexpr int kNTiles = kRowTiles * kT;  // S n-tiles of 8 tokens: 2, 2, 4
  static constexpr int kKSteps = kHeadDim / 16;   // MMA k-steps of q.k
  static constexpr int kKChunks = kHeadDim / 32;  // K units a lane holds per row
  static constexpr int kVChunks = kHeadDim / 64;  // V units a lane holds per row
  static constexpr int kUnits = kHeadDim / 8;     // 16-byte units per row
  static constexpr int kRowBytes = kUnits * 16;
  static constexpr int kTileUnits = kRows * kUnits;                       // of K (and of V) per tile
  static constexpr int kScaleUnits = kBits == 16 ? 0 : kTokens * 4 / 16;  // (scale, zero) of K (and V)
  static constexpr int kStageUnits = 2 * kTileUnits + 2 * kScaleUnits;
  static constexpr int kStages = kBits == 16 ? 2 : 3;
  static constexpr size_t ring_bytes(int warps) { return size_t(kStages) * warps * kStageUnits * 16; }
  static_assert(kTileUnits % 32 == 0 && kScaleUnits <= 16, "a warp copies a tile in whole passes");
};

// A CTA of `warps` warps: its rings while streaming, the warps' merge after.
template <int kHeadDim, int kBits>
constexpr size_t shared_bytes(int warps) {
  const size_t ring = Tile<kHeadDim, kBits>::ring_bytes(warps);
  const size_t merge = size_t(warps) * kMaxGroup * (kHeadDim + 2) * sizeof(float);
  return ring > merge ? ring : merge;
}

// Where unit c of tile row r sits in its row (rows are at least 8 units): conflict-free for the
// copies (8 consecutive units of a row), the K fragment reads (rows 2p, 2p+1 x units 4c..4c+3 per
// quarter warp) and the V fragment reads (rows rr, rr+2, rr+4, rr+6 x units 8c+2p, 8c+2p+1).
__device__ __forceinline__ int swizzle(int r) {
  return ((r & 1) << 2) ^ (r & 6);
}

// Codes as fp16 pairs with a zero exponent field: the bit pattern of code c is the subnormal
// c * 2^-24, exact (the tensor cores take fp16 subnormals as they are). The MMAs run on the codes
// scaled by 2^-24 (int4's odd dims: 16*c * 2^-24), and the scale comes back in the constants a score
// or O is multiplied by anyway: one PRMT or LOP3 per pair of codes and nothing per tile.
constexpr float kCodeScale = 16777216.0f;  // 2^24

// Bytes 2k and 2k+1 of w as the fp16 pair (code, code) * 2^-24.
__device__ __forceinline__ uint32_t int8_pair(uint32_t w, int k) {
  return __byte_perm(w, 0u, k == 0 ? 0x4140u : 0x4342u);
}

// int4_pair (kernels/mma.cuh) with no exponent: (code, code) * 2^-24 (odd f: 16*code).
__device__ __forceinline__ uint32_t int4_codes(uint32_t w, int f) {
  return int4_pair(w, f, 0u);
}

// Whether int4_codes' dim e (0..7 of a unit) comes out as 16*code (times 2^-24).
__device__ __forceinline__ constexpr bool int4_times16(int e) {
  return e % 2 == 1;
}

// One token row of K's A fragment for MMA k-step half `h` (dims 4h..4h+3 of the unit's 8 at
// fp16/int8; for int4 the dims (2h, 2h+4, 2h+1, 2h+5)) of the unit's token j: `lo` holds k slots
// 2tig..+1 (a0 or a1), `hi` 2tig+8..+9 (a2 or a3).
template <int kBits>
__device__ __forceinline__ void k_fragment(const uint4& u, int j, int h, uint32_t& lo, uint32_t& hi) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
  if constexpr (kBits == 16) {
    lo = w[2 * h];
    hi = w[2 * h + 1];
  } else if constexpr (kBits == 8) {
    const uint32_t word = w[2 * j + h];
    lo = int8_pair(word, 0);
    hi = int8_pair(word, 1);
  } else {
    lo = int4_codes(w[j], 2 * h);
    hi = int4_codes(w[j], 2 * h + 1);
  }
}

// The dim (0..7 of a unit) that slot e (0..3: b0.x, b0.y, b1.x, b1.y of Q^T's B fragment; K's lo.x,
// lo.y, hi.x, hi.y alike) of k-step half h stands for, matching k_fragment.
template <int kBits>
__device__ __forceinline__ int k_dim(int h, int e) {
  if constexpr (kBits == 4) return 2 * h + (e / 2) + 4 * (e % 2);
  return 4 * h + e;
}

// A register of V^T's A fragment: the values at dim e (0..7 of the unit) of token j of units a and b
// (token rows 2*tig and 2*tig+1), as an fp16 pair.
template <int kBits>
__device__ __forceinline__ uint32_t v_pair(const uint4& a, const uint4& b, int j, int e) {
  const uint32_t wa[4] = {a.x, a.y, a.z, a.w}, wb[4] = {b.x, b.y, b.z, b.w};
  if constexpr (kBits == 16) {
    return __byte_perm(wa[e / 2], wb[e / 2], e % 2 == 0 ? 0x5410u : 0x7632u);
  } else if constexpr (kBits == 8) {
    const int word = 2 * j + e / 4, k = e % 4;
    const uint32_t t = __byte_perm(wa[word], wb[word], k < 2 ? 0x5140u : 0x7362u);  // a_k b_k a_k+1 b_k+1
    return int8_pair(t, k % 2);
  } else {
    const uint32_t t = __byte_perm(wa[j], wb[j], e < 4 ? 0x5410u : 0x7632u);  // a's 4 dims | b's 4 dims
    return int4_codes(t, e % 4);
  }
}

// At most 170 (fp16) or 128 (int8/int4) registers, so that ctas_per_sm CTAs of kWarps warps, or one
// wide CTA of wide_warps, fit an SM. kW: the CTA's warps (kWarps, or wide_warps(kBits)).
// kRope: q comes unrotated from the wqkv output (rope.qkv) and is rotated here, and the CTA whose
// split holds the newest token writes that token's K/V row first (DecodeAttentionRope); q is unused.
template <int kHeadDim, int kGroup, int kBits, bool kRope, int kW>
__global__ void __launch_bounds__(kW * 32, kW == kWarps ? ctas_per_sm(kBits) : 1)
    decode_attention_kernel(const half* __restrict__ q, const int* __restrict__ slots,
                            const int* __restrict__ context_lens, int n_heads, KvCacheView cache,
                            int n_splits, float scale_log2, float* __restrict__ part_o,
                            float2* __restrict__ part_ml, half* __restrict__ out, DecodeAttentionRope rope) {
  using S = Tile<kHeadDim, kBits>;
  constexpr bool kQuant = kBits < 16;
  constexpr int kMTiles = kHeadDim / 16;
  constexpr int kT = S::kT;
  constexpr int kRowBytes = S::kRowBytes;

  extern __shared__ __align__(16) unsigned char smem[];
  // This warp's ring: [stage][K tile | V tile | K scales | V scales] in 16-byte units.
  uint4* ring = reinterpret_cast<uint4*>(smem) + (threadIdx.x >> 5) * S::kStages * S::kStageUnits;
  float* sm_acc = reinterpret_cast<float*>(smem);  // after streaming: [warp][kGroup][kHeadDim]
  float* sm_m = sm_acc + kW * kGroup * kHeadDim;   // [warp][kGroup]
  float* sm_l = sm_m + kW * kGroup;                // [warp][kGroup]

  const int kvh = blockIdx.x, i = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gid = lane >> 2, tig = lane & 3;
  const int bs = cache.block_size;
  // t / bs as a multiply-high (kernels/block_div.h: exact below 2^24 tokens, which decode_attention
  // checks).
  const uint32_t bs_magic = block_div_magic(static_cast<uint32_t>(bs));

  const int ctx = context_lens[i];
  const int* table = cache.block_table + static_cast<int64_t>(slots[i]) * cache.max_blocks_per_seq;
  // Per-sequence chunk, so that a short sequence batched with long ones splits its own context evenly.
  // Multiples of a tile (16 or 32 tokens), so that no unit straddles two splits, a lane's scales lie in
  // one block and (block sizes being multiples of the tile) every whole tile lies in one block.
  const int chunk = (((ctx + n_splits - 1) / n_splits) + S::kTokens - 1) & ~(S::kTokens - 1);
  const int t0 = split * chunk, t1 = min(ctx, t0 + chunk);
  const int n_steps = t1 > t0 ? (t1 - t0 + kW * S::kTokens - 1) / (kW * S::kTokens) : 0;
  const int64_t block_bytes = cache.block_bytes();
  const char* k_pool = static_cast<const char*>(cache.k);
  const char* v_pool = static_cast<const char*>(cache.v);

  // Where this KV head's rows and (scale, zero) pairs start inside a block.
  const int64_t head_rows = cache.unit_offset(kvh, 0, 0), head_scales = cache.scale_offset(kvh, 0);
  // First token of this warp's tile at `step`, and of its token row r.
  auto tile_start = [&](int step) { return t0 + (step * kW + warp) * S::kTokens; };
  auto row_token = [&](int tb, int r) { return tb + r * kT; };

  // A pass of a tile's copies covers kRowsPerPass rows; unit c of row r lands at r * kUnits +
  // (c ^ swizzle(r)). Pass `it`'s rows are it * kRowsPerPass + lane / kUnits (the two terms share no
  // bit: kRowsPerPass is a power of two above lane / kUnits), swizzle is linear under XOR, and the
  // swizzle of the even term is its bits 1-2, so swizzle(r) = swizzle(lane / kUnits) ^
  // ((it * kRowsPerPass) & 6) and the slot of lane's unit in pass `it` is
  // it * 32 + (lane_at ^ ((it * kRowsPerPass) & 6)).
  constexpr int kRowsPerPass = 32 / S::kUnits;
  static_assert(kRowsPerPass >= 2 && (kRowsPerPass & (kRowsPerPass - 1)) == 0, "passes of whole rows");
  const int lane_at = (lane / S::kUnits) * S::kUnits + ((lane % S::kUnits) ^ swizzle(lane / S::kUnits));

  // Queues this lane's share of the warp's copies for `step` (zeros past t1) as one group; an empty
  // group past the last step or tile keeps the wait count uniform. Pass `it` copies units
  // 32*it .. 32*it+31 of the tile in cache order: whole rows, 512 contiguous bytes per pool.
  auto issue = [&](int step) {
    const int tb = tile_start(step);
    if (step < n_steps && tb < t1) {
      uint4* st = ring + (step % S::kStages) * S::kStageUnits;
      // One block lookup per tile, not per copy: a tile (16 or 32 tokens from a multiple of 16) lies in
      // one block or runs into the next one (block sizes are multiples of 16). A 16-token tile never
      // runs into the next block; a 32-token one (from a multiple of 32, see `chunk`) only where the
      // block size is an odd multiple of 16.
      constexpr bool kOneBlock = S::kTokens == 16;
      const int blk = static_cast<int>(block_div(static_cast<uint32_t>(tb), bs_magic)), o0 = tb - blk * bs;
      const int64_t base0 = static_cast<int64_t>(table[blk]) * block_bytes;
      // A whole tile inside one block (every tile but a context's last partial one, and at int4 one
      // that runs into the next block): its rows are one contiguous run per pool, so a lane's copies
      // are one pointer per pool plus a constant per pass (no per-row block test, validity select or
      // 64-bit row arithmetic: at int8/int4 every instruction a tile counts; taking it at int4 too
      // brought B=16 ctx 8192 from 57.6 to 52.7 us, perf/NOTES.md "sixteenth").
      if (tb + S::kTokens <= t1 && (kOneBlock || o0 + S::kTokens <= bs)) {
        const int64_t tile = base0 + (o0 / kT) * kRowBytes + head_rows + 16 * lane;
        const char* kp = k_pool + tile;
        const char* vp = v_pool + tile;
#pragma unroll
        for (int it = 0; it < S::kTileUnits / 32; ++it) {
          const int at = it * 32 + (lane_at ^ ((it * kRowsPerPass) & 6));  // = the general path's `at`
          cp_async_16(st + at, kp + 512 * it);
          cp_async_16(st + S::kTileUnits + at, vp + 512 * it);
        }
        if constexpr (kQuant)
          if (lane < 2 * S::kScaleUnits) {
            const bool is_v = lane >= S::kScaleUnits;
            const int u = is_v ? lane - S::kScaleUnits : lane;
            cp_async_16(st + 2 * S::kTileUnits + lane,
                        (is_v ? v_pool : k_pool) + base0 + head_scales + o0 * 4 + 16 * u);
          }
        cp_async_commit();
        return;
      }
      const int64_t base1 =
          !kOneBlock && (blk + 1) * bs < t1 ? static_cast<int64_t>(table[blk + 1]) * block_bytes : base0;
#pragma unroll
      for (int it = 0; it < S::kTileUnits / 32; ++it) {
        const int u = it * 32 + lane, r = u / S::kUnits, c = u % S::kUnits;
        const int o = o0 + r * kT;  // the row's first token, counted from block blk
        const bool valid = tb + r * kT < t1;
        const int64_t row =
            kOneBlock || o < bs ? base0 + (o / kT) * kRowBytes : base1 + ((o - bs) / kT) * kRowBytes;
        const int64_t off = valid ? row + head_rows + 16 * c : 0;
        const int at = r * S::kUnits + (c ^ swizzle(r));
        cp_async_16(st + at, k_pool + off, valid);
        cp_async_16(st + S::kTileUnits + at, v_pool + off, valid);
      }
      if constexpr (kQuant) {  // 4 tokens' (scale, zero) per unit; lanes past the K units take V's
        if (lane < 2 * S::kScaleUnits) {
          const bool is_v = lane >= S::kScaleUnits;
          const int u = is_v ? lane - S::kScaleUnits : lane;
          const int o = o0 + 4 * u;  // a multiple of 4: the unit's tokens lie in one block
          const bool valid = tb + 4 * u < t1;
          const int64_t at = kOneBlock || o < bs ? base0 + o * 4 : base1 + (o - bs) * 4;
          cp_async_16(st + 2 * S::kTileUnits + lane,
                      (is_v ? v_pool : k_pool) + (valid ? at + head_scales : 0), valid);
        }
      }
    }
    cp_async_commit();
  };

  // The kernel before this one writes q and this step's cache rows (rope_kv_write or wqkv's RoPE
  // epilogue), or, with kRope, qkv, from which this kernel writes the rows itself below; every other
  // row was written by an earlier step, and the context lengths, slots, block tables and RoPE tables
  // were copied before the step. So the first tiles that end before the newest token go out before
  // the wait (kernels/overlap.cuh): their block lookups and DRAM round trip overlap that kernel's
  // tail instead of following it. No tile holding the newest token is issued before the row is in
  // the cache (with kRope: before the barrier below).
  int early = 0;
  while (early < S::kStages - 1 && tile_start(early) + S::kTokens < ctx) issue(early++);
  // kRope: (cos, sin) of the head_dim/2 pairs at the newest token's position, computed under the
  // previous kernel's tail too (one double sincos a pair, as rope_kv_write does per token).
  [[maybe_unused]] float* rope_cos = nullptr;
  [[maybe_unused]] float* rope_sin = nullptr;
  if constexpr (kRope) {
    __shared__ float cos_s[kHeadDim / 2], sin_s[kHeadDim / 2];
    rope_cos = cos_s, rope_sin = sin_s;
    static_assert(kHeadDim / 2 <= kW * 32, "a thread per pair");
    if (threadIdx.x < kHeadDim / 2)
      rope_cos_sin(ctx - 1, rope.pos_scale,
                   rope.inv_freq[static_cast<int64_t>(i) * (kHeadDim / 2) + threadIdx.x], cos_s[threadIdx.x],
                   sin_s[threadIdx.x]);
  }
  overlap_enter();

  // Q^T's B fragments (columns gid < kGroup are heads; the others are zeros) start as this lane's
  // 16-byte units c * 4 + tig of its head's row (loaded below).
  const bool real = gid < kGroup;
  uint4 qu[S::kKChunks];
  auto load_q = [&] {
    const int head = real ? gid : 0;
    // kRope: query head `head` of the group sits at kvh * (kGroup + 2) + head of the wqkv row
    // (InternLM2's grouped layout), not yet rotated.
    const half* qrow = kRope ? rope.qkv + (static_cast<int64_t>(i) * (n_heads + 2 * cache.n_kv_heads) +
                                           kvh * (kGroup + 2) + head) *
                                              kHeadDim
                             : q + (static_cast<int64_t>(i) * n_heads + kvh * kGroup + head) * kHeadDim;
#pragma unroll
    for (int c = 0; c < S::kKChunks; ++c)
      qu[c] = real ? *reinterpret_cast<const uint4*>(qrow + (c * 4 + tig) * 8) : make_uint4(0u, 0u, 0u, 0u);
  };
  if constexpr (kRope) {
    load_q();  // in flight while warp 0 writes the new row and the CTA waits at the barrier
    // The one CTA of (sequence, KV head) whose split holds the newest token writes its K and V row,
    // warp 0 as rope_kv_write's lanes would (kv_row_store: the same bytes): k rotated, v as it is.
    // Only this CTA's tiles read that row, so a fence and this CTA's barrier order the stores before
    // the copies of the tile that holds it (issued below or in the loop, all after the barrier). The
    // barrier also publishes cos/sin for q; `writer` is uniform over the CTA, the barrier
    // unconditional. The writer's k needs cos/sin first: threads < head_dim/2 (two warps at 128)
    // computed them, so a writer CTA meets at one barrier more (found in review before any run:
    // rope_kv_write had that barrier, and moving its work here had lost it).
    const int newest = ctx - 1;
    const bool writer = t0 <= newest && newest < t1;
    if (writer) __syncthreads();
    if (writer && warp == 0) {
      constexpr int kLanes = kv_row_lanes(kHeadDim);  // a row's lanes: lanes 0.. k, then v, then none
      const bool holds = lane < 2 * kLanes, is_v = lane >= kLanes;
      const int c = lane % kLanes;
      const int64_t qkv_row = static_cast<int64_t>(i) * (n_heads + 2 * cache.n_kv_heads) * kHeadDim;
      const half* src =
          rope.qkv + qkv_row + static_cast<int64_t>(kvh * (kGroup + 2) + kGroup + is_v) * kHeadDim;
      uint4 lo = make_uint4(0u, 0u, 0u, 0u), hi = lo;
      if (holds) {
        lo = reinterpret_cast<const uint4*>(src)[c];
        hi = reinterpret_cast<const uint4*>(src + kHeadDim / 2)[c];
        if (!is_v) rope_rotate8(lo, hi, rope_cos, rope_sin, c);
      }
      kv_row_store<kBits>(cache, is_v ? cache.v : cache.k, table[newest / bs], kvh, newest % bs, c, lo, hi,
                          holds);
      __threadfence();
    }
    __syncthreads();
  }
  for (int s = early; s < S::kStages - 1; ++s) issue(s);
  if constexpr (!kRope) load_q();

  // Q^T's B fragments in k_fragment's dim order: b0 = qb0[s], b1 = qb1[s] of k-step s. For the
  // quantized cache: sum(q) of each head for the zeros, times 2^-24 as the MMA's dot products come
  // out (the codes are scaled by 2^-24); int4's odd dims meet 16*code, so their q goes in divided by
  // 16 (exact: a power of two). A lane's scores are of heads 2*tig and 2*tig+1 (S^T's columns): qsum
  // of those heads.
  uint32_t qb0[S::kKSteps], qb1[S::kKSteps];
  float qsum[2] = {0.0f, 0.0f};
  {
    if constexpr (kRope) {
      // Unit c * 4 + tig's partner, head_dim/2 further, is unit (c + kKChunks/2) * 4 + tig: in this
      // lane (kKChunks is even: head_dim a multiple of 64), so the rotation needs no shuffle. The
      // result is rope_kv_write's q bit for bit (rope_rotate8).
      static_assert(S::kKChunks % 2 == 0, "a lane holds both halves of its dim pairs");
#pragma unroll
      for (int c = 0; c < S::kKChunks / 2; ++c)
        rope_rotate8(qu[c], qu[c + S::kKChunks / 2], rope_cos, rope_sin, c * 4 + tig);
    }
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < S::kKChunks; ++c) {
      float f[8];
      half8_to_float(qu[c], f);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        sum += f[e];
        if constexpr (kBits == 4)
          if (int4_times16(e)) f[e] = __half2float(__float2half_rn(f[e] * 0.0625f));
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        qb0[2 * c + h] = pack_half2(f[k_dim<kBits>(h, 0)], f[k_dim<kBits>(h, 1)]);
        qb1[2 * c + h] = pack_half2(f[k_dim<kBits>(h, 2)], f[k_dim<kBits>(h, 3)]);
      }
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)  // head 2*tig + hh's sum lives in the lanes of gid = 2*tig + hh
      qsum[hh] = __shfl_sync(0xffffffffu, sum, (2 * tig + hh) * 4) / kCodeScale;
  }
  // Scores to log2 units; a quantized score comes out of its FMA scaled by 2^-24 too.
  const float p_scale = kQuant ? scale_log2 * kCodeScale : scale_log2;

  // Per head 2*tig + hh: the running max (log2 domain, the same in the 8 lanes that share tig), and
  // this lane's share of the sum of p and of p*zero.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, zacc[2] = {0.0f, 0.0f};
  // O^T = V^T P^T: m-tile t's rows gid and gid+8 are dim slots t and t + kMTiles of this lane's V
  // units (unit slot / 8 of c*8+gid, element slot % 8), its columns the heads 2*tig, 2*tig+1.
  float acc[kMTiles][4];
#pragma unroll
  for (int t = 0; t < kMTiles; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

  for (int step = 0; step < n_steps; ++step) {
    __syncwarp();                  // every lane is done reading the stage that is refilled next
    issue(step + S::kStages - 1);  // refills the stage the warp read last step
    cp_async_wait<S::kStages - 1>();
    __syncwarp();  // the other lanes' copies of this step's tile have landed too
    const int tb = tile_start(step);
    if (tb >= t1) continue;  // warp-uniform: this warp's share of the split ended
    // Every tile but a split's last is whole: its tokens need no validity test and its scores no
    // select (kFull, a warp-uniform branch between two copies of the body).
    auto tile = [&](auto full) {
      constexpr bool kFull = decltype(full)::value;
      const uint4* st = ring + (step % S::kStages) * S::kStageUnits;
      const uint4* kt = st;
      const uint4* vt = st + S::kTileUnits;
      const uint32_t* k_sz = reinterpret_cast<const uint32_t*>(st + 2 * S::kTileUnits);  // per token
      [[maybe_unused]] const uint32_t* v_sz = k_sz + 4 * S::kScaleUnits;

      // S^T = K Q^T, one m-tile of 16 tokens per pair of n-tiles (2kk, 2kk+1): n-tile n is token n % kT
      // of token rows (n / kT) * 8 .. +7, and as S^T's rows, n-tile 2kk is rows 0..7 (row gid: token row
      // gid), 2kk+1 rows 8..15. K in the A operand fills all 16 rows with tokens (with Q there, half
      // of every MMA's rows were zeros: the GQA group is at most 8 heads), and S^T's C fragment, transposed
      // per 8x8 block (movmatrix), is P^T's B fragment for the PV product below.
      float sc[S::kNTiles / 2][4];
#pragma unroll
      for (int kk = 0; kk < S::kNTiles / 2; ++kk) sc[kk][0] = sc[kk][1] = sc[kk][2] = sc[kk][3] = 0.0f;
#pragma unroll
      for (int sp = 0; sp < S::kKSteps / 2; ++sp) {
        uint4 u[S::kRowTiles];  // this lane's K unit of token row rt * 8 + gid, dims of k-steps 2sp, 2sp+1
#pragma unroll
        for (int rt = 0; rt < S::kRowTiles; ++rt) {
          const int r = rt * 8 + gid;
          u[rt] = kt[r * S::kUnits + ((sp * 4 + tig) ^ swizzle(r))];
        }
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int kk = 0; kk < S::kNTiles / 2; ++kk) {
            const int n0 = 2 * kk, n1 = 2 * kk + 1;
            uint32_t lo0, hi0, lo1, hi1;
            k_fragment<kBits>(u[n0 / kT], n0 % kT, h, lo0, hi0);
            k_fragment<kBits>(u[n1 / kT], n1 % kT, h, lo1, hi1);
            const uint32_t a[4] = {lo0, lo1, hi0, hi1};
            mma_m16n8k16(sc[kk], a, qb0[2 * sp + h], qb1[2 * sp + h]);
          }
      }

      // This lane's scores: tokens of n-tiles 2kk + hf at token row gid, heads 2*tig + hh.
      float p[S::kNTiles / 2][2][2];
      bool valid[S::kNTiles / 2][2];
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int kk = 0; kk < S::kNTiles / 2; ++kk)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int n = 2 * kk + hf, r = (n / kT) * 8 + gid, j = n % kT;
          // Past t1 (or past the context inside the last unit) the scales are not ours to trust.
          valid[kk][hf] = kFull || row_token(tb, r) + j < t1;
          float2 sz = make_float2(1.0f, 0.0f);
          if constexpr (kQuant) sz = __half22float2(as_half2(k_sz[r * kT + j]));
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            float score = sc[kk][2 * hf + hh];
            if constexpr (kQuant) score = fmaf(sz.x, score, sz.y * qsum[hh]);  // (s*(q.c) + z*sum(q)) * 2^-24
            p[kk][hf][hh] = valid[kk][hf] ? score * p_scale : -INFINITY;
            mx[hh] = fmaxf(mx[hh], p[kk][hf][hh]);
          }
        }
      // A head's reference max moves only when a score passes it by more than kRescaleSlack (log2
      // units), so p = exp2(s - m) stays below 2^8 (harmless in fp32 sums and in the fp16 P operand)
      // and the steady state skips the max's reduction over the head's 8 lanes and O's rescaling (at
      // int8/int4 every instruction a tile counts). O and l share the reference, so o / l and the merges
      // (weights exp2(m_w - max)) are what they were.
      if (__any_sync(0xffffffffu, mx[0] > m[0] + kRescaleSlack || mx[1] > m[1] + kRescaleSlack)) {
        float corr[2];
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          float x = mx[hh];
          x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
          x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 8));
          x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 16));
          const float m_new = fmaxf(m[hh], x);
          // A head that has seen no token yet subtracts 0, so that exp2(-inf) stays 0, not NaN.
          corr[hh] = exp2f(m[hh] - (m_new == -INFINITY ? 0.0f : m_new));
          m[hh] = m_new;
          l[hh] *= corr[hh];
          zacc[hh] *= corr[hh];
        }
#pragma unroll
        for (int t = 0; t < kMTiles; ++t) {  // O's columns are this lane's heads: its own factors
          acc[t][0] *= corr[0];
          acc[t][1] *= corr[1];
          acc[t][2] *= corr[0];
          acc[t][3] *= corr[1];
        }
      }
      const float use[2] = {m[0] == -INFINITY ? 0.0f : m[0], m[1] == -INFINITY ? 0.0f : m[1]};
#pragma unroll
      for (int kk = 0; kk < S::kNTiles / 2; ++kk) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          [[maybe_unused]] const int n = 2 * kk + hf, r = (n / kT) * 8 + gid, j = n % kT;
          float2 sz = make_float2(1.0f, 0.0f);
          if constexpr (kQuant) sz = __half22float2(as_half2(v_sz[r * kT + j]));
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const float pe = exp2_ftz(p[kk][hf][hh] - use[hh]);
            l[hh] += pe;
            p[kk][hf][hh] = pe;
            if constexpr (kQuant) {  // the codes' weight p*scale, fp16-rounded as the MMA sees it; p*zero
              p[kk][hf][hh] = valid[kk][hf] ? __half2float(__float2half_rn(pe * sz.x)) : 0.0f;  // adds to
              zacc[hh] += valid[kk][hf] ? pe * sz.y : 0.0f;                                     // every dim
            }
          }
        }
      }

      // O^T += V^T P^T, one MMA k-step per m-tile kk: P^T's B fragment is S^T's C fragment of the
      // m-tile with each 8x8 block transposed (k rows 0..7 = n-tile 2kk, 8..15 = n-tile 2kk+1).
#pragma unroll
      for (int kk = 0; kk < S::kNTiles / 2; ++kk) {
        const uint32_t b0 = movmatrix_trans(pack_half2(p[kk][0][0], p[kk][0][1]));
        const uint32_t b1 = movmatrix_trans(pack_half2(p[kk][1][0], p[kk][1][1]));
        // The n-tiles' units: fp16 (row tiles kk*2, kk*2+1 of one token each); int8/int4 (one row
        // tile, tokens 2kk and 2kk+1 of each unit).
        const int rt0 = kBits == 16 ? 2 * kk : 0, rt1 = kBits == 16 ? 2 * kk + 1 : 0;
        const int j0 = kBits == 16 ? 0 : 2 * kk, j1 = kBits == 16 ? 0 : 2 * kk + 1;
        uint4 lo0[S::kVChunks], lo1[S::kVChunks], hi0[S::kVChunks], hi1[S::kVChunks];
#pragma unroll
        for (int c = 0; c < S::kVChunks; ++c) {
          auto v_unit = [&](int rt, int rr) {
            const int r = rt * 8 + 2 * tig + rr;
            return vt[r * S::kUnits + ((c * 8 + gid) ^ swizzle(r))];
          };
          lo0[c] = v_unit(rt0, 0);
          lo1[c] = v_unit(rt0, 1);
          hi0[c] = v_unit(rt1, 0);
          hi1[c] = v_unit(rt1, 1);
        }
#pragma unroll
        for (int t = 0; t < kMTiles; ++t) {
          constexpr int kHalf = kMTiles;  // slot q of the lane's 8*kVChunks dims: unit q / 8, element q % 8
          const int cl = t / 8, el = t % 8, ch = (t + kHalf) / 8, eh = (t + kHalf) % 8;
          const uint32_t a[4] = {
              v_pair<kBits>(lo0[cl], lo1[cl], j0, el), v_pair<kBits>(lo0[ch], lo1[ch], j0, eh),
              v_pair<kBits>(hi0[cl], hi1[cl], j1, el), v_pair<kBits>(hi0[ch], hi1[ch], j1, eh)};
          mma_m16n8k16(acc[t], a, b0, b1);
        }
      }
    };
    if (tb + S::kTokens <= t1)
      tile(std::true_type{});
    else
      tile(std::false_type{});
  }
  cp_async_wait<0>();  // only empty groups remain, but the ring is about to be reused
  __syncthreads();

  // A head's sums over its 8 lanes (the token rows); back from codes to values (zeros' share on
  // every dim).
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
      l[hh] += __shfl_xor_sync(0xffffffffu, l[hh], o);
      if constexpr (kQuant) zacc[hh] += __shfl_xor_sync(0xffffffffu, zacc[hh], o);
    }
  }

  // Merge the warps of this CTA.
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
    if (gid == 0 && 2 * tig + hh < kGroup) {
      sm_m[warp * kGroup + 2 * tig + hh] = m[hh];
      sm_l[warp * kGroup + 2 * tig + hh] = l[hh];
    }
  {
    const float z[2] = {zacc[0], zacc[1]};
    // O's accumulator of element e of a unit as a value: sum p*s*c (times 2^-24, and 16 on int4's odd
    // dims, as the codes went into the MMA) plus the zeros' share.
    auto value = [&](float a, int hh, int e) {
      if constexpr (!kQuant) return a;
      return a * (kBits == 4 && int4_times16(e) ? kCodeScale / 16.0f : kCodeScale) + z[hh];
    };
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int head = 2 * tig + hh;
      if (head >= kGroup) continue;
      float* row = sm_acc + (warp * kGroup + head) * kHeadDim;
#pragma unroll
      for (int t = 0; t < kMTiles; ++t) {
        const int ql = t, qh = t + kMTiles;  // the lane's dim slots: unit q / 8 (of c*8+gid), element q % 8
        row[((ql / 8) * 8 + gid) * 8 + ql % 8] = value(acc[t][hh], hh, ql % 8);
        row[((qh / 8) * 8 + gid) * 8 + qh % 8] = value(acc[t][2 + hh], hh, qh % 8);
      }
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kGroup * kHeadDim; e += kW * 32) {
    int g = e / kHeadDim, d = e % kHeadDim;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kW; ++w) mx = fmaxf(mx, sm_m[w * kGroup + g]);
    float lsum = 0.0f, o = 0.0f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kW; ++w) {
        float wt = exp2f(sm_m[w * kGroup + g] - mx);
        lsum += sm_l[w * kGroup + g] * wt;
        o += sm_acc[(w * kGroup + g) * kHeadDim + d] * wt;
      }
    }
    int head = kvh * kGroup + g;
    if (n_splits == 1) {
      out[(static_cast<int64_t>(i) * n_heads + head) * kHeadDim + d] =
          __float2half_rn(lsum > 0.0f ? o / lsum : 0.0f);
    } else {
      int64_t row = (static_cast<int64_t>(i) * n_heads + head) * n_splits + split;
      part_o[row * kHeadDim + d] = o;
      if (d == 0) part_ml[row] = make_float2(mx, lsum);
    }
  }
}

// Log-sum-exp merge of the split partials: one block per (sequence, head). Its time is load latency,
// not bytes (a few hundred KB of partials in L2), so every load is issued before any result is
// needed: warp 0 reads all splits' (max, sum) at once (n_splits <= 32: one per lane) and turns them
// into weights in shared memory; then kMergeParts threads per dim each sum every kMergeParts-th
// split, unrolled so that 8 loads are in flight per thread, and add their parts in a fixed order.
// (One thread per dim walking the splits in turn paid one L2 round trip per split: 13 us at B=1,
// ctx 8192, longer than the attention kernel.)
// It waits for the whole attention grid, not for its own row's splits: per-row arrival counters
// (fence, atomic, poll) were slower in every form measured but int4 at B=16, because that chain is
// slower than the grid's completion and an early release let the next launch crowd this one's tail
// (perf/NOTES.md, "twenty-first"; perf/wip/attention-merge-on-arrival*.patch).
constexpr int kMergeThreads = 256;

__global__ void __launch_bounds__(kMergeThreads)
    decode_attention_merge_kernel(const float* __restrict__ part_o, const float2* __restrict__ part_ml,
                                  int n_splits, int head_dim, half* __restrict__ out) {
  static_assert(kMaxSplits <= 32, "warp 0 holds one split's (max, sum) per lane");
  __shared__ float weight[kMaxSplits];
  __shared__ float lsum;
  __shared__ float partial[kMergeThreads];
  overlap_enter();  // the partials are complete and visible
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * n_splits;
  const int tid = threadIdx.x;
  if (tid < 32) {
    const float2 a = tid < n_splits ? part_ml[row0 + tid] : make_float2(-INFINITY, 0.0f);
    float mx = a.x;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    // No split saw a token (mx = -inf): every weight 0, the output 0.
    const float w = mx == -INFINITY ? 0.0f : exp2f(a.x - mx);
    float l = a.y * w;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
    if (tid < n_splits) weight[tid] = w;
    if (tid == 0) lsum = l;
  }
  __syncthreads();
  const int parts = kMergeThreads / head_dim, d = tid % head_dim, part = tid / head_dim;
  float o = 0.0f;
#pragma unroll 8
  for (int s = part; s < n_splits; s += parts) o += part_o[(row0 + s) * head_dim + d] * weight[s];
  partial[tid] = o;
  __syncthreads();
  if (part == 0) {
    for (int p = 1; p < parts; ++p) o += partial[p * head_dim + d];
    out[static_cast<int64_t>(blockIdx.x) * head_dim + d] = __float2half_rn(lsum > 0.0f ? o / lsum : 0.0f);
  }
}

int max_splits_for_context(int max_context) {
  return std::clamp(ceil_div(std::max(max_context, 1), kMinTokensPerSplit), 1, kMaxSplits);
}

// Splits so that the CTAs (`per_sm` per SM) over (sequence, KV head, split) fill their last wave:
// the fewest splits whose last wave is at least 90% full (else the fullest), no more splits than the
// context supports (64 tokens each, at most 32). At B=64 on 8 KV heads one split would leave 512
// CTAs in 1.3 waves of 396 (the last third of the time on a third of the GPU), three splits make 3.9
// waves. A batch whose own CTAs cover at most a quarter of the SMs (B <= 4 on 8 KV heads) stops at
// two CTAs an SM instead: filling 3-4 an SM with short splits cost more in per-CTA and merge time
// than it gained in bytes in flight (H200, every KV format, ctx 1k-32k: B=1 at 32 splits instead of
// 45-60 10-35% faster from ctx 4096, B=4 at 8 instead of 12-15 up to 20%; perf/NOTES.md,
// "seventeenth"). Larger batches keep the full fill (B=16 at 2 splits instead of 4: 37% slower).
int choose_splits(int n_seqs, int n_kv, int max_context, int sms, int per_sm) {
  const double slots = double(per_sm) * sms, ctas = std::max(1, n_seqs * n_kv);
  int most = max_splits_for_context(max_context);
  if (4 * ctas <= sms) most = std::min(most, std::max(1, 2 * sms / static_cast<int>(ctas)));
  int best = 1;
  double best_fill = 0.0;
  for (int s = 1; s <= most; ++s) {
    const double waves = ctas * s / slots, fill = waves / std::ceil(waves);
    if (fill >= 0.9) return s;
    if (fill > best_fill) best = s, best_fill = fill;
  }
  return best;
}

// Where the batch's (sequence, KV head) pairs alone fill at least 90% of the SMs once (B=15-16 on 8
// KV heads: 120-128 pairs on 132 SMs), choose_splits filled the slots by splitting each context
// into ctas_per_sm pieces (contexts over 128 / 192 tokens at fp16 / int8-int4: 64 a split), and no
// context is longer than kWideMaxContext, one wide CTA of wide_warps per pair instead: the same warps an SM,
// each streaming the same tiles, merged in shared memory at the end, with no partials and no merge kernel
// (which ended 3.0-3.6 us after the last attention warp: perf/NOTES.md, "twentieth"). H100,
// BM_DecodeAttention B=16, both presets' shapes, every format (perf/NOTES.md, "thirty-seventh"): ctx
// 1024-8192 3.0-6.1 us faster a launch (int8 at 8192 98.5 -> 93.4 us: 1.82x -> 1.88x against fp16; int4 3.27x
// -> 3.46x), the B=16 decode steps 1.0-5.2% faster; ctx 16384 fp16 and int8 1-4 us faster but int4 0.6-3%
// slower, ctx 32768 int4 6% slower (not understood), so longer contexts keep the splits.
// RIDGELINE_WIDE_ATTENTION=0 in the environment keeps them everywhere (to measure both in one build).
constexpr int kWideMaxContext = 8192;

int choose_warps(int n_seqs, int n_kv, int max_context, int n_splits, int sms, int per_sm) {
  static const bool off = [] {
    const char* v = std::getenv("RIDGELINE_WIDE_ATTENTION");
    return v != nullptr && std::strcmp(v, "0") == 0;
  }();
  const int ctas = n_seqs * n_kv;
  if (off || n_splits != per_sm || max_context > kWideMaxContext || ctas > sms || 10 * ctas < 9 * sms)
    return kWarps;
  return kWarps * per_sm;  // = wide_warps(bits)
}

// The shared memory that lets no more than two CTAs share an SM.
size_t two_per_sm_smem(const char* op) {
  return size_t(smem_holding_sm_to(2, op));
}

// Where choose_splits sized the grid for two CTAs an SM (a batch covering at most a quarter of the
// SMs) and the batch's own CTAs cover more than an eighth of them (B=3-4 on 8 KV heads), each CTA
// asks for two_per_sm_smem() so that the grid lands two an SM wherever it starts. The kernel is
// launched overlapped behind wqkv's GEMV (Fusions::rope_in_attention), whose SMs free up unevenly:
// with room for 3-4 a CTA, the B=4 grid's 256 CTAs piled onto the SMs freed first and the last of
// them set the kernel's end (H200, 1.8b, B=4, ctx 4096/8192, every weight and KV format: the step
// 1.4-10% faster, e.g. ctx 8192 fp16 2114 -> 2046 us, w4a16 + int4 1280 -> 1164; decode attention
// 41.6 -> 36.8 us a layer in the overlapped step; perf/NOTES.md, "twenty-ninth"). Measured and left
// alone: B=2 (the fp16-weight steps 0.6-3.3% slower capped, the w4a16 ones 2.7-6% faster), B=1 at
// ctx 8192 (-1.5..+1.0%), and splits under kSpreadMinTokens tokens (B=1 ctx 4096: 0.9-1.5% slower,
// the early start under the GEMV's tail worth more than the balance).
constexpr int kSpreadMinTokens = 256;

size_t launch_smem(size_t own, int n_seqs, int n_kv, int max_context, int n_splits, int sms, const char* op) {
  const int ctas = std::max(1, n_seqs * n_kv);
  const bool spread = 4 * ctas <= sms && 8 * ctas > sms;
  if (!spread || ceil_div(std::max(max_context, 1), n_splits) < kSpreadMinTokens) return own;
  return std::max(own, two_per_sm_smem(op));
}

template <int kHeadDim, int kGroup, int kBits, bool kRope, int kW>
void launch(const DecodeAttentionParams& p, int n_splits, size_t smem, float* part_o, float2* part_ml,
            cudaStream_t stream) {
  // Opt in once to more than 48 KB of dynamic shared memory (up to two_per_sm_smem(), or a wide CTA's
  // ~100-205 KB), and the carveout for ctas_per_sm split CTAs or one wide CTA.
  constexpr auto kernel = decode_attention_kernel<kHeadDim, kGroup, kBits, kRope, kW>;
  static const bool attributes_set =
      (set_dynamic_smem(kernel,
                        int(std::max(shared_bytes<kHeadDim, kBits>(kW), two_per_sm_smem("decode_attention"))),
                        true, "decode_attention"),
       true);
  (void)attributes_set;
  dim3 grid(p.cache.n_kv_heads, p.n_seqs, n_splits);
  float scale_log2 = static_cast<float>(M_LOG2E / std::sqrt(static_cast<double>(kHeadDim)));
  launch_overlapped(kernel, grid, kW * 32, smem, stream, "decode_attention", p.q, p.slots, p.context_lens,
                    p.n_heads, p.cache, n_splits, scale_log2, part_o, part_ml, p.out, p.rope);
}

template <int kHeadDim, int kBits, bool kRope>
void launch_group(int group, int warps, const DecodeAttentionParams& p, int n_splits, size_t smem,
                  float* part_o, float2* part_ml, cudaStream_t stream) {
  constexpr int kWide = wide_warps(kBits);
  switch (group) {
#define RL_DECODE_GROUP(G)                                                                   \
  case G:                                                                                    \
    if (warps == kWide)                                                                      \
      launch<kHeadDim, G, kBits, kRope, kWide>(p, n_splits, smem, part_o, part_ml, stream);  \
    else                                                                                     \
      launch<kHeadDim, G, kBits, kRope, kWarps>(p, n_splits, smem, part_o, part_ml, stream); \
    break;
    RL_DECODE_GROUP(1)
    RL_DECODE_GROUP(2)
    RL_DECODE_GROUP(3)
    RL_DECODE_GROUP(4)
    RL_DECODE_GROUP(5)
    RL_DECODE_GROUP(6)
    RL_DECODE_GROUP(7)
    RL_DECODE_GROUP(8)
#undef RL_DECODE_GROUP
  }
}

template <int kBits, bool kRope>
void launch_head_dim(int group, int warps, const DecodeAttentionParams& p, int n_splits, size_t smem,
                     float* part_o, float2* part_ml, cudaStream_t stream) {
  if (p.cache.head_dim == 64)
    launch_group<64, kBits, kRope>(group, warps, p, n_splits, smem, part_o, part_ml, stream);
  else
    launch_group<128, kBits, kRope>(group, warps, p, n_splits, smem, part_o, part_ml, stream);
}

template <int kBits>
void launch_format(int group, int warps, const DecodeAttentionParams& p, int n_splits, size_t smem,
                   float* part_o, float2* part_ml, cudaStream_t stream) {
  if (p.rope.qkv != nullptr)
    launch_head_dim<kBits, true>(group, warps, p, n_splits, smem, part_o, part_ml, stream);
  else
    launch_head_dim<kBits, false>(group, warps, p, n_splits, smem, part_o, part_ml, stream);
}

struct Partials {
  float* o;
  float2* ml;
};

Partials partials_in(void* workspace, int64_t rows, int head_dim) {
  if (workspace == nullptr) return {nullptr, nullptr};  // one split: the kernel writes `out` directly
  float* o = static_cast<float*>(workspace);
  return {o, reinterpret_cast<float2*>(o + rows * head_dim)};
}

}  // namespace

size_t decode_attention_workspace_bytes(int max_seqs, int n_heads, int head_dim, int max_context) {
  const char* op = "decode_attention";
  require(max_seqs > 0 && n_heads > 0 && head_dim > 0, op, "workspace sizes must be positive");
  int sms = current_sm_count(op);
  // The most (sequence, head, split) partials any batch up to max_seqs writes, over every KV-head
  // count the group sizes allow and both CTA counts an SM (neither is known here; the split count is
  // not monotone in them).
  int64_t rows = 0;
  for (int n = 1; n <= max_seqs; ++n)
    for (int group = 1; group <= std::min(kMaxGroup, n_heads); ++group) {
      if (n_heads % group != 0) continue;
      for (int per_sm : {ctas_per_sm(16), ctas_per_sm(8)})
        rows = std::max<int64_t>(
            rows, int64_t{n} * n_heads * choose_splits(n, n_heads / group, max_context, sms, per_sm));
    }
  return static_cast<size_t>(rows) * (head_dim * sizeof(float) + sizeof(float2));
}

namespace {

// decode_attention_launch without its checks: decode_attention has made them already, and runs on
// every decode step.
DecodeAttentionLaunch launch_shape(int n_seqs, int n_kv_heads, int head_dim, int bits, int max_context,
                                   const char* op) {
  const int sms = current_sm_count(op);
  DecodeAttentionLaunch l;
  l.splits = choose_splits(n_seqs, n_kv_heads, max_context, sms, ctas_per_sm(bits));
  l.warps = choose_warps(n_seqs, n_kv_heads, max_context, l.splits, sms, ctas_per_sm(bits));
  size_t own = 0;  // what launch<kHeadDim, ..., kBits, ..., l.warps> needs
  if (bits == 16)
    own = head_dim == 64 ? shared_bytes<64, 16>(l.warps) : shared_bytes<128, 16>(l.warps);
  else if (bits == 8)
    own = head_dim == 64 ? shared_bytes<64, 8>(l.warps) : shared_bytes<128, 8>(l.warps);
  else
    own = head_dim == 64 ? shared_bytes<64, 4>(l.warps) : shared_bytes<128, 4>(l.warps);
  if (l.warps != kWarps) {  // one wide CTA a (sequence, KV head): no split, no merge, alone on its SM
    l.splits = 1;
    l.smem_bytes = own;
    return l;
  }
  l.smem_bytes = launch_smem(own, n_seqs, n_kv_heads, max_context, l.splits, sms, op);
  return l;
}

}  // namespace

DecodeAttentionLaunch decode_attention_launch(int n_seqs, int n_kv_heads, int head_dim, int bits,
                                              int max_context) {
  const char* op = "decode_attention";
  require(head_dim == 64 || head_dim == 128, op,
          "head_dim must be 64 or 128, got " + std::to_string(head_dim));
  require(bits == 16 || bits == 8 || bits == 4, op,
          "cache bits must be 16, 8 or 4, got " + std::to_string(bits));
  return launch_shape(n_seqs, n_kv_heads, head_dim, bits, max_context, op);
}

void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream) {
  const char* op = "decode_attention";
  const KvCacheView& cache = p.cache;
  const int n_heads = p.n_heads;
  require(p.n_seqs >= 0 && p.max_context >= 0, op, "n_seqs and max_context must be >= 0");
  require(cache.head_dim == 64 || cache.head_dim == 128, op,
          "head_dim must be 64 or 128, got " + std::to_string(cache.head_dim));
  require(cache.n_kv_heads > 0 && n_heads % cache.n_kv_heads == 0 && n_heads / cache.n_kv_heads >= 1 &&
              n_heads / cache.n_kv_heads <= kMaxGroup,
          op,
          "n_heads / n_kv_heads must be an integer group of 1..8, got " + std::to_string(n_heads) + "/" +
              std::to_string(cache.n_kv_heads));
  static_assert(kBlockDivMaxDivisor >= 256, "the block lookup's division covers every block size taken here");
  require(cache.block_size > 0 && cache.block_size % 16 == 0 && cache.block_size <= 256, op,
          "block_size must be a multiple of 16 up to 256, got " + std::to_string(cache.block_size));
  // Token positions stay below max_context, inside the block lookup's exact range.
  require(p.max_context <= static_cast<int64_t>(kBlockDivMaxDividend), op,
          "max_context must be at most 2^24 tokens, got " + std::to_string(p.max_context));
  require(cache.block_table != nullptr && cache.max_blocks_per_seq > 0, op,
          "the KV cache view needs a block table");
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16 (fp16), 8 or 4, got " + std::to_string(cache.bits));
  require(aligned16(p.q) && aligned16(cache.k) && aligned16(cache.v), op,
          "q and the K/V pools must be 16-byte aligned");
  require(p.q != nullptr || p.rope.qkv != nullptr, op,
          "needs q (rotated queries) or rope.qkv (the wqkv output, rotated here)");
  if (p.rope.qkv != nullptr) {  // head_dim 64 or 128 (above): the RoPE pairs lie in one lane, and
                                // a quantized row's lanes form a power-of-two group of a warp
    require(p.q == nullptr, op,
            "give q (rotated queries) or rope.qkv (the wqkv output, rotated here), not both");
    require(p.rope.inv_freq != nullptr, op, "rope.qkv needs rope.inv_freq, a RoPE table per sequence");
    require(p.rope.pos_scale > 0.0f, op, "rope.pos_scale must be positive");
    require(aligned16(p.rope.qkv), op, "rope.qkv must be 16-byte aligned");
  }
  if (p.n_seqs == 0) return;
  const DecodeAttentionLaunch shape =
      launch_shape(p.n_seqs, cache.n_kv_heads, cache.head_dim, cache.bits, p.max_context, op);
  const int n_splits = shape.splits;
  require(n_splits == 1 || p.workspace != nullptr, op, "a workspace is needed when the context is split");
  int64_t rows = int64_t{p.n_seqs} * n_heads * n_splits;
  Partials part = partials_in(p.workspace, rows, cache.head_dim);
  int group = n_heads / cache.n_kv_heads;
  if (cache.bits == 16)
    launch_format<16>(group, shape.warps, p, n_splits, shape.smem_bytes, part.o, part.ml, stream);
  else if (cache.bits == 8)
    launch_format<8>(group, shape.warps, p, n_splits, shape.smem_bytes, part.o, part.ml, stream);
  else
    launch_format<4>(group, shape.warps, p, n_splits, shape.smem_bytes, part.o, part.ml, stream);
  RL_CUDA_CHECK_LAUNCH(op);
  if (n_splits > 1)
    launch_overlapped(decode_attention_merge_kernel, p.n_seqs * n_heads, kMergeThreads, 0, stream, op,
                      static_cast<const float*>(part.o), static_cast<const float2*>(part.ml), n_splits,
                      cache.head_dim, p.out);
}

}  // namespace ridgeline::cuda
