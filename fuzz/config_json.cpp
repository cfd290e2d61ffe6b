// Fuzzes the config.json path as load_config() runs it (strict JSON, then config_from_json()). An
// accepted config must give the shapes every later stage divides by and allocates from, and a
// finite RoPE base across the context (the forward would produce NaN logits otherwise).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "engine/config.h"
#include "engine/strict_json.h"
#include "fuzz/fuzz_checks.h"

using namespace ridgeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ModelConfig c;
  try {
    c = config_from_json(parse_strict_json(text, "fuzz/config.json", "config"), "fuzz/config.json");
  } catch (const std::runtime_error& e) {
    fuzz::check_error_line(e);
    return 0;
  }
  fuzz::require(c.hidden > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.intermediate > 0 &&
                    c.vocab > 0 && c.max_positions > 0,
                "accepted a non-positive size");
  fuzz::require(c.head_dim > 0 && c.head_dim % 2 == 0 && c.head_dim * c.n_heads == c.hidden,
                "accepted an inconsistent head_dim");
  fuzz::require(c.n_heads % c.n_kv_heads == 0, "accepted n_kv_heads that does not divide n_heads");
  fuzz::require(std::isfinite(c.norm_eps) && c.norm_eps > 0, "accepted a bad rms_norm_eps");
  fuzz::require(c.bos_id >= 0 && c.bos_id < c.vocab && c.eos_id >= 0 && c.eos_id < c.vocab,
                "accepted bos/eos outside the vocabulary");
  fuzz::require(c.quant_bits == 0 || (c.quant_group_size > 0 && c.hidden % c.quant_group_size == 0),
                "accepted an AWQ group size that does not divide hidden_size");
  for (int len : {1, c.max_positions, c.max_positions + 1, 4 * c.max_positions}) {
    double base = rope_base_for_length(c, len);
    fuzz::require(std::isfinite(base) && base > 0, "RoPE base is not a finite positive number");
  }
  return 0;
}
