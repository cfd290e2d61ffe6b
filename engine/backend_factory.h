// Choosing and building a backend: the one place that knows which backends this build has, what
// each supports, and what a device is called. Callers (the CLI, the sweep, the tests) go through
// here and never include a backend's own header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline {

// What a backend can run, the shape of ggml's supports_op: when `ok` is false, `reason` is one line
// naming the backend and the format (or checkpoint) it does not run, and what would.
struct Support {
  bool ok = true;
  std::string reason;
  explicit operator bool() const { return ok; }
};

// Each backend's own answer (engine/cpu_backend.cpp, engine/cuda/cuda_backend.cpp).
Support cpu_supports(const ModelSource& source, const Formats& formats);
Support cuda_supports(const ModelSource& source, const Formats& formats);
Support supports(DeviceKind device, const ModelSource& source, const Formats& formats);

// The formats a model runs as when none are named: an AWQ checkpoint's w4a16 (with its group
// size), fp16 otherwise; fp16 KV.
Formats default_formats(const ModelSource& source);

// True when this build has the CUDA backend and a GPU answers; otherwise `why` (when given) says
// why not ("this build has no CUDA backend", or the CUDA runtime's reason).
bool gpu_available(std::string* why = nullptr);

// Builds the backend `options.device` names. Throws the supports() reason when it cannot run the
// model in those formats, and the backend's own error when the model does not fit.
std::unique_ptr<Backend> make_backend(const ModelSource& source, const BackendOptions& options);

// What a device is, without building a backend (no timing).
struct DeviceFacts {
  std::string name;          // "NVIDIA H200", or the CPU's model name
  int sm_count = 0;          // 0 on the CPU
  int64_t memory_bytes = 0;  // device (or host) memory
  int64_t l2_bytes = 0;      // 0 on the CPU
  std::string driver;        // CUDA driver API version ("13.0"); "" on the CPU
  std::string runtime;       // CUDA runtime version; "" on the CPU
};
DeviceFacts describe_device(DeviceKind device);

}  // namespace ridgeline
