#include "cli/backend_select.h"

#include <stdexcept>

#include <fmt/format.h>

#include "cli/args.h"
#include "engine/cpu_backend.h"
#ifdef RIDGELINE_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace ridgeline::cli {

bool gpu_available(std::string* why) {
#ifdef RIDGELINE_HAVE_CUDA
  return cuda_available(why);
#else
  if (why) *why = "this build has no CUDA backend (configured with RIDGELINE_CUDA=OFF or without nvcc)";
  return false;
#endif
}

std::string choose_device(const std::optional<std::string>& device, bool quiet) {
  std::string why;
  if (device) {
    if (*device == "cpu") return "cpu";
    if (*device != "cuda") throw UsageError(fmt::format("--device must be cuda or cpu, got '{}'", *device));
    if (!gpu_available(&why))
      throw std::runtime_error(fmt::format("--device cuda: GPU not available: {}", why));
    return "cuda";
  }
  if (gpu_available(&why)) return "cuda";
  if (!quiet) fmt::print(stderr, "ridgeline: GPU not available ({}); using the CPU reference backend\n", why);
  return "cpu";
}

BackendOptions backend_options(const std::string& device, const ModelSource& source,
                               const std::optional<std::string>& weights,
                               const std::optional<std::string>& kv) {
  BackendOptions o;
  bool awq = source.config.quant_bits != 0;
  try {
    o.weights = weights ? parse_weight_format(*weights) : (awq ? WeightFormat::w4a16 : WeightFormat::fp16);
    o.kv = kv ? parse_kv_format(*kv) : KvFormat::fp16;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (awq && o.weights == WeightFormat::fp16)
    throw UsageError("this checkpoint is AWQ 4-bit: it runs with --weights w4a16");
  if (!awq && o.weights == WeightFormat::w4a16)
    throw UsageError(
        "--weights w4a16 needs an AWQ checkpoint (quantizing fp16 weights with `ridgeline quantize` is not "
        "built "
        "yet)");
  if (device == "cuda" && (o.weights != WeightFormat::fp16 || o.kv != KvFormat::fp16))
    throw UsageError(
        fmt::format("--weights {} --kv {}: the CUDA backend runs fp16 weights and fp16 KV so far; "
                    "W4A16 and INT8-KV kernels are not built yet (the CPU backend runs both)",
                    to_string(o.weights), to_string(o.kv)));
  return o;
}

std::unique_ptr<Backend> make_backend(const std::string& device, const ModelSource& source,
                                      const BackendOptions& options) {
#ifdef RIDGELINE_HAVE_CUDA
  if (device == "cuda") return make_cuda_backend(source, options);
#endif
  if (device == "cuda") throw std::runtime_error("this build has no CUDA backend");
  return make_cpu_backend(source, options);
}

}  // namespace ridgeline::cli
