// Device ceilings: the datasheet table, chosen by the device name. The measured ceilings come from
// `ridgeline probe` (bench/probe/probe.h, GPU and CPU); the datasheet values are kept
// beside them in the report so that a reader can see how far the measured roofs are from the
// marketing ones.
#pragma once

#include <optional>
#include <string>

#include "analysis/roofline.h"

namespace ridgeline {

struct Datasheet {
  std::string name;   // the table entry that matched, e.g. "H100 SXM"
  double GBps = 0;    // memory bandwidth, GB/s
  double tflops = 0;  // dense fp16 tensor-core TFLOP/s (fp32 accumulate where the vendor splits them)
};

// The datasheet entry whose name fragments all occur in `device_name` (case-insensitive), the most
// specific entry first: "NVIDIA H100 80GB HBM3" is the SXM part, "NVIDIA H100 PCIe" and
// "NVIDIA H100 NVL" are not. nullopt for devices without an entry (every CPU, unknown GPUs).
std::optional<Datasheet> datasheet_for(const std::string& device_name);

// Ceilings with source "datasheet".
Ceilings datasheet_ceilings(const Datasheet& d);

}  // namespace ridgeline
