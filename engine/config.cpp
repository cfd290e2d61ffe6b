#include "engine/config.h"

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/error_text.h"
#include "engine/strict_json.h"
#include "engine/text_file.h"

namespace ridgeline {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", where, what));
}

// Fields are named in messages by their path: "hidden_size", "rope_scaling.factor".
std::string field(std::string_view parent, const char* key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

// The value of `key` in `obj`, or nullptr when it is absent or null (HF writes null for "unset").
const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

[[noreturn]] void mistyped(const std::string& where, const std::string& name, const char* expected,
                           const json& found) {
  fail(where, fmt::format("'{}' must be {}, found {}", name, expected, describe_json(found)));
}

int get_int(const json& obj, std::string_view parent, const char* key, const std::string& where,
            bool required = true, int fallback = 0) {
  const json* v = find(obj, key);
  if (!v) {
    if (required) fail(where, fmt::format("missing integer '{}'", field(parent, key)));
    return fallback;
  }
  if (!v->is_number_integer()) mistyped(where, field(parent, key), "an integer", *v);
  if (v->is_number_unsigned() ? v->get<uint64_t>() > (uint64_t{1} << 30)
                              : v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t{1} << 30))
    fail(where, fmt::format("'{}' = {} is out of range", field(parent, key), v->dump()));
  return static_cast<int>(v->get<int64_t>());
}

double get_number(const json& obj, std::string_view parent, const char* key, const std::string& where,
                  double fallback) {
  const json* v = find(obj, key);
  if (!v) return fallback;
  if (!v->is_number()) mistyped(where, field(parent, key), "a number", *v);
  return v->get<double>();
}

std::optional<std::string> get_string(const json& obj, std::string_view parent, const char* key,
                                      const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) mistyped(where, field(parent, key), "a string", *v);
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& obj, std::string_view parent, const char* key,
                             const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) mistyped(where, field(parent, key), "true or false", *v);
  return v->get<bool>();
}

// The object under `key`, or nullptr when it is absent or null.
const json* get_object(const json& obj, const char* key, const std::string& where, const char* expected) {
  const json* v = find(obj, key);
  if (v && !v->is_object()) mistyped(where, key, expected, *v);
  return v;
}

}  // namespace

int64_t ModelConfig::params() const {
  int64_t h = hidden;
  int64_t per_layer = h * qkv_dim() + int64_t(q_dim()) * h + 3 * h * intermediate + 2 * h;
  int64_t head = tie_word_embeddings ? 0 : int64_t(vocab) * h;
  return int64_t(vocab) * h + n_layers * per_layer + h + head;
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, fmt::format("config must be a JSON object, found {}", describe_json(j)));
  // Configs ridgeline writes itself (reports) leave model_type out; a checkpoint's names its model.
  if (auto mt = find(j, "model_type")) {
    if (!mt->is_string()) mistyped(where, "model_type", "the string 'internlm2'", *mt);
    if (*mt != "internlm2")
      fail(where,
           fmt::format("model_type is '{}', ridgeline runs 'internlm2' models (InternLM2, InternLM2.5)",
                       excerpt(mt->get_ref<const std::string&>())));
  }
  ModelConfig c;
  c.hidden = get_int(j, "", "hidden_size", where);
  c.n_layers = get_int(j, "", "num_hidden_layers", where);
  c.n_heads = get_int(j, "", "num_attention_heads", where);
  c.n_kv_heads = get_int(j, "", "num_key_value_heads", where, false, c.n_heads);
  c.intermediate = get_int(j, "", "intermediate_size", where);
  c.vocab = get_int(j, "", "vocab_size", where);
  c.max_positions = get_int(j, "", "max_position_embeddings", where, false, 2048);
  c.bos_id = get_int(j, "", "bos_token_id", where, false, 1);
  c.eos_id = get_int(j, "", "eos_token_id", where, false, 2);
  c.norm_eps = static_cast<float>(get_number(j, "", "rms_norm_eps", where, 1e-6));
  c.rope_theta = get_number(j, "", "rope_theta", where, 10000.0);
  c.tie_word_embeddings = get_bool(j, "", "tie_word_embeddings", where).value_or(false);
  c.torch_dtype = get_string(j, "", "torch_dtype", where).value_or(c.torch_dtype);
  if (get_bool(j, "", "bias", where).value_or(false))
    fail(where, "'bias': true is not an InternLM2 layout ridgeline supports (linear layers have no bias)");
  if (auto act = get_string(j, "", "hidden_act", where); act && *act != "silu")
    fail(where, fmt::format("hidden_act '{}' is not supported (InternLM2 uses 'silu')", excerpt(*act)));

  if (const json* rs = get_object(j, "rope_scaling", where, "null or an object {\"type\", \"factor\"}")) {
    // Older configs spell the kind "type", newer transformers "rope_type".
    auto type = get_string(*rs, "rope_scaling", "type", where);
    if (!type) type = get_string(*rs, "rope_scaling", "rope_type", where);
    if (!type) fail(where, "'rope_scaling' has no 'type' (expected 'linear' or 'dynamic')");
    if (*type == "dynamic") {
      c.rope_scaling = RopeScaling::dynamic;
    } else if (*type == "linear") {
      c.rope_scaling = RopeScaling::linear;
    } else {
      fail(where, fmt::format("rope_scaling type '{}' is not supported (use 'linear' or 'dynamic')",
                              excerpt(*type)));
    }
    c.rope_factor = get_number(*rs, "rope_scaling", "factor", where, 1.0);
    if (!(c.rope_factor >= 1.0) || !std::isfinite(c.rope_factor))
      fail(where, fmt::format("'rope_scaling.factor' must be a finite number >= 1, found {}", c.rope_factor));
  }
  if (const json* q = get_object(j, "quantization_config", where, "null or an object (AWQ settings)")) {
    auto method = get_string(*q, "quantization_config", "quant_method", where);
    if (method != "awq")
      fail(where, fmt::format("quantization_config.quant_method '{}' is not supported (only 'awq')",
                              excerpt(method.value_or(""))));
    c.quant_bits = get_int(*q, "quantization_config", "bits", where);
    c.quant_group_size = get_int(*q, "quantization_config", "group_size", where);
    if (c.quant_bits != 4)
      fail(where, fmt::format("AWQ with {} bits is not supported (only 4)", c.quant_bits));
    if (!get_bool(*q, "quantization_config", "zero_point", where).value_or(true))
      fail(where, "AWQ without zero points is not supported");
  }
  if (c.n_heads > 0) c.head_dim = c.hidden / c.n_heads;
  validate_config(c, where);
  return c;
}

