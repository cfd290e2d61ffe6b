#include "engine/cuda/decode_bench.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "engine/cuda/device_weights.h"

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

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters) {
  if (batch < 1 || context < 1 || iters < 1)
    throw std::invalid_argument("bench_decode: batch, context and iters must be positive");
  const ModelConfig& c = backend.config();
  SequenceGuard guard{backend, {}};
  for (int b = 0; b < batch; ++b) {
    guard.seqs.push_back(backend.create_sequence());
    backend.fill_context(guard.seqs.back(), context - 1,
                         0xC0FFEE + b);  // the timed step adds token `context`
  }
  const DecodeTiming t = backend.benchmark_decode(guard.seqs, 10, iters);

  DecodeBenchResult r;
  r.batch = batch;
  r.context = context;
  r.iters = iters;
  r.ms_median = percentile(t.step_us, 0.5) / 1000.0;
  r.ms_p10 = percentile(t.step_us, 0.1) / 1000.0;
  r.ms_p90 = percentile(t.step_us, 0.9) / 1000.0;
  r.tokens_per_s = batch / (r.ms_median * 1e-3);
  r.weight_bytes = decode_weight_read_bytes(c, batch);
  r.kv_bytes = int64_t{batch} * context * c.n_layers * 2 * c.kv_dim() * 2;
  r.implied_GBps = (r.weight_bytes + r.kv_bytes) / (r.ms_median * 1e-3) / 1e9;
  for (const OpSamples& op : t.ops) r.ops_ms += percentile(op.us, 0.5) / 1000.0;
  r.method = t.method;
  return r;
}

}  // namespace ridgeline::cuda
