#include "engine/formats.h"

#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {

const char* to_string(WeightFormat f) {
  switch (f) {
    case WeightFormat::fp16:
      return "fp16";
    case WeightFormat::w4a16:
      return "w4a16";
  }
  return "?";
}

const char* to_string(KvFormat f) {
  switch (f) {
    case KvFormat::fp16:
      return "fp16";
    case KvFormat::int8:
      return "int8";
    case KvFormat::int4:
      return "int4";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view s) {
  for (WeightFormat f : {WeightFormat::fp16, WeightFormat::w4a16})
    if (s == to_string(f)) return f;
  throw std::invalid_argument(fmt::format("unknown weight format '{}' (expected fp16 or w4a16)", s));
}

KvFormat parse_kv_format(std::string_view s) {
  for (KvFormat f : {KvFormat::fp16, KvFormat::int8, KvFormat::int4})
    if (s == to_string(f)) return f;
  throw std::invalid_argument(fmt::format("unknown KV-cache format '{}' (expected fp16, int8 or int4)", s));
}

int kv_bits(KvFormat f) {
  switch (f) {
    case KvFormat::fp16:
      return 16;
    case KvFormat::int8:
      return 8;
    case KvFormat::int4:
      return 4;
  }
  return 0;
}

}  // namespace ridgeline
