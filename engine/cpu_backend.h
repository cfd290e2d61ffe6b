// The CPU reference backend: the whole InternLM2 forward in plain float32 C++, built from the ops
// in kernels/cpu/reference.h. Slow and obviously correct: every GPU result is checked against it,
// and it lets every path (generate, chat, sweep) run end to end on a machine without a GPU.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/model_source.h"
#include "engine/weights.h"

namespace ridgeline {

// Loads the checkpoint (or generates the preset's synthetic weights) as float32.
std::unique_ptr<Backend> make_cpu_backend(const ModelSource& source, const BackendOptions& options);
// From weights already in memory (tests build small random models this way).
std::unique_ptr<Backend> make_cpu_backend(HostWeights weights, const BackendOptions& options);

}  // namespace ridgeline
