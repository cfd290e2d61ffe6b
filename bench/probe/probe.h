// `ridgeline probe`: the device section of a report (names, versions) and the two ceilings every
// roofline is drawn against, measured the way docs/DESIGN.md's "Measuring honestly" asks (random
// data, warm-up, back-to-back launches timed with events, medians). The datasheet entry is kept
// beside the measured figures.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "analysis/report.h"
#include "engine/backend.h"

namespace ridgeline {

// The schema of `ridgeline probe --out`'s file: the device section of a report (ceilings included)
// plus the raw copy/read/GEMM figures.
inline constexpr const char* kCeilingsSchema = "ridgeline.ceilings.v1";

// The GPU's ceilings (current device): a device-to-device copy (bytes read + written), a read-only
// streaming reduction and a large cuBLAS fp16 GEMM. A few seconds. Throws when the build has no
// CUDA backend or no GPU answers.
struct GpuCeilings {
  double copy_GBps = 0;    // device-to-device copy, bytes read + written
  double read_GBps = 0;    // read-only streaming reduction
  double fp16_tflops = 0;  // cuBLAS fp16 GEMM, fp32 accumulation
  int repeats = 0;
  std::string method;
};
GpuCeilings measure_gpu_ceilings();

// The CPU's ceilings, measured on one thread (the CPU reference backend runs on one). About a second.
Ceilings measure_cpu_ceilings();

// Describes `device`: names, versions and the environment (driver, clocks, power limit, ECC, UUID,
// host CPU, compilers, cuBLAS), without measuring anything; peak is left empty.
DeviceInfo describe_device_info(DeviceKind device);

// Describes `device` and measures its ceilings; progress lines go to stderr.
DeviceInfo measure_device(DeviceKind device);

// Describes `device` and takes its ceilings from `path`, a file `ridgeline probe --out` wrote (or a
// report: its device section), recording the file and when it was written (DeviceInfo::ceilings_file,
// ceilings_created). Throws std::runtime_error naming the file when it is unreadable, not such a
// file, or was measured on another backend; `warn` receives a line when it was measured on a device
// of another name (the peaks are used anyway: the caller asked for them).
DeviceInfo device_with_ceilings_file(DeviceKind device, const std::string& path,
                                     const std::function<void(const std::string&)>& warn);

// `ridgeline probe`'s JSON: the device section plus the raw copy/read/GEMM figures.
nlohmann::json probe_json(const DeviceInfo& d);

}  // namespace ridgeline
