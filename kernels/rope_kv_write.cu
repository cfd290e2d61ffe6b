// rope_kv_write: per token, splits the fused wqkv output (InternLM2's grouped layout, one group
// [q x g, k, v] per KV head), applies rotate-half RoPE to q and k at the token's position, writes q
// to q_out and k, v into the token's slot of the paged KV cache: fp16 values, or int8/int4 codes
// with an fp16 (scale, zero) per (token, KV head) (kernels/kernels.cuh has the layout).
// FLOPs: ~6 per rotated element (+ a divide per element when quantizing). Bytes per token: qkv_dim*2
// read, q (n_heads*head_dim*2) and k, v written in the cache's format (2*n_kv*(head_dim*bits/8 [+4]))
// plus its slot, position and block-table entry (the op table's rope_kv_write, engine/ops.h).
// Memory-bound.
// One block per token: the head_dim/2 (cos, sin) pairs are computed once into shared memory and
// shared by every head of the token; each thread then rotates 8 pairs, reading the two halves of a
// head as 16-byte vectors. The angles follow the reference exactly (inv_freq rounded to float, the
// product in float, cos/sin of that float), and the rotation uses explicitly rounded products (no
// FMA contraction), so every instantiation of the kernel computes the same fp16 k; kernels/rope.cuh
// holds that arithmetic, which the decode GEMVs' rope_kv_write epilogue (gemv_fused at B <= 2,
// w4a16_gemv_fused at B = 1, with an fp16 cache) and decode attention's RoPE prologue (every other
// decode step) share, and rope_kv_args checks the GEMVs' contract. kernels/kv_write.cuh holds the
// cache store (and the quantization) that decode attention shares.
// Latency, not bytes, is what a B=1 launch costs (a few KB; it was 3.8 us a layer on the H200). So
// the host computes inv_freq with the reference's own expression (no double pow per pair on the
// device), and everything that does not depend on the previous kernel (the token's position, slot
// and block-table entry, one double sincos per pair) runs before overlap_enter(), under that
// kernel's tail: positions, slots and the block table are written by host copies before a step's
// first kernel, never by a kernel of the step.
// Quantized formats quantize that fp16-rounded k (and the fp16 v) in registers: the head_dim/16
// threads holding one head are adjacent lanes of a warp, so the row's min and max are two shuffle
// reductions; the codes then follow ref::quantize_kv bit for bit (IEEE division, round half to even:
// kv_row_store, kernels/kv_write.cuh).
#include <algorithm>
#include <cmath>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/kv_write.cuh"
#include "kernels/overlap.cuh"
#include "kernels/rope.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kMaxHeadDim = kMaxRopeHeadDim;
constexpr int kThreads = 128;

