// Model weights in device memory, in the layouts the CUDA forward wants. Each linear is held in the
// weight format the model runs as (DeviceLinear): fp16 [out, in] as checkpoints store it, or W4A16
// in the tile-packed layout of kernels/w4a16.cuh. w1 (gate) and w3 (up) are stacked into one
// [2*inter, hidden] w13, so the FFN's two input projections are one GEMM that reads x once (swiglu
// takes its output as [gate | up] per row); the packed layout keeps each 16-row strip contiguous, so
// stacking along `out` is concatenating the two packed weights. Norms and embeddings are always
// fp16; the output head is fp16 too, except in an AWQ checkpoint written by `ridgeline quantize
// --quantize-head` (output.qweight), whose 4-bit head is repacked like the layers' linears and runs
// through the same W4A16 kernels (float32 logits).
// Filled from a checkpoint (bf16/fp16/fp32 uploaded, then converted on the device; AWQ linears
// repacked on the host by w4a16_repack_awq and uploaded) or, for presets, by generating the
// synthetic values on the device itself, so a 40 GB preset never exists in host memory. Run as
// w4a16, a preset generates and an unquantized checkpoint uploads each linear into an fp16 scratch
// buffer, and w4a16_quantize_rtn quantizes it from there.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_fp16.h>

#include "engine/config.h"
#include "engine/cuda/device_buffer.h"
#include "engine/formats.h"
#include "engine/model_source.h"
#include "kernels/w4a16.cuh"

namespace ridgeline::cuda {

// One linear's weight W [out, in]: y = x W^T.
struct DeviceLinear {
  int in = 0, out = 0;
  DeviceBuffer<half> fp16;         // [out, in] row-major; empty when quantized
  DeviceBuffer<uint32_t> qweight;  // w4a16: packed codes, w4a16_qweight_words(in, out)
  DeviceBuffer<half> scale_zero;   // w4a16: {s, z} records, w4a16_scale_zero_halves(in, out)

  bool quantized() const { return qweight.get() != nullptr; }
  W4A16Weights w4a16() const;  // the view the W4A16 kernels take (quantized() only)
  int64_t bytes() const { return int64_t(fp16.bytes() + qweight.bytes() + scale_zero.bytes()); }
};

struct DeviceLayerWeights {
  DeviceBuffer<half> attention_norm;  // [hidden]
  DeviceLinear wqkv;                  // [qkv_dim, hidden], grouped per KV head as in the checkpoint
  DeviceLinear wo;                    // [hidden, q_dim]
  DeviceBuffer<half> ffn_norm;        // [hidden]
  DeviceLinear w13;                   // [2*inter, hidden]: w1 rows, then w3 rows
  DeviceLinear w2;                    // [hidden, inter]
};

// A linear's weight shape, W [out, in].
struct LinearDims {
  int in = 0, out = 0;
};
// The shapes of a layer's linears in the order of DeviceLayerWeights: wqkv, wo, w13, w2.
std::array<LinearDims, 4> layer_linear_dims(const ModelConfig& c);

struct DeviceWeights {
  ModelConfig config;
  WeightFormat format = WeightFormat::fp16;  // of the layers' linears
  DeviceBuffer<half> tok_embeddings;         // [vocab, hidden]
  std::vector<DeviceLayerWeights> layers;
  DeviceBuffer<half> norm;  // [hidden]
  // [vocab, hidden]: fp16, or 4-bit when the checkpoint's head is (output.qweight); empty when tied
  // (the embeddings serve, output_weights() gives them).
  DeviceLinear output;

  // The fp16 head's weights (the embeddings when tied); output.quantized() heads go through output.
  const half* output_weights() const { return output.fp16.get() ? output.fp16.get() : tok_embeddings.get(); }
};

// Bytes of the device buffers `w` holds: what the op table's weight_bytes() (engine/ops.h) must
// count for the same formats (a test checks it to the byte).
int64_t allocated_bytes(const DeviceWeights& w);

// Loads the model of `source` onto the current device with its linears in `formats.weights`
// (w4a16: group 128; cuda_supports() has said yes to the pair). Throws before allocating anything
// when the op table's weight bytes (plus, for a preset or an unquantized checkpoint run as w4a16,
// the largest linear's fp16 scratch)
// + `reserve_bytes` is more than the device's free memory ("preset <name> needs N GiB of GPU memory
// for w4a16 weights; M GiB free"), and for a 4-bit head whose vocabulary is not a multiple of 16
// (the packed layout's strip).
DeviceWeights load_device_weights(const ModelSource& source, const Formats& formats, int64_t reserve_bytes,
                                  cudaStream_t stream);

}  // namespace ridgeline::cuda
