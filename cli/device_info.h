// The device section of reports and `ridgeline probe`: names, versions and measured ceilings, for
// the GPU (bench/cuda/probe.h) or the CPU (analysis/ceilings.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "analysis/report.h"

namespace ridgeline::cli {

// Measures the ceilings of `device` ("cuda" | "cpu") and fills the report's device section, the
// datasheet entry beside it. Progress goes to stderr.
DeviceInfo measure_device(const std::string& device);

// `ridgeline probe`'s JSON: the device section plus the raw copy/read/GEMM figures.
nlohmann::json probe_json(const DeviceInfo& d);

}  // namespace ridgeline::cli
