// prefill_attention: causal attention of n_tokens new query tokens over their sequences' paged KV
// cache (the new tokens' K/V already written there by rope_kv_write), FlashAttention-2 style.
// FLOPs: ~4*head_dim per (query head, query token, attended key), ~2*hd*T^2*n_heads for one T-token
// prompt. Bytes: q + out + K/V of the attended context per CTA row of heads (re-reads hit L2).
// Bound: the tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate) for long prompts: a 64 x 64
// tile is 128 MMAs a warp against 32 KB of K/V a CTA from L2, and the softmax's exp2 per score.
// One CTA per (64-token query tile, query head); each of its 4 warps owns 16 query rows and keeps
// their Q fragments, running max/sum and the 16 x head_dim output in registers. K/V tiles of 64
// keys go through shared memory (rows padded by 16 bytes: the ldmatrix of 8 rows is bank-conflict
// free); the scores never leave registers: their C fragments become the A fragments of P*V.
// Loads: a two-stage cp.async pipeline (block_pipeline), tile j + 1 in flight while tile j is
// multiplied; a tile inside one paged block is one table read and a contiguous run of copies.
// fp16 rows are copied straight into the tiles; int8/int4 units and their (scale, zero) pairs are
// copied raw and dequantized into the fp16 tiles by the thread that copied them, so the MMA path is
// the fp16 one. (The first kernel loaded each 16-byte unit into registers and stored it, unit after
// unit, behind a block-table read: ~16 dependent global round trips per tile, 65 TFLOP/s on the
// H200 at a 2048-token 1.8b prompt, perf/NOTES.md.)
// CTAs run heaviest first: the query tiles furthest down a prompt attend to the most keys, and
// scheduled last they would be the tail of the launch.
// A tile may hold tokens of several sequences: the CTA handles one sequence ("segment") at a time,
// the rows of the other sequences masked, so any packing of sequences is correct and the usual
// one-sequence tile takes one pass. A warp skips a K/V tile that lies wholly after its rows, and
// masks scores only in tiles that reach past one of its rows.
// Measured (H200, BM_PrefillAttention, one causal prompt): fp16 2048 tokens 102 us (1.8b heads) and
// 178 us (7b) a layer, 8192 tokens 1128 / 2295 us (~245 TFLOP/s: a third of mma.sync's rate); int8 /
// int4 122 / 116 us at 2048 tokens (1.8b), 1.15-1.2x slower than fp16 although they read fewer
// bytes: the dequantization into the tiles (kv_unit_dequantize: fp16 pairs, one HFMA2 each; with
// fp32 per code it was 158 / 146 us before the one-lookup tiles) is the difference.
#include <cmath>

#include "kernels/block_div.h"
#include "kernels/cp_async.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/kv_quant.cuh"
#include "kernels/mma.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileQ = 16 * kWarps;
constexpr int kTileK = 64;
constexpr int kStages = 2;
// Three CTAs (12 warps) an SM: at most 168 registers a thread (180 unbounded, which fits two; a few
// bytes spill at head_dim 128), 3 x 68 KB of shared memory. Two CTAs an SM measured faster at 512
// tokens and slower at 2048 (7b) and 8192.
constexpr int kCtasPerSm = 3;

// Shared memory per stage: the fp16 K and V tiles (kBits 16), or the raw units and (scale, zero)
// pairs of both (int8/int4); the quantized kernels add one pair of fp16 tiles they dequantize into.
template <int kHeadDim, int kBits>
struct Smem {
  static constexpr int kStride = kHeadDim + 8;                   // halves per fp16 tile row
  static constexpr int kTileBytes = kTileK * kStride * 2;        // one fp16 tile (K or V)
  static constexpr int kT = 16 / kBits;                          // tokens per 16-byte unit
  static constexpr int kUnits = (kTileK / kT) * (kHeadDim / 8);  // raw units per tile (K or V)
  static constexpr int kScaleBytes = kTileK * 4;                 // (scale, zero) half2 per token
  static constexpr int kRawBytes = kUnits * 16 + kScaleBytes;
  static constexpr int kStage = kBits == 16 ? 2 * kTileBytes : 2 * kRawBytes;
  static constexpr int kBytes = kStages * kStage + (kBits == 16 ? 0 : 2 * kTileBytes);
};

