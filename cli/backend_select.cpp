#include "cli/backend_select.h"

#include <stdexcept>

#include <fmt/format.h>

#include "cli/args.h"
#include "engine/backend_factory.h"

namespace ridgeline::cli {

DeviceKind choose_device(const std::optional<std::string>& device, bool quiet) {
  std::string why;
  if (device) {
    DeviceKind d;
    try {
      d = parse_device_kind(*device);
    } catch (const std::invalid_argument& e) {
      throw UsageError(fmt::format("--device: {}", e.what()));
    }
    if (d == DeviceKind::cuda && !gpu_available(&why))
      throw std::runtime_error(fmt::format("--device cuda: GPU not available: {}", why));
    return d;
  }
  if (gpu_available(&why)) return DeviceKind::cuda;
  if (!quiet) fmt::print(stderr, "ridgeline: GPU not available ({}); using the CPU reference backend\n", why);
  return DeviceKind::cpu;
}

Formats choose_formats(DeviceKind device, const ModelSource& source,
                       const std::optional<std::string>& weights, const std::optional<std::string>& kv) {
  Formats f = default_formats(source);
  try {
    if (weights) f.weights = parse_weight_format(*weights);
    if (kv) f.kv = parse_kv_format(*kv);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (Support s = supports(device, source, f); !s) throw UsageError(s.reason);
  return f;
}

BackendOptions backend_options(DeviceKind device, const ModelSource& source,
                               const std::optional<std::string>& weights,
                               const std::optional<std::string>& kv) {
  BackendOptions o;
  o.device = device;
  o.formats = choose_formats(device, source, weights, kv);
  return o;
}

}  // namespace ridgeline::cli
