// measure_gpu_ceilings() of a build without the CUDA backend (CMake compiles this file instead of
// gpu_ceilings.cu).
#include <stdexcept>

#include "bench/probe/probe.h"

namespace ridgeline {

GpuCeilings measure_gpu_ceilings() {
  throw std::runtime_error(
      "this build has no CUDA backend (configured with RIDGELINE_CUDA=OFF or without nvcc)");
}

}  // namespace ridgeline
