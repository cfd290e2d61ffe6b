// The float32 weights an unquantized model (a checkpoint or a preset) runs with under --weights
// w4a16 on the CPU backend: every layer linear (wqkv, wo, w1, w3, w2) quantized to 4 bits by
// round-to-nearest (engine/quantize_rtn.h, groups of `group_size` inputs) and read back. On weights
// that are exact in fp16 (the presets' synthetic ones, fp16 checkpoints) this is bit for bit what the
// CUDA backend's device quantizer (kernels/w4a16_quantize.cu) stores at load, so it is the CPU
// reference of a w4a16 preset. Embeddings, norms and the head stay as they are.
#pragma once

#include "engine/weights.h"

namespace ridgeline {

// Replaces each layer linear of `w` by its RTN quantization, dequantized. Throws like rtn_quantize
// (a group that does not divide a linear's inputs, a weight that is not finite).
void rtn_quantize_linears(HostWeights& w, int group_size);

}  // namespace ridgeline
