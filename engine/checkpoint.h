// An InternLM2 checkpoint folder in the Hugging Face layout: config.json plus either one
// model.safetensors or shards listed by model.safetensors.index.json. Opening one maps every shard,
// and proves that every tensor the model needs is there with the right dtype and shape, so later
// stages (host weights, GPU upload) never meet a missing or misshapen tensor.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/safetensors.h"

namespace ridgeline {

struct Checkpoint {
  std::string dir;
  ModelConfig config;
  std::vector<SafetensorsFile> files;         // owns the mappings the views point into
  std::map<std::string, TensorView> tensors;  // every tensor of every file, by name
  bool awq = false;                           // config.quant_bits == 4: linears are qweight/qzeros/scales

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws "<dir>: checkpoint has no tensor '<name>'" when absent.
  const TensorView& get(const std::string& name) const;
};

// A linear layer of one transformer layer: `prefix` + ".weight" (dense) or + ".qweight"/".qzeros"/
// ".scales" (AWQ); weight shape [out, in].
struct LinearSpec {
  std::string prefix;  // "model.layers.3.attention.wqkv"
  int out = 0;
  int in = 0;
};

// wqkv, wo, w1, w3, w2 of `layer`, in that order, with their shapes under `c`.
std::vector<LinearSpec> internlm2_linears(const ModelConfig& c, int layer);

// The shards that model.safetensors.index.json text names, each with the tensors its weight_map puts
// there. Throws std::runtime_error("<where>: ...") on invalid JSON, a repeated key, a missing or
// empty weight_map, or a shard name that is not a plain file name in the checkpoint folder.
std::map<std::string, std::vector<std::string>> parse_checkpoint_index(std::string_view text,
                                                                       const std::string& where);

// Whether the checkpoint folder `dir` lists tensor `name`: in its index's weight_map, or else in its
// single file's header; nothing else is opened or validated. False where neither can be read
// (open_checkpoint() names what is wrong when the weights load). resolve_model() asks it whether an
// AWQ checkpoint's head is 4-bit, before any backend exists.
bool checkpoint_lists_tensor(const std::string& dir, const std::string& name);

// Reads <dir>/config.json and the weights, and validates them (see the header comment). Throws
// std::runtime_error with one line naming the file, the tensor, and the expected and actual
// dtype/shape on any problem.
Checkpoint open_checkpoint(const std::string& dir);

}  // namespace ridgeline
