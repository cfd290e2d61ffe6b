// Generation over any backend: prefill the prompt, then decode one token at a time until a stop
// token, the token limit, the context limit, or the caller says stop.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace ridgeline {

// Why generation ended. none: it has not run yet.
enum class StopReason { none, stop_token, max_new_tokens, context_full, interrupted };
const char* to_string(StopReason r);  // "stop_token", ..., "" for none

struct GenerateOptions {
  int max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int> stop_ids;  // generation ends after emitting one of these (it is kept in output_ids)
  bool keep_logits = false;   // record the logits each output token was drawn from
};

struct GenerateResult {
  std::vector<int> output_ids;
  std::vector<float> step_logits;  // [output_ids.size(), vocab] when keep_logits
  StopReason stop_reason = StopReason::none;
  int prefill_tokens = 0;
  double prefill_ms = 0.0;  // wall time of the prefill forward, first token's sampling included
  double decode_ms = 0.0;   // wall time of the decode steps
};

// Appends `prompt` to sequence `seq` (which may already hold earlier turns) and generates.
// `on_token` is called with each new token; returning false stops generation ("interrupted").
GenerateResult generate(Backend& backend, int seq, const std::vector<int>& prompt,
                        const GenerateOptions& options, const std::function<bool(int)>& on_token = {});

}  // namespace ridgeline
