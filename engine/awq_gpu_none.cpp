// AwqGpuSearch (engine/cuda/awq_gpu.h) in a build without CUDA (CMake compiles this file instead of
// engine/cuda/awq_gpu.cpp): the constructor says so, so `quantize --device cuda` fails with one line.
#include <stdexcept>

#include "engine/cuda/awq_gpu.h"

namespace ridgeline {

struct AwqGpuSearch::Impl {};

AwqGpuSearch::AwqGpuSearch(const ModelConfig&, const Calibration&, const AwqOptions&) {
  throw std::runtime_error(
      "quantize --device cuda: GPU not available: this build has no CUDA backend (configured with "
      "RIDGELINE_CUDA=OFF or without nvcc)");
}

AwqGpuSearch::~AwqGpuSearch() = default;

AwqLayerSearch AwqGpuSearch::search_layer(const LayerWeights&) {
  throw std::logic_error("AwqGpuSearch without CUDA");
}

AwqSearch AwqGpuSearch::search_head(const HostTensor&, const HostTensor&, int64_t*) {
  throw std::logic_error("AwqGpuSearch without CUDA");
}

std::vector<float> AwqGpuSearch::residual() const {
  throw std::logic_error("AwqGpuSearch without CUDA");
}

double AwqGpuSearch::device_seconds() const {
  return 0;
}

AwqGpuTime AwqGpuSearch::last_time() const {
  return {};
}

}  // namespace ridgeline
