// Device ceilings: the datasheet table (chosen by the device name) and the CPU's measured ceilings.
// GPU ceilings are measured by `ridgeline probe` (bench/cuda/probe.h); the datasheet values are kept
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

// The CPU's ceilings, measured on one thread (the CPU reference backend runs on one): bandwidth from
// a large memcpy (bytes read + written, 256 MB buffers, many times any last-level cache; median of 5
// after a warm-up) and compute from a blocked float32 512x512x512 matmul (median of 3), both on
// random data. About a second. Source "measured", copy_GBps set.
Ceilings measure_cpu_ceilings();

}  // namespace ridgeline
