#include "engine/backend_factory.h"

#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/cpu_backend.h"
#include "engine/cuda/cuda_entry.h"
#include "engine/nvml_info.h"

namespace ridgeline {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos && colon + 1 < line.size()) {
        auto first = line.find_first_not_of(' ', colon + 1);
        if (first != std::string::npos) return line.substr(first);
      }
    }
  return "CPU";
}

}  // namespace

Support supports(DeviceKind device, const ModelSource& source, const Formats& formats) {
  // The head's format is the checkpoint's (no flag sets it): both backends load the head the
  // checkpoint holds, so any other would make the cost model count bytes that are not there.
  if (formats.head != source.head_format)
    return {false, fmt::format("{}: the output head is {} in {}, not {} (it runs as the checkpoint stores "
                               "it; default_formats() gives the model's formats)",
                               device == DeviceKind::cuda ? "cuda" : "cpu", to_string(source.head_format),
                               source.synthetic ? "preset " + source.config.name : source.checkpoint_dir,
                               to_string(formats.head))};
  return device == DeviceKind::cuda ? cuda_supports(source, formats) : cpu_supports(source, formats);
}

Formats default_formats(const ModelSource& source) {
  Formats f;
  if (source.config.quant_bits != 0) {
    f.weights = WeightFormat::w4a16;
    if (source.config.quant_group_size > 0) f.group_size = source.config.quant_group_size;
  }
  f.head = source.head_format;
  return f;
}

bool gpu_available(std::string* why) {
  return cuda_available(why);
}

std::unique_ptr<Backend> make_backend(const ModelSource& source, const BackendOptions& options) {
  if (Support s = supports(options.device, source, options.formats); !s) throw std::runtime_error(s.reason);
  if (options.device == DeviceKind::cuda) return make_cuda_backend(source, options);
  return make_cpu_backend(source, options);
}

DeviceFacts describe_device(DeviceKind device) {
  DeviceFacts f;
  if (device == DeviceKind::cuda) {
    f = describe_cuda_device();
    add_nvml_facts(f);
  } else {
    f.name = cpu_model_name();
    f.memory_bytes = int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  }
  f.host_cpu = cpu_model_name();
  return f;
}

DeviceFacts read_device_clocks(DeviceKind device) {
  DeviceFacts f;
  if (device != DeviceKind::cuda) return f;
  f.uuid = describe_cuda_device().uuid;
  add_nvml_clocks(f);
  return f;
}

}  // namespace ridgeline
