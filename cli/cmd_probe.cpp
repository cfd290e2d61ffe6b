// ridgeline probe: the measured ceilings (and the datasheet's) of this machine's GPU or CPU.
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "analysis/units.h"
#include "bench/probe/probe.h"
#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/output_file.h"

namespace ridgeline::cli {
namespace {

struct ProbeFlags {
  DeviceFlags device;
  std::optional<std::string> out;
};

int run_probe(const ProbeFlags& f) {
  // Opened first: an --out that cannot be written fails before the measuring.
  std::optional<OutputFile> out;
  if (f.out) out.emplace(*f.out);
  DeviceInfo d = measure_device(choose_device(f.device));
  fmt::print("device      {} ({})\n", d.name, d.backend);
  fmt::print("copy        {} (read + written)\n", format_bandwidth(d.peak.copy_GBps));
  // The CPU probe times a copy only: no read figure rather than "0 GB/s".
  if (d.peak.read_GBps > 0)
    fmt::print("read        {} (streaming reduction)\n", format_bandwidth(d.peak.read_GBps));
  else
    fmt::print("read        not measured on this device (the copy is)\n");
  fmt::print("peak        {}, {} ({}), ridge {:.1f} FLOP/B\n", format_bandwidth(d.peak.peak_GBps),
             format_flops(d.peak.peak_tflops), d.peak.source, d.peak.ridge());
  if (d.datasheet)
    fmt::print("datasheet   {}: {}, {} (measured: {:.0f}% and {:.0f}% of it)\n", d.datasheet->name,
               format_bandwidth(d.datasheet->GBps), format_flops(d.datasheet->tflops),
               100 * d.peak.peak_GBps / d.datasheet->GBps, 100 * d.peak.peak_tflops / d.datasheet->tflops);
  if (out) {
    out->write(probe_json(d).dump(2) + "\n");
    out->publish();
    fmt::print(stderr, "wrote {}\n", out->path());
  }
  return 0;
}

Runner define_probe(CLI::App& app) {
  auto f = std::make_shared<ProbeFlags>();
  add_device_flags(app, f->device, false);
  app.add_option("--out", f->out, "also write the ceilings as JSON")->type_name("FILE")->check(file_name());
  return [f](const std::vector<std::string>&) { return run_probe(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"probe", "measure this machine's memory bandwidth and FLOP/s ceilings",
                          "probe [--device cuda|cpu] [--gpu N] [--out FILE]", define_probe});

}  // namespace ridgeline::cli
