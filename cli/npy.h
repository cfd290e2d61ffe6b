// Writes a float32 array as a NumPy .npy file (format 1.0), so that anyone can diff the engine's
// logits against another implementation with numpy.load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ridgeline::cli {

// The .npy file's bytes: header and data.
std::string npy_f32(const std::vector<int64_t>& shape, const float* data);

}  // namespace ridgeline::cli
