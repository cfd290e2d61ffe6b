// w4a16_linear: the one entry point of W4A16 linears, dispatching on the batch size by the one
// predicate w4a16_use_gemv (kernels/w4a16.cuh).
#include "kernels/w4a16.cuh"

namespace ridgeline::cuda {

// Up to 8 rows the GEMV (one mma N tile, every warp streaming its own slice of W with no block-wide
// pipeline) reads the weights once for the whole batch; from 9 rows the GEMM's 16-row N tiles waste
// at most 7 rows of work. Revisit with bench/kernels/bench_w4a16.cu (BM_W4A16Path).
bool w4a16_use_gemv(int n) {
  return n <= kW4A16GemvMaxRows;
}

void w4a16_linear(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream) {
  if (w4a16_use_gemv(n)) return w4a16_gemv(x, w, n, y, stream);
  w4a16_gemm(x, w, n, y, stream);
}

void w4a16_linear(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream) {
  if (w4a16_use_gemv(n)) return w4a16_gemv(x, w, n, y, stream);
  w4a16_gemm(x, w, n, y, stream);
}

}  // namespace ridgeline::cuda
