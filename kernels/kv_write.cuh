// The store of one token's K or V row of one KV head into the paged cache, written once for the two
// kernels that write new rows: rope_kv_write and decode attention with its RoPE prologue
// (DecodeAttentionRope, Fusions::rope_in_attention), so that both leave the same bytes in the pools.
// fp16 caches take the values as they are; int8/int4 caches the codes and the row's fp16 (scale,
// zero), ref::quantize_kv bit for bit (kernels/kv_quant.cuh): scale = (max - min) / qmax with IEEE
// division, zero = min, both rounded to fp16, codes from those rounded values.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>

#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/kv_quant.cuh"

namespace ridgeline::cuda {

// Lanes of a warp that hold one row: 8 dim pairs (d, d + head_dim/2) each, as 16-byte vectors.
__host__ __device__ constexpr int kv_row_lanes(int head_dim) {
  return head_dim / 16;
}

// A row is held by kv_row_lanes(head_dim) adjacent lanes of a warp, an aligned group: lane c of the
// group holds dims [8c, 8c + 8) in `lo` and [head_dim/2 + 8c, head_dim/2 + 8c + 8) in `hi`, fp16 (k
// already rotated: rope_rotate8). `pool` is cache.k or cache.v; the row goes to `slot` of KV head h
// in block `block`. int8/int4 reduce the row's min and max over the group by shuffles (a fixed
// tree, so every caller gets the same zero, signed zeros included), so all 32 lanes of the warp call
// this with the same cache; a lane whose `store` is false holds no K/V row: it joins the shuffles
// and writes nothing, and the lanes of a group agree on `store`. fp16 needs no shuffle.
template <int kBits>
__device__ __forceinline__ void kv_row_store(const KvCacheView& cache, void* pool, int64_t block, int h,
                                             int slot, int c, const uint4& lo, const uint4& hi, bool store) {
  char* base = static_cast<char*>(pool) + block * cache.block_bytes();
  const int lanes = kv_row_lanes(cache.head_dim);
  if constexpr (kBits == 16) {
    if (store) {
      *reinterpret_cast<uint4*>(base + cache.unit_offset(h, slot, c)) = lo;
      *reinterpret_cast<uint4*>(base + cache.unit_offset(h, slot, c + lanes)) = hi;
    }
  } else {
    float a[8], b[8];
    float mn = INFINITY, mx = -INFINITY;
    if (store) {
      half8_to_float(lo, a);
      half8_to_float(hi, b);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        mn = fminf(mn, fminf(a[i], b[i]));
        mx = fmaxf(mx, fmaxf(a[i], b[i]));
      }
    }
    for (int o = 1; o < lanes; o <<= 1) {
      mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    }
    if (store) {
      constexpr float kQmax = static_cast<float>((1 << kBits) - 1);
      const half scale_h = __float2half_rn(__fdiv_rn(__fsub_rn(mx, mn), kQmax));
      const half zero_h = __float2half_rn(mn);
      const float scale = __half2float(scale_h), zero = __half2float(zero_h);
      const int part = (slot % cache.tokens_per_unit()) * kBits;  // this token's bytes in a unit
      const uint2 ca = pack_kv_codes<kBits>(a, scale, zero), cb = pack_kv_codes<kBits>(b, scale, zero);
      char* da = base + cache.unit_offset(h, slot, c) + part;
      char* db = base + cache.unit_offset(h, slot, c + lanes) + part;
      if constexpr (kBits == 8) {
        *reinterpret_cast<uint2*>(da) = ca;
        *reinterpret_cast<uint2*>(db) = cb;
      } else {
        *reinterpret_cast<uint32_t*>(da) = ca.x;
        *reinterpret_cast<uint32_t*>(db) = cb.x;
      }
      if (c == 0)
        *reinterpret_cast<half2*>(base + cache.scale_offset(h, slot)) = __halves2half2(scale_h, zero_h);
    }
  }
}

}  // namespace ridgeline::cuda
