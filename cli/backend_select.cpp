#include "cli/backend_select.h"

#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "cli/flags.h"
#include "engine/backend_factory.h"

namespace ridgeline::cli {

void add_device_flags(CLI::App& app, DeviceFlags& flags, bool formats, bool lists) {
  app.add_option("--device", flags.device, "the backend: cuda (the GPU) or cpu (the float32 reference; slow)")
      ->type_name("cuda|cpu")
      ->default_str("cuda where a GPU answers, else cpu");
  app.add_option(
         "--gpu", flags.gpu,
         "the GPU to use, counted among those CUDA_VISIBLE_DEVICES lets through; implies --device cuda")
      ->type_name("N")
      ->check(integer_in(0, 1023))
      ->default_str("0");
  if (!formats) return;
  if (lists) {
    app.add_option(
           "--weights", flags.weights,
           "weight formats to sweep, comma-separated: fp16, w4a16 (an unquantized model's linears are "
           "quantized at load, round-to-nearest)")
        ->type_name("LIST")
        ->check(word_list())
        ->default_str("the model's own: w4a16 for an AWQ checkpoint, else fp16");
    app.add_option("--kv", flags.kv, "KV-cache formats to sweep, comma-separated: fp16, int8, int4")
        ->type_name("LIST")
        ->check(word_list())
        ->default_str("fp16");
  } else {
    app.add_option("--weights", flags.weights,
                   "weight format (w4a16 of an unquantized model: its linears quantized at load, "
                   "round-to-nearest)")
        ->type_name("fp16|w4a16")
        ->default_str("the model's own: w4a16 for an AWQ checkpoint, else fp16");
    app.add_option("--kv", flags.kv, "KV-cache format")->type_name("fp16|int8|int4")->default_str("fp16");
  }
}

namespace {

// Restricts CUDA_VISIBLE_DEVICES to GPU `n` of those it lets through (all of them when unset). CUDA
// reads the variable when it initialises, so this must come before the first CUDA call.
void select_gpu(int n) {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string chosen = std::to_string(n);
  if (visible && *visible) {
    const auto list = split_list(visible);
    if (size_t(n) >= list.size())
      throw std::runtime_error(fmt::format("--gpu {}: CUDA_VISIBLE_DEVICES={} lets through {} GPU{} (0..{})",
                                           n, visible, list.size(), list.size() == 1 ? "" : "s",
                                           list.size() - 1));
    chosen = list[size_t(n)];
  }
  ::setenv("CUDA_VISIBLE_DEVICES", chosen.c_str(), 1);
}

}  // namespace

DeviceKind choose_device(const DeviceFlags& flags, bool quiet) {
  std::string why;
  if (flags.gpu) {
    if (flags.device && *flags.device != "cuda")
      throw UsageError(fmt::format("--gpu goes with --device cuda, not --device {}", *flags.device));
    select_gpu(*flags.gpu);
    if (!gpu_available(&why))
      throw std::runtime_error(fmt::format("--gpu {}: GPU not available: {}", *flags.gpu, why));
    return DeviceKind::cuda;
  }
  if (flags.device) {
    DeviceKind d;
    try {
      d = parse_device_kind(*flags.device);
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

BackendOptions backend_options(DeviceKind device, const ModelSource& source, const DeviceFlags& flags) {
  BackendOptions o;
  o.device = device;
  o.formats = choose_formats(device, source, flags.weights, flags.kv);
  return o;
}

}  // namespace ridgeline::cli

namespace ridgeline::cli {

std::string quantize_at_load_note(const ModelSource& source, const Formats& f) {
  if (f.weights != WeightFormat::w4a16 || source.config.quant_bits != 0) return "";
  const std::string what = source.synthetic ? "preset " + source.config.name : source.checkpoint_dir;
  return fmt::format(
      "w4a16: {} is unquantized, so its layer linears are quantized to 4 bits at load (round-to-nearest, "
      "groups of {}; embeddings, norms and head as they are); `ridgeline quantize --method awq` writes "
      "a more accurate 4-bit checkpoint",
      what, f.group_size);
}

std::string cpu_storage_note(const Formats& f) {
  const std::string weights =
      f.weights == WeightFormat::fp16
          ? "float32 weights"
          : fmt::format("float32 weights (dequantized from {} at load)", to_string(f.weights));
  const std::string kv =
      f.kv == KvFormat::fp16
          ? "a float32 KV cache"
          : fmt::format("a float32 KV cache (fake-quantized: {}'s values, float32's bytes)", to_string(f.kv));
  return fmt::format("the CPU reference holds {} and {}", weights, kv);
}

}  // namespace ridgeline::cli