template <int kHeadDim, int kBits>
__global__ void __launch_bounds__(kThreads, kCtasPerSm)
    prefill_attention_kernel(const half* __restrict__ q, const int* __restrict__ slots,
                             const int* __restrict__ positions, int n_tokens, int n_heads, KvCacheView cache,
                             uint32_t bs_magic, float scale_log2, half* __restrict__ out) {
  using S = Smem<kHeadDim, kBits>;
  constexpr int kStride = S::kStride;
  constexpr int kKSteps = kHeadDim / 16;
  constexpr int kDimTiles = kHeadDim / 8;
  constexpr int kKeyTiles = kTileK / 8;
  constexpr int kVecPerRow = kHeadDim / 8;

  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int row_seq[kTileQ], row_pos[kTileQ], row_done[kTileQ];
  __shared__ int seg_seq, seg_len;

  const int tile0 = (gridDim.y - 1 - blockIdx.y) * kTileQ, head = blockIdx.x;  // heaviest tiles first
  const int n_kv = cache.n_kv_heads, kvh = head / (n_heads / n_kv), bs = cache.block_size;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, gid = lane >> 2, tig = lane & 3;
  for (int r = threadIdx.x; r < kTileQ; r += kThreads) {
    int t = tile0 + r;
    bool valid = t < n_tokens;
    row_seq[r] = valid ? slots[t] : -1;
    row_pos[r] = valid ? positions[t] : -1;
    row_done[r] = valid ? 0 : 1;
  }
  __syncthreads();

  const int ra = warp * 16 + gid, rb = ra + 8;  // the two rows this thread's fragments cover
  const int seq_a = row_seq[ra], seq_b = row_seq[rb], pos_a = row_pos[ra], pos_b = row_pos[rb];
  const int64_t ta = tile0 + ra, tb = tile0 + rb;

  uint32_t qa[kKSteps][4];
  {
    const half* qra = q + (ta * n_heads + head) * kHeadDim;
    const half* qrb = q + (tb * n_heads + head) * kHeadDim;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      int c = kk * 16 + tig * 2;
      qa[kk][0] = seq_a >= 0 ? load_u32(qra + c) : 0u;
      qa[kk][1] = seq_b >= 0 ? load_u32(qrb + c) : 0u;
      qa[kk][2] = seq_a >= 0 ? load_u32(qra + c + 8) : 0u;
      qa[kk][3] = seq_b >= 0 ? load_u32(qrb + c + 8) : 0u;
    }
  }

  float o[kDimTiles][4];
