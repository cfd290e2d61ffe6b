#include "engine/backend.h"

#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {

const char* to_string(WeightFormat f) {
  return f == WeightFormat::fp16 ? "fp16" : "w4a16";
}
const char* to_string(KvFormat f) {
  return f == KvFormat::fp16 ? "fp16" : "int8";
}

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "fp16") return WeightFormat::fp16;
  if (s == "w4a16") return WeightFormat::w4a16;
  throw std::invalid_argument(fmt::format("unknown weight format '{}' (expected fp16 or w4a16)", s));
}

KvFormat parse_kv_format(const std::string& s) {
  if (s == "fp16") return KvFormat::fp16;
  if (s == "int8") return KvFormat::int8;
  throw std::invalid_argument(fmt::format("unknown KV-cache format '{}' (expected fp16 or int8)", s));
}

}  // namespace ridgeline
