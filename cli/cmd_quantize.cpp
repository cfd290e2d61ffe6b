// ridgeline quantize: a checkpoint folder or a preset to a 4-bit AWQ checkpoint folder (engine/quantize.h),
// by round-to-nearest or by AWQ calibrated on a text. Progress goes to stderr, one line per layer; the
// summary to stdout.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/model_source.h"
#include "engine/quantize.h"

namespace ridgeline::cli {
namespace {

constexpr const char* kUsage =
    "quantize --model DIR|PRESET --out DIR [--method rtn|awq] [--group-size 128] [--calib FILE]\n"
    "                     [--quantize-head]";

int run_quantize(const std::vector<std::string>& argv) {
  Args a(argv, {"model", "out", "method", "group-size", "calib"}, {"quantize-head"});
  if (!a.positional().empty())
    throw UsageError(fmt::format("unexpected argument '{}'", a.positional().front()));
  QuantizeOptions o;
  try {
    o.method = parse_quant_method(a.get_or("method", "rtn"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--method: {}", e.what()));
  }
  o.group_size = a.get_int("group-size", o.group_size);
  if (o.group_size <= 0) throw UsageError("--group-size must be positive");
  o.quantize_head = a.has("quantize-head");
  if (a.has("calib") && o.method != QuantMethod::awq) throw UsageError("--calib goes with --method awq");
  o.calibration_file = a.get_or("calib", "");
  o.progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };

  const std::string model = a.require("model"), out = a.require("out");
  const ModelSource source = resolve_model(model);
  fmt::print(stderr, "quantizing {} ({}, group {}{}) into {}\n", source.config.name, to_string(o.method),
             o.group_size, o.quantize_head ? ", 4-bit head" : "", out);
  const QuantizeSummary s = quantize_model(source, out, o);
  fmt::print("wrote {}: {} in {} files ({:.1f} MB of tensors) in {:.1f} s\n", s.out_dir,
             fmt::join(s.files, ", "), s.files.size(), static_cast<double>(s.bytes) / 1e6, s.seconds);
  return 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{"quantize", kUsage, run_quantize});

}  // namespace ridgeline::cli