#pragma unroll
  for (int nd = 0; nd < kDimTiles; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

  while (true) {
    __syncthreads();  // everyone has read the previous segment's seg_seq
    if (threadIdx.x == 0) {
      int s = -1, len = 0;
      for (int r = 0; r < kTileQ; ++r) {
        if (row_done[r]) continue;
        if (s < 0) s = row_seq[r];
        if (row_seq[r] == s) {
          len = max(len, row_pos[r] + 1);
          row_done[r] = 1;
        }
      }
      seg_seq = s;
      seg_len = len;
    }
    __syncthreads();
    const int seq = seg_seq, kv_len = seg_len;
    if (seq < 0) break;
    const bool act_a = seq_a == seq, act_b = seq_b == seq;
    int warp_last = max(act_a ? pos_a : -1, act_b ? pos_b : -1);
    // The lowest position among the warp's rows, inactive rows counting as -1: a tile whose last key
    // is at or before it needs no mask.
    int warp_first = min(act_a ? pos_a : -1, act_b ? pos_b : -1);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      warp_last = max(warp_last, __shfl_xor_sync(0xffffffffu, warp_last, off));
      warp_first = min(warp_first, __shfl_xor_sync(0xffffffffu, warp_first, off));
    }
    const int* table = cache.block_table + static_cast<int64_t>(seq) * cache.max_blocks_per_seq;

    // Tile `i` (keys 64i..) into stage `slot`. Thread t copies the units of tile rows (t / 16) + 8k at
    // dims 8 * (t % 16)... (fp16: one row a unit), so a row's block-table entry is read by 16
    // neighbouring threads at once. Keys past kv_len are zero-filled (src-size 0 reads nothing): 0 *
    // a garbage value could be NaN in P*V.
    auto load = [&](int slot, int i) {
      unsigned char* st = smem + slot * S::kStage;
      const int kt0 = i * kTileK;
      // A whole tile inside one block (every tile but a sequence's last partial one when the block
      // size is a multiple of kTileK, as the engine's 64 is) is one contiguous run of units per pool
      // (kernels.cuh's layout: a head's slots back to back): one block-table read a tile, and copy c
      // is unit c of the run. The general path below divides, reads the table and forms a 64-bit
      // offset per copy: 8-20% slower (perf/NOTES.md, "twenty-seventh").
      const int blk0 = static_cast<int>(block_div(static_cast<uint32_t>(kt0), bs_magic)),
                o0 = kt0 - blk0 * bs;
      if (kt0 + kTileK <= kv_len && o0 + kTileK <= bs) {
        const int64_t base = static_cast<int64_t>(table[blk0]) * cache.block_bytes();
        const char* kp = static_cast<const char*>(cache.k) + base + cache.unit_offset(kvh, o0, 0);
        const char* vp = static_cast<const char*>(cache.v) + base + cache.unit_offset(kvh, o0, 0);
        if constexpr (kBits == 16) {
          for (int c = threadIdx.x; c < kTileK * kVecPerRow; c += kThreads) {
            const int dst = ((c / kVecPerRow) * kStride + (c % kVecPerRow) * 8) * 2;
            cp_async_16(st + dst, kp + 16 * c);
            cp_async_16(st + S::kTileBytes + dst, vp + 16 * c);
          }
        } else {
          for (int c = threadIdx.x; c < S::kUnits; c += kThreads) {
            cp_async_16(st + c * 16, kp + 16 * c);
            cp_async_16(st + S::kRawBytes + c * 16, vp + 16 * c);
          }
          const int64_t sz = base + cache.scale_offset(kvh, o0);
          for (int c = threadIdx.x; c < kTileK / 4; c += kThreads) {
            cp_async_16(st + S::kUnits * 16 + c * 16, static_cast<const char*>(cache.k) + sz + 16 * c);
            cp_async_16(st + S::kRawBytes + S::kUnits * 16 + c * 16,
                        static_cast<const char*>(cache.v) + sz + 16 * c);
          }
        }
        return;
      }
      if constexpr (kBits == 16) {
        for (int c = threadIdx.x; c < kTileK * kVecPerRow; c += kThreads) {
          const int j = c / kVecPerRow, part = c % kVecPerRow, p = kt0 + j;
          const bool ok = p < kv_len;
          const int blk = block_div(p, bs_magic), in_blk = p - blk * bs;
          const int64_t off =
              ok ? ((static_cast<int64_t>(table[blk]) * n_kv + kvh) * bs + in_blk) * kHeadDim + part * 8 : 0;
          const int dst = (j * kStride + part * 8) * 2;
          cp_async_16(st + dst, static_cast<const half*>(cache.k) + off, ok);
          cp_async_16(st + S::kTileBytes + dst, static_cast<const half*>(cache.v) + off, ok);
        }
      } else {
        const int64_t block_bytes = cache.block_bytes();
        const char* k_pool = static_cast<const char*>(cache.k);
        const char* v_pool = static_cast<const char*>(cache.v);
        for (int c = threadIdx.x; c < S::kUnits; c += kThreads) {
          const int grp = c / kVecPerRow, part = c % kVecPerRow, p0 = kt0 + grp * S::kT;
          const bool ok = p0 < kv_len;  // a unit never crosses a block: its tokens share one
          const int blk = block_div(p0, bs_magic);
          const int64_t off = ok ? static_cast<int64_t>(table[blk]) * block_bytes +
                                       cache.unit_offset(kvh, p0 - blk * bs, part)
                                 : 0;
          cp_async_16(st + c * 16, k_pool + off, ok);
          cp_async_16(st + S::kRawBytes + c * 16, v_pool + off, ok);
        }
        // (scale, zero) pairs: 4 tokens a 16-byte unit (a block holds a multiple of 16 tokens).
        for (int c = threadIdx.x; c < kTileK / 4; c += kThreads) {
          const int p0 = kt0 + 4 * c;
          const bool ok = p0 < kv_len;
          const int blk = block_div(p0, bs_magic);
          const int64_t off =
              ok ? static_cast<int64_t>(table[blk]) * block_bytes + cache.scale_offset(kvh, p0 - blk * bs)
                 : 0;
          cp_async_16(st + S::kUnits * 16 + c * 16, k_pool + off, ok);
          cp_async_16(st + S::kRawBytes + S::kUnits * 16 + c * 16, v_pool + off, ok);
        }
      }
    };

    auto compute = [&](int slot, int tile) {
      const int kt0 = tile * kTileK;
      const half* k_s;
      const half* v_s;
      if constexpr (kBits == 16) {
        k_s = reinterpret_cast<const half*>(smem + slot * S::kStage);
        v_s = reinterpret_cast<const half*>(smem + slot * S::kStage + S::kTileBytes);
      } else {
        // The raw units this stage holds into the fp16 tiles (no thread reads those any more: the
        // pipeline's barrier before this step follows every thread's previous tile). A unit's
        // tokens past kv_len come out as zeros (their scales were never copied).
        const unsigned char* st = smem + slot * S::kStage;
        half* kt = reinterpret_cast<half*>(smem + kStages * S::kStage);
        half* vt = kt + kTileK * kStride;
        for (int c = threadIdx.x; c < S::kUnits; c += kThreads) {
          const int grp = c / kVecPerRow, part = c % kVecPerRow;
          const uint4 kc = *reinterpret_cast<const uint4*>(st + c * 16);
          const uint4 vc = *reinterpret_cast<const uint4*>(st + S::kRawBytes + c * 16);
#pragma unroll
          for (int j = 0; j < S::kT; ++j) {
            const int row = grp * S::kT + j;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;
            if (kt0 + row < kv_len) {
              const half2 ks = *reinterpret_cast<const half2*>(st + S::kUnits * 16 + row * 4);
              const half2 vs = *reinterpret_cast<const half2*>(st + S::kRawBytes + S::kUnits * 16 + row * 4);
              kv = kv_unit_dequantize<kBits>(kc, j, ks);
              vv = kv_unit_dequantize<kBits>(vc, j, vs);
            }
            *reinterpret_cast<uint4*>(kt + row * kStride + part * 8) = kv;
            *reinterpret_cast<uint4*>(vt + row * kStride + part * 8) = vv;
          }
        }
        __syncthreads();
        k_s = kt;
        v_s = vt;
      }
      if (warp_last < kt0) return;  // causal: every active row of this warp precedes the tile

      // S = Q K^T for the warp's 16 rows x 64 keys. K is [key][dim]: the B fragments of n-tile nt
      // (keys 8nt..) for k-steps kk and kk + 1 are four 8x8 matrices of it, one ldmatrix.
      float sc[kKeyTiles][4];
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
        const half* krow = k_s + (nt * 8 + (lane & 7)) * kStride + (lane >> 3) * 8;
#pragma unroll
        for (int kk = 0; kk < kKSteps; kk += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, krow + kk * 16);
          mma_m16n8k16(sc[nt], qa[kk], b[0], b[1]);
          mma_m16n8k16(sc[nt], qa[kk + 1], b[2], b[3]);
        }
      }
      // Mask other sequences' rows and keys after the row's position where the tile reaches past
      // one of the warp's rows. Scores stay raw: the log2-domain scale is folded into exp2's FFMA
      // (scale_log2 > 0, so the raw maximum is the scaled one's).
      if (kt0 + kTileK - 1 > warp_first) {
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt) {
          const int key = kt0 + nt * 8 + tig * 2;
          if (!act_a || key > pos_a) sc[nt][0] = -INFINITY;
          if (!act_a || key + 1 > pos_a) sc[nt][1] = -INFINITY;
          if (!act_b || key > pos_b) sc[nt][2] = -INFINITY;
          if (!act_b || key + 1 > pos_b) sc[nt][3] = -INFINITY;
        }
      }
      float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        mx_a = fmaxf(mx_a, fmaxf(sc[nt][0], sc[nt][1]));
        mx_b = fmaxf(mx_b, fmaxf(sc[nt][2], sc[nt][3]));
      }
      // The four lanes of a quad hold one row's 64 scores between them.
