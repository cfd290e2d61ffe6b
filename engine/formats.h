// Weight and KV-cache formats: the one type that the engine, the cost model, the sweep and the
// report share, parsed and printed here and nowhere else.
#pragma once

#include <string>
#include <string_view>

namespace ridgeline {

enum class WeightFormat {
  fp16,   // fp16 linears (bf16 and fp32 checkpoints are converted at load)
  w4a16,  // 4-bit linears, asymmetric, an fp16 scale and zero per `group_size` inputs; fp16 activations
};

enum class KvFormat {
  fp16,  // fp16 K and V
  int8,  // 8-bit codes, an fp16 scale and zero per (token, KV head); K quantized after RoPE
  int4,  // 4-bit codes (two per byte), same scales
};

// The w4a16 quantization group along the input dimension, unless a checkpoint says otherwise.
inline constexpr int kDefaultGroupSize = 128;

// What a model runs as: weight format (with its group), KV-cache format, and the output head's format.
struct Formats {
  WeightFormat weights = WeightFormat::fp16;
  int group_size = kDefaultGroupSize;  // w4a16 only (the 4-bit head's group too)
  KvFormat kv = KvFormat::fp16;
  // The output head: fp16, or w4a16 where the checkpoint holds it 4-bit (output.qweight, written by
  // `ridgeline quantize --quantize-head`). Not a flag: it comes from the checkpoint (default_formats).
  WeightFormat head = WeightFormat::fp16;
};

const char* to_string(WeightFormat f);  // "fp16" | "w4a16"
const char* to_string(KvFormat f);      // "fp16" | "int8" | "int4"
// Throw std::invalid_argument naming the accepted values.
WeightFormat parse_weight_format(std::string_view s);
KvFormat parse_kv_format(std::string_view s);

// Bits of one stored K or V element.
int kv_bits(KvFormat f);

}  // namespace ridgeline