void validate_config(const ModelConfig& c, const std::string& where) {
  auto positive = [&](int v, const char* key) {
    if (v <= 0) fail(where, fmt::format("'{}' must be positive, got {}", key, v));
  };
  positive(c.hidden, "hidden_size");
  positive(c.n_layers, "num_hidden_layers");
  positive(c.n_heads, "num_attention_heads");
  positive(c.n_kv_heads, "num_key_value_heads");
  positive(c.intermediate, "intermediate_size");
  positive(c.vocab, "vocab_size");
  positive(c.max_positions, "max_position_embeddings");
  if (c.hidden % c.n_heads != 0)
    fail(where, fmt::format("num_attention_heads ({}) must divide hidden_size ({})", c.n_heads, c.hidden));
  if (c.n_heads % c.n_kv_heads != 0)
    fail(where, fmt::format("num_key_value_heads ({}) must divide num_attention_heads ({})", c.n_kv_heads,
                            c.n_heads));
  if (c.head_dim % 2 != 0) fail(where, fmt::format("head_dim {} must be even for RoPE", c.head_dim));
  if (c.head_dim > 256) fail(where, fmt::format("head_dim {} is larger than the supported 256", c.head_dim));
  if (!(c.norm_eps > 0.0f) || !std::isfinite(c.norm_eps))
    fail(where, "rms_norm_eps must be a positive number");
  if (!(c.rope_theta > 0.0) || !std::isfinite(c.rope_theta))
    fail(where, "rope_theta must be a positive number");
  if (c.bos_id < 0 || c.bos_id >= c.vocab || c.eos_id < 0 || c.eos_id >= c.vocab)
    fail(where, "bos_token_id/eos_token_id must lie inside the vocabulary");
  if (c.quant_bits != 0 && (c.quant_group_size <= 0 || c.hidden % c.quant_group_size != 0 ||
                            c.intermediate % c.quant_group_size != 0))
    fail(where, fmt::format("AWQ group_size {} must divide hidden_size {} and intermediate_size {}",
                            c.quant_group_size, c.hidden, c.intermediate));
}

ModelConfig load_config(const std::string& path) {
  return config_from_json(parse_strict_json(read_text_file(path, "a config.json file"), path, "config"),
                          path);
}

json config_to_json(const ModelConfig& c) {
  json j = {{"hidden_size", c.hidden},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_kv_heads},
            {"head_dim", c.head_dim},
            {"intermediate_size", c.intermediate},
            {"vocab_size", c.vocab},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"max_position_embeddings", c.max_positions},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"torch_dtype", c.torch_dtype}};
  if (c.rope_scaling == RopeScaling::none) {
    j["rope_scaling"] = nullptr;
  } else {
    j["rope_scaling"] = {{"type", c.rope_scaling == RopeScaling::dynamic ? "dynamic" : "linear"},
                         {"factor", c.rope_factor}};
  }
  return j;
}

double rope_base_for_length(const ModelConfig& c, int seq_len) {
  if (c.rope_scaling != RopeScaling::dynamic || seq_len <= c.max_positions) return c.rope_theta;
  double d = c.head_dim;
  double ratio = c.rope_factor * seq_len / c.max_positions - (c.rope_factor - 1.0);
  return c.rope_theta * std::pow(ratio, d / (d - 2.0));
}

}  // namespace ridgeline
