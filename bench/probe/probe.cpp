#include "bench/probe/probe.h"

#include <fmt/format.h>

#include "engine/backend_factory.h"

namespace ridgeline {

DeviceInfo measure_device(DeviceKind device) {
  const DeviceFacts f = describe_device(device);
  DeviceInfo d;
  d.backend = to_string(device);
  d.name = f.name;
  d.sm_count = f.sm_count;
  d.memory_bytes = f.memory_bytes;
  d.driver = f.driver;
  d.cuda = f.runtime;
  if (device == DeviceKind::cuda) {
    fmt::print(stderr, "probe: measuring copy and read bandwidth and fp16 GEMM throughput...\n");
    const GpuCeilings g = measure_gpu_ceilings();
    d.peak = measured_ceilings(g.copy_GBps, g.read_GBps, g.fp16_tflops);
  } else {
    fmt::print(stderr, "probe: measuring CPU memcpy bandwidth and float32 matmul throughput...\n");
    d.peak = measure_cpu_ceilings();
  }
  d.datasheet = datasheet_for(d.name);
  return d;
}

nlohmann::json probe_json(const DeviceInfo& d) {
  Report r;
  r.device = d;
  nlohmann::json dev = to_json(r)["device"];
  return {
      {"schema", "ridgeline.ceilings.v1"},    {"created", utc_timestamp()},    {"device", dev},
      {"copy_GBps", d.peak.copy_GBps},        {"read_GBps", d.peak.read_GBps}, {"tflops", d.peak.peak_tflops},
      {"ridge_flop_per_byte", d.peak.ridge()}};
}

}  // namespace ridgeline
