// What NVML (the NVIDIA driver's management library) says about a GPU: the kernel driver's version,
// clocks now and at most, the power limit and the ECC mode, for the environment a report records.
// The library is loaded at run time (dlopen of libnvidia-ml.so.1, which ships with the driver, not
// the toolkit), so a binary built with CUDA still starts, and reports what it could not read, on a
// machine without the driver; and it needs no NVML header at build time.
#pragma once

#include "engine/backend_factory.h"

namespace ridgeline {

// Fills the NVML fields of `f` (nvidia_driver, clocks, power_limit_w, ecc) for the GPU whose
// `f.uuid` is set; when NVML cannot be loaded or does not know the GPU, leaves them empty and sets
// `f.nvml_error` to why. Never throws.
void add_nvml_facts(DeviceFacts& f);
// The same, for the four clock fields alone.
void add_nvml_clocks(DeviceFacts& f);

}  // namespace ridgeline
