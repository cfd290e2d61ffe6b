// ridgeline quantize: a checkpoint folder or a preset to a 4-bit AWQ checkpoint folder (engine/quantize.h),
// by round-to-nearest or by AWQ calibrated on a text. Progress goes to stderr, one line per layer; the
// summary to stdout. --device cuda runs AWQ's calibration forward and scale search on the GPU (the
// default stays the CPU: quantizing is a one-off, and the CPU's result is the reference).
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "engine/model_source.h"
#include "engine/quantize.h"

namespace ridgeline::cli {
namespace {

struct QuantizeFlags {
  std::string model, out, method = "rtn", device = "cpu";
  int group_size = QuantizeOptions{}.group_size;
  std::optional<std::string> calib;
  bool quantize_head = false;
};

int run_quantize(const QuantizeFlags& f) {
  QuantizeOptions o;
  try {
    o.method = parse_quant_method(f.method);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--method: {}", e.what()));
  }
  o.group_size = f.group_size;
  o.quantize_head = f.quantize_head;
  if (f.calib && o.method != QuantMethod::awq) throw UsageError("--calib goes with --method awq");
  o.calibration_file = f.calib.value_or("");
  DeviceFlags device;
  device.device = f.device;
  try {
    o.device = parse_device_kind(f.device);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--device: {}", e.what()));
  }
  if (o.device == DeviceKind::cuda && o.method != QuantMethod::awq)
    throw UsageError(
        "--device cuda goes with --method awq (RTN is one pass over the weights; it runs on the CPU)");
  o.device = choose_device(device, true);  // "--device cuda: GPU not available: ..." where none answers
  o.progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };

  const ModelSource source = resolve_model(f.model);
  fmt::print(stderr, "quantizing {} ({}{}, group {}{}) into {}\n", source.config.name, to_string(o.method),
             o.device == DeviceKind::cuda ? " on the GPU" : "", o.group_size,
             o.quantize_head ? ", 4-bit head" : "", f.out);
  const QuantizeSummary s = quantize_model(source, f.out, o);
  fmt::print("wrote {}: {} in {} files ({:.1f} MB of tensors) in {:.1f} s{}\n", s.out_dir,
             fmt::join(s.files, ", "), s.files.size(), static_cast<double>(s.bytes) / 1e6, s.seconds,
             o.device == DeviceKind::cuda ? fmt::format(" ({:.1f} s of GPU time)", s.device_seconds) : "");
  return 0;
}

Runner define_quantize(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  app.add_option("--model", f->model, "checkpoint folder or preset")->type_name("DIR|PRESET")->required();
  app.add_option("--out", f->out, "the AWQ checkpoint folder to write")
      ->type_name("DIR")
      ->required()
      ->check(file_name());
  app.add_option("--method", f->method, "round-to-nearest, or AWQ calibrated on a text")
      ->type_name("rtn|awq")
      ->capture_default_str();
  app.add_option("--group-size", f->group_size,
                 "weights per scale and zero, along the input dimension: a multiple of 8 dividing the "
                 "model's layer widths")
      ->type_name("N")
      ->check(integer_in(8, 1 << 20))
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            return std::stoll(s) % 8 == 0
                       ? ""
                       : "expects a multiple of 8 (8 codes a packed word), got '" + s + "'";
          },
          ""))
      ->capture_default_str();
  app.add_option("--calib", f->calib, "calibration text for --method awq")
      ->type_name("FILE")
      ->default_str("the bundled calibration text");
  app.add_flag("--quantize-head", f->quantize_head, "quantize the output head too (it stays fp16 otherwise)");
  app.add_option("--device", f->device,
                 "where AWQ's calibration forward and scale search run (cuda: the GPU)")
      ->type_name("cpu|cuda")
      ->capture_default_str();
  return [f](const std::vector<std::string>&) { return run_quantize(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"quantize", "write a 4-bit AWQ checkpoint of a model (RTN or AWQ)",
                          "quantize --model DIR|PRESET --out DIR [--method rtn|awq] [--group-size N]\n"
                          "[--calib FILE] [--quantize-head] [--device cpu|cuda]",
                          define_quantize});

}  // namespace ridgeline::cli