#pragma unroll
      for (int off = 1; off <= 2; off <<= 1) {
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
      }
      const float new_a = fmaxf(m_a, mx_a), new_b = fmaxf(m_b, mx_b);
      // A row with nothing unmasked yet subtracts 0 so that exp2(-inf - m) stays 0, not NaN.
      const float use_a = new_a == -INFINITY ? 0.0f : new_a, use_b = new_b == -INFINITY ? 0.0f : new_b;
      const float corr_a = exp2f((m_a - use_a) * scale_log2), corr_b = exp2f((m_b - use_b) * scale_log2);
      m_a = new_a;
      m_b = new_b;
      l_a *= corr_a;
      l_b *= corr_b;
      // Late in a prompt the maximum rarely moves: then every factor is exactly 1.
      if (__any_sync(0xffffffffu, corr_a != 1.0f || corr_b != 1.0f)) {
#pragma unroll
        for (int nd = 0; nd < kDimTiles; ++nd) {
          o[nd][0] *= corr_a;
          o[nd][1] *= corr_a;
          o[nd][2] *= corr_b;
          o[nd][3] *= corr_b;
        }
      }
      const float off_a = use_a * scale_log2, off_b = use_b * scale_log2;
      uint32_t pa[kTileK / 16][4];
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        const float p0 = exp2f(fmaf(sc[nt][0], scale_log2, -off_a));
        const float p1 = exp2f(fmaf(sc[nt][1], scale_log2, -off_a));
        const float p2 = exp2f(fmaf(sc[nt][2], scale_log2, -off_b));
        const float p3 = exp2f(fmaf(sc[nt][3], scale_log2, -off_b));
        l_a += p0 + p1;
        l_b += p2 + p3;
        pa[nt / 2][(nt % 2) * 2 + 0] = pack_half2(p0, p1);
        pa[nt / 2][(nt % 2) * 2 + 1] = pack_half2(p2, p3);
      }
      // O += P V: V is row-major [key][dim], so its B fragments come from ldmatrix.trans.
