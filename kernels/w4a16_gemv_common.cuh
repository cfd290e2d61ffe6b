// What the two W4A16 GEMV kernels share (kernels/w4a16_gemv.cu streams W through shared-memory
// rings, kernels/w4a16_gemv_regs.cu straight into registers): the epilogues after the dot products,
// the kernel arguments, the norm prologue (add_rmsnorm's bits, computed by every block into shared
// memory; the ring kernel's), the shared-memory opt-in, and the register kernel's host entry points,
// which w4a16_gemv and w4a16_gemv_fused dispatch to.
#pragma once

#include <string>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/rmsnorm_row.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu_math.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"

namespace ridgeline::cuda::w4a16 {

// What the GEMV does after its dot products: store y; add fp16(y) into the float32 residual (wo and
// w2 of a decode step, add_rmsnorm's add); act[t, j] = SwiGLU of w13's gate row j and up row
// j + out/2 (swiglu's maths); or rope_kv_write's work on qkv = y (wqkv, fp16 cache: a block holds
// the strips of dims d and d + head_dim/2 of one head, kernels/rope.cuh). See w4a16_gemv_fused
// (kernels/w4a16.cuh).
enum class Epilogue { store, add_residual, swiglu, rope_kv };

// The rope_kv epilogue's kernel argument (the other epilogues take an empty one).
template <Epilogue kEpi>
using RopeArg = RopeKernelArg<kEpi == Epilogue::rope_kv>;

// The kernel's arguments: x, or (kNorm) the float32 residual rows it normalizes itself with norm_w;
// y, or the residual it adds into, or act.
template <typename OutT>
struct GemvArgs {
  const half* x = nullptr;
  W4A16Weights w;
  int n = 0;
  OutT* y = nullptr;
  const float* norm_residual = nullptr;
  const half* norm_w = nullptr;
  float eps = 0.0f;
  float* residual = nullptr;
  half* act = nullptr;
};

// Most warps a block, in both kernels.
inline constexpr int kMaxWarps = 16;

// Bytes between x rows staged in shared memory (padded by 16 B: ldmatrix's 8 row addresses then fall
// in 8 distinct 16-byte bank groups).
__host__ __device__ constexpr int x_row_bytes(int in) {
  return in * 2 + 16;
}

// The epilogue of one output of batch row `col`, row `row` of strip unit `unit`, from the unit's
// summed rows `sum(r)` (r + 16: the unit's second strip). A unit is: the strip (store, residual add;
// row may run on into the next strip); the gate strip (SwiGLU: its up strip is unit + out/32); the
// head pair unit / rope_pairs, dims 16 * (unit % rope_pairs) + row and + head_dim/2 (RoPE: `at`, `c`,
// `s` are the token's cache slot and the dim's angle, which the caller may read early).
template <Epilogue kEpi, typename OutT, typename Sum>
__device__ __forceinline__ void write_output(const GemvArgs<OutT>& p, const RopeArg<kEpi>& rope, int unit,
                                             int col, int row, Sum sum, const RopeKvSlot& at = {},
                                             float c = 0.0f, float s = 0.0f) {
  const W4A16Weights& w = p.w;
  if constexpr (kEpi == Epilogue::rope_kv) {
    const int rope_pairs = rope.cache.head_dim / (2 * kW4A16TileRows);
    // qkv rounded to fp16 as w4a16_gemv stores it and rope_kv_write reads it
    const float a = __half2float(__float2half_rn(sum(row)));
    const float b = __half2float(__float2half_rn(sum(row + kW4A16TileRows)));
    rope_kv_store(rope, col, at, unit / rope_pairs, unit % rope_pairs * kW4A16TileRows + row, a, b, c, s);
  } else if constexpr (kEpi == Epilogue::swiglu) {  // act as swiglu makes it from fp16 gate_up
    const float g = __half2float(__float2half_rn(sum(row)));
    const float u = __half2float(__float2half_rn(sum(row + kW4A16TileRows)));
    p.act[int64_t{col} * (w.out / 2) + unit * kW4A16TileRows + row] = __float2half_rn(swiglu_value(g, u));
  } else {
    const int o = unit * kW4A16TileRows + row;
    if (o >= w.out) return;
    if constexpr (kEpi == Epilogue::add_residual)  // add_rmsnorm's add: r + float(fp16(y))
      p.residual[int64_t{col} * w.out + o] += __half2float(__float2half_rn(sum(row)));
    else
      store_out(p.y + int64_t{col} * w.out + o, sum(row));
  }
}

// x_s row t = fp16(rmsnorm(norm_residual row t) * norm_w) for t < n, with add_rmsnorm's bits
// (kernels/rmsnorm_row.cuh) in a block of any multiple of 32 threads: thread p plays the threads p,
// p + blockDim.x, ... below kNormThreads ("virtual threads"), each summing the squares of its own
// chunks in add_rmsnorm's order, and the warp sums are added as block_sum adds them.
// Fast path (128+ threads, dim <= 4096: at most 2 virtual threads of at most 2 chunks each): every
// load of the row and of norm_w is issued at once and the chunks stay in registers for the scaling,
// so the prologue costs one L2 round trip and two barriers. (The general loop pays a round trip per
// chunk and reads the row twice: on the 7b shapes that made the fused GEMVs slower than the
// add_rmsnorm they replace.)
__device__ inline void norm_rows(const float* __restrict__ residual, const half* __restrict__ norm_w, int n,
                                 int dim, float eps, unsigned char* x_s, int xs_row) {
  constexpr int kWarpSums = kNormThreads / 32;
  __shared__ float partial[kWarpSums];
  const int lane = threadIdx.x & 31, chunks = dim / 8, threads = blockDim.x;
  const uint4* wn = reinterpret_cast<const uint4*>(norm_w);
  for (int t = 0; t < n; ++t) {
    const float* r = residual + int64_t{t} * dim;
    uint4* out = reinterpret_cast<uint4*>(x_s + t * xs_row);
    if (threads >= kNormThreads / 2 && chunks <= 2 * kNormThreads) {
      float v[2][2][8], ss[2] = {0.0f, 0.0f};
      uint4 wv[2][2];
#pragma unroll
      for (int b = 0; b < 2; ++b)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int vt = b * threads + int(threadIdx.x), c = vt + j * kNormThreads;
          if (vt < kNormThreads && c < chunks) load_float8(r + c * 8, v[b][j]), wv[b][j] = wn[c];
        }
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const int vt = b * threads + int(threadIdx.x);
#pragma unroll
        for (int j = 0; j < 2; ++j)
          if (vt < kNormThreads && vt + j * kNormThreads < chunks) ss[b] = rms_accumulate(v[b][j], ss[b]);
        ss[b] = warp_sum(ss[b]);
        if (lane == 0 && vt < kNormThreads) partial[vt >> 5] = ss[b];
      }
      const float inv = rms_inv(sum_of_warp_sums(partial, kWarpSums), dim, eps);
#pragma unroll
      for (int b = 0; b < 2; ++b)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int vt = b * threads + int(threadIdx.x), c = vt + j * kNormThreads;
          if (vt < kNormThreads && c < chunks) out[c] = rms_scale(v[b][j], inv, wv[b][j]);
        }
      continue;
    }
    for (int base = 0; base < kNormThreads; base += threads) {
      const int vt = base + int(threadIdx.x);
      float ss = 0.0f;
      if (vt < kNormThreads)
        for (int c = vt; c < chunks; c += kNormThreads) {
          float v[8];
          load_float8(r + c * 8, v);
          ss = rms_accumulate(v, ss);
        }
      ss = warp_sum(ss);
      if (lane == 0 && vt < kNormThreads) partial[vt >> 5] = ss;
    }
    const float inv = rms_inv(sum_of_warp_sums(partial, kWarpSums), dim, eps);
    for (int c = threadIdx.x; c < chunks; c += threads) {
      float v[8];
      load_float8(r + c * 8, v);
      out[c] = rms_scale(v, inv, wn[c]);
    }
  }
  __syncthreads();
}

