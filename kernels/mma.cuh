// Warp-level tensor-core primitives (sm_80+ PTX, used on Hopper too): the fp16 m16n8k16 MMA with
// fp32 accumulators, ldmatrix, and movmatrix (an 8x8 transpose in registers). Fragment layouts (PTX ISA,
// "mma.m16n8k16"), with gid = lane / 4 and tig = lane % 4:
//   A 16x16 row-major: a0 = A[gid][2tig..+1],   a1 = A[gid+8][2tig..+1],
//                      a2 = A[gid][2tig+8..+9], a3 = A[gid+8][2tig+8..+9]
//   B 16x8 "col":      b0 = B[2tig..+1][gid],   b1 = B[2tig+8..+9][gid]
//   C/D 16x8 fp32:     c0,c1 = C[gid][2tig..+1], c2,c3 = C[gid+8][2tig..+1]
// The C layout of two adjacent n-tiles equals the A layout of one k-step, which is what lets an
// attention kernel feed its softmax probabilities back into the next MMA without shared memory (or,
// each 8x8 block transposed by movmatrix, the B layout: decode attention's S^T into P^T).
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_fp16.h>

namespace ridgeline::cuda {

__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 fp16 matrices from shared memory, not transposed: lanes 8i..8i+7 give the row addresses
// of matrix i; register i of lane (gid, tig) receives M_i[gid][2tig..+1] (a B fragment when the rows
// are the N index and the columns the K index).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Four 8x8 fp16 matrices from shared memory, transposed: lanes 8i..8i+7 give the row addresses of
// matrix i; register i of each thread receives M_i[2tig..+1][gid] (a B fragment of row-major data).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const half* smem_row) {
  uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// An 8x8 fp16 matrix held one register per lane in the C/A layout (lane (gid, tig) holds
// M[gid][2tig..+1]) turned into its transpose in the same layout: M[2tig][gid], M[2tig+1][gid], which
// is also B's layout of M (b0 of a k-step whose k rows are M's rows).
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t m) {
  uint32_t t;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(t) : "r"(m));
  return t;
}

// An fp16 pair as the 32-bit register an mma fragment holds, and back (bit casts).
__device__ __forceinline__ half2 as_half2(uint32_t u) {
  half2 h;
  memcpy(&h, &u, sizeof(h));
  return h;
}
__device__ __forceinline__ uint32_t as_u32(half2 h) {
  uint32_t u;
  memcpy(&u, &h, sizeof(u));
  return u;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  return as_u32(__floats2half2_rn(lo, hi));
}

// (a & b) | c in one LOP3. Written as C++ with b and c constants, ptxas emits two (a LOP3 takes one
// immediate; 0x64006400-style magic numbers and nibble masks are both immediates): the unpacking of
// 4-bit codes under the exponent of 1024 (W4A16 weights, int4 KV) is one instruction a pair here.
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// The nibble pairs of a word of eight 4-bit codes (code e at bits 4e), each as an fp16 pair under the
// exponent field `exponent` (0x6400 | nibble: 1024 + q, exact): f = 0..3 gives codes (f, f + 4), from
// the word as is (0,4 / 1,5) or shifted by a byte (2,6 / 3,7; the shift is shared). Even f is
// 1024 + q; odd f masks the nibble where it sits, 4 bits up: 1024 + 16q. With exponent 0 the pair is
// the subnormals q * 2^-24 (16q * 2^-24), also exact. One LOP3 a pair (W4A16 weights, int4 KV codes).
__device__ __forceinline__ uint32_t int4_pair(uint32_t w, int f, uint32_t exponent = 0x6400u) {
  const uint32_t x = f < 2 ? w : w >> 8;
  return and_or(x, f % 2 == 0 ? 0x000F000Fu : 0x00F000F0u, exponent * 0x10001u);
}

__device__ __forceinline__ uint32_t load_u32(const half* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

}  // namespace ridgeline::cuda
