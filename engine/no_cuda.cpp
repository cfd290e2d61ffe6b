// The CUDA backend's entry points in a build without it (CMake compiles this file instead of
// engine/cuda/): every one says so.
#include <stdexcept>

#include "engine/cuda/cuda_entry.h"

namespace ridgeline {
namespace {

constexpr const char* kNoCuda =
    "this build has no CUDA backend (configured with RIDGELINE_CUDA=OFF or without nvcc)";

}  // namespace

bool cuda_available(std::string* why) {
  if (why) *why = kNoCuda;
  return false;
}

Support cuda_supports(const ModelSource&, const Formats&) {
  return {false, std::string("cuda: ") + kNoCuda};
}

std::unique_ptr<Backend> make_cuda_backend(const ModelSource&, const BackendOptions&) {
  throw std::runtime_error(kNoCuda);
}

DeviceFacts describe_cuda_device() {
  throw std::runtime_error(kNoCuda);
}

}  // namespace ridgeline
