// ridgeline probe: the measured ceilings (and the datasheet's) of this machine's GPU or CPU.
#include <fstream>

#include <fmt/format.h>

#include "bench/probe/probe.h"
#include "cli/args.h"
#include "cli/backend_select.h"
#include "cli/commands.h"

namespace ridgeline::cli {
namespace {

int run_probe(const std::vector<std::string>& argv) {
  Args a(argv, {"out", "device"});
  DeviceInfo d = measure_device(choose_device(a.get("device")));
  fmt::print("device      {} ({})\n", d.name, d.backend);
  fmt::print("copy        {:.0f} GB/s (read + written)\n", d.peak.copy_GBps);
  fmt::print("read        {:.0f} GB/s (streaming reduction)\n", d.peak.read_GBps);
  fmt::print("peak        {:.0f} GB/s, {:.1f} TFLOP/s ({}), ridge {:.0f} FLOP/B\n", d.peak.peak_GBps,
             d.peak.peak_tflops, d.peak.source, d.peak.ridge());
  if (d.datasheet)
    fmt::print("datasheet   {}: {:.0f} GB/s, {:.0f} TFLOP/s (measured: {:.0f}% and {:.0f}% of it)\n",
               d.datasheet->name, d.datasheet->GBps, d.datasheet->tflops,
               100 * d.peak.peak_GBps / d.datasheet->GBps, 100 * d.peak.peak_tflops / d.datasheet->tflops);
  if (auto out = a.get("out")) {
    std::ofstream f(*out);
    if (!f) throw std::runtime_error(fmt::format("{}: cannot open for writing", *out));
    f << probe_json(d).dump(2) << "\n";
    fmt::print(stderr, "wrote {}\n", *out);
  }
  return 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{"probe", "probe [--device cuda|cpu] [--out ceilings.json]", run_probe});

}  // namespace ridgeline::cli
