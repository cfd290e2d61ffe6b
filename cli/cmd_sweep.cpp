// ridgeline sweep: decode steps over batch x context x weights x kv, timed and joined with the
// cost model into a schema-v1 report.
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bench/probe/probe.h"
#include "bench/sweep/sweep.h"
#include "cli/args.h"
#include "cli/backend_select.h"
#include "cli/commands.h"
#include "engine/backend_factory.h"
#include "engine/data_paths.h"

namespace ridgeline::cli {
namespace {

constexpr const char* kUsage =
    "sweep [--model DIR|PRESET] [--device cuda|cpu] [--batch 1,4,16,64,256] [--context 1024,4096]\n"
    "                  [--weights fp16,w4a16] [--kv fp16,int8,int4] [--iters N] [--warmup N] [--out "
    "run.json]";

int run_sweep_cmd(const std::vector<std::string>& argv) {
  Args a(argv, {"model", "device", "batch", "context", "weights", "kv", "iters", "warmup", "out"});
  SweepSpec spec;
  spec.device = choose_device(a.get("device"), true);
  const bool cpu = spec.device == DeviceKind::cpu;
  std::string model = a.get_or("model", "internlm2-chat-1_8b");
  if (cpu && !a.has("model")) {
    // A 1.8b-parameter float32 decode at batch 256 takes minutes a step on a CPU: without a GPU the
    // default sweep is the bundled tiny model at CPU-sized batches and contexts.
    model = bundled_model("tiny-internlm2-chat");
    if (model.empty()) throw std::runtime_error("the bundled tiny model was not found in " + data_dir());
    spec.batches = {1, 4, 16};
    spec.contexts = {256, 1024};
    spec.warmup = 1;
    spec.iters = 5;
    fmt::print(
        stderr,
        "sweep: no GPU, so the CPU reference backend runs the bundled tiny model (batch {}, context {}); "
        "pass --model and --device to choose\n",
        fmt::join(spec.batches, ","), fmt::join(spec.contexts, ","));
  }
  spec.batches = a.get_int_list("batch", spec.batches);
  spec.contexts = a.get_int_list("context", spec.contexts);
  spec.iters = a.get_int("iters", cpu ? 5 : spec.iters);
  spec.warmup = a.get_int("warmup", cpu ? 1 : spec.warmup);
  if (spec.iters < 1 || spec.warmup < 0) throw UsageError("--iters must be >= 1 and --warmup >= 0");
  ModelSource source = resolve_model(model);
  spec.weights.clear();
  spec.kvs.clear();
  auto wl = a.get_list("weights");
  auto kl = a.get_list("kv");
  const Formats defaults = default_formats(source);
  if (wl.empty()) wl = {to_string(defaults.weights)};
  if (kl.empty()) kl = {to_string(defaults.kv)};
  // Every (weights, kv) pair is checked up front: a format this backend does not run is refused
  // with its reason, not skipped.
  for (const auto& w : wl)
    for (const auto& k : kl) choose_formats(spec.device, source, w, k);
  for (const auto& w : wl) spec.weights.push_back(parse_weight_format(w));
  for (const auto& k : kl) spec.kvs.push_back(parse_kv_format(k));

  DeviceInfo dev = measure_device(spec.device);
  fmt::print(stderr, "sweep: {} on {} ({:.0f} GB/s, {:.1f} TFLOP/s measured)\n", source.config.name, dev.name,
             dev.peak.peak_GBps, dev.peak.peak_tflops);
  auto factory = [&](const BackendOptions& o) { return make_backend(source, o); };
  SweepResult r = run_sweep(source, spec, factory, dev,
                            [](const std::string& line) { fmt::print(stderr, "{}\n", line); });
  std::string cmd = "ridgeline sweep";
  for (const auto& s : argv) cmd += " " + s;
  r.report.command = cmd;
  nlohmann::json j = sweep_to_json(r);
  j["git_commit"] = RIDGELINE_GIT_COMMIT;
  std::string out = a.get_or("out", "run.json");
  std::ofstream f(out);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open for writing", out));
  f << j.dump(1) << "\n";
  fmt::print(stderr, "sweep: {} runs, {} skipped; wrote {}\n", r.report.runs.size(), r.skipped.size(), out);
  return r.report.runs.empty() ? 1 : 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{"sweep", kUsage, run_sweep_cmd});

}  // namespace ridgeline::cli
