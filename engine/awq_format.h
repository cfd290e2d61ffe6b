// The AWQ "gemm" 4-bit weight format, as AutoAWQ (`version: gemm`) and LMDeploy (`lmdeploy lite
// auto_awq`) write it, and the one place in the engine that knows its packing. A linear W [out, in]
// is stored as three tensors:
//   qweight int32 [in, out/8]        eight 4-bit codes per word, along the output dimension
//   qzeros  int32 [in/group, out/8]  eight 4-bit zero points per word, packed the same way
//   scales  fp16  [in/group, out]
// with W[o][i] = (q[i][o] - z[i/group][o]) * s[i/group][o]. Within a word, nibble n (bits 4n..4n+3)
// holds output column 8*j + kAwqPackOrder[n]: AutoAWQ packs the columns in the order
// [0,2,4,6,1,3,5,7] (so that its kernels' shift-and-mask dequantization yields fp16 pairs in order),
// hence column 8*j + c sits in nibble kAwqNibbleOf[c]. See tests/data/tiny-internlm2-chat-awq/README.md.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/safetensors.h"
#include "engine/weights.h"

namespace ridgeline {

inline constexpr int kAwqPackOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble n -> column offset
inline constexpr int kAwqNibbleOf[8] = {0, 4, 1, 5, 2, 6, 3, 7};   // column offset -> nibble

// One linear's 4-bit codes before packing, in the weight's own [out, in] layout (row o is output o):
// W[o][i] = (codes[o][i] - zeros[o][i/group]) * scales[o][i/group].
struct Int4Linear {
  int64_t out = 0, in = 0;
  int group_size = 0;
  std::vector<uint8_t> codes;    // [out, in], each 0..15
  std::vector<uint8_t> zeros;    // [out, in/group], each 0..15
  std::vector<uint16_t> scales;  // [out, in/group], fp16 bits
  int64_t groups() const { return group_size > 0 ? in / group_size : 0; }
};

// The same linear packed as AWQ checkpoints store it (the header comment's three tensors).
struct AwqLinear {
  int64_t out = 0, in = 0;
  int group_size = 0;
  std::vector<int32_t> qweight;  // [in, out/8]
  std::vector<int32_t> qzeros;   // [in/group, out/8]
  std::vector<uint16_t> scales;  // [in/group, out], fp16 bits
  int64_t groups() const { return group_size > 0 ? in / group_size : 0; }
};

// Packs codes, zeros and scales. Throws std::invalid_argument when out is not a multiple of 8, the
// group does not divide in, a vector has the wrong length, or a code or zero is above 15.
AwqLinear awq_pack(const Int4Linear& q);
// The inverse of awq_pack: awq_unpack(awq_pack(q)) == q field for field.
Int4Linear awq_unpack(const AwqLinear& p);

// A checkpoint's three tensors (qweight, qzeros, scales) as an AwqLinear; throws naming the tensor
// and its file when the dtypes or shapes do not fit together or `group_size` does not divide `in`.
AwqLinear awq_linear_from_tensors(const TensorView& qweight, const TensorView& qzeros,
                                  const TensorView& scales, int group_size);

// The float32 [out, in] weight a Linear would hold. Exact: (q - z) is a small integer and the
// product with an fp16 scale is representable in float32, so every implementation that follows the
// formula gets these very bits.
HostTensor awq_dequantize(const AwqLinear& p);
HostTensor awq_dequantize(const Int4Linear& q);

// awq_dequantize(awq_linear_from_tensors(...)): what a checkpoint's AWQ linear holds, as float32.
HostTensor dequantize_awq(const TensorView& qweight, const TensorView& qzeros, const TensorView& scales,
                          int group_size);

}  // namespace ridgeline