// A block's static shared memory (the norm prologue's reduction scratch, kNormThreads / 32 + 1
// floats) comes out of the same opt-in maximum as the dynamic rings: the layouts are sized against
// what is left after this reserve, and each kernel checks its own static size against it.
inline constexpr int kStaticSmemReserve = 256;

// The opt-in shared memory maximum of the device, asked once.
inline int optin_smem_per_block(const char* op) {
  static const int bytes = current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, op);
  return bytes;
}

// Dynamic shared memory a layout may take.
inline int max_smem_per_block(const char* op) {
  return optin_smem_per_block(op) - kStaticSmemReserve;
}

// Lets `kernel` take the opt-in maximum of dynamic shared memory (less its static size), once.
template <typename Kernel>
void opt_in_smem(Kernel kernel, const char* op) {
  cudaFuncAttributes attr{};
  RL_CUDA_CHECK(op, cudaFuncGetAttributes(&attr, kernel));
  require(attr.sharedSizeBytes <= size_t(kStaticSmemReserve), op,
          "the kernel's static shared memory (" + std::to_string(attr.sharedSizeBytes) +
              " bytes) outgrew kStaticSmemReserve");
  set_dynamic_smem(kernel, optin_smem_per_block(op) - int(attr.sharedSizeBytes), false, op);
}

// The register-streamed kernel (kernels/w4a16_gemv_regs.cu). A layout: `warps` warps a block, each
// strip (or SwiGLU/RoPE pair of strips) split along the input over `slices` of them, so a block
// holds warps / slices strips; `batch` groups a register batch (0: 4, or 2 with two strips a warp).
struct RegsLayout {
  int warps = 0;
  int slices = 0;
  int batch = 0;
};
// Up to this many rows the register kernel runs (x is staged whole in shared memory).
inline constexpr int kRegsMaxRows = 8;
// The shared memory a layout takes (pair: SwiGLU or RoPE, two strips a warp).
size_t regs_smem_bytes(const RegsLayout& l, int n, int in, bool pair);
// Whether the register kernel can run n rows of this weight at all (shared memory).
bool regs_fit(int n, int in, const char* op);
// Launches it: throws std::invalid_argument naming the op when the layout does not fit.
void launch_regs(const GemvArgs<half>& a, Epilogue epi, RegsLayout l, cudaStream_t stream, const char* op,
                 const RopeKvArgs* rope = nullptr);
void launch_regs(const GemvArgs<float>& a, Epilogue epi, RegsLayout l, cudaStream_t stream, const char* op);

}  // namespace ridgeline::cuda::w4a16
