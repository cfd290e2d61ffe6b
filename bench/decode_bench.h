// One decode configuration measured on the real decode path, through the Backend seam's benchmark
// hooks: `batch` sequences filled to `context` - 1 tokens (fill_context), then the step that appends
// the context-th token to each, timed by benchmark_decode (on CUDA: graph replays back to back,
// events between them). The sweep (bench/sweep) and the GPU tests' decode benchmark both measure
// through measure_decode(), so a configuration has one number wherever the project prints it;
// measure_prefill() is the same for a prefill.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "analysis/timeline.h"
#include "engine/backend.h"

namespace ridgeline {

// Throws the backend's own errors when the batch or context does not fit. The sequences it makes
// are released on return, however it returns.
DecodeTiming measure_decode(Backend& backend, int batch, int context, int warmup, int iters, uint64_t seed);

// One prefill configuration, the compute-bound side of the same engine: `batch` empty sequences,
// each prefilled with `prompt_len` tokens, plus the greedy sample of each first token (time to first
// token), timed whole by the backend's benchmark_prefill() (on CUDA: every chunk of
// max_prefill_tokens, back to back, events between prefills). The step of the cost model that
// matches it is StepShape{batch, {prompt_len}, new_tokens_per_seq = prompt_len}. Throws and
// releases like measure_decode().
DecodeTiming measure_prefill(Backend& backend, int batch, int prompt_len, int warmup, int iters);

// The per-kernel summary (analysis/timeline.h) of the step the backend recorded in `t.timeline`
// (RIDGELINE_TIMELINE=1, CUDA with CUPTI); none when it recorded nothing.
std::optional<TimelineSummary> timeline_summary(const DecodeTiming& t);

struct DecodeBenchResult {
  int batch = 0;
  int context = 0;
  int iters = 0;
  double ms_median = 0.0, ms_p10 = 0.0, ms_p90 = 0.0;  // per step
  double tokens_per_s = 0.0;                           // batch / median step time
  int64_t step_bytes = 0;                              // the op table's bytes of the step (engine/ops.h)
  double implied_GBps = 0.0;                           // step_bytes / median step time
  double ops_ms = 0.0;                                 // sum of the per-op medians (profiling pass)
  std::string method;                                  // how the backend timed the step and the ops
};

// measure_decode() with the sweep's warm-up, summarized for printing.
DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters);

}  // namespace ridgeline
