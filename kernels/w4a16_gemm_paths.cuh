// The three W4A16 GEMM kernels behind w4a16_gemm (kernels/w4a16.cuh) and the predicates that
// choose between them; exposed so that benchmarks and tests can run each on the same weights.
//   tiled (kernels/w4a16_gemm.cu): 128 output rows x 16/32/64 batch rows per block, cluster
//     split-K when the grid is small: small and mid batches, every shape.
//   wgmma (kernels/sm90a/w4a16_gemm_wgmma.cu): the tiled kernel's blocks on Hopper's warpgroup mma,
//     built for sm_90a alone: 17..127 rows on a compute capability 9.0 GPU (w4a16_gemm_use_wgmma),
//     in n-tiles of 32 and clusters of 2 on some weights at 33..64 (w4a16_gemm_wgmma_pairs_of_32).
//   wide (kernels/w4a16_gemm_wide.cu): 256 output rows x 128 batch rows per block, each dequantized
//     weight fragment feeding 16 mma, cluster split-K up to 4 ways: large batches and prefill.
// And the path around them for large batches: dequantize W to fp16 in slabs of output rows
// (w4a16_dequantize_fp16, kernels/w4a16_dequant.cu) and run cuBLASLt's fp16 GEMM on each slab,
// Gemm::run_w4a16_dequant (engine/cuda/gemm.h), where w4a16_use_dequant_gemm says. It is not a
// W4A16GemmKernel value: it needs the cuBLASLt handle, plans and slab scratch that Gemm owns.
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/w4a16.cuh"

