// The CUDA side of the injected delay (engine/inject_delay.h): a spin kernel of a fixed duration,
// launched after the op that RIDGELINE_INJECT_DELAY_US names.
#pragma once

#include <string>

#include <cuda_runtime.h>

namespace ridgeline::cuda {

// Launches the delay on `stream` when `op` is the injected op; nothing otherwise (one comparison).
void inject_delay_after(const std::string& op, cudaStream_t stream);

}  // namespace ridgeline::cuda
