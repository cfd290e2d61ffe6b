// Round-to-nearest (RTN) 4-bit quantization of a linear's weight, per group of `group_size` inputs
// of each output row, asymmetric over the group's [min, max], in AutoAWQ's convention (the one its
// checkpoints, tests/data/tiny-internlm2-chat-awq and the device quantizer follow bit for bit):
//   scale = max(max - min, 1e-5) / 15, stored as fp16
//   zero  = clamp(-round(min / scale), 0, 15)
//   q     = clamp(round(w / scale) + zero, 0, 15)      read back as (q - zero) * scale
// with round-half-to-even as torch.round. The codes are computed with the fp16 scale that is stored,
// so that they are the nearest codes for what a reader will multiply by.
#pragma once

#include <cstdint>
#include <string>

#include "engine/awq_format.h"
#include "engine/weights.h"

namespace ridgeline {

// W [out, in] (a Linear's weight). Throws std::invalid_argument when the group does not divide `in`,
// std::runtime_error naming `what` when a weight is not finite.
Int4Linear rtn_quantize(const HostTensor& W, int group_size, const std::string& what);

// One output row of W quantized and read back at once, as rtn_quantize then awq_dequantize would
// give it (bit for bit): the error model the AWQ scale search minimises. `row` and `out` hold `in`
// values.
void rtn_fake_quantize_row(const float* row, int64_t in, int group_size, float* out);

}  // namespace ridgeline