namespace ridgeline::cuda {

enum class W4A16GemmKernel {
  automatic,  // w4a16_gemm_use_wide and w4a16_gemm_use_wgmma decide (what w4a16_gemm does)
  tiled,      // the 128-row kernel
  tiled_32,   // the 128-row kernel in n-tiles of 32 at any n (two_tiles_of_32's pick at 33..64 rows off
              // Hopper)
  wide,       // the 256 x 128 kernel, each warp 2 M tiles x 128 batch rows
  wide_64,    // 256 x 64 blocks, two per SM (an experiment for M = 64..127: BM_W4A16GemmKernels)
  wgmma,      // the tiled kernel's blocks on Hopper's warpgroup mma (kernels/sm90a/w4a16_gemm_wgmma.cu)
  wgmma_32,   // the same in n-tiles of 32 at any n
};

// True for the batches the automatic choice gives the wgmma kernel: 17..127 rows on a compute
// capability 9.0 GPU.
bool w4a16_gemm_use_wgmma(int n);
// Where, of those, the automatic choice runs the wgmma kernel in n-tiles of 32 and clusters of 2
// rather than at its own n-tile and split: batch n on a weight of in x out on a GPU of `sms` SMs
// (kernels/w4a16_gemm.cu, with the measurements).
bool w4a16_gemm_wgmma_pairs_of_32(int n, int in, int out, int sms);
// The wgmma kernel's split where a measured table overrides its rule (w4a16::strip_splits) for batch n
// on a weight of in x out, on a GPU of `sms` SMs and a `bus_bits`-bit memory bus; 0 where the rule
// decides (every GPU and weight not in the table: kernels/w4a16_gemm.cu, with the measurements).
int w4a16_gemm_wgmma_tuned_splits(int n, int in, int out, int sms, int bus_bits);
// Whether the wgmma kernel launches overlapped with the kernel before it (kernels/overlap.cuh: the first
// stages' weights requested before that kernel ends): on weights of at most
// kW4A16WgmmaOverlapMaxCodeBytes of packed codes. Measured (H100, forty-third session, w4a16 decode
// B=48/64 ctx 1024, two interleaved rounds of --repeat 3 agreeing within 0.3%): every weight
// overlapped, 7b +2.0 / +0.5%, 1.8b -1.4 / -1.5%; up to 10 MB (7b wo alone) 7b +1.2 / +0.5%; up to
// 20 MB (7b wo and wqkv, all of 1.8b) 7b -1.6 / -2.2%, 1.8b -1.5 / -1.6%. Alone (BM_W4A16VsFp16,
// launches back to back) every shape gains but 1.8b wqkv and w2 (level): 1.8b wo at 64 rows 6.77 ->
// 5.21 us (fp16 6.44), 7b wqkv 14.40 -> 12.77, 7b w2 25.73 -> 23.82. Why the 7b w2 and w13 lose in the step
// is not known; the tiled kernel overlapped lost there too (twenty-fifth session,
// perf/wip/w4a16-gemm-overlapped.patch).
inline constexpr int64_t kW4A16WgmmaOverlapMaxCodeBytes = 20'000'000;
inline bool w4a16_gemm_wgmma_overlaps(int in, int out) {
  return int64_t{in} * out / 2 <= kW4A16WgmmaOverlapMaxCodeBytes;
}
// Whether the device runs the wgmma kernel (compute capability 9.0: it is built for sm_90a only).
bool w4a16_gemm_has_wgmma();
// The wgmma kernel's launcher; the caller has checked the contract. splits as for w4a16_gemm; bn 32
// forces n-tiles of 32, 0 takes the smallest of 16/32/64 that holds n. Throws std::invalid_argument
// where w4a16_gemm_has_wgmma() is false.
void w4a16_gemm_wgmma(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream, int splits,
                      int bn = 0);
void w4a16_gemm_wgmma(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream, int splits,
                      int bn = 0);

// Batch rows and output rows of one block of the wide kernel.
inline constexpr int kW4A16WideRows = 256;
inline constexpr int kW4A16WideBatch = 128;

// True where the wide kernel measured faster than the tiled one: batch n on a weight of `out` rows
// on a GPU of `sms` SMs (the measurements are with the definition).
bool w4a16_gemm_use_wide(int n, int out, int sms);

// w4a16_gemm with the kernel forced; `splits` as for w4a16_gemm (0: the kernel's own choice).
// Throws std::invalid_argument like w4a16_gemm.
void w4a16_gemm_with(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits = 0);
void w4a16_gemm_with(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits = 0);

// Batches from this many rows run W4A16 linears as dequantize-to-fp16 slabs + cuBLASLt (the engine's
// Gemm::run_linear). Measured (H200, BM_W4A16GemmKernels, perf/NOTES.md): at 512 rows the path beat
// the fastest mma kernel on 7 of the 8 1.8b and 7b weights (1.2-1.8x; 7b w2 6% slower), at 256 on 4
// of 8 (the mma kernels kept the w13s, 7b wqkv and 7b w2), at 1024 and 2048 on all 8 (2048: 0.78-1.08x
// of cuBLAS fp16's speed, where the wide kernel reaches 0.49-0.60x).
inline constexpr int kW4A16DequantGemmMinRows = 512;
// The one predicate: true where a batch of n rows takes the dequant + cuBLASLt path. Monotone in n
// (the CUDA backend sizes the slab scratch by asking at its largest batch).
bool w4a16_use_dequant_gemm(int n);

// The slab bound: at most 16 MiB of fp16 per slab, so the slab the GEMM reads stays L2-resident
// (H200: 50 MB) and the scratch stays small.
inline constexpr int64_t kW4A16DequantSlabBytes = int64_t{16} << 20;
// Output rows per slab for a weight [out, in]: the most whole 128-row blocks within
// kW4A16DequantSlabBytes (at least 128), and never more than out. 1.8b/7b: 4096 rows at in = 2048,
// 2048 at 4096, 1024 at 8192, 512 at 14336.
inline int w4a16_dequant_slab_rows(int in, int out) {
  const int64_t blocks = kW4A16DequantSlabBytes / (int64_t{2} * 128 * (in > 0 ? in : 1));
  return static_cast<int>(std::min<int64_t>(out, 128 * std::max<int64_t>(1, blocks)));
}
// Bytes of fp16 scratch one slab of that weight needs.
inline int64_t w4a16_dequant_scratch_bytes(int in, int out) {
  return int64_t{2} * w4a16_dequant_slab_rows(in, out) * in;
}

// How many blocks (one cluster) the wide kernel splits each tile's input range over when left to
// choose: 1..4.
int w4a16_gemm_wide_splits(int n, int in, int out, int sms);

// The wide kernel's launcher (kernels/w4a16_gemm_wide.cu), `kernel` wide or wide_64; the caller has
// checked the contract (weights, n >= 1, x and y 16-byte aligned). splits: 0 = w4a16_gemm_wide_splits,
// else 1..min(8, in/128), as for w4a16_gemm.
void w4a16_gemm_wide(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits);
void w4a16_gemm_wide(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                     W4A16GemmKernel kernel, int splits);

}  // namespace ridgeline::cuda
