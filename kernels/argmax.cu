// argmax: out[r] = index of the largest logit of row r (lowest index on ties, NaN never wins).
// FLOPs: ~vocab compares per row. Bytes: n_rows*vocab*4. Memory-bound; one block of 1024 threads
// per row, float4 loads with four in flight per thread (block_argmax.cuh).
#include "kernels/block_argmax.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"

namespace ridgeline::cuda {
namespace {

__global__ void argmax_kernel(const float* __restrict__ logits, int vocab, int* __restrict__ out) {
  overlap_enter();
  int best = block_argmax(logits + static_cast<int64_t>(blockIdx.x) * vocab, vocab);
  if (threadIdx.x == 0) out[blockIdx.x] = best;
}

}  // namespace

void argmax(const float* logits, int n_rows, int vocab, int* out, cudaStream_t stream) {
  const char* op = "argmax";
  require(n_rows >= 0 && vocab > 0, op, "vocab must be positive, got " + std::to_string(vocab));
  if (n_rows == 0) return;
  launch_overlapped(argmax_kernel, n_rows, 1024, 0, stream, op, logits, vocab, out);
}

}  // namespace ridgeline::cuda
