// ridgeline sweep: decode steps over batch x context x weights x kv, timed and joined with the
// cost model into a schema-v1 report.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "analysis/report_view.h"
#include "analysis/units.h"
#include "bench/build_info.h"
#include "bench/probe/probe.h"
#include "bench/sweep/sweep.h"
#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/output_file.h"
#include "cli/sweep_progress.h"
#include "engine/backend_factory.h"
#include "engine/data_paths.h"

namespace ridgeline::cli {
namespace {

constexpr const char* kGpuModel = "internlm2-chat-1_8b";

// Without a GPU the default sweep is the bundled tiny model at CPU-sized batches and contexts: a
// 1.8b-parameter float32 decode at batch 256 takes minutes a step on a CPU.
SweepSpec cpu_defaults() {
  SweepSpec s;
  s.batches = {1, 4, 16};
  s.contexts = {256, 1024};
  s.warmup = 1;
  s.iters = 5;
  return s;
}

struct SweepFlags {
  DeviceFlags device;
  std::optional<std::string> model, batch, context, phase, prompt_len, ceilings;
  std::optional<int> iters, warmup;
  int repeat = 1;
  bool timeline = false;
  std::string out = "run.json";
};

// SIGINT stops the sweep between configurations; the report of what finished is written and the
// exit code is 130 (128 + SIGINT), as a shell expects of an interrupted command.
volatile std::sig_atomic_t g_interrupted = 0;
void on_sweep_sigint(int) {
  g_interrupted = 1;
}

std::string both(const std::vector<int>& gpu, const std::vector<int>& cpu) {
  return fmt::format("{} on a GPU, {} on the CPU", fmt::join(gpu, ","), fmt::join(cpu, ","));
}

int run_sweep_cmd(const SweepFlags& f, const std::vector<std::string>& argv) {
  // Checked first: an --out that cannot be written fails before minutes of measuring. A regular file
  // is rewritten (atomically) after each configuration; a device or pipe (/dev/stdout) gets the final
  // report only.
  const bool rewrite = OutputFile(f.out).replaces_target();
  SweepSpec spec;
  spec.device = choose_device(f.device, true);
  const bool cpu = spec.device == DeviceKind::cpu;
  if (f.phase) {
    spec.phases.clear();
    for (const auto& p : split_list(*f.phase)) {
      try {
        spec.phases.push_back(parse_phase(p));
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--phase: ") + e.what());
      }
    }
  }
  // A flag the sweep's phases or backend would ignore is refused, not dropped without a word.
  const auto runs = [&](Phase p) {
    return std::find(spec.phases.begin(), spec.phases.end(), p) != spec.phases.end();
  };
  if (f.prompt_len && !runs(Phase::prefill))
    throw UsageError(
        "--prompt-len sets the prefill phase's prompts, and this sweep runs decode only: add "
        "--phase prefill (or decode,prefill)");
  if (f.context && !runs(Phase::decode))
    throw UsageError(
        "--context sets the decode phase's contexts, and this sweep runs prefill only (its prompts "
        "are --prompt-len)");
  if (f.timeline && cpu)
    throw UsageError("--timeline records the kernels a GPU ran (CUDA, CUPTI); this sweep runs on the CPU");
  if (f.timeline && !runs(Phase::decode))
    throw UsageError("--timeline records a decode step's kernels, and this sweep runs prefill only");
  std::string model = f.model.value_or(kGpuModel);
  if (cpu) {
    const SweepSpec c = cpu_defaults();
    spec.batches = c.batches;
    spec.contexts = c.contexts;
    spec.warmup = c.warmup;
    spec.iters = c.iters;
    if (!f.model) {
      model = bundled_model("tiny-internlm2-chat");
      if (model.empty()) throw std::runtime_error("the bundled tiny model was not found in " + data_dir());
      // Why the tiny model: no GPU answered, or the CPU was asked for (a preset would take hours there).
      const std::string sizes =
          runs(Phase::decode)
              ? fmt::format("batch {}, context {}",
                            fmt::join(f.batch ? parse_int_list(*f.batch) : spec.batches, ","),
                            fmt::join(f.context ? parse_int_list(*f.context) : spec.contexts, ","))
              : fmt::format("batch {}", fmt::join(f.batch ? parse_int_list(*f.batch) : spec.batches, ","));
      fmt::print(
          stderr,
          "sweep: {} the CPU reference backend runs the bundled tiny model ({}); pass --model{} to choose\n",
          f.device.device ? "on --device cpu," : "no GPU, so", sizes, f.device.device ? "" : " and --device");
    }
  }
  if (f.batch) spec.batches = parse_int_list(*f.batch);
  if (f.context) spec.contexts = parse_int_list(*f.context);
  if (f.iters) spec.iters = *f.iters;
  if (f.warmup) spec.warmup = *f.warmup;
  spec.repeat = f.repeat;
  if (f.prompt_len) spec.prompt_lens = parse_int_list(*f.prompt_len);
  ModelSource source = resolve_model(model);
  const Formats defaults = default_formats(source);
  const auto wl = f.device.weights ? split_list(*f.device.weights)
                                   : std::vector<std::string>{to_string(defaults.weights)};
  const auto kl = f.device.kv ? split_list(*f.device.kv) : std::vector<std::string>{to_string(defaults.kv)};
  // Every (weights, kv) pair is checked up front: a format this backend does not run is refused
  // with its reason, not skipped.
  for (const auto& w : wl)
    for (const auto& k : kl) choose_formats(spec.device, source, w, k);
  spec.weights.clear();
  spec.kvs.clear();
  for (const auto& w : wl) spec.weights.push_back(parse_weight_format(w));
  for (const auto& k : kl) spec.kvs.push_back(parse_kv_format(k));

  DeviceInfo dev = f.ceilings ? device_with_ceilings_file(
                                    spec.device, *f.ceilings,
                                    [](const std::string& line) { fmt::print(stderr, "sweep: {}\n", line); })
                              : measure_device(spec.device);
  fmt::print(stderr, "sweep: {} on {} ({}, {} measured)\n", source.config.name, dev.name,
             format_bandwidth(dev.peak.peak_GBps), format_flops(dev.peak.peak_tflops));
  for (const WeightFormat w : spec.weights)
    if (const std::string note = quantize_at_load_note(source, Formats{.weights = w}); !note.empty())
      fmt::print(stderr, "sweep: {}\n", note);
  // The CUDA backend records a step's kernels when RIDGELINE_TIMELINE is set (engine/backend.h).
  if (f.timeline) setenv("RIDGELINE_TIMELINE", "1", 1);
  auto factory = [&](const BackendOptions& o) { return make_backend(source, o); };
  std::string cmd = "ridgeline sweep";
  for (const auto& s : argv) cmd += " " + s;
  auto to_json = [&](SweepResult r) {
    r.report.command = cmd;
    return sweep_to_json(r).dump(1) + "\n";
  };
  SweepHooks hooks;
  hooks.on_update = [&](const SweepResult& so_far) {
    if (rewrite) write_file(f.out, to_json(so_far));
  };
  hooks.stop_requested = [] { return g_interrupted != 0; };
  g_interrupted = 0;
  auto* previous = std::signal(SIGINT, on_sweep_sigint);
  const SweepProgress progress;
  SweepResult r;
  try {
    r = run_sweep(
        source, spec, factory, dev,
        [&](const std::string& line) { fmt::print(stderr, "{}\n", progress.annotate(line)); }, hooks);
  } catch (...) {
    std::signal(SIGINT, previous);
    throw;
  }
  std::signal(SIGINT, previous);
  write_file(f.out, to_json(r));
  if (f.timeline && timeline_runs(r.report).empty())  // e.g. CUPTI could not attach
    fmt::print(stderr, "sweep: --timeline recorded no kernels (it needs CUPTI on the CUDA backend)\n");
  const int failed = r.failures();
  fmt::print(stderr, "sweep: {} runs, {} skipped, {} failed{}; wrote {}\n", r.report.runs.size(),
             r.skipped.size() - failed, failed, r.interrupted ? ", interrupted" : "", f.out);
  if (r.interrupted) return 130;
  return r.report.runs.empty() || failed > 0 ? 1 : 0;
}

Runner define_sweep(CLI::App& app) {
  auto f = std::make_shared<SweepFlags>();
  const SweepSpec gpu, cpu = cpu_defaults();
  app.add_option("--model", f->model, "checkpoint folder or preset")
      ->type_name("DIR|PRESET")
      ->default_str(fmt::format("{} on a GPU, the bundled tiny model on the CPU", kGpuModel));
  add_device_flags(app, f->device, true, /*lists=*/true);
  app.add_option("--batch", f->batch, "decode batch sizes, comma-separated")
      ->type_name("LIST")
      ->check(positive_int_list())
      ->default_str(both(gpu.batches, cpu.batches));
  app.add_option("--context", f->context,
                 "context lengths (tokens in each sequence's KV cache after the step, the new one included), "
                 "comma-separated")
      ->type_name("LIST")
      ->check(positive_int_list())
      ->default_str(both(gpu.contexts, cpu.contexts));
  app.add_option("--iters", f->iters, "timed decode steps per configuration")
      ->type_name("N")
      ->check(integer_in(1, 1'000'000))
      ->default_str(fmt::format("{} on a GPU, {} on the CPU", gpu.iters, cpu.iters));
  app.add_option("--warmup", f->warmup, "untimed decode steps first")
      ->type_name("N")
      ->check(integer_in(0, 1'000'000))
      ->default_str(fmt::format("{} on a GPU, {} on the CPU", gpu.warmup, cpu.warmup));
  app.add_option("--phase", f->phase, "decode, prefill or both, comma-separated")
      ->type_name("LIST")
      ->check(word_list())
      ->default_str("decode");
  app.add_option("--prompt-len", f->prompt_len, "prefill: new tokens per sequence, comma-separated")
      ->type_name("LIST")
      ->check(positive_int_list())
      ->default_str(fmt::format("{}", fmt::join(gpu.prompt_lens, ",")));
  app.add_option("--repeat", f->repeat, "repetitions of the whole cross product, interleaved and pooled")
      ->type_name("R")
      ->check(integer_in(1, 1000))
      ->capture_default_str();
  app.add_option("--ceilings", f->ceilings,
                 "judge against the ceilings `probe --out` wrote instead of probing")
      ->type_name("FILE");
  app.add_option("--out", f->out,
                 "the report (schema ridgeline.report.v1), rewritten after each configuration")
      ->type_name("FILE")
      ->capture_default_str()
      ->check(file_name());
  app.add_flag("--timeline", f->timeline,
               "also record one decode step's kernels as the GPU ran them (CUDA, CUPTI): each run's "
               "`timeline`, what every kernel adds to the overlapped step");
  return [f](const std::vector<std::string>& argv) { return run_sweep_cmd(*f, argv); };
}

}  // namespace

RIDGELINE_COMMAND(Command{
    "sweep", "time decode steps over batch x context x formats, joined with the cost model into a report",
    "sweep [--model DIR|PRESET] [--device cuda|cpu] [--gpu N] [--batch LIST] [--context LIST]\n"
    "[--weights LIST] [--kv LIST] [--phase LIST] [--prompt-len LIST] [--repeat R] [--ceilings FILE]\n"
    "[--iters N] [--warmup N] [--out FILE] [--timeline]",
    define_sweep});

}  // namespace ridgeline::cli
