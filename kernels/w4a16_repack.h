// Host side of the W4A16 device layout (kernels/w4a16.cuh): import from AutoAWQ's "gemm" packing,
// the float32 reference dequantization, and the CPU reference of the device RTN quantizer. Plain
// loops over the layout's index map (w4a16_code_slot / w4a16_scale_index), spread over threads.
// Errors (a shape the layout cannot hold, a group size other than 128) throw std::invalid_argument
// naming the function and the shape.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/w4a16.cuh"

namespace ridgeline::cuda {

// A W4A16 weight in host memory, laid out exactly as on the device: upload the two vectors as they
// are (qweight -> W4A16Weights::qweight, scale_zero -> W4A16Weights::scale_zero).
struct W4A16Host {
  int in = 0, out = 0;
  std::vector<uint32_t> qweight;     // w4a16_qweight_words(in, out) words
  std::vector<uint16_t> scale_zero;  // w4a16_scale_zero_halves(in, out) fp16 bit patterns
};

// AutoAWQ / LMDeploy "gemm" packing -> device layout. qweight int32 [in, out/8], qzeros int32
// [in/group, out/8], scales fp16 [in/group, out], as raw little-endian bytes (no alignment needed:
// safetensors mappings are read with memcpy). Output column 8j + c of a packed int32 is nibble
// [0,4,1,5,2,6,3,7][c] (AWQ packs the order [0,2,4,6,1,3,5,7]). Codes and scales are moved, not
// recomputed: w4a16_dequantize of the result equals AWQ's (q - z) * s exactly.
W4A16Host w4a16_repack_awq(const void* qweight, const void* qzeros, const void* scales, int in, int out,
                           int group);

// Float32 dequantization W[o][i] = (q - z) * s of rows [o0, o0 + rows) into dst [rows, in]
// (exact: a 5-bit integer times an fp16 scale).
void w4a16_dequantize_rows(const W4A16Host& w, int o0, int rows, float* dst);
// The whole weight, [out, in].
std::vector<float> w4a16_dequantize(const W4A16Host& w);

// CPU reference of the device quantizer w4a16_quantize_rtn (same float32 operations, same
// rounding), from fp16 bit patterns W [out, in].
W4A16Host w4a16_quantize_rtn_reference(const uint16_t* w, int in, int out);

}  // namespace ridgeline::cuda
