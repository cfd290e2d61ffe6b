// swiglu: out[t, i] = silu(gate[t, i]) * up[t, i], gate = gate_up[t, 0:inter], up = gate_up[t,
// inter:2*inter]. FLOPs: ~5 per output (plus one exp). Bytes: n_tokens*inter*(2+2 read, 2 written).
// Memory-bound: one 16-byte vector of gate, one of up and one of out per thread, grid-stride so any size
// fills the GPU; the per-element maths is swiglu_value (kernels/swiglu_math.cuh), which the fused w13
// GEMV epilogue (gemv_swiglu in kernels/gemv.cu) shares so both paths give the same bits.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"
#include "kernels/swiglu_math.cuh"

namespace ridgeline::cuda {
namespace {

__global__ void swiglu_kernel(const half* __restrict__ gate_up, int64_t n_vectors, int vectors_per_row,
                              half* __restrict__ out) {
  overlap_enter();
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < n_vectors;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = v / vectors_per_row;
    int c = static_cast<int>(v - t * vectors_per_row);
    const uint4* row = reinterpret_cast<const uint4*>(gate_up) + t * 2 * vectors_per_row;
    float g[8], u[8], o[8];
    half8_to_float(row[c], g);
    half8_to_float(row[vectors_per_row + c], u);
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = swiglu_value(g[j], u[j]);
    reinterpret_cast<uint4*>(out)[v] = float_to_half8(o);
  }
}

}  // namespace

void swiglu(const half* gate_up, int n_tokens, int inter, half* out, cudaStream_t stream) {
  const char* op = "swiglu";
  require(n_tokens >= 0 && inter > 0 && inter % 8 == 0, op,
          "inter must be a positive multiple of 8, got " + std::to_string(inter));
  require(aligned16(gate_up) && aligned16(out), op, "gate_up and out must be 16-byte aligned");
  if (n_tokens == 0) return;
  int64_t n_vectors = static_cast<int64_t>(n_tokens) * (inter / 8);
  constexpr int kThreads = 256;
  int64_t blocks = std::min<int64_t>(ceil_div(n_vectors, int64_t{kThreads}), 16 * 1024);
  launch_overlapped(swiglu_kernel, static_cast<int>(blocks), kThreads, 0, stream, op, gate_up, n_vectors,
                    inter / 8, out);
}

}  // namespace ridgeline::cuda
