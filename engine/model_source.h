// Where a model comes from: a checkpoint folder (config.json + safetensors) or a built-in preset
// (real InternLM2 shapes, synthetic weights generated from a seed, on the device for CUDA).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/formats.h"

namespace ridgeline {

struct ModelSource {
  ModelConfig config;
  bool synthetic = false;  // preset: weights from kernels/synthetic.h with `seed`
  uint64_t seed = 0;
  std::string checkpoint_dir;  // empty for presets
  std::string tokenizer_path;  // folder or tokenizer.model; empty when the model has none
  // The output head as the checkpoint stores it: w4a16 for an AWQ checkpoint with output.qweight
  // (`ridgeline quantize --quantize-head`), fp16 otherwise (presets too). default_formats() copies it.
  WeightFormat head_format = WeightFormat::fp16;
};

// The presets' configs, by name: internlm2-chat-1_8b, internlm2-chat-7b, internlm2-chat-20b,
// internlm2_5-7b-chat.
std::vector<std::string> preset_names();
bool is_preset(const std::string& name);
ModelConfig preset_config(const std::string& name);  // throws listing the presets

// `dir_or_preset` names a preset or a checkpoint folder; throws with a message naming both
// possibilities when it is neither. Presets use the bundled real InternLM2 tokenizer when it can be
// found (engine/data_paths.h).
ModelSource resolve_model(const std::string& dir_or_preset, uint64_t seed = 0x5EED);

}  // namespace ridgeline
