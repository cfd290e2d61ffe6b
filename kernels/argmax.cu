// argmax: out[r] = index of the largest logit of row r (lowest index on ties, NaN never wins).
// FLOPs: ~vocab compares per row. Bytes: n_rows*vocab*4. Memory-bound, and at B=1 latency-bound: one
// 92544-logit row is 370 KB, which a single block of 1024 threads streamed in 11 us (one SM's share
// of the read rate). A cluster of kClusterBlocks blocks now takes a row, each block an eighth of it
// (float4 loads, four in flight per thread: block_argmax.cuh), and block 0 merges the eight
// (value, index) pairs from the others' shared memory in rank order: the same answer as one block.
#include <cooperative_groups.h>

#include "kernels/block_argmax.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kClusterBlocks = 8;  // the portable cluster size
constexpr int kThreads = 1024;

__global__ void __cluster_dims__(kClusterBlocks, 1, 1) __launch_bounds__(kThreads)
    argmax_kernel(const float* __restrict__ logits, int vocab, int* __restrict__ out) {
  __shared__ float part_v;
  __shared__ int part_i;
  overlap_enter();
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const float* row = logits + static_cast<int64_t>(blockIdx.y) * vocab;
  // Chunks of whole float4s, so that an aligned row keeps every chunk aligned.
  const int chunk = ((vocab + kClusterBlocks - 1) / kClusterBlocks + 3) & ~3;
  const int begin = min(vocab, rank * chunk), end = min(vocab, begin + chunk);
  if (begin < end) {
    const int i = begin + block_argmax(row + begin, end - begin);
    if (threadIdx.x == 0) part_v = row[i], part_i = i;  // an all-NaN chunk gives a NaN: it never wins
  } else if (threadIdx.x == 0) {
    part_v = -INFINITY, part_i = INT_MAX;
  }
  cluster.sync();  // every block's pair is written
  if (rank == 0 && threadIdx.x == 0) {
    float best_v = -INFINITY;
    int best_i = INT_MAX;
    for (int r = 0; r < kClusterBlocks; ++r)
      argmax_take(*cluster.map_shared_rank(&part_v, r), *cluster.map_shared_rank(&part_i, r), best_v, best_i);
    out[blockIdx.y] = best_i == INT_MAX ? 0 : best_i;  // a row of NaNs answers 0, as the reference
  }
  cluster.sync();  // no block leaves while block 0 still reads its shared memory
}

}  // namespace

void argmax(const float* logits, int n_rows, int vocab, int* out, cudaStream_t stream) {
  const char* op = "argmax";
  require(n_rows >= 0 && vocab > 0, op, "vocab must be positive, got " + std::to_string(vocab));
  if (n_rows == 0) return;
  launch_overlapped(argmax_kernel, dim3(kClusterBlocks, n_rows), kThreads, 0, stream, op, logits, vocab, out);
}

}  // namespace ridgeline::cuda
