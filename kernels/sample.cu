// sample: per row, temperature / top-k / top-p sampling with ref::sample's rules, or the argmax
// for rows whose temperature is <= 0.
// Steps: (1) one 64-bit sort key per logit, (row << 32 | the logit's bits flipped to sort
// descending), -0 made +0 so float-equal logits tie and NaN made -inf so it ranks last; (2) one
// radix sort of all rows at once over the whole GPU (cub::DeviceRadixSort, onesweep): stable, so
// equal logits keep ascending index order, exactly the reference's (logit desc, index asc);
// (3) a grid-wide pass computing each kept candidate's softmax weight exp((x - max)/T) in double,
// as the reference does; (4) one block per row: the total, the top-p cut and the inverse-CDF pick
// with u = sampling_uniform(seed, position) by block scans over those weights.
// FLOPs: one double exp per kept candidate. Bytes: ~24 per logit per sort pass (8-byte keys and
// 4-byte ids, in and out), 4 passes + one per 8 row bits, + the weights. The sort dominates:
// measured on an H100, ~70 us for one 92544-logit row (serial onesweep passes over few tiles) and
// ~170 us for 16 rows (near bandwidth). All-greedy batches should call argmax (~12 us) instead;
// a block-level top-k selection would make top_k rows much cheaper still.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "kernels/block_argmax.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/sampling_uniform.h"

namespace ridgeline::cuda {
namespace {

constexpr int kPickThreads = 1024;

struct SampleWorkspace {
  uint64_t* keys[2];  // the sort's double buffer; the one not holding the result then holds weights
  int* ids[2];
  void* sort_temp;
  size_t sort_temp_bytes;
  size_t total_bytes;
};

size_t align256(size_t b) {
  return (b + 255) & ~size_t{255};
}

// Key bits above the 32 of the logit: enough for the row index.
int row_bits(int n_rows) {
  int b = 0;
  while ((int64_t{1} << b) < n_rows) ++b;
  return b;
}

size_t sort_temp_bytes(int n_rows, int vocab) {
  size_t bytes = 0;
  cub::DoubleBuffer<uint64_t> keys(nullptr, nullptr);
  cub::DoubleBuffer<int> ids(nullptr, nullptr);
  RL_CUDA_CHECK("sample", cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys, ids, n_rows * vocab, 0,
                                                          32 + row_bits(n_rows)));
  return bytes;
}

// One layout for both sample_workspace_bytes (base == nullptr) and the launch.
SampleWorkspace layout(void* base, int n_rows, int vocab) {
  size_t items = static_cast<size_t>(n_rows) * vocab;
  char* p = static_cast<char*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* at = p == nullptr ? nullptr : p + off;
    off += align256(bytes);
    return at;
  };
  SampleWorkspace w{};
  for (int b = 0; b < 2; ++b) w.keys[b] = reinterpret_cast<uint64_t*>(take(items * sizeof(uint64_t)));
  for (int b = 0; b < 2; ++b) w.ids[b] = reinterpret_cast<int*>(take(items * sizeof(int)));
  w.sort_temp_bytes = sort_temp_bytes(n_rows, vocab);
  w.sort_temp = take(w.sort_temp_bytes);
  w.total_bytes = off;
  return w;
}

// Descending order of floats as ascending order of unsigned keys.
__device__ __forceinline__ uint32_t descending_key(float x) {
  x = isnan(x) ? -INFINITY : (x == 0.0f ? 0.0f : x);
  uint32_t u = __float_as_uint(x);
  uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~ascending;
}

__device__ __forceinline__ float key_value(uint64_t key) {
  uint32_t ascending = ~static_cast<uint32_t>(key);
  return __uint_as_float((ascending & 0x80000000u) ? (ascending & 0x7FFFFFFFu) : ~ascending);
}

__device__ __forceinline__ int kept_candidates(int top_k, int vocab) {
  return (top_k > 0 && top_k < vocab) ? top_k : vocab;
}

__global__ void sample_keys_kernel(const float* __restrict__ logits, int n_rows, int vocab,
                                   uint64_t* __restrict__ keys, int* __restrict__ ids) {
  const int64_t items = static_cast<int64_t>(n_rows) * vocab;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < items;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t row = e / vocab;
    keys[e] = (static_cast<uint64_t>(row) << 32) | descending_key(logits[e]);
    ids[e] = static_cast<int>(e - row * vocab);
  }
}

// Weight of each kept candidate in sorted order, exactly as ref::sample computes it (double maths
// on float logits, the row's maximum subtracted). Greedy rows and dropped candidates are skipped.
__global__ void sample_weights_kernel(const uint64_t* __restrict__ sorted, int n_rows, int vocab,
                                      const float* __restrict__ temperatures, const int* __restrict__ top_ks,
                                      double* __restrict__ weights) {
  const int64_t items = static_cast<int64_t>(n_rows) * vocab;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < items;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t row = e / vocab;
    int i = static_cast<int>(e - row * vocab);
    float t = temperatures[row];
    if (t <= 0.0f || i >= kept_candidates(top_ks[row], vocab)) continue;
    double mx = key_value(sorted[row * vocab]);
    weights[e] = exp((static_cast<double>(key_value(sorted[e])) - mx) / static_cast<double>(t));
  }
}

