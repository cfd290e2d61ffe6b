#include "engine/config.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ridgeline {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", where, what));
}

int get_int(const json& j, const char* key, const std::string& where, bool required = true,
            int fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(where, fmt::format("missing integer '{}'", key));
    return fallback;
  }
  if (!it->is_number_integer()) fail(where, fmt::format("'{}' must be an integer, got {}", key, it->dump()));
  int64_t v = it->get<int64_t>();
  if (v < 0 || v > (int64_t{1} << 30)) fail(where, fmt::format("'{}' = {} is out of range", key, v));
  return static_cast<int>(v);
}

double get_number(const json& j, const char* key, const std::string& where, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(where, fmt::format("'{}' must be a number, got {}", key, it->dump()));
  return it->get<double>();
}

}  // namespace

int64_t ModelConfig::params() const {
  int64_t h = hidden;
  int64_t per_layer = h * qkv_dim() + int64_t(q_dim()) * h + 3 * h * intermediate + 2 * h;
  int64_t head = tie_word_embeddings ? 0 : int64_t(vocab) * h;
  return int64_t(vocab) * h + n_layers * per_layer + h + head;
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "config must be a JSON object");
  if (auto mt = j.find("model_type"); mt != j.end() && mt->is_string() && *mt != "internlm2")
    fail(where, fmt::format("model_type is '{}', ridgeline runs 'internlm2' models", mt->get<std::string>()));
  ModelConfig c;
  c.hidden = get_int(j, "hidden_size", where);
  c.n_layers = get_int(j, "num_hidden_layers", where);
  c.n_heads = get_int(j, "num_attention_heads", where);
  c.n_kv_heads = get_int(j, "num_key_value_heads", where, false, c.n_heads);
  c.intermediate = get_int(j, "intermediate_size", where);
  c.vocab = get_int(j, "vocab_size", where);
  c.max_positions = get_int(j, "max_position_embeddings", where, false, 2048);
  c.bos_id = get_int(j, "bos_token_id", where, false, 1);
  c.eos_id = get_int(j, "eos_token_id", where, false, 2);
  c.norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", where, 1e-6));
  c.rope_theta = get_number(j, "rope_theta", where, 10000.0);
  if (auto t = j.find("tie_word_embeddings"); t != j.end() && !t->is_null()) {
    if (!t->is_boolean()) fail(where, "'tie_word_embeddings' must be true or false");
    c.tie_word_embeddings = t->get<bool>();
  }
  if (auto t = j.find("torch_dtype"); t != j.end() && t->is_string()) c.torch_dtype = t->get<std::string>();
  if (auto b = j.find("bias"); b != j.end() && b->is_boolean() && b->get<bool>())
    fail(where, "'bias': true is not an InternLM2 layout ridgeline supports (linear layers have no bias)");
  if (auto act = j.find("hidden_act"); act != j.end() && act->is_string() && *act != "silu")
    fail(where,
         fmt::format("hidden_act '{}' is not supported (InternLM2 uses 'silu')", act->get<std::string>()));

  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) fail(where, "'rope_scaling' must be null or an object");
    std::string type = rs->value("type", rs->value("rope_type", std::string{}));
    if (type == "dynamic") {
      c.rope_scaling = RopeScaling::dynamic;
    } else if (type == "linear") {
      c.rope_scaling = RopeScaling::linear;
    } else {
      fail(where, fmt::format("rope_scaling type '{}' is not supported (use 'linear' or 'dynamic')", type));
    }
    c.rope_factor = get_number(*rs, "factor", where + " rope_scaling", 1.0);
    if (!(c.rope_factor >= 1.0)) fail(where, "rope_scaling.factor must be >= 1");
  }
  if (auto q = j.find("quantization_config"); q != j.end() && !q->is_null()) {
    std::string method = q->value("quant_method", std::string{});
    if (method != "awq")
      fail(where, fmt::format("quantization_config.quant_method '{}' is not supported (only 'awq')", method));
    c.quant_bits = get_int(*q, "bits", where + " quantization_config");
    c.quant_group_size = get_int(*q, "group_size", where + " quantization_config");
    if (c.quant_bits != 4)
      fail(where, fmt::format("AWQ with {} bits is not supported (only 4)", c.quant_bits));
    if (q->contains("zero_point") && !q->value("zero_point", true))
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
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open config file", path));
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, fmt::format("invalid JSON ({})", e.what()));
  }
  return config_from_json(j, path);
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
