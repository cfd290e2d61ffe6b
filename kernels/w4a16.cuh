// W4A16 linears on the GPU: 4-bit weights, group size 128 along the input dimension, asymmetric
// (per-group fp16 scale and zero), fp16 activations, fp32 accumulation. y[n, out] = x[n, in] W^T with
// W[o][i] = (q[o][i] - z[o][i/128]) * s[o][i/128], the AWQ convention (q, z integers in 0..15).
//
// Device layout ("tile-packed"), chosen so that one 16-byte load per lane gives a warp the A
// fragments of four mma.m16n8k16 steps (kernels/mma.cuh) with no shuffle, and so that a warp that
// streams one 16-row strip of W along the input dimension reads consecutive 512-byte blocks:
//
//   qweight     uint32 [out/16][in/64][32 lanes][4 words]    = in*out/2 bytes
//     Tile (mt, u) holds rows 16mt..16mt+15 and inputs 64u..64u+63. Word j of lane L = 4*gid + tig
//     holds the eight codes lane L needs for k-step j (inputs 64u + 16j .. +15), in the order the
//     dequantizer unpacks them (nibble p = bits 4p..4p+3):
//       p=0: W[gid][2tig]    p=4: W[gid][2tig+1]      p=2: W[gid][2tig+8]    p=6: W[gid][2tig+9]
//       p=1: W[gid+8][2tig]  p=5: W[gid+8][2tig+1]    p=3: W[gid+8][2tig+8]  p=7: W[gid+8][2tig+9]
//     (rows relative to 16mt, inputs relative to 64u + 16j). Nibbles p and p+4 land in the two
//     halves of one half2 via the 0x6400 "magic number" trick, p even -> rows gid, odd -> gid+8:
//     exactly the four registers of an A fragment.
//   scale_zero  fp16 [out/16][in/128][8][4]                   = out*(in/128)*4 bytes
//     Record (mt, g, r) = {s[16mt+r], z[16mt+r], s[16mt+r+8], z[16mt+r+8]} for group g: the 8 bytes
//     lane (gid = r) needs for the rows of its fragments. z is the integer zero code stored as an
//     fp16 integer (exact), not a pre-scaled -z*s: (q - z) * s is then exact in float32 (the CPU
//     reference equals AWQ's dequantization bit for bit) and, on the device, one rounding in fp16
//     ((q - z) is an exact small integer). Bytes per group row: 2 + 2 (analysis/cost_model counts 4).
//
// w4a16_code_slot() and w4a16_scale_index() below are the same map written as index arithmetic;
// kernels/w4a16_repack.h builds and reads the layout on the host (AWQ import, RTN reference).
#pragma once

#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace ridgeline::cuda {

inline constexpr int kW4A16Group = 128;      // inputs per scale/zero group (the only size supported)
inline constexpr int kW4A16TileRows = 16;    // output rows per packed tile (an mma M tile)
inline constexpr int kW4A16TileInputs = 64;  // inputs per packed tile (four mma K steps)
// The GEMV kernel takes up to this many rows (one, two or four mma N tiles of 8). See w4a16_use_gemv.
inline constexpr int kW4A16GemvMaxRows = 32;
// From 9 rows the GEMV runs only weights of up to this many outputs: with more strips than that the
// GEMV re-reads 9-16 rows of x for every pair of strips and the GEMM's 128-row tiles win (1.8b and
// 7b w13 at M = 16, the GEMV's own layout: 11.6 and 35.2 us vs the GEMM's 10.6 and 27.3; H100,
// perf/NOTES.md "thirty-ninth").
inline constexpr int kW4A16GemvTwoTileMaxOut = 8192;
// From 17 rows (four N tiles: 8.7 KB of x a stage, so one 8-warp block of 2-stage rings an SM) only
// weights of at most kW4A16GemvFourTileMaxIn inputs and kW4A16GemvFourTileMaxOut outputs. M = 32,
// GEMV vs tiled GEMM (us; H100, perf/NOTES.md "thirty-ninth"): 1.8b wqkv 5.8 vs 8.3, wo 3.9 vs 6.1,
// w2 10.8 vs 12.0, 7b wo 9.4 vs 9.8; but 7b w2 (in 14336) 23.8 vs 20.1, 7b wqkv (out 6144) 14.0 vs
// 12.4, the w13s 16-50 vs 13-35.
inline constexpr int kW4A16GemvFourTileMaxIn = 8192;
inline constexpr int kW4A16GemvFourTileMaxOut = 4096;
// Where the wgmma GEMM takes 17..32 rows (Hopper, w4a16_gemm_use_wgmma), the four-tile GEMV keeps only
// weights of at most this many inputs. H100, BM_W4A16GemmSplits and BM_W4A16Path at 24 / 32 rows
// (perf/NOTES.md "forty-seventh"): 1.8b w2 (in 8192) GEMV 9.85 / 10.96 us vs wgmma 8.06 / 8.12; 1.8b
// wqkv, wo and 7b wo (in 2048-4096) GEMV 5.00 / 5.92, 3.75 / 3.96, 7.65 / 9.63 vs wgmma's own split
// 6.51 / 6.85, 3.86 / 3.98, 9.66 / 9.88.
inline constexpr int kW4A16GemvFourTileMaxInWgmma = 4096;

