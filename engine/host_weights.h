// Model weights in host memory as float32 (engine/weights.h), from a checkpoint or from a preset's
// synthetic generator, plus the 16-bit float conversions every loader needs.
#pragma once

#include <cstdint>
#include <string>

#include "engine/awq_format.h"  // dequantize_awq, once declared here
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/safetensors.h"
#include "engine/weights.h"

namespace ridgeline {

// Exact widenings (every bf16/fp16 value, subnormals, infinities and NaNs included, is a float).
float bf16_to_float(uint16_t bits);
float fp16_to_float(uint16_t bits);
// Narrowings with round-to-nearest-even; overflow gives infinity, NaN stays NaN.
uint16_t float_to_fp16(float f);
uint16_t float_to_bf16(float f);

// A BF16/F16/F32 tensor as float32 with its shape; throws naming the tensor for any other dtype.
HostTensor to_host_tensor(const TensorView& t);

// Bytes a HostWeights of `c` takes (the output head counted again when tied: it is a copy).
int64_t host_weights_bytes(const ModelConfig& c);
// Memory this process can still take: MemAvailable, lowered to the cgroup's limit when one is set.
int64_t available_host_memory_bytes();
// Throws "<what> needs N GB of host memory for the CPU backend; M GB available" when `bytes` does
// not fit in available_host_memory_bytes().
void check_host_memory(int64_t bytes, const std::string& what);

// Every weight of the checkpoint as float32 (AWQ linears dequantized, the output head too when it is
// 4-bit; a tied output head is a copy of the embeddings). Checks host memory first.
HostWeights load_host_weights(const Checkpoint& ck);

// The same, one part at a time, for tools that hold one layer in float32 rather than the whole model
// (the quantizer): the weights outside the layers (embeddings, final norm, head; `layers` left
// empty), and one layer. Neither checks host memory.
HostWeights load_weights_outside_layers(const Checkpoint& ck);
LayerWeights load_layer_weights(const Checkpoint& ck, int layer);

// Synthetic weights (kernels/synthetic.h) so that a preset's host and device weights are the same
// numbers. Tensor ids and slots as in synthetic.h; the index is the flat row-major element index.
//   embeddings  synthetic_value(seed, 0, i, 0)            uniform in [-1, 1)
//   final norm  synthetic_norm_value(seed, 1, i)
//   output      synthetic_value(seed, 2, i, synthetic_shift(hidden))   (a copy of the embeddings when tied)
//   layer l     norms: synthetic_norm_value(seed, synthetic_tensor_id(l, slot), i);
//               linears: synthetic_value(seed, synthetic_tensor_id(l, slot), i, synthetic_linear_shift(c,
//               slot))
// Checks host memory first ("preset <name> needs ...").
HostWeights synthetic_host_weights(const ModelConfig& c, uint64_t seed);
// The same, one part at a time (see load_weights_outside_layers); no memory check.
HostWeights synthetic_weights_outside_layers(const ModelConfig& c, uint64_t seed);
LayerWeights synthetic_layer_weights(const ModelConfig& c, uint64_t seed, int layer);

// round(log2(sqrt(n))), halves rounded up (n = 512 gives 5): with values uniform in
// [-2^-shift, 2^-shift), a dot product over n unit-scale inputs stays near unit scale.
int synthetic_shift(int64_t n);
// Shift of the linear in layer slot 1 (wqkv), 2 (wo), 4 (w1), 5 (w3) or 6 (w2): synthetic_shift of
// its in_features, plus synthetic_shift(2*n_layers) for wo and w2, which add into the residual
// stream 2*n_layers times. Throws for other slots.
int synthetic_linear_shift(const ModelConfig& c, int slot);

}  // namespace ridgeline
