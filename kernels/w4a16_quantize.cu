// w4a16_quantize_rtn: fp16 W [out, in] -> the tile-packed W4A16 layout (kernels/w4a16.cuh) by
// round-to-nearest, min/max per (row, group of 128 inputs), so that presets and unquantized
// checkpoints run as w4a16 can be quantized on the device at load. FLOPs: a few per weight (not
// counted). Bytes: 2*in*out read, in*out/2 + out*(in/128)*4 written. Bound: DRAM; it runs once per
// weight at load, so it aims at simple and bit-exact (w4a16_quantize_rtn_reference in
// kernels/w4a16_repack.h) rather than at the roofline.
// One warp per (16-row strip, group): the 16 x 128 block goes through shared memory with 16-byte
// loads, then each lane gathers exactly the 64 values whose codes it owns in the packed tiles (rows
// gid, gid+8 of its fragment positions), so the four lanes of a gid hold a row's 128 values between
// them and its min/max is two shuffles away.
#include <cfloat>
#include <string>

#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kRowStride = kW4A16Group + 8;  // halves: rows of 68 words put gid, tig on distinct banks

struct RowParams {
  float s;  // the fp16 scale, widened
  float z;  // zero code 0..15
  half s_h, z_h;
};

// The same float32 operations, in the same order, as the host reference (rtn_params, rtn_code in
// kernels/w4a16_repack.cpp), so the codes agree bit for bit; clamping in float keeps even absurd
// ratios (a 1e-5 range next to 6e4) defined before the conversion to an integer.
__device__ __forceinline__ RowParams row_params(float mn, float mx) {
  RowParams p;
  p.s_h = __float2half_rn(fmaxf(mx - mn, 1e-5f) / 15.0f);
  p.s = __half2float(p.s_h);
  p.z = fminf(fmaxf(rintf(-mn / p.s), 0.0f), 15.0f);
  p.z_h = __float2half_rn(p.z);
  return p;
}

__device__ __forceinline__ uint32_t code(float v, const RowParams& p) {
  return static_cast<uint32_t>(fminf(fmaxf(rintf(v / p.s) + p.z, 0.0f), 15.0f));
}

__global__ void __launch_bounds__(kWarps * 32)
    w4a16_quantize_rtn_kernel(const half* __restrict__ w, int in, int out, uint32_t* __restrict__ qweight,
                              half* __restrict__ scale_zero) {
  __shared__ __align__(16) half tile[kWarps][16][kRowStride];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int groups = in / kW4A16Group;
  const int64_t item = int64_t{blockIdx.x} * kWarps + warp;
  if (item >= int64_t{out / 16} * groups) return;  // warp-level work only: no block barrier below
  const int mt = static_cast<int>(item / groups), g = static_cast<int>(item % groups);

  half(*t)[kRowStride] = tile[warp];
  for (int c = lane; c < 16 * 16; c += 32) {
    const int r = c >> 4, ch = c & 15;
    const uint4 v = __ldg(
        reinterpret_cast<const uint4*>(w + (int64_t{mt} * 16 + r) * in + int64_t{g} * kW4A16Group) + ch);
    *reinterpret_cast<uint4*>(&t[r][ch * 8]) = v;
  }
  __syncwarp();

  // Lane (gid, tig) owns inputs 64u + 16j + 8h + 2tig + {0, 1} of rows gid and gid+8.
  float v[2][2][4][2][2];  // [row half][u][j][h][e]
  float mn[2] = {FLT_MAX, FLT_MAX}, mx[2] = {-FLT_MAX, -FLT_MAX};
#pragma unroll
  for (int rh = 0; rh < 2; ++rh)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float2 f = __half22float2(
              *reinterpret_cast<const half2*>(&t[gid + 8 * rh][64 * u + 16 * j + 8 * h + 2 * tig]));
          v[rh][u][j][h][0] = f.x, v[rh][u][j][h][1] = f.y;
          mn[rh] = fminf(mn[rh], fminf(f.x, f.y));
          mx[rh] = fmaxf(mx[rh], fmaxf(f.x, f.y));
        }
#pragma unroll
  for (int rh = 0; rh < 2; ++rh)
#pragma unroll
    for (int o = 1; o <= 2; o <<= 1) {
      mn[rh] = fminf(mn[rh], __shfl_xor_sync(0xffffffffu, mn[rh], o));
      mx[rh] = fmaxf(mx[rh], __shfl_xor_sync(0xffffffffu, mx[rh], o));
    }
  const RowParams p[2] = {row_params(mn[0], mx[0]), row_params(mn[1], mx[1])};

  // Nibble p = rh + 2h + 4e of word j (kernels/w4a16.cuh).
  uint4* dst =
      reinterpret_cast<uint4*>(qweight) + (int64_t{mt} * (in / kW4A16TileInputs) + 2 * g) * 32 + lane;
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    uint32_t words[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t word = 0;
#pragma unroll
      for (int rh = 0; rh < 2; ++rh)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 2; ++e) word |= code(v[rh][u][j][h][e], p[rh]) << (4 * (rh + 2 * h + 4 * e));
      words[j] = word;
    }
    dst[u * 32] = make_uint4(words[0], words[1], words[2], words[3]);
  }
  if (tig == 0) {
    const half2 lo = __halves2half2(p[0].s_h, p[0].z_h), hi = __halves2half2(p[1].s_h, p[1].z_h);
    reinterpret_cast<uint2*>(scale_zero)[(int64_t{mt} * groups + g) * 8 + gid] =
        make_uint2(as_u32(lo), as_u32(hi));
  }
}

}  // namespace

void w4a16_quantize_rtn(const half* w, int in, int out, uint32_t* qweight, half* scale_zero,
                        cudaStream_t stream) {
  const char* op = "w4a16_quantize_rtn";
  require(w4a16_shape_ok(in, out), op,
          "in must be a positive multiple of 128 and out of 16, got in=" + std::to_string(in) +
              " out=" + std::to_string(out));
  require(w != nullptr && qweight != nullptr && scale_zero != nullptr, op, "pointers must be set");
  require(aligned16(w) && aligned16(qweight) && aligned16(scale_zero), op,
          "pointers must be 16-byte aligned");
  const int64_t items = int64_t{out / 16} * (in / kW4A16Group);
  const int64_t blocks = ceil_div(items, int64_t{kWarps});
  require(blocks <= 0x7fffffff, op, "weight too large");
  w4a16_quantize_rtn_kernel<<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(w, in, out, qweight,
                                                                                       scale_zero);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
