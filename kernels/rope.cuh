// RoPE's arithmetic, shared by rope_kv_write, the decode GEMVs that fold it into their epilogue
// (gemv_fused, w4a16_gemv_fused with a RopeKvEpilogue) and decode attention that folds it into its
// prologue (DecodeAttentionRope), so that every path gives the same fp16 q and k bit for bit: the
// angle as the reference forms it (the position divided by pos_scale in double, rounded to float,
// times the float inverse frequency), cos and sin of that float in double, and the rotation with
// explicitly rounded products (no FMA contraction).
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {

// inv_freq[j] = float(1 / base^(2j / head_dim)), computed on the host with the reference's own
// expression and passed to kernels by value (512 bytes).
struct RopeTable {
  float inv_freq[kMaxRopeHeadDim / 2];
};
// The table for (base, head_dim); a decode step asks for the same one in every layer, so the last
// one is kept (per thread, as launches are). Defined in kernels/rope_kv_write.cu.
const RopeTable& rope_table(float base, int head_dim);

// cos and sin of dim pair j's angle at position `pos`.
__device__ __forceinline__ void rope_cos_sin(int pos, float pos_scale, float inv_freq, float& c, float& s) {
  const float angle = static_cast<float>(pos / static_cast<double>(pos_scale)) * inv_freq;
  double sd, cd;
  sincos(static_cast<double>(angle), &sd, &cd);
  c = static_cast<float>(cd);
  s = static_cast<float>(sd);
}

// Rotate-half: (a, b) = (x[j], x[j + head_dim/2]) -> (a cos - b sin, b cos + a sin).
__device__ __forceinline__ void rope_rotate(float a, float b, float c, float s, float& ra, float& rb) {
  ra = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  rb = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

// The 8 pairs (lo[e], hi[e]) of dims 8c + e and 8c + e + head_dim/2, fp16, rotated by the angles of
// pairs [8c, 8c + 8) (cos_s, sin_s: one entry per pair) and rounded to fp16 again: what
// rope_kv_write stores for a 16-byte vector of each half of a head.
__device__ __forceinline__ void rope_rotate8(uint4& lo, uint4& hi, const float* cos_s, const float* sin_s,
                                             int c) {
  float a[8], b[8], ra[8], rb[8];
  half8_to_float(lo, a);
  half8_to_float(hi, b);
#pragma unroll
  for (int i = 0; i < 8; ++i) rope_rotate(a[i], b[i], cos_s[c * 8 + i], sin_s[c * 8 + i], ra[i], rb[i]);
  lo = float_to_half8(ra);
  hi = float_to_half8(rb);
}

// What a GEMV's rope_kv_write epilogue reads (kernel arguments): RopeKvEpilogue's pointers and
// one table per row.
struct RopeKvArgs {
  const int* slots = nullptr;
  const int* positions = nullptr;
  int n_heads = 0;
  KvCacheView cache;
  float pos_scale = 1.0f;
  half* q_out = nullptr;
  RopeTable table[kGemvFusedMaxRows];
};
// A fused GEMV kernel's epilogue argument: RopeKvArgs for the RoPE epilogue, nothing for the others.
struct NoRopeArgs {};
template <bool kRope>
using RopeKernelArg = std::conditional_t<kRope, RopeKvArgs, NoRopeArgs>;
// The arguments of `e` for a GEMV of n rows and `out` outputs, after checking e's contract (throws
// std::invalid_argument naming `op`). Defined in kernels/rope_kv_write.cu.
RopeKvArgs rope_kv_args(const RopeKvEpilogue& e, int n, int out, const char* op);

// Where token t's K and V rows go: its position and its block of the paged cache.
struct RopeKvSlot {
  int pos = 0;
  int64_t block = 0;
};
__device__ __forceinline__ RopeKvSlot rope_kv_slot(const RopeKvArgs& r, int t) {
  const int pos = r.positions[t];
  const KvCacheView& c = r.cache;
  return {pos, c.block_table[int64_t{r.slots[t]} * c.max_blocks_per_seq + pos / c.block_size]};
}

// Where query head `r` of KV head h's group (g query heads a KV head) of token t goes in q_out.
__device__ __forceinline__ half* rope_q_row(half* q_out, int t, int n_heads, int g, int h, int r, int hd) {
  return q_out + (int64_t{t} * n_heads + h * g + r) * hd;
}

// Stores dims d and d + head_dim/2 of qkv head `head_in_row` (InternLM2's grouped layout: [q x g, k,
// v] per KV head) of token t, given as the GEMV stores them (a, b: rounded to fp16), rotated by (c, s)
// unless they are v: q to q_out, k and v into the fp16 cache, as rope_kv_write stores them.
__device__ __forceinline__ void rope_kv_store(const RopeKvArgs& r, int t, const RopeKvSlot& at,
                                              int head_in_row, int d, float a, float b, float c, float s) {
  const KvCacheView& cache = r.cache;
  const int hd = cache.head_dim, g = r.n_heads / cache.n_kv_heads;
  const int h = head_in_row / (g + 2), which = head_in_row % (g + 2);
  float ra = a, rb = b;
  if (which <= g) rope_rotate(a, b, c, s, ra, rb);
  const half lo = __float2half_rn(ra), hi = __float2half_rn(rb);
  if (which < g) {
    half* q = rope_q_row(r.q_out, t, r.n_heads, g, h, which, hd);
    q[d] = lo;
    q[d + hd / 2] = hi;
    return;
  }
  char* pool = static_cast<char*>(which == g ? cache.k : cache.v) + at.block * cache.block_bytes();
  const int slot = at.pos % cache.block_size;
  auto dim = [&](int e) { return reinterpret_cast<half*>(pool + cache.unit_offset(h, slot, e / 8)) + e % 8; };
  *dim(d) = lo;
  *dim(d + hd / 2) = hi;
}

}  // namespace ridgeline::cuda
