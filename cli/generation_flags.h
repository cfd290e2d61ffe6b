// The generation flags `generate` and `chat` share: --max-new-tokens, --temperature, --top-k,
// --top-p, --seed, checked as they parse (a NaN or infinite temperature, a top-p outside (0, 1] is a
// usage error naming its flag) and turned into GenerateOptions (stop ids are the caller's).
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

#include "engine/generate.h"

namespace ridgeline::cli {

struct GenerationFlags {
  int max_new_tokens = 0;
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  int64_t seed = 0;
};

void add_generation_flags(CLI::App& app, GenerationFlags& flags, int default_max_new_tokens,
                          int min_new_tokens);
GenerateOptions generation_options(const GenerationFlags& flags);

}  // namespace ridgeline::cli
