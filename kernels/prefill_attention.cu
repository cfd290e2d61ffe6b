// prefill_attention: causal attention of n_tokens new query tokens over their sequences' paged KV
// cache (the new tokens' K/V already written there by rope_kv_write), FlashAttention-2 style.
// FLOPs: ~4*head_dim per (query head, query token, attended key), ~2*hd*T^2*n_heads for one T-token
// prompt. Bytes: q + out + K/V of the attended context per CTA row of heads (re-reads hit L2).
// Compute-bound for long prompts, so the two products run on tensor cores (mma.sync m16n8k16, fp16
// in, fp32 accumulate).
// One CTA per (64-token query tile, query head); each of its 4 warps owns 16 query rows and keeps
// their Q fragments, running max/sum and the 16 x head_dim output in registers. K/V tiles of 64
// keys go through shared memory (rows padded by 16 bytes so the fragment loads are bank-conflict
// free); the scores never leave registers: their C fragments become the A fragments of P*V.
// A tile may hold tokens of several sequences: the CTA handles one sequence ("segment") at a time,
// the rows of the other sequences masked, so any packing of sequences is correct and the usual
// one-sequence tile takes one pass. A warp skips a K/V tile that lies wholly after its rows.
// int8/int4 KV: the tile loader dequantizes each 16-byte unit (8 dims of 2 / 4 tokens) with its
// tokens' (scale, zero) into the same fp16 shared tiles, so the MMA path is the fp16 one.
#include <cmath>

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

template <int kHeadDim, int kBits>
__global__ void __launch_bounds__(kThreads)
    prefill_attention_kernel(const half* __restrict__ q, const int* __restrict__ slots,
                             const int* __restrict__ positions, int n_tokens, int n_heads, KvCacheView cache,
                             float scale_log2, half* __restrict__ out) {
  constexpr int kStride = kHeadDim + 8;  // halves per shared row: +16 bytes against bank conflicts
  constexpr int kKSteps = kHeadDim / 16;
  constexpr int kDimTiles = kHeadDim / 8;
  constexpr int kKeyTiles = kTileK / 8;
  constexpr int kVecPerRow = kHeadDim / 8;

  __shared__ __align__(16) half k_s[kTileK * kStride];
  __shared__ __align__(16) half v_s[kTileK * kStride];
  __shared__ int row_seq[kTileQ], row_pos[kTileQ], row_done[kTileQ];
  __shared__ int seg_seq, seg_len;

  const int tile0 = blockIdx.x * kTileQ, head = blockIdx.y;
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
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
      warp_last = max(warp_last, __shfl_xor_sync(0xffffffffu, warp_last, off));
    const int* table = cache.block_table + static_cast<int64_t>(seq) * cache.max_blocks_per_seq;

    for (int kt0 = 0; kt0 < kv_len; kt0 += kTileK) {
      __syncthreads();  // the previous tile is no longer read
      if constexpr (kBits == 16) {
        for (int c = threadIdx.x; c < kTileK * kVecPerRow; c += kThreads) {
          int j = c / kVecPerRow, part = c % kVecPerRow, p = kt0 + j;
          uint4 kv = make_uint4(0, 0, 0, 0),
                vv = make_uint4(0, 0, 0, 0);  // zeros past the end: 0 * garbage could be NaN
          if (p < kv_len) {
            int64_t off =
                ((static_cast<int64_t>(table[p / bs]) * n_kv + kvh) * bs + p % bs) * kHeadDim + part * 8;
            kv = *(reinterpret_cast<const uint4*>(static_cast<const half*>(cache.k) + off));
            vv = *(reinterpret_cast<const uint4*>(static_cast<const half*>(cache.v) + off));
          }
          *reinterpret_cast<uint4*>(k_s + j * kStride + part * 8) = kv;
          *reinterpret_cast<uint4*>(v_s + j * kStride + part * 8) = vv;
        }
      } else {
        // One 16-byte unit per item: 8 dims of kT consecutive tokens (a unit never crosses a block).
        constexpr int kT = 16 / kBits;
        const int64_t block_bytes = cache.block_bytes();
        for (int c = threadIdx.x; c < (kTileK / kT) * kVecPerRow; c += kThreads) {
          const int grp = c / kVecPerRow, part = c % kVecPerRow, p0 = kt0 + grp * kT;
          uint4 kc = make_uint4(0, 0, 0, 0), vc = kc, ksc = kc, vsc = kc;
          if (p0 < kv_len) {
            const int64_t block = static_cast<int64_t>(table[p0 / bs]) * block_bytes;
            const int64_t off = block + cache.unit_offset(kvh, p0 % bs, part);
            const int64_t scale_off = block + cache.scale_offset(kvh, p0 % bs);
            const char* k_pool = static_cast<const char*>(cache.k);
            const char* v_pool = static_cast<const char*>(cache.v);
            kc = *reinterpret_cast<const uint4*>(k_pool + off);
            vc = *reinterpret_cast<const uint4*>(v_pool + off);
            if constexpr (kBits == 8) {  // the (scale, zero) pairs of the unit's 2 tokens
              const uint2 a = *reinterpret_cast<const uint2*>(k_pool + scale_off);
              const uint2 b = *reinterpret_cast<const uint2*>(v_pool + scale_off);
              ksc = make_uint4(a.x, a.y, 0, 0);
              vsc = make_uint4(b.x, b.y, 0, 0);
            } else {  // of its 4 tokens
              ksc = *reinterpret_cast<const uint4*>(k_pool + scale_off);
              vsc = *reinterpret_cast<const uint4*>(v_pool + scale_off);
            }
          }
          const uint32_t kw[4] = {ksc.x, ksc.y, ksc.z, ksc.w}, vw[4] = {vsc.x, vsc.y, vsc.z, vsc.w};
#pragma unroll
          for (int j = 0; j < kT; ++j) {
            uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;  // zeros past the end (its scales are garbage)
            if (p0 + j < kv_len) {
              kv = kv_unit_dequantize<kBits>(kc, j, *reinterpret_cast<const half2*>(&kw[j]));
              vv = kv_unit_dequantize<kBits>(vc, j, *reinterpret_cast<const half2*>(&vw[j]));
            }
            const int row = grp * kT + j;
            *reinterpret_cast<uint4*>(k_s + row * kStride + part * 8) = kv;
            *reinterpret_cast<uint4*>(v_s + row * kStride + part * 8) = vv;
          }
        }
      }
      __syncthreads();
      if (warp_last < kt0) continue;  // causal: every active row of this warp precedes the tile

      // S = Q K^T for the warp's 16 rows x 64 keys.
      float sc[kKeyTiles][4];
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
        const half* krow = k_s + (nt * 8 + gid) * kStride + tig * 2;
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk)
          mma_m16n8k16(sc[nt], qa[kk], load_u32(krow + kk * 16), load_u32(krow + kk * 16 + 8));
      }
      // Scale into the log2 domain and mask: other sequences' rows, and keys after the row's position.
      float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        int key = kt0 + nt * 8 + tig * 2;
        sc[nt][0] = act_a && key <= pos_a ? sc[nt][0] * scale_log2 : -INFINITY;
        sc[nt][1] = act_a && key + 1 <= pos_a ? sc[nt][1] * scale_log2 : -INFINITY;
        sc[nt][2] = act_b && key <= pos_b ? sc[nt][2] * scale_log2 : -INFINITY;
        sc[nt][3] = act_b && key + 1 <= pos_b ? sc[nt][3] * scale_log2 : -INFINITY;
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
      const float corr_a = exp2f(m_a - use_a), corr_b = exp2f(m_b - use_b);
      m_a = new_a;
      m_b = new_b;
      l_a *= corr_a;
      l_b *= corr_b;