// A W4A16 linear's weight on the device, in the layout above. The pointers need 16-byte alignment
// (cudaMalloc gives 256).
struct W4A16Weights {
  const uint32_t* qweight = nullptr;  // [out/16][in/64][32][4] packed 4-bit codes
  const half* scale_zero = nullptr;   // [out/16][in/128][8][4] fp16 {s, z, s, z} records
  int in = 0;                         // input features, a multiple of 128
  int out = 0;                        // output features, a multiple of 16
  int group = kW4A16Group;            // must be 128
};

// Shapes the layout can hold: in a positive multiple of 128, out a positive multiple of 16.
inline bool w4a16_shape_ok(int in, int out) {
  return in > 0 && out > 0 && in % kW4A16Group == 0 && out % kW4A16TileRows == 0;
}
inline int64_t w4a16_qweight_words(int in, int out) {
  return int64_t{out} * in / 8;
}
inline int64_t w4a16_scale_zero_halves(int in, int out) {
  return int64_t{out} * (in / kW4A16Group) * 2;
}
// Bytes the kernels read for the weight: packed codes + scale/zero records.
inline int64_t w4a16_weight_bytes(int in, int out) {
  return 4 * w4a16_qweight_words(in, out) + 2 * w4a16_scale_zero_halves(in, out);
}

// Where the code of W[o][i] lives: word index into qweight and the bit shift of its nibble.
struct W4A16CodeSlot {
  int64_t word;
  int shift;
};
inline W4A16CodeSlot w4a16_code_slot(int in, int o, int i) {
  const int mt = o / 16, r = o % 16, u = i / 64, j = (i % 64) / 16, kk = i % 16;
  const int lane = (r % 8) * 4 + (kk % 8) / 2;
  const int p = r / 8 + 2 * (kk / 8) + 4 * (kk % 2);
  return {((int64_t{mt} * (in / 64) + u) * 32 + lane) * 4 + j, 4 * p};
}
// Index into scale_zero of the scale of row o, group g; its zero follows at index + 1.
inline int64_t w4a16_scale_index(int in, int o, int g) {
  const int mt = o / 16, r = o % 16;
  return ((int64_t{mt} * (in / kW4A16Group) + g) * 8 + r % 8) * 4 + 2 * (r / 8);
}

// The one dispatch decision: decode batches up to 8 rows, up to 16 rows on weights of at most
// kW4A16GemvTwoTileMaxOut outputs, and up to kW4A16GemvMaxRows rows on weights of at most
// kW4A16GemvFourTileMaxIn inputs (kW4A16GemvFourTileMaxInWgmma where `wgmma`: the GEMM for those rows
// would be the wgmma one, w4a16_gemm_use_wgmma) and kW4A16GemvFourTileMaxOut outputs, run the GEMV (each
// warp streams its own slice of W, one, two or four mma N tiles of 8 batch rows); the rest the
// tensor-core GEMMs.
bool w4a16_use_gemv(int n, int in, int out, bool wgmma);

// y[n, out] = x[n, in] W^T, fp32 accumulation, fp16 or fp32 out (the fp32 form for a 4-bit output
// head). x [n, in] and y [n, out] row-major, x 16-byte aligned (y too when the GEMMs run it, above
// the GEMV's rows). n = 0 does nothing. Deterministic: split-K partials are summed in a fixed order.
// Throws std::invalid_argument naming the op when the shape contract is broken.
void w4a16_linear(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream);
void w4a16_linear(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream);

// Which GEMV kernel runs: the ring kernel (kernels/w4a16_gemv.cu: each warp streams W through a ring
// of shared-memory stages) or the register kernel (kernels/w4a16_gemv_regs.cu: each lane loads its own
// fragments straight into registers; x staged once per block). A config that sets nothing gets the
// plain GEMV's own layouts (kernels/w4a16_gemv.cu, choose_plain_config: the ring kernel at 1-8 rows
// but for one row of 1.8b-sized wqkv and w13; H100, perf/NOTES.md "fortieth"). The fused GEMVs take
// the register kernel up to kW4A16GemvRegsRows rows (where x fits in shared memory; fused in the
// decode step faster: perf/NOTES.md, "twelfth") and the ring kernel beyond; a config that sets ring
// fields (warps, tiles, stages) without naming a kernel gets the ring kernel. `ring` and `registers`
// alone give the fused GEMVs' layouts, and the same bits.
enum class W4A16GemvKernel { automatic, ring, registers };
inline constexpr int kW4A16GemvRegsRows = 1;