template <int kBits>
__global__ void __launch_bounds__(kThreads)
    rope_kv_write_kernel(const half* __restrict__ qkv, const int* __restrict__ slots,
                         const int* __restrict__ positions, int n_heads, KvCacheView cache,
                         const RopeTable inv, float pos_scale, half* __restrict__ q_out) {
  __shared__ float cos_s[kMaxHeadDim / 2], sin_s[kMaxHeadDim / 2];
  const int t = blockIdx.x;
  const int hd = cache.head_dim, half_dim = hd / 2, n_kv = cache.n_kv_heads, g = n_heads / n_kv;
  const int pos = positions[t];
  const int bs = cache.block_size, slot = pos % bs;
  const int64_t block =
      cache.block_table[static_cast<int64_t>(slots[t]) * cache.max_blocks_per_seq + pos / bs];
  for (int j = threadIdx.x; j < half_dim; j += blockDim.x)
    rope_cos_sin(pos, pos_scale, inv.inv_freq[j], cos_s[j], sin_s[j]);
  overlap_enter();
  __syncthreads();

  const int vecs_per_half = kv_row_lanes(hd);  // threads per head
  const int n_items = n_kv * (g + 2) * vecs_per_half;
  const half* src_row = qkv + static_cast<int64_t>(t) * n_kv * (g + 2) * hd;

  if constexpr (kBits == 16) {
    for (int item = threadIdx.x; item < n_items; item += blockDim.x) {
      int head_in_row = item / vecs_per_half, c = item % vecs_per_half;
      int h = head_in_row / (g + 2), r = head_in_row % (g + 2);
      const half* src = src_row + static_cast<int64_t>(head_in_row) * hd;
      uint4 lo = reinterpret_cast<const uint4*>(src)[c];
      uint4 hi = reinterpret_cast<const uint4*>(src + half_dim)[c];
      if (r <= g) rope_rotate8(lo, hi, cos_s, sin_s, c);  // q heads and k: rotate; v is copied as is
      if (r < g) {
        half* dst = rope_q_row(q_out, t, n_heads, g, h, r, hd);
        reinterpret_cast<uint4*>(dst)[c] = lo;
        reinterpret_cast<uint4*>(dst)[c + vecs_per_half] = hi;
      } else {
        kv_row_store<16>(cache, r == g ? cache.k : cache.v, block, h, slot, c, lo, hi, true);
      }
    }
  } else {
    // Every lane runs every round (the shuffles need whole warps); a head's vecs_per_half lanes
    // are all active or all idle, since n_items and the warp size are multiples of it.
    for (int base = 0; base < n_items; base += blockDim.x) {
      const int item = base + threadIdx.x;
      const bool active = item < n_items;
      const int head_in_row = item / vecs_per_half, c = item % vecs_per_half;
      const int h = head_in_row / (g + 2), r = head_in_row % (g + 2);
      uint4 lo = make_uint4(0u, 0u, 0u, 0u), hi = lo;
      if (active) {
        const half* src = src_row + static_cast<int64_t>(head_in_row) * hd;
        lo = reinterpret_cast<const uint4*>(src)[c];
        hi = reinterpret_cast<const uint4*>(src + half_dim)[c];
        if (r <= g) rope_rotate8(lo, hi, cos_s, sin_s, c);
        if (r < g) {
          half* dst = rope_q_row(q_out, t, n_heads, g, h, r, hd);
          reinterpret_cast<uint4*>(dst)[c] = lo;
          reinterpret_cast<uint4*>(dst)[c + vecs_per_half] = hi;
        }
      }
      // k as the fp16 cache would hold it, or v, quantized over its head's lanes.
      kv_row_store<kBits>(cache, r == g ? cache.k : cache.v, block, h, slot, c, lo, hi, active && r >= g);
    }
  }
}

}  // namespace

// As ref::rope computes it: base as a double, the power in double, rounded to float.
const RopeTable& rope_table(float base, int head_dim) {
  thread_local RopeTable table{};
  thread_local float table_base = 0.0f;
  thread_local int table_dim = 0;
  if (base != table_base || head_dim != table_dim) {
    for (int j = 0; j < head_dim / 2; ++j)
      table.inv_freq[j] = static_cast<float>(1.0 / std::pow(static_cast<double>(base), (2.0 * j) / head_dim));
    table_base = base, table_dim = head_dim;
  }
  return table;
}

void rope_inv_freq(float base, int head_dim, float* out) {
  // Called on every decode step (stage_decode): the message is built only when it is thrown.
  if (!(head_dim > 0 && head_dim % 2 == 0 && head_dim <= kMaxHeadDim))
    require(
        false, "rope_inv_freq",
        "head_dim must be even, up to " + std::to_string(kMaxHeadDim) + ", got " + std::to_string(head_dim));
  const RopeTable& t = rope_table(base, head_dim);
  std::copy(t.inv_freq, t.inv_freq + head_dim / 2, out);
}