#pragma unroll
      for (int nd = 0; nd < kDimTiles; ++nd) {
        o[nd][0] *= corr_a;
        o[nd][1] *= corr_a;
        o[nd][2] *= corr_b;
        o[nd][3] *= corr_b;
      }
      uint32_t pa[kTileK / 16][4];
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) {
        float p0 = exp2f(sc[nt][0] - use_a), p1 = exp2f(sc[nt][1] - use_a);
        float p2 = exp2f(sc[nt][2] - use_b), p3 = exp2f(sc[nt][3] - use_b);
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
    }

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
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16 (fp16), 8 or 4, got " + std::to_string(cache.bits));
  require(aligned16(p.q) && aligned16(p.out) && aligned16(cache.k) && aligned16(cache.v), op,
          "q, out and the K/V pools must be 16-byte aligned");
  if (p.n_tokens == 0) return;
  dim3 grid(ceil_div(p.n_tokens, kTileQ), p.n_heads);
  float scale_log2 = static_cast<float>(M_LOG2E / std::sqrt(static_cast<double>(cache.head_dim)));
  auto launch = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, stream>>>(p.q, p.slots, p.positions, p.n_tokens, p.n_heads, cache, scale_log2,
                                          p.out);
  };
  const bool hd64 = cache.head_dim == 64;
  if (cache.bits == 16)
    launch(hd64 ? prefill_attention_kernel<64, 16> : prefill_attention_kernel<128, 16>);
  else if (cache.bits == 8)
    launch(hd64 ? prefill_attention_kernel<64, 8> : prefill_attention_kernel<128, 8>);
  else
    launch(hd64 ? prefill_attention_kernel<64, 4> : prefill_attention_kernel<128, 4>);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
