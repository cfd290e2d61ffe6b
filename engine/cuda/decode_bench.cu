#include "engine/cuda/decode_bench.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/device_weights.h"
#include "kernels/synthetic.h"

namespace ridgeline::cuda {
namespace {

// Releases the benchmark's sequences however bench_decode leaves.
struct SequenceGuard {
  Backend& backend;
  std::vector<int> seqs;
  ~SequenceGuard() {
    for (int s : seqs) backend.release_sequence(s);
  }
};

double percentile(std::vector<float> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters) {
  CudaBackend* cuda = as_cuda_backend(backend);
  if (!cuda) throw std::invalid_argument("bench_decode: needs the CUDA backend, got " + backend.name());
  if (batch < 1 || context < 1 || iters < 1)
    throw std::invalid_argument("bench_decode: batch, context and iters must be positive");
  const ModelConfig& c = backend.config();

  SequenceGuard guard{backend, {}};
  std::vector<std::vector<int>> prompts(batch);
  for (int b = 0; b < batch; ++b) {
    guard.seqs.push_back(backend.create_sequence());
    // Hashed token ids, different per sequence: real-looking KV contents, never all zeros.
    for (int t = 0; t < context; ++t)
      prompts[b].push_back(static_cast<int>(splitmix64((uint64_t(b) << 32) | uint64_t(t)) % uint64_t(c.vocab)));
  }
  backend.forward(guard.seqs, prompts, nullptr);

  std::vector<float> ms = cuda->time_decode_replays(guard.seqs, iters);
  DecodeBenchResult r;
  r.batch = batch;
  r.context = context;
  r.iters = iters;
  r.ms_median = percentile(ms, 0.5);
  r.ms_p10 = percentile(ms, 0.1);
  r.ms_p90 = percentile(ms, 0.9);
  r.tokens_per_s = batch / (r.ms_median * 1e-3);
  r.weight_bytes = decode_weight_read_bytes(c, batch);
  r.kv_bytes = int64_t{batch} * (context + 1) * c.n_layers * 2 * c.kv_dim() * 2;
  r.implied_GBps = (r.weight_bytes + r.kv_bytes) / (r.ms_median * 1e-3) / 1e9;
  return r;
}

}  // namespace ridgeline::cuda