#pragma unroll
      for (int ks = 0; ks < kTileK / 16; ++ks) {
        const half* vrow = v_s + (ks * 16 + (lane & 15)) * kStride + (lane >> 4) * 8;
#pragma unroll
        for (int nd = 0; nd < kDimTiles; nd += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, vrow + nd * 8);
          mma_m16n8k16(o[nd], pa[ks], b[0], b[1]);
          mma_m16n8k16(o[nd + 1], pa[ks], b[2], b[3]);
        }
      }
    };
    block_pipeline<kStages>((kv_len + kTileK - 1) / kTileK, load, compute);

    // Rows of this segment are complete: normalize and write them.
    float la = l_a, lb = l_b;
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      la += __shfl_xor_sync(0xffffffffu, la, off);
      lb += __shfl_xor_sync(0xffffffffu, lb, off);
    }
    const float inv_a = la > 0.0f ? 1.0f / la : 0.0f, inv_b = lb > 0.0f ? 1.0f / lb : 0.0f;
#pragma unroll
    for (int nd = 0; nd < kDimTiles; ++nd) {
      int c = nd * 8 + tig * 2;
      if (act_a)
        *reinterpret_cast<half2*>(out + (ta * n_heads + head) * kHeadDim + c) =
            __floats2half2_rn(o[nd][0] * inv_a, o[nd][1] * inv_a);
      if (act_b)
        *reinterpret_cast<half2*>(out + (tb * n_heads + head) * kHeadDim + c) =
            __floats2half2_rn(o[nd][2] * inv_b, o[nd][3] * inv_b);
    }
  }
}

