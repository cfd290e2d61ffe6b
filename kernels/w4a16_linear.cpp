// w4a16_linear: the one entry point of W4A16 linears, dispatching on the batch size by the one
// predicate w4a16_use_gemv (kernels/w4a16.cuh).
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {

// Up to 8 rows the GEMV (one mma N tile, every warp streaming its own slice of W with no block-wide
// pipeline) reads the weights once for the whole batch at close to its M = 1 speed. 9-16 rows take
// two N tiles; there the GEMV beats the tiled GEMM on every 1.8b and 7b weight but w13 (H100, M = 16,
// 2-stage rings against the GEMM: 1.8b wqkv 4.0 vs 7.0 us, 7b wo 6.2 vs 9.1, 7b w2 17.7 vs 19.7; w13
// see kW4A16GemvTwoTileMaxOut). 17-32 rows take four, and win only on the smaller weights
// (kW4A16GemvFourTileMaxIn, ...MaxOut; on Hopper, against the wgmma GEMM, ...MaxInWgmma).
// Revisit with bench/kernels/bench_w4a16.cu (BM_W4A16VsFp16, BM_W4A16GemvVariants, BM_W4A16Path).
bool w4a16_use_gemv(int n, int in, int out, bool wgmma) {
  if (n <= 8) return true;
  if (n <= 16) return out <= kW4A16GemvTwoTileMaxOut;
  const int max_in = wgmma ? kW4A16GemvFourTileMaxInWgmma : kW4A16GemvFourTileMaxIn;
  return n <= kW4A16GemvMaxRows && in <= max_in && out <= kW4A16GemvFourTileMaxOut;
}

namespace {
template <typename OutT>
void linear(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream) {
  if (w4a16_use_gemv(n, w.in, w.out, w4a16_gemm_use_wgmma(n))) return w4a16_gemv(x, w, n, y, stream);
  w4a16_gemm(x, w, n, y, stream);
}
}  // namespace

void w4a16_linear(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream) {
  linear(x, w, n, y, stream);
}
void w4a16_linear(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream) {
  linear(x, w, n, y, stream);
}

}  // namespace ridgeline::cuda
