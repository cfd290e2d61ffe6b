#include "bench/sweep/sweep.h"

#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "bench/decode_bench.h"
#include "engine/backend_factory.h"
#include "engine/ops.h"

namespace ridgeline {

SweepResult run_sweep(const ModelSource& source, const SweepSpec& spec, const BackendFactory& factory,
                      const DeviceInfo& device, const ProgressFn& progress) {
  SweepResult out;
  Report& rep = out.report;
  rep.created = utc_timestamp();
  rep.device = device;
  rep.model.name = source.config.name;
  rep.model.synthetic = source.synthetic;
  rep.model.params = source.config.params();
  rep.model.config = source.config;
  const int max_batch = *std::max_element(spec.batches.begin(), spec.batches.end());
  const int total_configs =
      int(spec.weights.size() * spec.kvs.size() * spec.contexts.size() * spec.batches.size());
  int done = 0;

  for (WeightFormat wf : spec.weights) {
    for (KvFormat kf : spec.kvs) {
      auto skip_all = [&](const std::string& reason) {
        for (int ctx : spec.contexts)
          for (int b : spec.batches) {
            out.skipped.push_back({b, ctx, to_string(wf), to_string(kf), reason});
            progress(fmt::format("[{}/{}] skip B={} ctx={} {}/{}: {}", ++done, total_configs, b, ctx,
                                 to_string(wf), to_string(kf), reason));
          }
      };
      BackendOptions opt;
      opt.device = spec.device;
      opt.formats = default_formats(source);
      opt.formats.weights = wf;
      opt.formats.kv = kf;
      opt.max_sequences = max_batch;
      std::unique_ptr<Backend> backend;
      try {
        progress(fmt::format("loading {} ({} weights, {} KV) on {}", source.config.name, to_string(wf),
                             to_string(kf), device.backend));
        backend = factory(opt);
      } catch (const std::exception& e) {
        skip_all(e.what());
        continue;
      }
      for (int ctx : spec.contexts) {
        for (int b : spec.batches) {
          std::string tag = fmt::format("B={} ctx={} {}/{}", b, ctx, to_string(wf), to_string(kf));
          // Checked before anything is allocated for the configuration.
          std::string reason;
          if (ctx > backend->max_sequence_length())
            reason = fmt::format("context {} exceeds the model's limit of {}", ctx,
                                 backend->max_sequence_length());
          else if (int64_t(b) * ctx > backend->capacity_tokens())
            reason = fmt::format("needs {} KV-cache tokens ({:.1f} GB), the cache holds {}", int64_t(b) * ctx,
                                 int64_t(b) * ctx * kv_bytes_per_token(source.config, kf) / 1e9,
                                 backend->capacity_tokens());
          if (!reason.empty()) {
            out.skipped.push_back({b, ctx, to_string(wf), to_string(kf), reason});
            progress(fmt::format("[{}/{}] skip {}: {}", ++done, total_configs, tag, reason));
            continue;
          }
          try {
            DecodeTiming t = measure_decode(*backend, b, ctx, spec.warmup, spec.iters, spec.seed);
            std::map<std::string, std::vector<double>> op_us;
            for (const auto& op : t.ops) op_us[op.name] = op.us;
            StepShape shape;
            shape.batch = b;
            shape.context = {ctx};
            shape.formats = backend->formats();
            RunRecord run =
                build_run(source.config, shape, device.peak, t.step_us, op_us, t.method);
            progress(fmt::format(
                "[{}/{}] {}: {:.1f} us/step, {:.0f} tok/s, {:.0f} GB/s ({:.0f}% of peak), {}-bound, "
                "coverage {:.2f}",
                ++done, total_configs, tag, run.step.time_us.median, run.step.tokens_per_s,
                run.step.point.achieved_GBps, 100 * run.step.point.bandwidth_utilization,
                run.step.point.bound, run.coverage));
            rep.runs.push_back(std::move(run));
          } catch (const std::exception& e) {
            out.skipped.push_back({b, ctx, to_string(wf), to_string(kf), e.what()});
            progress(fmt::format("[{}/{}] failed {}: {}", ++done, total_configs, tag, e.what()));
          }
        }
      }
    }
  }
  if (!rep.runs.empty()) {
    rep.method = rep.runs.front().method;
    rep.headline = build_headline(source.config, rep.runs, device.peak);
  }
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
                            {"reason", s.reason}});
  return j;
}

}  // namespace ridgeline
