#include "cli/device_info.h"

#include <unistd.h>
#include <fstream>

#include <fmt/format.h>

#ifdef RIDGELINE_HAVE_CUDA
#include "bench/cuda/probe.h"
#endif

namespace ridgeline::cli {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "CPU";
}

}  // namespace

DeviceInfo measure_device(const std::string& device) {
  DeviceInfo d;
  d.backend = device;
  if (device == "cuda") {
#ifdef RIDGELINE_HAVE_CUDA
    fmt::print(stderr, "probe: measuring copy and read bandwidth and fp16 GEMM throughput...\n");
    cuda::GpuProbe p = cuda::probe_gpu();
    d.name = p.name;
    d.sm_count = p.sm_count;
    d.memory_bytes = p.memory_bytes;
    d.driver = p.driver;
    d.cuda = p.runtime;
    d.peak = measured_ceilings(p.copy_GBps, p.read_GBps, p.fp16_tflops);
#else
    throw std::runtime_error("this build has no CUDA backend");
#endif
  } else {
    fmt::print(stderr, "probe: measuring CPU memcpy bandwidth and float32 matmul throughput...\n");
    d.name = cpu_model_name();
    d.memory_bytes = int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
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

}  // namespace ridgeline::cli