// How the GEMV is laid out. Ring kernel: a block owns `tiles` 16-row strips of W and `warps` warps, each
// streaming one slice of the input range through `stages` stages of one group. Register kernel: a block
// of `warps` warps, each strip split along the input over `slices` of them, `stages` groups a
// register batch (2 or 4; tiles unused).
// All 0 lets w4a16_gemv choose; tests and bench_w4a16's variant experiment set them.
struct W4A16GemvConfig {
  int warps = 0;   // 1..16
  int tiles = 0;   // 1 or 2
  int stages = 0;  // ring: 2, 4 or 8; registers: 2 or 4
  W4A16GemvKernel kernel = W4A16GemvKernel::automatic;
  int slices = 0;  // register kernel: 1..16, dividing warps
};

// The decode step's small ops folded into the W4A16 GEMV (n <= kW4A16GemvFusedMaxRows rows), as
// gemv_fused does for fp16 weights (kernels/kernels.cuh): the input is x, or the RMSNorm of the float32
// residual rows (norm_residual, norm_w, eps: add_rmsnorm's arithmetic, computed by every block into
// shared memory); the output is y, or added into the residual (residual[t, j] += fp16(y[t, j]), the
// add of add_rmsnorm), or act[t, j] = SwiGLU(y[t, j], y[t, j + out/2]) (swiglu's maths; needs the
// norm prologue, as w13 has it), or rope_kv_write's work on qkv = y (RopeKvEpilogue, kernels/kernels.cuh;
// needs the norm prologue, as wqkv has it). Bit-identical to the unfused sequences: add_rmsnorm -> w4a16_gemv
// -> swiglu or rope_kv_write, and w4a16_gemv -> add_rmsnorm's add, with w4a16_gemv split into
// w4a16_gemv_fused_slices(p) input slices (its default but for the RoPE and SwiGLU pairs and the
// residual GEMVs at one row, where other splits measured faster: kernels/w4a16_gemv.cu). Throws
// std::invalid_argument on a broken contract.
inline constexpr int kW4A16GemvFusedMaxRows = 2;
struct RopeKvEpilogue;  // kernels/kernels.cuh
struct W4A16GemvFusedParams {
  W4A16Weights w;
  int n = 0;
  const half* x = nullptr;               // [n, in]
  const float* norm_residual = nullptr;  // [n, in] float32
  const half* norm_w = nullptr;          // [in]
  float eps = 0.0f;
  half* y = nullptr;                     // [n, out]
  float* residual = nullptr;             // [n, out]
  half* act = nullptr;                   // [n, out / 2]
  const RopeKvEpilogue* rope = nullptr;  // q and the K/V cache from qkv = y (needs the norm prologue)
};
void w4a16_gemv_fused(const W4A16GemvFusedParams& p, cudaStream_t stream);
// The input slices w4a16_gemv_fused splits each strip (or strip pair) into for p's weight, rows and
// epilogue on this GPU: each slice's groups are summed in order, then the slices in order, so
// add_rmsnorm + w4a16_gemv with {.kernel = registers, .slices = this} at one row ({.warps = this},
// the ring kernel, above) gives its bits.
int w4a16_gemv_fused_slices(const W4A16GemvFusedParams& p);

// The kernels behind w4a16_linear, callable directly by tests and benchmarks. w4a16_gemv takes
// n <= kW4A16GemvMaxRows, w4a16_gemm any n (y 16-byte aligned too: it stores several outputs at a
// time). `splits` is the number of thread blocks (one cluster) that share a strip's input range: 0
// chooses from the grid size; 1..8 forces it (at most in/128). Throws std::invalid_argument when a
// config does not fit (shared memory at this n, ranges above).
void w4a16_gemv(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                const W4A16GemvConfig& config = {});
void w4a16_gemv(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                const W4A16GemvConfig& config = {});
void w4a16_gemm(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream, int splits = 0);
void w4a16_gemm(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream, int splits = 0);

// Round-to-nearest quantization on the device, fp16 W [out, in] -> the layout above, per (row,
// group of 128): mn/mx = min/max of the group, s = fp16((max(mx - mn, 1e-5) / 15)), z = clamp(rint(-mn
// / s), 0, 15), q = clamp(rint(w / s) + z, 0, 15) (float32 maths on the fp16-rounded s, round half
// to even, as AutoAWQ's pseudo-quantizer). Bit-identical to w4a16_quantize_rtn_reference
// (kernels/w4a16_repack.h).
void w4a16_quantize_rtn(const half* w, int in, int out, uint32_t* qweight, half* scale_zero,
                        cudaStream_t stream);

// Rows [row0, row0 + rows) of W -> row-major fp16 dst [rows, in] (kernels/w4a16_dequant.cu), each
// weight fp16((q - z) * s) rounded once: __float2half_rn of w4a16_dequantize_rows (kernels/
// w4a16_repack.h) bit for bit. row0 and rows whole 16-row strips, dst 16-byte aligned; rows = 0
// does nothing. Throws std::invalid_argument naming the op when the contract is broken. The slab
// pass of Gemm::run_w4a16_dequant (engine/cuda/gemm.h).
void w4a16_dequantize_fp16(const W4A16Weights& w, int row0, int rows, half* dst, cudaStream_t stream);

}  // namespace ridgeline::cuda
