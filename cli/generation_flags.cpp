#include "cli/generation_flags.h"

#include <limits>

#include "cli/flags.h"

namespace ridgeline::cli {

void add_generation_flags(CLI::App& app, GenerationFlags& f, int default_max_new_tokens, int min_new_tokens) {
  constexpr long long kIntMax = std::numeric_limits<int>::max();
  f.max_new_tokens = default_max_new_tokens;
  app.add_option("--max-new-tokens", f.max_new_tokens, "the most tokens a reply may have")
      ->type_name("N")
      ->check(integer_in(min_new_tokens, kIntMax))
      ->capture_default_str();
  app.add_option("--temperature", f.temperature, "sampling temperature; 0 is greedy")
      ->type_name("T")
      ->check(number_in(0, std::numeric_limits<float>::max()))
      ->capture_default_str();
  app.add_option("--top-k", f.top_k, "sample among the K likeliest tokens; 0 is no limit")
      ->type_name("K")
      ->check(integer_in(0, kIntMax))
      ->capture_default_str();
  app.add_option("--top-p", f.top_p, "sample among the likeliest tokens whose probabilities sum to P")
      ->type_name("P")
      ->check(number_in(0, 1, /*min_open=*/true))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "sampling seed: the draw for a token depends on (seed, position) only")
      ->type_name("S")
      ->check(integer_in(0, std::numeric_limits<long long>::max()))
      ->capture_default_str();
}

GenerateOptions generation_options(const GenerationFlags& f) {
  GenerateOptions opt;
  opt.max_new_tokens = f.max_new_tokens;
  opt.sampling.temperature = float(f.temperature);
  opt.sampling.top_k = f.top_k;
  opt.sampling.top_p = float(f.top_p);
  opt.sampling.seed = uint64_t(f.seed);
  return opt;
}

}  // namespace ridgeline::cli