namespace {

// The contract rope_kv_write and the GEMV epilogues share: the head layout, the cache view, the
// RoPE parameters.
void check_rope(int n_heads, const KvCacheView& cache, float rope_base, float pos_scale, const char* op) {
  require(cache.n_kv_heads > 0 && n_heads > 0 && n_heads % cache.n_kv_heads == 0, op,
          "n_heads (" + std::to_string(n_heads) +
              ") must be a positive multiple of the cache's n_kv_heads (" + std::to_string(cache.n_kv_heads) +
              ")");
  require(cache.head_dim > 0 && cache.head_dim % 16 == 0 && cache.head_dim <= kMaxHeadDim, op,
          "head_dim must be a multiple of 16 up to 256, got " + std::to_string(cache.head_dim));
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16 (fp16), 8 or 4, got " + std::to_string(cache.bits));
  require(cache.bits == 16 || (cache.head_dim & (cache.head_dim - 1)) == 0, op,
          "an int8/int4 cache needs a power-of-two head_dim, got " + std::to_string(cache.head_dim));
  require(cache.block_size > 0 && cache.max_blocks_per_seq > 0 && cache.block_table != nullptr, op,
          "the KV cache view needs block_size, max_blocks_per_seq and a block table");
  require(cache.block_size % cache.tokens_per_unit() == 0, op,
          "block_size must be a multiple of " + std::to_string(cache.tokens_per_unit()) + " for " +
              std::to_string(cache.bits) + "-bit KV");
  require(rope_base > 0.0f && pos_scale > 0.0f, op, "rope_base and pos_scale must be positive");
  require(aligned16(cache.k) && aligned16(cache.v), op, "the K/V pools must be 16-byte aligned");
}

}  // namespace

RopeKvArgs rope_kv_args(const RopeKvEpilogue& e, int n, int out, const char* op) {
  require(n >= 1 && n <= kGemvFusedMaxRows, op,
          "the rope_kv_write epilogue takes 1.." + std::to_string(kGemvFusedMaxRows) + " rows, got " +
              std::to_string(n));
  for (int t = 0; t < n; ++t)
    require(e.rope_base[t] > 0.0f, op,
            "row " + std::to_string(t) + " has no RoPE base: every row needs its sequence's (rope_base[" +
                std::to_string(t) + "])");
  check_rope(e.n_heads, e.cache, e.rope_base[0], e.pos_scale, op);  // the rows share everything else
  const KvCacheView& c = e.cache;
  require(c.bits == 16, op,
          "the rope_kv_write epilogue writes fp16 caches only (an int8/int4 row's scale needs its whole "
          "head); run rope_kv_write for " +
              std::to_string(c.bits) + "-bit KV");
  require(c.head_dim % kRopeEpilogueHeadDimMultiple == 0, op,
          "the rope_kv_write epilogue needs head_dim to be a multiple of " +
              std::to_string(kRopeEpilogueHeadDimMultiple) + ", got " + std::to_string(c.head_dim) +
              "; run rope_kv_write for this model");
  require(out == (e.n_heads + 2 * c.n_kv_heads) * c.head_dim, op,
          "the GEMV's " + std::to_string(out) + " outputs are not qkv of " + std::to_string(e.n_heads) +
              " query and " + std::to_string(c.n_kv_heads) + " KV heads of " + std::to_string(c.head_dim));
  require(e.slots != nullptr && e.positions != nullptr && e.q_out != nullptr, op,
          "the rope_kv_write epilogue needs slots, positions and q_out");
  RopeKvArgs a;
  a.slots = e.slots, a.positions = e.positions, a.n_heads = e.n_heads, a.cache = c;
  a.pos_scale = e.pos_scale, a.q_out = e.q_out;
  for (int t = 0; t < n; ++t) a.table[t] = rope_table(e.rope_base[t], c.head_dim);
  return a;
}

void rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  const char* op = "rope_kv_write";
  require(p.n_tokens >= 0, op, "n_tokens must be >= 0");
  check_rope(p.n_heads, p.cache, p.rope_base, p.pos_scale, op);
  require(aligned16(p.qkv) && aligned16(p.q_out), op, "qkv and q_out must be 16-byte aligned");
  if (p.n_tokens == 0) return;
  const KvCacheView& cache = p.cache;
  const RopeTable& inv = rope_table(p.rope_base, cache.head_dim);
  auto launch = [&](auto kernel) {
    launch_overlapped(kernel, p.n_tokens, kThreads, 0, stream, op, p.qkv, p.slots, p.positions, p.n_heads,
                      cache, inv, p.pos_scale, p.q_out);
  };
  if (cache.bits == 16)
    launch(rope_kv_write_kernel<16>);
  else if (cache.bits == 8)
    launch(rope_kv_write_kernel<8>);
  else
    launch(rope_kv_write_kernel<4>);
}

}  // namespace ridgeline::cuda