__global__ void __launch_bounds__(kPickThreads)
    sample_pick_kernel(const float* __restrict__ logits, int vocab, const double* __restrict__ weights,
                       const int* __restrict__ sorted_ids, const float* __restrict__ temperatures,
                       const int* __restrict__ top_ks, const float* __restrict__ top_ps,
                       const uint64_t* __restrict__ seeds, const int* __restrict__ positions,
                       int* __restrict__ out) {
  using Reduce = cub::BlockReduce<double, kPickThreads>;
  using Scan = cub::BlockScan<double, kPickThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } tmp;
  __shared__ double total_s;
  __shared__ int found_s;

  const int r = blockIdx.x;
  if (temperatures[r] <= 0.0f) {
    int best = block_argmax(logits + static_cast<int64_t>(r) * vocab, vocab);
    if (threadIdx.x == 0) out[r] = best;
    return;
  }
  const double* w = weights + static_cast<int64_t>(r) * vocab;
  const int* ids = sorted_ids + static_cast<int64_t>(r) * vocab;
  const float top_p = top_ps[r];
  const int keep = kept_candidates(top_ks[r], vocab);

  double part = 0.0;
  for (int i = threadIdx.x; i < keep; i += kPickThreads) part += w[i];
  double sum = Reduce(tmp.reduce).Sum(part);
  if (threadIdx.x == 0) total_s = sum;
  __syncthreads();
  sum = total_s;

  // Shortest prefix whose probability reaches top_p (the reference's running sum of p/sum).
  int cut = keep;
  double kept_sum = sum;
  if (top_p < 1.0f) {
    if (threadIdx.x == 0) found_s = keep;
    double carry = 0.0;
    for (int c0 = 0; c0 < keep; c0 += kPickThreads) {
      __syncthreads();
      int i = c0 + threadIdx.x;
      double x = i < keep ? w[i] / sum : 0.0, incl, chunk_total;
      Scan(tmp.scan).InclusiveSum(x, incl, chunk_total);
      if (i < keep && carry + incl >= static_cast<double>(top_p)) atomicMin(&found_s, i);
      carry += chunk_total;
      __syncthreads();
      if (found_s < keep) break;
    }
    cut = found_s < keep ? found_s + 1 : keep;
    if (cut < keep) {
      part = 0.0;
      for (int i = threadIdx.x; i < cut; i += kPickThreads) part += w[i];
      __syncthreads();
      double s = Reduce(tmp.reduce).Sum(part);
      if (threadIdx.x == 0) total_s = s;
      __syncthreads();
      kept_sum = total_s;
    }
  }

  // Inverse CDF: the first candidate whose inclusive running sum exceeds u * kept_sum.
  const double target = sampling_uniform(seeds[r], static_cast<uint64_t>(positions[r])) * kept_sum;
  __syncthreads();
  if (threadIdx.x == 0) found_s = cut;
  double carry = 0.0;
  for (int c0 = 0; c0 < cut; c0 += kPickThreads) {
    __syncthreads();
    int i = c0 + threadIdx.x;
    double x = i < cut ? w[i] : 0.0, incl, chunk_total;
    Scan(tmp.scan).InclusiveSum(x, incl, chunk_total);
    if (i < cut && target < carry + incl) atomicMin(&found_s, i);
    carry += chunk_total;
    __syncthreads();
    if (found_s < cut) break;
  }
  if (threadIdx.x == 0) out[r] = ids[found_s < cut ? found_s : cut - 1];
}

}  // namespace

size_t sample_workspace_bytes(int n_rows, int vocab) {
  require(n_rows > 0 && vocab > 0, "sample", "n_rows and vocab must be positive");
  require(static_cast<int64_t>(n_rows) * vocab < (int64_t{1} << 31), "sample",
          "n_rows * vocab must fit in int32");
  return layout(nullptr, n_rows, vocab).total_bytes;
}

void sample(const float* logits, int n_rows, int vocab, const float* temperatures, const int* top_ks,
            const float* top_ps, const uint64_t* seeds, const int* positions, void* workspace, int* out,
            cudaStream_t stream) {
  const char* op = "sample";
  require(n_rows >= 0 && vocab > 0, op, "vocab must be positive, got " + std::to_string(vocab));
  if (n_rows == 0) return;
  require(static_cast<int64_t>(n_rows) * vocab < (int64_t{1} << 31), op, "n_rows * vocab must fit in int32");
  require(workspace != nullptr, op, "a workspace of sample_workspace_bytes(n_rows, vocab) is needed");
  SampleWorkspace w = layout(workspace, n_rows, vocab);
  const int64_t items = static_cast<int64_t>(n_rows) * vocab;
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(items, int64_t{256}), 4 * 1024));
  sample_keys_kernel<<<blocks, 256, 0, stream>>>(logits, n_rows, vocab, w.keys[0], w.ids[0]);
  RL_CUDA_CHECK_LAUNCH(op);
  cub::DoubleBuffer<uint64_t> keys(w.keys[0], w.keys[1]);
  cub::DoubleBuffer<int> ids(w.ids[0], w.ids[1]);
  size_t temp_bytes = w.sort_temp_bytes;
  RL_CUDA_CHECK(
      op, cub::DeviceRadixSort::SortPairs(w.sort_temp, temp_bytes, keys, ids, static_cast<int>(items), 0,
                                          32 + row_bits(n_rows), stream));
  // The sort leaves its result in keys.Current(); the other key buffer is free for the weights.
  double* weights = reinterpret_cast<double*>(keys.Alternate());
  sample_weights_kernel<<<blocks, 256, 0, stream>>>(keys.Current(), n_rows, vocab, temperatures, top_ks,
                                                    weights);
  RL_CUDA_CHECK_LAUNCH(op);
  sample_pick_kernel<<<n_rows, kPickThreads, 0, stream>>>(logits, vocab, weights, ids.Current(), temperatures,
                                                          top_ks, top_ps, seeds, positions, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
