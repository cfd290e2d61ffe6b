// A quick decode-step benchmark on the real decode path: `batch` sequences filled to `context`
// tokens, then the step that appends one more token to each, replayed from its CUDA graph many
// times back to back and timed with events between replays. The sweep (bench/) builds the full
// roofline report; this is the smoke number gpu-check prints.
#pragma once

#include <cstdint>

#include "engine/backend.h"

namespace ridgeline::cuda {

struct DecodeBenchResult {
  int batch = 0;
  int context = 0;
  int iters = 0;
  double ms_median = 0.0, ms_p10 = 0.0, ms_p90 = 0.0;  // per step
  double tokens_per_s = 0.0;                           // batch / median step time
  int64_t weight_bytes = 0;                            // weights read per step
  int64_t kv_bytes = 0;                                // KV cache read per step (context + 1 tokens each)
  double implied_GBps = 0.0;                           // (weight_bytes + kv_bytes) / median step time
};

// Throws std::invalid_argument when `backend` is not the CUDA backend, and the backend's own
// errors when the batch or context does not fit. The sequences it makes are released on return.
DecodeBenchResult bench_decode(Backend& backend, int batch, int context, int iters);

}  // namespace ridgeline::cuda
