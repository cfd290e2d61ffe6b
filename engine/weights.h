// Model weights as the CPU reference backend holds them: float32, row-major, in the checkpoint's
// own layouts (a Linear's weight is [out, in]). AWQ checkpoints arrive here dequantized.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/config.h"

namespace ridgeline {

struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

struct LayerWeights {
  HostTensor attention_norm;  // [hidden]
  HostTensor wqkv;            // [(n_heads + 2*n_kv_heads)*head_dim, hidden], grouped per KV head
  HostTensor wo;              // [hidden, n_heads*head_dim]
  HostTensor ffn_norm;        // [hidden]
  HostTensor w1;              // gate [intermediate, hidden]
  HostTensor w3;              // up   [intermediate, hidden]
  HostTensor w2;              // down [hidden, intermediate]
};

struct HostWeights {
  ModelConfig config;
  HostTensor tok_embeddings;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  HostTensor norm;    // [hidden]
  HostTensor output;  // [vocab, hidden] (the embeddings again when tied)
};

}  // namespace ridgeline
