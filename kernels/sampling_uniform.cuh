// The uniform draw of a sampling step, u in [0, 1) from 53 hashed bits of (seed, position): the same
// function as ref::sampling_uniform (kernels/cpu/reference.cpp), callable on host and device, so a
// seeded generation picks the same tokens on either backend.
#pragma once

#include <cstdint>

#include "kernels/synthetic.h"

namespace ridgeline::cuda {

RL_HD inline double sampling_uniform(uint64_t seed, uint64_t position) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(position + 0x51ED2701ull)) >> 11) * 0x1.0p-53;
}

}  // namespace ridgeline::cuda
