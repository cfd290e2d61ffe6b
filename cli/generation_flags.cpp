#include "cli/generation_flags.h"

#include <fmt/format.h>

namespace ridgeline::cli {

GenerateOptions generation_flags(const Args& a, int default_max_new_tokens, int min_new_tokens) {
  GenerateOptions opt;
  opt.max_new_tokens = a.get_int("max-new-tokens", default_max_new_tokens);
  if (opt.max_new_tokens < min_new_tokens)
    throw UsageError(fmt::format("--max-new-tokens must be >= {}", min_new_tokens));
  opt.sampling.temperature = float(a.get_double("temperature", 0.0));
  opt.sampling.top_k = a.get_int("top-k", 0);
  opt.sampling.top_p = float(a.get_double("top-p", 1.0));
  opt.sampling.seed = uint64_t(a.get_int64("seed", 0));
  if (opt.sampling.temperature < 0 || opt.sampling.top_k < 0 ||
      !(opt.sampling.top_p > 0 && opt.sampling.top_p <= 1))
    throw UsageError("--temperature must be >= 0, --top-k >= 0, --top-p in (0, 1]");
  return opt;
}

}  // namespace ridgeline::cli
