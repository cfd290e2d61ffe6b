// The int8/int4 KV-cache codes on the device, written in one place for the kernel that writes them
// (rope_kv_write) and the ones that read them (decode_attention, prefill_attention). The layout of
// a block is KvCacheView's (kernels/kernels.cuh); the arithmetic is ref::quantize_kv's, bit for bit.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>

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

// Codes of token j of a 16-byte unit as floats, for attention's inner loops: int8 exactly; int4
// times 16^(e%4) for dim e (exact, and saves a shift per code: the nibble is masked in place; undo
// it with kv_code_unscale). Each code goes into the low mantissa bits of 2^23, then 2^23 is
// subtracted: two integer/float ops per code, no conversion instruction.
template <int kBits>
__device__ __forceinline__ void kv_unit_codes(const uint4& u, int j, float (&f)[8]) {
  constexpr float kMagic = 8388608.0f;  // 2^23, bit pattern 0x4B000000
  if constexpr (kBits == 8) {
    const uint32_t w0 = j == 0 ? u.x : u.z, w1 = j == 0 ? u.y : u.w;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      // PRMT: byte e of the word below 0x4B0000.
      f[e] = __uint_as_float(__byte_perm(w0, 0x4B000000u, 0x7440u | e)) - kMagic;
      f[e + 4] = __uint_as_float(__byte_perm(w1, 0x4B000000u, 0x7440u | e)) - kMagic;
    }
  } else {
    const uint32_t w = j == 0 ? u.x : j == 1 ? u.y : j == 2 ? u.z : u.w;
    const uint32_t lo = w, hi = w >> 16;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      f[e] = __uint_as_float((lo & (0xFu << (4 * e))) | 0x4B000000u) - kMagic;
      f[e + 4] = __uint_as_float((hi & (0xFu << (4 * e))) | 0x4B000000u) - kMagic;
    }
  }
}

// The inverse of the power of two kv_unit_codes multiplies dim e (of a lane's 8) by.
template <int kBits>
__device__ __forceinline__ constexpr float kv_code_unscale(int e) {
  return kBits == 4 ? 1.0f / static_cast<float>(1 << (4 * (e % 4))) : 1.0f;
}

// Token j of a unit dequantized to fp16 (code*scale + zero in fp32, rounded once): 16 bytes.
template <int kBits>
__device__ __forceinline__ uint4 kv_unit_dequantize(const uint4& u, int j, half2 scale_zero) {
  float f[8];
  kv_unit_codes<kBits>(u, j, f);
  const float2 sz = __half22float2(scale_zero);
  uint4 out;
  half2* h = reinterpret_cast<half2*>(&out);
#pragma unroll
  for (int e = 0; e < 4; ++e)
    h[e] = __floats2half2_rn(fmaf(f[2 * e] * kv_code_unscale<kBits>(2 * e), sz.x, sz.y),
                             fmaf(f[2 * e + 1] * kv_code_unscale<kBits>(2 * e + 1), sz.x, sz.y));
  return out;
}

}  // namespace ridgeline::cuda
