// The float32 weights a preset runs with under --weights w4a16: every layer linear (wqkv, wo, w1,
// w3, w2) quantized to 4 bits by round-to-nearest (engine/quantize_rtn.h, groups of `group_size`
// inputs) and read back. For the presets' synthetic weights, which are exact in fp16, this is bit
// for bit what the CUDA backend's device quantizer (kernels/w4a16_quantize.cu) stores at load, so
// it is the CPU reference of a w4a16 preset. Embeddings, norms and the head stay as they are.
#pragma once

#include "engine/weights.h"

namespace ridgeline {

// Replaces each layer linear of `w` by its RTN quantization, dequantized. Throws like rtn_quantize
// (a group that does not divide a linear's inputs, a weight that is not finite).
void rtn_quantize_linears(HostWeights& w, int group_size);

}  // namespace ridgeline
