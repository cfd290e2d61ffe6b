#include "bench/probe/probe.h"

#include <stdexcept>

#include <fmt/format.h>

#include "bench/build_info.h"
#include "engine/backend_factory.h"
#include "engine/text_file.h"

namespace ridgeline {

DeviceInfo describe_device_info(DeviceKind device) {
  const DeviceFacts f = describe_device(device);
  DeviceInfo d;
  d.backend = to_string(device);
  d.name = f.name;
  d.sm_count = f.sm_count;
  d.memory_bytes = f.memory_bytes;
  d.driver = f.driver;
  d.cuda = f.runtime;
  d.datasheet = datasheet_for(d.name);
  EnvironmentInfo& e = d.env;
  e.host_cpu = f.host_cpu;
  e.compiler = build_cxx_compiler();
  e.cuda_compiler = build_cuda_compiler();
  if (device == DeviceKind::cuda) {
    e.uuid = f.uuid;
    e.cublas = f.cublas;
    e.nvidia_driver = f.nvidia_driver;
    e.sm_clock_mhz = f.sm_clock_mhz;
    e.sm_clock_max_mhz = f.sm_clock_max_mhz;
    e.memory_clock_mhz = f.memory_clock_mhz;
    e.memory_clock_max_mhz = f.memory_clock_max_mhz;
    e.power_limit_w = f.power_limit_w;
    e.ecc = f.ecc;
    e.nvml_error = f.nvml_error;
  }
  return d;
}

DeviceInfo measure_device(DeviceKind device) {
  DeviceInfo d = describe_device_info(device);
  if (device == DeviceKind::cuda) {
    fmt::print(stderr, "probe: measuring copy and read bandwidth and fp16 GEMM throughput...\n");
    const GpuCeilings g = measure_gpu_ceilings();
    d.peak = measured_ceilings(g.copy_GBps, g.read_GBps, g.fp16_tflops);
  } else {
    fmt::print(stderr, "probe: measuring CPU memcpy bandwidth and float32 matmul throughput...\n");
    d.peak = measure_cpu_ceilings();
  }
  return d;
}

DeviceInfo device_with_ceilings_file(DeviceKind device, const std::string& path,
                                     const std::function<void(const std::string&)>& warn) {
  // A folder, a missing file and a gzipped one (a report kept as .json.gz) as read_text_file says.
  const std::string text = read_text_file(path, "a ceilings file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: not JSON: a syntax error at byte {}", path, e.byte));
  }
  const std::string schema =
      j.is_object() && j.contains("schema") && j["schema"].is_string() ? j["schema"].get<std::string>() : "";
  if (schema != kCeilingsSchema && schema != kReportSchema)
    throw std::runtime_error(
        fmt::format("{}: not a ceilings file: its schema is '{}', expected '{}' (ridgeline probe --out) or "
                    "'{}' (a report)",
                    path, schema, kCeilingsSchema, kReportSchema));
  DeviceInfo stored;
  try {
    if (!j.contains("device")) throw std::runtime_error("$.device: missing");
    stored = device_from_json(j["device"], "$.device");
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
  if (!(stored.peak.peak_GBps > 0) || !(stored.peak.peak_tflops > 0))
    throw std::runtime_error(fmt::format("{}: $.device.peak: GBps and tflops must be positive", path));
  DeviceInfo d = describe_device_info(device);
  if (stored.backend != d.backend)
    throw std::runtime_error(
        fmt::format("{}: its ceilings were measured on the {} backend, this sweep runs on {}", path,
                    stored.backend, d.backend));
  if (stored.name != d.name)
    warn(fmt::format("{}: measured on '{}', this device is '{}': using its ceilings as asked", path,
                     stored.name, d.name));
  d.peak = stored.peak;
  d.ceilings_file = path;
  d.ceilings_created =
      j.contains("created") && j["created"].is_string() ? j["created"].get<std::string>() : "";
  return d;
}

nlohmann::json probe_json(const DeviceInfo& d) {
  nlohmann::json dev = device_to_json(d);
  return {{"schema", kCeilingsSchema},
          {"created", utc_timestamp()},
          {"device", dev},
          {"copy_GBps", d.peak.copy_GBps},
          {"read_GBps", d.peak.read_GBps},
          {"tflops", d.peak.peak_tflops},
          {"ridge_flop_per_byte", d.peak.ridge()}};
}

}  // namespace ridgeline
