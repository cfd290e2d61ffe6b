// `ridgeline probe` on a GPU: the two ceilings every roofline in the report is drawn against,
// measured the way DESIGN.md's "Measuring honestly" asks (random data, warm-up, back-to-back
// launches timed with events, medians).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ridgeline::cuda {

struct GpuProbe {
  std::string name;
  int sm_count = 0;
  int64_t memory_bytes = 0;
  int64_t l2_bytes = 0;
  std::string driver, runtime;  // "13.0"
  double copy_GBps = 0;         // device-to-device copy, bytes read + written
  double read_GBps = 0;         // read-only streaming reduction
  double fp16_tflops = 0;       // cuBLAS fp16 GEMM, fp32 accumulation
  int repeats = 0;
  std::string method;
};

// Device facts only (name, SMs, memory, versions): cheap, no timing.
GpuProbe describe_gpu();
// The full probe: a few seconds on an H100.
GpuProbe probe_gpu();

}  // namespace ridgeline::cuda
