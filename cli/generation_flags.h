// The generation flags `generate` and `chat` share: --max-new-tokens, --temperature, --top-k,
// --top-p, --seed, validated into GenerateOptions (stop ids are the caller's).
#pragma once

#include "cli/args.h"
#include "engine/generate.h"

namespace ridgeline::cli {

GenerateOptions generation_flags(const Args& a, int default_max_new_tokens, int min_new_tokens);

}  // namespace ridgeline::cli
