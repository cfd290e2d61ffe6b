// A quick decode-step benchmark on the real decode path, through the Backend seam's benchmark hooks:
// `batch` sequences filled to `context` - 1 tokens (fill_context), then the step that appends the
// context-th token to each, replayed (on CUDA, from its graph) many times back to back and timed
// with events between replays (benchmark_decode). The sweep (bench/sweep) builds the full roofline
// report from the same hooks; this is the smoke number scripts/gpu-check.sh prints.
#pragma once

#include <cstdint>
#include <string>

#include "engine/backend.h"

namespace ridgeline::cuda {

struct DecodeBenchResult {
  int batch = 0;
  int context = 0;
  int iters = 0;
  double ms_median = 0.0, ms_p10 = 0.0, ms_p90 = 0.0;  // per step
  double tokens_per_s = 0.0;                           // batch / median step time
  int64_t weight_bytes = 0;                            // weights read per step
  int64_t kv_bytes = 0;                                // KV cache read per step (`context` tokens each)
  double implied_GBps = 0.0;                           // (weight_bytes + kv_bytes) / median step time
  double ops_ms = 0.0;                                 // sum of the per-op medians (profiling pass)
  std::string method;                                  // how the backend timed the step and the ops
};

// Any backend (the CPU one times with a host clock). Throws the backend's own errors when the batch
// or context does not fit. The sequences it makes are released on return.
DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters);

}  // namespace ridgeline::cuda
