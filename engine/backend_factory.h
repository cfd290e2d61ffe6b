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
// Both, after the check common to them: formats.head must be the checkpoint's head format.
Support supports(DeviceKind device, const ModelSource& source, const Formats& formats);

// The formats a model runs as when none are named: an AWQ checkpoint's w4a16 (with its group
// size), fp16 otherwise; fp16 KV; the output head as the checkpoint stores it (source.head_format).
Formats default_formats(const ModelSource& source);

// True when this build has the CUDA backend and a GPU answers; otherwise `why` (when given) says
// why not ("this build has no CUDA backend", or the CUDA runtime's reason).
bool gpu_available(std::string* why = nullptr);

// Builds the backend `options.device` names. Throws the supports() reason when it cannot run the
// model in those formats, and the backend's own error when the model does not fit.
std::unique_ptr<Backend> make_backend(const ModelSource& source, const BackendOptions& options);

// What a device is, without building a backend (no timing). The GPU's environment comes from the
// CUDA runtime and, where the driver's NVML library loads, from NVML (engine/nvml_info.h); what
// could not be read stays empty (strings) or 0 (numbers).
struct DeviceFacts {
  std::string name;          // "NVIDIA H200", or the CPU's model name
  int sm_count = 0;          // 0 on the CPU
  int64_t memory_bytes = 0;  // device (or host) memory
  int64_t l2_bytes = 0;      // 0 on the CPU
  std::string driver;        // CUDA driver API version ("13.0"); "" on the CPU
  std::string runtime;       // CUDA runtime version; "" on the CPU
  std::string host_cpu;      // the host's CPU model (/proc/cpuinfo), on both devices
  // GPU only:
  std::string uuid;              // "GPU-5f3c...", as nvidia-smi prints it (cudaDeviceProp::uuid)
  std::string cublas;            // cuBLASLt version ("13.1.0")
  std::string nvidia_driver;     // NVML: the kernel driver's version ("580.95.05")
  int sm_clock_mhz = 0;          // NVML: SM clock when read
  int sm_clock_max_mhz = 0;      // NVML: the SM clock's maximum
  int memory_clock_mhz = 0;      // NVML: memory clock when read
  int memory_clock_max_mhz = 0;  // NVML: the memory clock's maximum
  double power_limit_w = 0;      // NVML: the enforced power limit
  std::string ecc;               // NVML: "on" | "off"; "" where ECC is unsupported or unknown
  std::string nvml_error;        // why the NVML fields are empty; "" when NVML answered
};
DeviceFacts describe_device(DeviceKind device);
// The SM and memory clocks now (NVML), for reading them again right after a measurement: the fields
// of describe_device() with only the clocks filled; all 0 on the CPU or without NVML.
DeviceFacts read_device_clocks(DeviceKind device);

}  // namespace ridgeline
