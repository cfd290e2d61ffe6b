#include "bench/sweep/sweep.h"

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "analysis/units.h"
#include "bench/build_info.h"
#include "bench/decode_bench.h"
#include "engine/backend_factory.h"
#include "engine/ops.h"

namespace ridgeline {
namespace {

// One configuration of the cross product; `length` is the context (decode) or the prompt (prefill).
struct Config {
  Phase phase = Phase::decode;
  int length = 0;
  int batch = 0;
};

// A configuration's samples over the repetitions so far, and where its run sits in the report.
struct Pool {
  std::vector<double> step_us;
  std::map<std::string, std::vector<double>> op_us;
  int repeats = 0;
  std::string method;
  std::optional<size_t> run_index;
  bool skip_decided = false;                // skipped in the first repetition: it cannot fit, so never again
  std::optional<TimelineSummary> timeline;  // the latest repetition's step, where recorded
};

std::vector<Config> configs_of(const SweepSpec& spec) {
  std::vector<Config> out;
  for (Phase phase : spec.phases) {
    const auto& lengths = phase == Phase::decode ? spec.contexts : spec.prompt_lens;
    for (int length : lengths)
      for (int b : spec.batches) out.push_back({phase, length, b});
  }
  return out;
}

std::string tag_of(const Config& c, WeightFormat wf, KvFormat kf) {
  return c.phase == Phase::decode
             ? fmt::format("B={} ctx={} {}/{}", c.batch, c.length, to_string(wf), to_string(kf))
             : fmt::format("prefill B={} len={} {}/{}", c.batch, c.length, to_string(wf), to_string(kf));
}

StepShape shape_of(const Config& c, const Formats& formats) {
  StepShape shape;
  shape.batch = c.batch;
  shape.context = {c.length};
  shape.new_tokens_per_seq = c.phase == Phase::prefill ? c.length : 1;
  shape.formats = formats;
  return shape;
}

// Why `c` cannot run on `backend`, decided before anything is allocated for it; "" when it fits.
std::string reason_not_to_run(const Config& c, const Backend& backend, const ModelConfig& model,
                              KvFormat kf) {
  if (c.length > backend.max_sequence_length())
    return c.phase == Phase::decode ? fmt::format("context {} exceeds the model's limit of {}", c.length,
                                                  backend.max_sequence_length())
                                    : fmt::format("a prompt of {} tokens exceeds the model's limit of {}",
                                                  c.length, backend.max_sequence_length());
  const int64_t tokens = int64_t(c.batch) * c.length;
  if (tokens > backend.capacity_tokens())
    return fmt::format("needs {} KV-cache tokens ({:.1f} GB), the cache holds {}", tokens,
                       tokens * kv_bytes_per_token(model, kf) / 1e9, backend.capacity_tokens());
  return "";
}

std::string progress_line(const Config& c, const RunRecord& r) {
  const RooflinePoint& p = r.step.point;
  if (c.phase == Phase::prefill)
    return fmt::format(
        "TTFT {:.1f} us, {:.0f} prompt tok/s, {} ({:.0f}% of peak), {}, {}-bound, coverage {:.2f}",
        r.step.time_us.median, r.step.tokens_per_s, format_flops(p.achieved_tflops),
        100 * p.compute_utilization, format_bandwidth(p.achieved_GBps), p.bound, r.coverage);
  return fmt::format("{:.1f} us/step, {:.0f} tok/s, {} ({:.0f}% of peak), {}-bound, coverage {:.2f}",
                     r.step.time_us.median, r.step.tokens_per_s, format_bandwidth(p.achieved_GBps),
                     100 * p.bandwidth_utilization, p.bound, r.coverage);
}

}  // namespace

const char* to_string(Phase p) {
  return p == Phase::prefill ? "prefill" : "decode";
}

Phase parse_phase(std::string_view text) {
  if (text == "decode") return Phase::decode;
  if (text == "prefill") return Phase::prefill;
  throw std::invalid_argument(fmt::format("unknown phase '{}' (expected decode or prefill)", text));
}

int SweepResult::failures() const {
  return static_cast<int>(
      std::count_if(skipped.begin(), skipped.end(), [](const SweepSkip& s) { return s.failed; }));
}

SweepResult run_sweep(const ModelSource& source, const SweepSpec& spec, const BackendFactory& factory,
                      const DeviceInfo& device, const ProgressFn& progress, const SweepHooks& hooks) {
  if (spec.repeat < 1) throw std::invalid_argument("run_sweep: repeat must be at least 1");
  if (spec.batches.empty() || spec.phases.empty())
    throw std::invalid_argument("run_sweep: needs at least one batch and one phase");
  SweepResult out;
  Report& rep = out.report;
  rep.created = utc_timestamp();
  rep.git_commit = build_git_commit();
  rep.device = device;
  rep.model.name = source.config.name;
  rep.model.synthetic = source.synthetic;
  rep.model.params = source.config.params();
  rep.model.config = source.config;

  struct Pair {
    WeightFormat wf;
    KvFormat kf;
    bool failed = false;  // its backend could not be built: every configuration is recorded as failed
  };
  std::vector<Pair> pairs;
  for (WeightFormat wf : spec.weights)
    for (KvFormat kf : spec.kvs) pairs.push_back({wf, kf});
  const std::vector<Config> configs = configs_of(spec);
  std::vector<std::vector<Pool>> pools(pairs.size(), std::vector<Pool>(configs.size()));
  const int max_batch = *std::max_element(spec.batches.begin(), spec.batches.end());
  const int total = int(spec.repeat * pairs.size() * configs.size());
  int done = 0;

  auto refresh = [&] {
    if (rep.runs.empty()) return;
    rep.method = rep.runs.front().method;
    if (spec.repeat > 1)
      rep.method += fmt::format(
          "; the sweep ran its whole cross product {} times, interleaved (configuration order inside each "
          "repetition), and each run pools its configuration's samples from every repetition",
          spec.repeat);
    rep.headline = build_headline(source.config, rep.runs, device.peak, spec.device == DeviceKind::cuda);
  };
  auto update = [&] {
    refresh();
    if (hooks.on_update) hooks.on_update(out);
  };
  auto stop = [&] {
    if (hooks.stop_requested && hooks.stop_requested()) out.interrupted = true;
    return out.interrupted;
  };
  auto rep_tag = [&](int r) {
    return spec.repeat > 1 ? fmt::format("rep {}/{} ", r + 1, spec.repeat) : std::string();
  };

  std::unique_ptr<Backend> backend;
  int loaded = -1;  // the pair `backend` runs
  for (int r = 0; r < spec.repeat && !out.interrupted; ++r) {
    for (size_t p = 0; p < pairs.size() && !out.interrupted; ++p) {
      Pair& pair = pairs[p];
      const std::string wn = to_string(pair.wf), kn = to_string(pair.kf);
      const bool anything_left =
          std::any_of(pools[p].begin(), pools[p].end(), [](const Pool& x) { return !x.skip_decided; });
      if (pair.failed || !anything_left) {
        done += int(configs.size());
        continue;
      }
      if (stop()) break;
      if (loaded != int(p)) {
        backend.reset();  // the previous pair's weights and KV cache go first: both may not fit at once
        loaded = -1;
        BackendOptions opt;
        opt.device = spec.device;
        opt.formats = default_formats(source);
        opt.formats.weights = pair.wf;
        opt.formats.kv = pair.kf;
        opt.max_sequences = max_batch;
        try {
          progress(fmt::format("{}loading {} ({} weights, {} KV) on {}", rep_tag(r), source.config.name, wn,
                               kn, device.backend));
          backend = factory(opt);
          loaded = int(p);
        } catch (const std::exception& e) {
          pair.failed = true;
          for (const Config& c : configs) {
            out.skipped.push_back({c.batch, c.length, wn, kn, e.what(), c.phase, true});
            progress(
                fmt::format("[{}/{}] failed {}: {}", ++done, total, tag_of(c, pair.wf, pair.kf), e.what()));
          }
          update();
          continue;
        }
      }
      for (size_t k = 0; k < configs.size(); ++k) {
        const Config& c = configs[k];
        Pool& pool = pools[p][k];
        const std::string tag = rep_tag(r) + tag_of(c, pair.wf, pair.kf);
        if (pool.skip_decided) {
          ++done;
          continue;
        }
        if (stop()) break;
        if (std::string reason = reason_not_to_run(c, *backend, source.config, pair.kf); !reason.empty()) {
          pool.skip_decided = true;
          out.skipped.push_back({c.batch, c.length, wn, kn, reason, c.phase, false});
          progress(fmt::format("[{}/{}] skip {}: {}", ++done, total, tag, reason));
          update();
          continue;
        }
        try {
          const DecodeTiming t =
              c.phase == Phase::decode
                  ? measure_decode(*backend, c.batch, c.length, spec.warmup, spec.iters, spec.seed)
                  : measure_prefill(*backend, c.batch, c.length, spec.warmup, spec.iters);
          std::map<std::string, std::vector<double>> op_us;
          for (const auto& op : t.ops) op_us[op.name] = op.us;
          StepShape shape = shape_of(c, backend->formats());
          // The CUDA backend runs the fused op table at decode (cuda_fusions): count what it launches.
          if (backend->device() == DeviceKind::cuda) shape.fusions = cuda_fusions(source.config, shape);
          // A prefill larger than the backend's chunk reads the weights once a chunk: count that too.
          if (c.phase == Phase::prefill) shape.prefill_chunk_tokens = backend->prefill_chunk_tokens();
          // This repetition alone, for the progress line; then the pool, for the report.
          const RunRecord this_rep = build_run(source.config, shape, device.peak, t.step_us, op_us, t.method);
          pool.step_us.insert(pool.step_us.end(), t.step_us.begin(), t.step_us.end());
          for (const auto& [name, us] : op_us)
            pool.op_us[name].insert(pool.op_us[name].end(), us.begin(), us.end());
          pool.repeats += 1;
          pool.method = t.method;
          if (auto timeline = timeline_summary(t)) pool.timeline = std::move(timeline);
          RunRecord run = build_run(source.config, shape, device.peak, pool.step_us, pool.op_us, pool.method);
          run.repeats = pool.repeats;
          run.timeline = pool.timeline;
          if (pool.run_index) {
            rep.runs[*pool.run_index] = std::move(run);
          } else {
            pool.run_index = rep.runs.size();
            rep.runs.push_back(std::move(run));
          }
          progress(fmt::format("[{}/{}] {}: {}", ++done, total, tag, progress_line(c, this_rep)));
          if (spec.device == DeviceKind::cuda) {
            // The clocks the GPU ran this configuration at (idle clocks, read before, say little).
            const DeviceFacts f = read_device_clocks(spec.device);
            EnvironmentInfo& env = rep.device.env;
            if (f.sm_clock_mhz > 0) env.sm_clock_mhz = f.sm_clock_mhz;
            if (f.sm_clock_max_mhz > 0) env.sm_clock_max_mhz = f.sm_clock_max_mhz;
            if (f.memory_clock_mhz > 0) env.memory_clock_mhz = f.memory_clock_mhz;
            if (f.memory_clock_max_mhz > 0) env.memory_clock_max_mhz = f.memory_clock_max_mhz;
          }
        } catch (const std::exception& e) {
          std::string reason = spec.repeat > 1
                                   ? fmt::format("repetition {} of {}: {}", r + 1, spec.repeat, e.what())
                                   : std::string(e.what());
          out.skipped.push_back({c.batch, c.length, wn, kn, reason, c.phase, true});
          progress(fmt::format("[{}/{}] failed {}: {}", ++done, total, tag, e.what()));
        }
        update();
      }
    }
  }
  backend.reset();
  refresh();
  return out;
}

nlohmann::json sweep_to_json(const SweepResult& r) {
  nlohmann::json j = to_json(r.report);
  j["skipped"] = nlohmann::json::array();
  for (const auto& s : r.skipped)
    j["skipped"].push_back({{"batch", s.batch},
                            {"context", s.context},
                            {"weights", s.weights},
                            {"kv", s.kv},
                            {"reason", s.reason},
                            {"phase", to_string(s.phase)},
                            {"failed", s.failed}});
  if (r.interrupted) j["interrupted"] = true;
  return j;
}

}  // namespace ridgeline
