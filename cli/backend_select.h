// Turns the --device / --weights / --kv flags into BackendOptions: --device defaults to CUDA when a
// GPU answers and to the CPU reference otherwise (saying so on stderr); formats default to the
// model's own (engine/backend_factory.h's default_formats) and are checked with supports(), so an
// unsupported combination is a usage error naming the backend and the format.
#pragma once

#include <optional>
#include <string>

#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline::cli {

// Empty `device` means "cuda if available, else cpu"; throws if cuda was asked for and none is
// usable (with the reason).
DeviceKind choose_device(const std::optional<std::string>& device, bool quiet = false);

// Formats from the flags (the model's defaults where a flag is absent), refused with a UsageError
// when `device` does not support them.
Formats choose_formats(DeviceKind device, const ModelSource& source,
                       const std::optional<std::string>& weights, const std::optional<std::string>& kv);

BackendOptions backend_options(DeviceKind device, const ModelSource& source,
                               const std::optional<std::string>& weights,
                               const std::optional<std::string>& kv);

}  // namespace ridgeline::cli
