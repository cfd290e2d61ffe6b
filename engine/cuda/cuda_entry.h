// The CUDA backend's entry points, free of CUDA headers so that engine/backend_factory.cpp can call
// them in every build: engine/cuda/*.cpp define them where CUDA is built, engine/no_cuda.cpp (which
// says "this build has no CUDA backend") where it is not.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/backend_factory.h"
#include "engine/model_source.h"

namespace ridgeline {

// True when a CUDA device answers (device 0 is then current). Any failure of cudaGetDeviceCount or
// cudaSetDevice counts as "no GPU" (a machine with the toolkit but no driver says "CUDA driver
// version is insufficient"); `why`, when given, receives the reason.
bool cuda_available(std::string* why = nullptr);
// Loads the model onto the GPU with the default CudaOptions.
std::unique_ptr<Backend> make_cuda_backend(const ModelSource& source, const BackendOptions& options);
DeviceFacts describe_cuda_device();

}  // namespace ridgeline
