// Picks and builds the backend a subcommand runs on: --device cuda|cpu, defaulting to CUDA when a
// GPU answers and to the CPU reference otherwise (saying so on stderr).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline::cli {

// Empty `device` means "cuda if available, else cpu". Returns "cuda" or "cpu"; throws if cuda was
// asked for and none is usable (with the reason).
std::string choose_device(const std::optional<std::string>& device, bool quiet = false);
bool gpu_available(std::string* why);
std::unique_ptr<Backend> make_backend(const std::string& device, const ModelSource& source,
                                      const BackendOptions& options);

// --weights / --kv from flags, validated against the model: an AWQ checkpoint is w4a16, and
// formats a backend has not built yet are refused with a message saying so.
BackendOptions backend_options(const std::string& device, const ModelSource& source,
                               const std::optional<std::string>& weights,
                               const std::optional<std::string>& kv);

}  // namespace ridgeline::cli
