// The join of measured times with the cost model (build_run) and the headline ridge batches.
#include <algorithm>
#include <set>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "analysis/report.h"
#include "analysis/stats.h"

namespace ridgeline {
namespace {

OpRecord sum_record(const std::string& kind, const std::vector<const OpRecord*>& ops, const Ceilings& c) {
  double t = 0, flops = 0, bytes = 0;
  for (const auto* op : ops) {
    t += op->point.time_us;
    flops += op->point.flops;
    bytes += op->point.bytes;
  }
  OpRecord r;
  r.name = kind;
  r.layer = -1;
  r.kind = kind;
  r.count = static_cast<int>(ops.size());
  r.point = roofline_point(flops, bytes, t, c, "by_kind " + kind);
  return r;
}

}  // namespace

RunRecord build_run(const ModelConfig& c, const StepShape& shape, const Ceilings& ceilings,
                    const std::vector<double>& step_samples_us,
                    const std::map<std::string, std::vector<double>>& op_us, const std::string& method) {
  std::vector<OpCost> costs = step_costs(c, shape);
  std::set<std::string> known;
  for (const auto& op : costs) known.insert(op.name);
  for (const auto& [name, samples] : op_us) {
    if (!known.count(name))
      throw std::runtime_error(
          fmt::format("measured op '{}' has no cost-model entry (expected names like "
                      "'embed', 'layers.0.wqkv', 'output'; {} layers)",
                      name, c.n_layers));
    if (samples.empty())
      throw std::runtime_error(fmt::format("measured op '{}' has no timing samples", name));
  }
  if (step_samples_us.empty()) throw std::runtime_error("build_run: no step timing samples");
  const TimeStats step_us = summarize(step_samples_us);

  RunRecord run;
  run.batch = shape.batch;
  run.context = *std::max_element(shape.context.begin(), shape.context.end());
  bool uniform =
      std::all_of(shape.context.begin(), shape.context.end(), [&](int x) { return x == run.context; });
  if (!uniform) run.contexts = shape.context;
  run.new_tokens_per_seq = shape.new_tokens_per_seq;
  run.weights = to_string(shape.formats.weights);
  run.kv = to_string(shape.formats.kv);
  run.group_size = shape.formats.group_size;
  run.head = to_string(shape.formats.head);
  run.method = method;

  CostTotals all = total(costs);
  double tokens = double(shape.batch) * shape.new_tokens_per_seq;
  run.step.time_us = step_us;
  run.step.samples_us = thin_evenly(step_samples_us, kMaxKeptSamples);
  run.step.point = roofline_point(all.flops, all.bytes, step_us.median, ceilings, "step");
  run.step.tokens_per_s = tokens / (step_us.median * 1e-6);

  double op_time_sum = 0;
  for (const auto& op : costs) {
    run.predicted.time_us += roofline_time_us(op.flops, op.bytes, ceilings);
    auto it = op_us.find(op.name);
    if (it == op_us.end()) {
      run.unmeasured_ops.push_back(op.name);
      continue;
    }
    OpRecord r;
    r.name = op.name;
    r.layer = op.layer;
    r.kind = op.kind;
    try {
      r.spread = summarize(it->second);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("measured op '{}': {}", op.name, e.what()));
    }
    r.point = roofline_point(op.flops, op.bytes, r.spread->median, ceilings, op.name);
    op_time_sum += r.point.time_us;
    run.ops.push_back(std::move(r));
  }
  run.predicted.tokens_per_s = tokens / (run.predicted.time_us * 1e-6);
  run.predicted.memory_time_us = all.bytes / (ceilings.peak_GBps * 1e3);
  run.predicted.compute_time_us = all.flops / (ceilings.peak_tflops * 1e6);

  std::vector<std::string> kinds;
  for (const auto& op : run.ops)
    if (std::find(kinds.begin(), kinds.end(), op.kind) == kinds.end()) kinds.push_back(op.kind);
  for (const auto& kind : kinds) {
    std::vector<const OpRecord*> members;
    for (const auto& op : run.ops)
      if (op.kind == kind) members.push_back(&op);
    run.by_kind.push_back(sum_record(kind, members, ceilings));
  }
  run.coverage = op_time_sum / step_us.median;
  return run;
}

std::vector<HeadlineEntry> build_headline(const ModelConfig& c, const std::vector<RunRecord>& runs,
                                          const Ceilings& ceilings, bool cuda) {
  // weights, kv, context, group size, head
  using Key = std::tuple<std::string, std::string, int, int, std::string>;
  std::vector<Key> order;
  std::map<Key, std::vector<const RunRecord*>> groups;
  for (const auto& r : runs) {
    if (r.new_tokens_per_seq != 1 || !r.contexts.empty()) continue;  // decode at one context only
    Key k{r.weights, r.kv, r.context, r.group_size, r.head};
    if (!groups.count(k)) order.push_back(k);
    groups[k].push_back(&r);
  }
  std::vector<HeadlineEntry> out;
  for (const auto& k : order) {
    auto& members = groups[k];
    std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->batch < b->batch; });
    HeadlineEntry e;
    std::tie(e.weights, e.kv, e.context, e.group_size, e.head) = k;
    Formats formats;
    formats.weights = parse_weight_format(e.weights);
    formats.group_size = e.group_size;
    formats.kv = parse_kv_format(e.kv);
    formats.head = parse_weight_format(e.head);
    std::vector<RidgeSample> step_samples, gemm_samples;
    bool all_have_gemm = true;
    for (const auto* r : members) {
      e.batches.push_back(r->batch);
      step_samples.push_back(
          {double(r->batch), r->step.point.flops, r->step.point.bytes, r->step.point.time_us});
      auto g =
          std::find_if(r->by_kind.begin(), r->by_kind.end(), [](const auto& b) { return b.kind == "gemm"; });
      if (g == r->by_kind.end()) {
        all_have_gemm = false;
      } else {
        gemm_samples.push_back({double(r->batch), g->point.flops, g->point.bytes, g->point.time_us});
      }
    }
    e.measured_ridge_batch = measured_ridge_batch(step_samples, ceilings.ridge());
    if (all_have_gemm) e.measured_gemm_ridge_batch = measured_ridge_batch(gemm_samples, ceilings.ridge());
    e.predicted_ridge_batch = predicted_ridge_batch(c, formats, e.context, ceilings, "", cuda);
    e.predicted_gemm_ridge_batch = predicted_ridge_batch(c, formats, e.context, ceilings, "gemm", cuda);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace ridgeline
