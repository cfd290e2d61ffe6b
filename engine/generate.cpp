#include "engine/generate.h"

#include <algorithm>
#include <chrono>

namespace ridgeline {
namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::none:
      return "";
    case StopReason::stop_token:
      return "stop_token";
    case StopReason::max_new_tokens:
      return "max_new_tokens";
    case StopReason::context_full:
      return "context_full";
    case StopReason::interrupted:
      return "interrupted";
  }
  return "?";
}

GenerateResult generate(Backend& backend, int seq, const std::vector<int>& prompt,
                        const GenerateOptions& options, const std::function<bool(int)>& on_token) {
  GenerateResult r;
  const int vocab = backend.config().vocab;
  std::vector<float> logits(options.keep_logits ? vocab : 0);
  float* logits_out = options.keep_logits ? logits.data() : nullptr;
  const int seqs[1] = {seq};
  const SamplingParams params[1] = {options.sampling};

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int>> step(1, prompt);
  backend.forward(seqs, step, logits_out);
  r.prefill_tokens = int(prompt.size());
  bool prefill = true;
  for (int i = 0; i < options.max_new_tokens; ++i) {
    int token = 0;
    backend.sample(seqs, params, &token);
    if (prefill) {
      r.prefill_ms = ms_since(t0);
      t0 = std::chrono::steady_clock::now();
      prefill = false;
    }
    r.output_ids.push_back(token);
    if (options.keep_logits) r.step_logits.insert(r.step_logits.end(), logits.begin(), logits.end());
    if (on_token && !on_token(token)) {
      r.stop_reason = StopReason::interrupted;
      break;
    }
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
      r.stop_reason = StopReason::stop_token;
      break;
    }
    if (i + 1 == options.max_new_tokens) {
      r.stop_reason = StopReason::max_new_tokens;
      break;
    }
    if (backend.capacity_tokens() < 1 || backend.sequence_length(seq) + 1 > backend.max_sequence_length()) {
      r.stop_reason = StopReason::context_full;
      break;
    }
    step[0].assign(1, token);
    backend.forward(seqs, step, logits_out);
  }
  if (options.max_new_tokens <= 0) r.stop_reason = StopReason::max_new_tokens;
  r.decode_ms = prefill ? 0.0 : ms_since(t0);
  return r;
}

}  // namespace ridgeline
