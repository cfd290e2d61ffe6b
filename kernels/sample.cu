// sample: per row, temperature / top-k / top-p sampling with ref::sample's rules, or the argmax
// for rows whose temperature is <= 0.
// Steps: (1) copy the logits as sort keys (-0 -> +0 so that float-equal logits tie, NaN -> -inf so
// it ranks last) beside their indices; (2) one segmented radix sort, descending, per row
// (cub::DeviceSegmentedRadixSort; radix sort is stable, so equal logits keep ascending index order:
// exactly the reference's (logit desc, index asc)); (3) one block per row: the softmax at the
// temperature of the first k candidates in double (as the reference), the top-p cut by a block
// scan, and the inverse-CDF pick with u = sampling_uniform(seed, position).
// FLOPs: ~20 per kept candidate (a double exp per pass). Bytes: ~6 passes over n_rows*vocab*4
// (the sort dominates). A full-vocab sample costs tens of microseconds at batch 1 — far off the
// roofline, but small next to a decode step and exact; top-k rows touch only their k candidates
// after the sort.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "kernels/block_argmax.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/sampling_uniform.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kPickThreads = 256;

struct SampleWorkspace {
  float* keys_in;
  float* keys_out;
  int* vals_in;
  int* vals_out;
  int* offsets;  // n_rows + 1 segment starts
  void* sort_temp;
  size_t sort_temp_bytes;
  size_t total_bytes;
};

size_t align256(size_t b) { return (b + 255) & ~size_t{255}; }

size_t sort_temp_bytes(int n_rows, int vocab) {
  size_t bytes = 0;
  RL_CUDA_CHECK("sample", cub::DeviceSegmentedRadixSort::SortPairsDescending(
                              nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
                              static_cast<const int*>(nullptr), static_cast<int*>(nullptr), n_rows * vocab, n_rows,
                              static_cast<const int*>(nullptr), static_cast<const int*>(nullptr)));
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
  w.keys_in = reinterpret_cast<float*>(take(items * sizeof(float)));
  w.keys_out = reinterpret_cast<float*>(take(items * sizeof(float)));
  w.vals_in = reinterpret_cast<int*>(take(items * sizeof(int)));
  w.vals_out = reinterpret_cast<int*>(take(items * sizeof(int)));
  w.offsets = reinterpret_cast<int*>(take((n_rows + 1) * sizeof(int)));
  w.sort_temp_bytes = sort_temp_bytes(n_rows, vocab);
  w.sort_temp = take(w.sort_temp_bytes);
  w.total_bytes = off;
  return w;
}

__global__ void sample_prepare_kernel(const float* __restrict__ logits, int n_rows, int vocab,
                                      float* __restrict__ keys, int* __restrict__ vals, int* __restrict__ offsets) {
  const int64_t items = static_cast<int64_t>(n_rows) * vocab;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = first; e < items; e += stride) {
    float x = logits[e];
    keys[e] = isnan(x) ? -INFINITY : (x == 0.0f ? 0.0f : x);
    vals[e] = static_cast<int>(e % vocab);
  }
  for (int64_t r = first; r <= n_rows; r += stride) offsets[r] = static_cast<int>(r * vocab);
}

// Weight of sorted candidate i, exactly as ref::sample computes it (double maths on float logits).
__device__ __forceinline__ double candidate_weight(const float* keys, int i, double mx, double temperature) {
  return exp((static_cast<double>(keys[i]) - mx) / temperature);
}

__global__ void __launch_bounds__(kPickThreads)
    sample_pick_kernel(const float* __restrict__ logits, int vocab, const float* __restrict__ sorted_keys,
                       const int* __restrict__ sorted_ids, const float* __restrict__ temperatures,
                       const int* __restrict__ top_ks, const float* __restrict__ top_ps,
                       const uint64_t* __restrict__ seeds, const int* __restrict__ positions, int* __restrict__ out) {
  using Reduce = cub::BlockReduce<double, kPickThreads>;
  using Scan = cub::BlockScan<double, kPickThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } tmp;
  __shared__ double total_s;
  __shared__ int found_s;

  const int r = blockIdx.x;
  const float temperature = temperatures[r];
  if (temperature <= 0.0f) {
    int best = block_argmax(logits + static_cast<int64_t>(r) * vocab, vocab);
    if (threadIdx.x == 0) out[r] = best;
    return;
  }
  const float* keys = sorted_keys + static_cast<int64_t>(r) * vocab;
  const int* ids = sorted_ids + static_cast<int64_t>(r) * vocab;
  const int top_k = top_ks[r];
  const float top_p = top_ps[r];
  const int keep = (top_k > 0 && top_k < vocab) ? top_k : vocab;
  const double mx = keys[0], t = temperature;

  double part = 0.0;
  for (int i = threadIdx.x; i < keep; i += kPickThreads) part += candidate_weight(keys, i, mx, t);
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
      double x = i < keep ? candidate_weight(keys, i, mx, t) / sum : 0.0, incl, chunk_total;
      Scan(tmp.scan).InclusiveSum(x, incl, chunk_total);
      if (i < keep && carry + incl >= static_cast<double>(top_p)) atomicMin(&found_s, i);
      carry += chunk_total;
      __syncthreads();
      if (found_s < keep) break;
    }
    cut = found_s < keep ? found_s + 1 : keep;
    if (cut < keep) {
      part = 0.0;
      for (int i = threadIdx.x; i < cut; i += kPickThreads) part += candidate_weight(keys, i, mx, t);
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
    double x = i < cut ? candidate_weight(keys, i, mx, t) : 0.0, incl, chunk_total;
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
  require(static_cast<int64_t>(n_rows) * vocab < (int64_t{1} << 31), "sample", "n_rows * vocab must fit in int32");
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
  int64_t items = static_cast<int64_t>(n_rows) * vocab;
  int blocks = static_cast<int>(std::min<int64_t>(ceil_div(items, int64_t{256}), 4096));
  sample_prepare_kernel<<<blocks, 256, 0, stream>>>(logits, n_rows, vocab, w.keys_in, w.vals_in, w.offsets);
  RL_CUDA_CHECK_LAUNCH(op);
  size_t temp_bytes = w.sort_temp_bytes;
  RL_CUDA_CHECK(op, cub::DeviceSegmentedRadixSort::SortPairsDescending(
                        w.sort_temp, temp_bytes, w.keys_in, w.keys_out, w.vals_in, w.vals_out, static_cast<int>(items),
                        n_rows, w.offsets, w.offsets + 1, 0, 32, stream));
  sample_pick_kernel<<<n_rows, kPickThreads, 0, stream>>>(logits, vocab, w.keys_out, w.vals_out, temperatures, top_ks,
                                                          top_ps, seeds, positions, out);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
