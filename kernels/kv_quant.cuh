// The int8/int4 KV-cache codes on the device, written in one place for the kernel that writes them
// (rope_kv_write) and the ones that read them (decode_attention, prefill_attention). The layout of
// a block is KvCacheView's (kernels/kernels.cuh); the arithmetic is ref::quantize_kv's, bit for bit.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>

#include "kernels/mma.cuh"

namespace ridgeline::cuda {

// ref::quantize_kv's code of x for a row with fp16-rounded (scale, zero): IEEE division, round half
// to even, clamped to [0, qmax]; 0 where the scale is 0.
__device__ __forceinline__ uint32_t kv_code(float x, float scale, float zero, float qmax) {
  float q = scale > 0.0f ? rintf(__fdiv_rn(__fsub_rn(x, zero), scale)) : 0.0f;
  return static_cast<uint32_t>(fminf(fmaxf(q, 0.0f), qmax));
}

// One token's 8 codes as the cache stores its part of a unit: int8 one byte each (.x dims 0-3,
// .y dims 4-7, lowest byte first), int4 a nibble each in .x (dim e at bits 4e..4e+3).
template <int kBits>
__device__ __forceinline__ uint2 pack_kv_codes(const float (&x)[8], float scale, float zero) {
  constexpr float kQmax = static_cast<float>((1 << kBits) - 1);
  uint2 out = make_uint2(0u, 0u);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    uint32_t q = kv_code(x[i], scale, zero, kQmax);
    if constexpr (kBits == 8) {
      if (i < 4)
        out.x |= q << (8 * i);
      else
        out.y |= q << (8 * (i - 4));
    } else {
      out.x |= q << (4 * i);
    }
  }
  return out;
}

// Token j of a 16-byte unit dequantized to fp16, code*scale + zero rounded once (one HFMA2 a pair of
// dims). Codes go under the exponent of 1024 (0x6400 | code: the fp16 value 1024 + code, exact) by a
// PRMT a pair (int8) or a LOP3 a pair (int4, whose odd dims come out as 1024 + 16*code and are
// scaled back by an exact 1/16), and the offset comes off exactly before the FMA: ~12 (int8) / ~18
// (int4) instructions a token, where converting each code to fp32 took ~28.
template <int kBits>
__device__ __forceinline__ uint4 kv_unit_dequantize(const uint4& u, int j, half2 scale_zero) {
  const half2 s = __low2half2(scale_zero), z = __high2half2(scale_zero);
  uint4 out;
  if constexpr (kBits == 8) {
    const half2 k1024 = __float2half2_rn(1024.0f);
    const uint32_t w0 = j == 0 ? u.x : u.z, w1 = j == 0 ? u.y : u.w;  // dims 0-3, 4-7, lowest byte first
    auto pair = [&](uint32_t w, uint32_t sel) {
      return as_u32(__hfma2(__hsub2(as_half2(__byte_perm(w, 0x64u, sel)), k1024), s, z));
    };
    out.x = pair(w0, 0x4140u);
    out.y = pair(w0, 0x4342u);
    out.z = pair(w1, 0x4140u);
    out.w = pair(w1, 0x4342u);
  } else {
    const half2 k1024 = __float2half2_rn(1024.0f), sixteenth = __float2half2_rn(0.0625f),
                k64 = __float2half2_rn(64.0f);
    const uint32_t w = j == 0 ? u.x : j == 1 ? u.y : j == 2 ? u.z : u.w;  // dim e at bits 4e..4e+3
    // Dims (f, f + 4) of int4_pair (kernels/mma.cuh): 1024 + q at even f, 1024 + 16q at odd f.
    auto even = [&](int f) { return __hfma2(__hsub2(as_half2(int4_pair(w, f)), k1024), s, z); };
    auto odd = [&](int f) { return __hfma2(__hfma2(as_half2(int4_pair(w, f)), sixteenth, -k64), s, z); };
    const half2 d04 = even(0), d15 = odd(1), d26 = even(2), d37 = odd(3);
    out.x = __byte_perm(as_u32(d04), as_u32(d15), 0x5410u);  // dims 0, 1
    out.y = __byte_perm(as_u32(d26), as_u32(d37), 0x5410u);  // dims 2, 3
    out.z = __byte_perm(as_u32(d04), as_u32(d15), 0x7632u);  // dims 4, 5
    out.w = __byte_perm(as_u32(d26), as_u32(d37), 0x7632u);  // dims 6, 7
  }
  return out;
}

}  // namespace ridgeline::cuda
