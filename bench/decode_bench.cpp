#include "bench/decode_bench.h"

#include <stdexcept>
#include <vector>

#include "analysis/roofline.h"
#include "engine/ops.h"

namespace ridgeline {
namespace {

// Releases the benchmark's sequences however measure_decode leaves.
struct SequenceGuard {
  Backend& backend;
  std::vector<int> seqs;
  ~SequenceGuard() {
    for (int s : seqs) backend.release_sequence(s);
  }
};

constexpr int kWarmup = 5;  // the sweep's default

}  // namespace

DecodeTiming measure_decode(Backend& backend, int batch, int context, int warmup, int iters, uint64_t seed) {
  if (batch < 1 || context < 1 || iters < 1 || warmup < 0)
    throw std::invalid_argument("measure_decode: batch, context and iters must be positive, warmup >= 0");
  SequenceGuard guard{backend, {}};
  for (int b = 0; b < batch; ++b) {
    guard.seqs.push_back(backend.create_sequence());
    backend.fill_context(guard.seqs.back(), context - 1, seed + b);  // the timed step adds token `context`
  }
  return backend.benchmark_decode(guard.seqs, warmup, iters);
}

std::optional<TimelineSummary> timeline_summary(const DecodeTiming& t) {
  if (t.timeline.empty()) return std::nullopt;
  std::vector<TimelineSpan> spans;
  for (const KernelSpan& k : t.timeline) spans.push_back({k.name, k.start_us, k.end_us});
  return summarize_timeline(spans);
}

DecodeTiming measure_prefill(Backend& backend, int batch, int prompt_len, int warmup, int iters) {
  if (batch < 1 || prompt_len < 1 || iters < 1 || warmup < 0)
    throw std::invalid_argument("measure_prefill: batch, prompt_len and iters must be positive, warmup >= 0");
  SequenceGuard guard{backend, {}};
  for (int b = 0; b < batch; ++b) guard.seqs.push_back(backend.create_sequence());
  return backend.benchmark_prefill(guard.seqs, prompt_len, warmup, iters);
}

DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters) {
  const DecodeTiming t = measure_decode(backend, batch, context, kWarmup, iters, 1234);
  const TimeStats step = summarize(t.step_us);
  StepShape shape;
  shape.batch = batch;
  shape.context = {context};
  shape.formats = backend.formats();
  // The CUDA backend folds small ops into their neighbours (cuda_fusions): count the bytes of the ops
  // it runs.
  if (backend.device() == DeviceKind::cuda) shape.fusions = cuda_fusions(backend.config(), shape);
  DecodeBenchResult r;
  r.batch = batch;
  r.context = context;
  r.iters = iters;
  r.ms_median = step.median / 1000.0;
  r.ms_p10 = step.p10 / 1000.0;
  r.ms_p90 = step.p90 / 1000.0;
  r.tokens_per_s = batch / (r.ms_median * 1e-3);
  for (const Op& op : step_ops(backend.config(), shape)) r.step_bytes += op.bytes();
  r.implied_GBps = r.step_bytes / (r.ms_median * 1e-3) / 1e9;
  for (const OpSamples& op : t.ops) r.ops_ms += summarize(op.us).median / 1000.0;
  r.method = t.method;
  return r;
}

}  // namespace ridgeline
