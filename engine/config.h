// InternLM2 model configuration: what config.json says, validated, plus the derived sizes the
// engine and the cost model need. Plain data; parse_config() is the only way in from a file.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace ridgeline {

enum class RopeScaling { none, linear, dynamic };

struct ModelConfig {
  std::string name;             // preset name or checkpoint folder name, for reports
  int hidden = 0;               // hidden_size
  int n_layers = 0;             // num_hidden_layers
  int n_heads = 0;              // num_attention_heads (query heads)
  int n_kv_heads = 0;           // num_key_value_heads (GQA: n_heads % n_kv_heads == 0)
  int head_dim = 0;             // hidden / n_heads
  int intermediate = 0;         // intermediate_size of the SwiGLU FFN
  int vocab = 0;                // vocab_size
  float norm_eps = 1e-5f;       // rms_norm_eps
  double rope_theta = 10000.0;  // base of the rotary frequencies
  RopeScaling rope_scaling = RopeScaling::none;
  double rope_factor = 1.0;  // rope_scaling.factor
  int max_positions = 2048;  // max_position_embeddings (the trained context; dynamic NTK grows past it)
  bool tie_word_embeddings = false;
  std::string torch_dtype = "bfloat16";
  int bos_id = 1;
  int eos_id = 2;
  // quantization_config of AWQ checkpoints: 0 bits means unquantized.
  int quant_bits = 0;
  int quant_group_size = 0;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int qkv_dim() const { return (n_heads + 2 * n_kv_heads) * head_dim; }
  int group() const { return n_heads / n_kv_heads; }
  // Parameter count of the dense model (embeddings + layers + norm + head).
  int64_t params() const;
};

// Parses an InternLM2 config.json object; throws std::runtime_error naming the key on anything
// missing, mistyped or inconsistent. `where` names the file in messages.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);
ModelConfig load_config(const std::string& path);
nlohmann::json config_to_json(const ModelConfig& c);
// Throws with a message naming the offending field if the shapes are inconsistent.
void validate_config(const ModelConfig& c, const std::string& where);

// The base frequency used at sequence length `seq_len`: rope_theta, or under dynamic NTK scaling
// (as in InternLM2's modeling code) theta * ((factor*len/max_pos) - (factor-1))^(d/(d-2)) once
// len exceeds max_positions.
double rope_base_for_length(const ModelConfig& c, int seq_len);

// The longest a sequence may grow: the trained context, or, with RoPE scaling (which extends it),
// 8 times that.
inline int64_t max_sequence_length(const ModelConfig& c) {
  return c.rope_scaling == RopeScaling::none ? c.max_positions : int64_t{c.max_positions} * 8;
}

}  // namespace ridgeline
