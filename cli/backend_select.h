// The flags that choose a backend and its formats (--device, --gpu, --weights, --kv), turned into
// BackendOptions: --device defaults to CUDA when a GPU answers and to the CPU reference otherwise
// (saying so on stderr); formats default to the model's own (engine/backend_factory.h's
// default_formats) and are checked with supports(), so an unsupported combination is a usage error
// naming the backend and the format.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline::cli {

struct DeviceFlags {
  std::optional<std::string> device;   // "cuda" | "cpu"; empty: cuda if a GPU answers, else cpu
  std::optional<std::string> weights;  // one format, or a comma-separated list where `lists`
  std::optional<std::string> kv;
  std::optional<int> gpu;  // the CUDA device, counted among those CUDA_VISIBLE_DEVICES lets through
};

// Adds --device, --gpu and, when `formats`, --weights and --kv (comma-separated lists when `lists`).
void add_device_flags(CLI::App& app, DeviceFlags& flags, bool formats, bool lists = false);

// Throws if cuda was asked for and none is usable (with the reason). --gpu N makes GPU N the only one
// this process sees (CUDA_VISIBLE_DEVICES, set before the first CUDA call), so that the probe, the
// device description and the backend all use the same GPU; it implies --device cuda.
DeviceKind choose_device(const DeviceFlags& flags, bool quiet = false);

// Formats from the flags (the model's defaults where a flag is absent), refused with a UsageError
// when `device` does not support them.
Formats choose_formats(DeviceKind device, const ModelSource& source,
                       const std::optional<std::string>& weights, const std::optional<std::string>& kv);

BackendOptions backend_options(DeviceKind device, const ModelSource& source, const DeviceFlags& flags);

// For w4a16 on a model without quantization_config (an unquantized checkpoint or a preset), whose
// linears both backends quantize at load by round-to-nearest: one line saying so, and how to get
// AWQ's accuracy instead. Empty for every other pairing.
std::string quantize_at_load_note(const ModelSource& source, const Formats& formats);

// What the CPU reference really holds for `formats`: float32 weights (AWQ dequantized at load) and a
// float32 KV cache (int8/int4 fake-quantized: the values of the format, the bytes of float32).
std::string cpu_storage_note(const Formats& formats);

}  // namespace ridgeline::cli
