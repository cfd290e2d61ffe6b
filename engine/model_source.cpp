#include "engine/model_source.h"

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/checkpoint.h"
#include "engine/data_paths.h"

namespace ridgeline {
namespace {

ModelConfig make_preset(const std::string& name, int hidden, int layers, int heads, int kv_heads, int inter,
                        int max_positions, RopeScaling scaling, double factor) {
  ModelConfig c;
  c.name = name;
  c.hidden = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.intermediate = inter;
  c.vocab = 92544;
  c.norm_eps = 1e-5f;
  c.rope_theta = 1000000.0;
  c.rope_scaling = scaling;
  c.rope_factor = factor;
  c.max_positions = max_positions;
  c.torch_dtype = "bfloat16";
  validate_config(c, "preset " + name);
  return c;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"internlm2-chat-1_8b", "internlm2-chat-7b", "internlm2-chat-20b", "internlm2_5-7b-chat"};
}

bool is_preset(const std::string& name) {
  for (const auto& p : preset_names())
    if (p == name) return true;
  return false;
}

ModelConfig preset_config(const std::string& name) {
  // Shapes of the published checkpoints' config.json files.
  if (name == "internlm2-chat-1_8b")
    return make_preset(name, 2048, 24, 16, 8, 8192, 32768, RopeScaling::dynamic, 2.0);
  if (name == "internlm2-chat-7b")
    return make_preset(name, 4096, 32, 32, 8, 14336, 32768, RopeScaling::none, 1.0);
  if (name == "internlm2-chat-20b")
    return make_preset(name, 6144, 48, 48, 8, 16384, 32768, RopeScaling::dynamic, 2.0);
  if (name == "internlm2_5-7b-chat")
    return make_preset(name, 4096, 32, 32, 8, 14336, 32768, RopeScaling::dynamic, 2.0);
  throw std::runtime_error(
      fmt::format("unknown preset '{}' (presets: {})", name, fmt::join(preset_names(), ", ")));
}

ModelSource resolve_model(const std::string& dir_or_preset, uint64_t seed) {
  ModelSource s;
  if (is_preset(dir_or_preset)) {
    s.config = preset_config(dir_or_preset);
    s.synthetic = true;
    s.seed = seed;
    s.tokenizer_path = bundled_tokenizer("internlm2");
    return s;
  }
  namespace fs = std::filesystem;
  fs::path dir(dir_or_preset);
  if (!fs::is_directory(dir))
    throw std::runtime_error(fmt::format("--model '{}' is neither a checkpoint folder nor a preset ({})",
                                         dir_or_preset, fmt::join(preset_names(), ", ")));
  if (!fs::exists(dir / "config.json"))
    throw std::runtime_error(fmt::format("{}: no config.json in the checkpoint folder", dir.string()));
  s.config = load_config((dir / "config.json").string());
  s.config.name = fs::weakly_canonical(dir).filename().string();
  s.checkpoint_dir = dir.string();
  if (fs::exists(dir / "tokenizer.model")) s.tokenizer_path = dir.string();
  if (s.config.quant_bits != 0 && checkpoint_lists_tensor(s.checkpoint_dir, "output.qweight"))
    s.head_format = WeightFormat::w4a16;
  return s;
}

}  // namespace ridgeline
