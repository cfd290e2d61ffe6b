// The uniform draw of a sampling step, u in [0, 1) from 53 hashed bits of (seed, position). One
// definition for the host (ref::sampling_uniform, the CPU backend) and the device (kernels/sample.cu),
// so a seeded generation draws the same numbers, and picks the same tokens, on either backend.
#pragma once

#include <cstdint>

#include "kernels/synthetic.h"

namespace ridgeline {

RL_HD inline double sampling_uniform(uint64_t seed, uint64_t position) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(position + 0x51ED2701ull)) >> 11) * 0x1.0p-53;
}

}  // namespace ridgeline