template <int kHeadDim, int kBits>
void launch(const PrefillAttentionParams& p, dim3 grid, cudaStream_t stream, const char* op) {
  constexpr int smem = Smem<kHeadDim, kBits>::kBytes;
  auto kernel = prefill_attention_kernel<kHeadDim, kBits>;
  static const bool smem_set = (set_dynamic_smem(kernel, smem, false, op), true);
  (void)smem_set;
  const float scale_log2 = static_cast<float>(M_LOG2E / std::sqrt(static_cast<double>(kHeadDim)));
  kernel<<<grid, kThreads, smem, stream>>>(p.q, p.slots, p.positions, p.n_tokens, p.n_heads, p.cache,
                                           block_div_magic(uint32_t(p.cache.block_size)), scale_log2, p.out);
}

}  // namespace

void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream) {
  const char* op = "prefill_attention";
  const KvCacheView& cache = p.cache;
  require(p.n_tokens >= 0, op, "n_tokens must be >= 0");
  require(cache.head_dim == 64 || cache.head_dim == 128, op,
          "head_dim must be 64 or 128, got " + std::to_string(cache.head_dim));
  require(cache.n_kv_heads > 0 && p.n_heads > 0 && p.n_heads % cache.n_kv_heads == 0, op,
          "n_heads (" + std::to_string(p.n_heads) + ") must be a positive multiple of n_kv_heads (" +
              std::to_string(cache.n_kv_heads) + ")");
  require(cache.block_size > 0 && cache.block_size % 16 == 0 && cache.block_size <= 256, op,
          "block_size must be a multiple of 16 up to 256, got " + std::to_string(cache.block_size));
  require(cache.block_table != nullptr && cache.max_blocks_per_seq > 0, op,
          "the KV cache view needs a block table");
  require(int64_t{cache.max_blocks_per_seq} * cache.block_size <= int64_t{kBlockDivMaxDividend}, op,
          "sequences of more than 2^24 tokens are not supported (the block lookup's division)");
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16 (fp16), 8 or 4, got " + std::to_string(cache.bits));
  require(aligned16(p.q) && aligned16(p.out) && aligned16(cache.k) && aligned16(cache.v), op,
          "q, out and the K/V pools must be 16-byte aligned");
  if (p.n_tokens == 0) return;
  const int tiles = ceil_div(p.n_tokens, kTileQ);
  require(tiles <= 65535, op, "at most 65535 query tiles of 64 tokens in one launch");
  const dim3 grid(p.n_heads, tiles);
  const bool hd64 = cache.head_dim == 64;
  if (cache.bits == 16)
    hd64 ? launch<64, 16>(p, grid, stream, op) : launch<128, 16>(p, grid, stream, op);
  else if (cache.bits == 8)
    hd64 ? launch<64, 8>(p, grid, stream, op) : launch<128, 8>(p, grid, stream, op);
  else
    hd64 ? launch<64, 4>(p, grid, stream, op) : launch<128, 4>(p, grid, stream, op);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
