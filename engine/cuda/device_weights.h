// fp16 model weights in device memory, in the layouts the CUDA forward wants: the checkpoint's own
// [out, in] Linears, except that w1 (gate) and w3 (up) are stacked into one [2*inter, hidden] w13
// so the FFN's two input projections are one GEMM that reads x once (swiglu takes its output as
// [gate | up] per row). Filled either from a checkpoint (bf16/fp16/fp32 uploaded, then converted
// on the device) or, for presets, by generating the synthetic values on the device itself, so a
// 40 GB preset never exists in host memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cuda_fp16.h>

#include "engine/config.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model_source.h"

namespace ridgeline::cuda {

struct DeviceLayerWeights {
  DeviceBuffer<half> attention_norm;  // [hidden]
  DeviceBuffer<half> wqkv;            // [qkv_dim, hidden], grouped per KV head as in the checkpoint
  DeviceBuffer<half> wo;              // [hidden, q_dim]
  DeviceBuffer<half> ffn_norm;        // [hidden]
  DeviceBuffer<half> w13;             // [2*inter, hidden]: w1 rows, then w3 rows
  DeviceBuffer<half> w2;              // [hidden, inter]
};

struct DeviceWeights {
  ModelConfig config;
  DeviceBuffer<half> tok_embeddings;  // [vocab, hidden]
  std::vector<DeviceLayerWeights> layers;
  DeviceBuffer<half> norm;    // [hidden]
  DeviceBuffer<half> output;  // [vocab, hidden]; empty when tied (output_weights() gives the embeddings)

  const half* output_weights() const { return output.get() ? output.get() : tok_embeddings.get(); }
};

// Bytes of the device buffers `w` holds: what the op table's weight_bytes() (engine/ops.h) must
// count (a test checks it).
int64_t allocated_bytes(const DeviceWeights& w);

// Loads the model of `source` onto the current device. Throws before allocating anything when
// the op table's weight bytes + `reserve_bytes` is more than the device's free memory ("preset <name> needs
// N GiB of GPU memory for fp16 weights; M GiB free"), and for AWQ checkpoints (not built yet).
DeviceWeights load_device_weights(const ModelSource& source, int64_t reserve_bytes, cudaStream_t stream);

}  // namespace ridgeline::cuda
