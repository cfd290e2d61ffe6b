// ridgeline quantize: a checkpoint folder or a preset to a 4-bit AWQ checkpoint folder (engine/quantize.h),
// by round-to-nearest or by AWQ calibrated on a text. Progress goes to stderr, one line per layer; the
// summary to stdout.
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "engine/model_source.h"
#include "engine/quantize.h"

namespace ridgeline::cli {
namespace {

struct QuantizeFlags {
  std::string model, out, method = "rtn";
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
  o.progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };

  const ModelSource source = resolve_model(f.model);
  fmt::print(stderr, "quantizing {} ({}, group {}{}) into {}\n", source.config.name, to_string(o.method),
             o.group_size, o.quantize_head ? ", 4-bit head" : "", f.out);
  const QuantizeSummary s = quantize_model(source, f.out, o);
  fmt::print("wrote {}: {} in {} files ({:.1f} MB of tensors) in {:.1f} s\n", s.out_dir,
             fmt::join(s.files, ", "), s.files.size(), static_cast<double>(s.bytes) / 1e6, s.seconds);
  return 0;
}

Runner define_quantize(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  app.add_option("--model", f->model, "checkpoint folder or preset")->type_name("DIR|PRESET")->required();
  app.add_option("--out", f->out, "the AWQ checkpoint folder to write")->type_name("DIR")->required();
  app.add_option("--method", f->method, "round-to-nearest, or AWQ calibrated on a text")
      ->type_name("rtn|awq")
      ->capture_default_str();
  app.add_option("--group-size", f->group_size, "weights per scale and zero, along the input dimension")
      ->type_name("N")
      ->check(integer_in(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--calib", f->calib, "calibration text for --method awq")
      ->type_name("FILE")
      ->default_str("the bundled calibration text");
  app.add_flag("--quantize-head", f->quantize_head, "quantize the output head too (it stays fp16 otherwise)");
  return [f](const std::vector<std::string>&) { return run_quantize(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"quantize", "write a 4-bit AWQ checkpoint of a model (RTN or AWQ)",
                          "quantize --model DIR|PRESET --out DIR [--method rtn|awq] [--group-size N]\n"
                          "[--calib FILE] [--quantize-head]",
                          define_quantize});

}  // namespace ridgeline::cli
