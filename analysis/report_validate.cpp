// validate_report: every problem of a report JSON, one line each, with the JSON path. Checks the
// schema's fields and types, then that every derived number agrees with what it is derived from, so
// that a hand-edited or buggy report cannot pass for a measured one.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <set>

#include <fmt/format.h>

#include "analysis/report.h"
#include "analysis/stats.h"

namespace ridgeline {
namespace {

using nlohmann::json;

constexpr double kRelTol = 1e-6;

bool close(double a, double b) {
  return std::abs(a - b) <= kRelTol * std::max(std::abs(a), std::abs(b)) || (a == 0 && b == 0);
}

class Checker {
 public:
  std::vector<std::string> problems;

  void add(const std::string& path, const std::string& what) { problems.push_back(path + ": " + what); }

  const json* get(const json& obj, const std::string& path, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      add(path + "." + key, "missing");
      return nullptr;
    }
    return &*it;
  }
  std::optional<double> number(const json& obj, const std::string& path, const char* key) {
    const json* v = get(obj, path, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      add(path + "." + key, fmt::format("expected a number, got {}", v->dump()));
      return std::nullopt;
    }
    return v->get<double>();
  }
  std::optional<int64_t> integer(const json& obj, const std::string& path, const char* key, int64_t min) {
    const json* v = get(obj, path, key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      add(path + "." + key, fmt::format("expected an integer, got {}", v->dump()));
      return std::nullopt;
    }
    int64_t x = v->get<int64_t>();
    if (x < min) add(path + "." + key, fmt::format("{} is below the minimum {}", x, min));
    return x;
  }
  std::optional<std::string> string(const json& obj, const std::string& path, const char* key) {
    const json* v = get(obj, path, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      add(path + "." + key, fmt::format("expected a string, got {}", v->dump()));
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  std::optional<std::string> one_of(const json& obj, const std::string& path, const char* key,
                                    std::initializer_list<const char*> allowed) {
    auto s = string(obj, path, key);
    if (!s) return s;
    for (const char* a : allowed)
      if (*s == a) return s;
    std::string list;
    for (const char* a : allowed) list += fmt::format("{}'{}'", list.empty() ? "" : ", ", a);
    add(path + "." + key, fmt::format("'{}' is not one of {}", *s, list));
    return std::nullopt;
  }
  const json* typed(const json& obj, const std::string& path, const char* key, bool want_array) {
    const json* v = get(obj, path, key);
    if (!v) return nullptr;
    if (want_array ? !v->is_array() : !v->is_object()) {
      add(path + "." + key, want_array ? "expected an array" : "expected an object");
      return nullptr;
    }
    return v;
  }
  const json* object(const json& obj, const std::string& path, const char* key) {
    return typed(obj, path, key, false);
  }
  const json* array(const json& obj, const std::string& path, const char* key) {
    return typed(obj, path, key, true);
  }
  // A derived number against the value it should have.
  void agree(const std::string& path, const std::optional<double>& value, double expected,
             const char* formula) {
    if (value && !close(*value, expected))
      add(path, fmt::format("{} disagrees with {} = {} (relative tolerance {})", *value, formula, expected,
                            kRelTol));
  }
};

struct Peak {
  double GBps = 0, tflops = 0;
  bool ok() const { return GBps > 0 && tflops > 0; }
  double ridge() const { return tflops * 1e12 / (GBps * 1e9); }
};

// Flops, bytes and the fields derived from them and the time (µs; absent when it is missing).
void check_point(Checker& ck, const json& j, const std::string& path, const std::optional<double>& time,
                 const Peak& peak) {
  // t <= 0 means "no usable time": the checks that divide by it are skipped.
  double t = time.value_or(0.0);
  auto flops = ck.number(j, path, "flops");
  auto bytes = ck.number(j, path, "bytes");
  auto ai = ck.number(j, path, "arithmetic_intensity");
  auto gbps = ck.number(j, path, "achieved_GBps");
  auto bu = ck.number(j, path, "bandwidth_utilization");
  auto tf = ck.number(j, path, "achieved_tflops");
  auto cu = ck.number(j, path, "compute_utilization");
  auto rt = ck.number(j, path, "roofline_time_us");
  auto re = ck.number(j, path, "roofline_efficiency");
  auto bound = ck.one_of(j, path, "bound", {"memory", "compute"});
  if (time && !(t > 0)) ck.add(path + ".time_us", fmt::format("{} is not a positive time", t));
  if (bytes && !(*bytes > 0)) ck.add(path + ".bytes", fmt::format("{} is not positive", *bytes));
  if (flops && !(*flops >= 0)) ck.add(path + ".flops", fmt::format("{} is negative", *flops));
  if (!flops || !bytes || !(*bytes > 0)) return;
  ck.agree(path + ".arithmetic_intensity", ai, *flops / *bytes, "flops/bytes");
  if (t > 0) {
    ck.agree(path + ".achieved_GBps", gbps, *bytes / (t * 1e3), "bytes/time");
    ck.agree(path + ".achieved_tflops", tf, *flops / (t * 1e6), "flops/time");
  }
  if (!peak.ok()) return;
  if (gbps) ck.agree(path + ".bandwidth_utilization", bu, *gbps / peak.GBps, "achieved_GBps/peak.GBps");
  if (tf) ck.agree(path + ".compute_utilization", cu, *tf / peak.tflops, "achieved_tflops/peak.tflops");
  double roof = std::max(*bytes / (peak.GBps * 1e3), *flops / (peak.tflops * 1e6));
  ck.agree(path + ".roofline_time_us", rt, roof, "max(bytes/peak.GBps, flops/peak.tflops)");
  if (t > 0 && rt) ck.agree(path + ".roofline_efficiency", re, *rt / t, "roofline_time_us/time_us");
  if (bound && ai) {
    const char* expected = *ai < peak.ridge() ? "memory" : "compute";
    if (*bound != expected)
      ck.add(path + ".bound",
             fmt::format("'{}' but arithmetic_intensity {} is {} the ridge {} FLOP/B (expected '{}')", *bound,
                         *ai, *ai < peak.ridge() ? "below" : "at or above", peak.ridge(), expected));
  }
}

// The optional mean and standard deviation of a time summary (µs): positive, and not negative.
void check_moments(Checker& ck, const json& t, const std::string& path, std::optional<double>* mean,
                   std::optional<double>* stddev) {
  if (t.contains("mean")) {
    *mean = ck.number(t, path, "mean");
    if (*mean && !(**mean > 0)) ck.add(path + ".mean", fmt::format("{} is not a positive time", **mean));
  }
  if (t.contains("stddev")) {
    *stddev = ck.number(t, path, "stddev");
    if (*stddev && !(**stddev >= 0)) ck.add(path + ".stddev", fmt::format("{} is negative", **stddev));
  }
}

// step.time_us: median, p10, p90, n, and where present mean, stddev and the kept samples. When every
// sample was kept (as many as n) the summary must be theirs.
std::optional<double> check_step_time(Checker& ck, const json& t, const std::string& tp) {
  auto median = ck.number(t, tp, "median");
  auto p10 = ck.number(t, tp, "p10");
  auto p90 = ck.number(t, tp, "p90");
  auto n = ck.integer(t, tp, "n", 1);
  if (median && p10 && p90 && !(*p10 <= *median && *median <= *p90))
    ck.add(tp, fmt::format("p10 {} <= median {} <= p90 {} does not hold", *p10, *median, *p90));
  std::optional<double> mean, stddev;
  check_moments(ck, t, tp, &mean, &stddev);
  if (!t.contains("samples")) return median;
  const json* list = ck.array(t, tp, "samples");
  if (!list) return median;
  std::vector<double> samples;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>())) {
      ck.add(fmt::format("{}.samples[{}]", tp, i), fmt::format("{} is not a positive time", v.dump()));
      return median;
    }
    samples.push_back(v.get<double>());
  }
  if (samples.empty()) {
    ck.add(tp + ".samples", "empty (leave the field out when no samples are kept)");
    return median;
  }
  if (!n) return median;
  if (int64_t(samples.size()) > *n) {
    ck.add(tp + ".samples", fmt::format("{} samples but n is {}", samples.size(), *n));
    return median;
  }
  if (int64_t(samples.size()) < *n) return median;  // thinned: the summary is of samples not kept
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  ck.agree(tp + ".median", median, percentile_sorted(sorted, 0.5), "the median of samples");
  ck.agree(tp + ".p10", p10, percentile_sorted(sorted, 0.1), "the 10th percentile of samples");
  ck.agree(tp + ".p90", p90, percentile_sorted(sorted, 0.9), "the 90th percentile of samples");
  double m = sample_mean(samples), sd = sample_stddev(samples);
  ck.agree(tp + ".mean", mean, m, "the mean of samples");
  // Identical samples give a standard deviation of rounding noise: compare it on the mean's scale.
  if (stddev && std::abs(*stddev - sd) > kRelTol * std::max({std::abs(*stddev), sd, m}))
    ck.add(tp + ".stddev", fmt::format("{} disagrees with the standard deviation of samples = {} (relative "
                                       "tolerance {})",
                                       *stddev, sd, kRelTol));
  return median;
}

// An op's optional time_spread_us: p10 <= time_us <= p90, n >= 1, mean and stddev when present.
void check_spread(Checker& ck, const json& op, const std::string& path, const std::optional<double>& time) {
  if (!op.contains("time_spread_us")) return;
  const json* s = ck.object(op, path, "time_spread_us");
  if (!s) return;
  std::string sp = path + ".time_spread_us";
  auto p10 = ck.number(*s, sp, "p10");
  auto p90 = ck.number(*s, sp, "p90");
  ck.integer(*s, sp, "n", 1);
  std::optional<double> mean, stddev;
  check_moments(ck, *s, sp, &mean, &stddev);
  if (p10 && p90 && time && !(*p10 <= *time && *time <= *p90))
    ck.add(sp, fmt::format("p10 {} <= time_us {} <= p90 {} does not hold", *p10, *time, *p90));
}

double number_or_zero(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

struct OpSums {
  double time = 0, flops = 0, bytes = 0;
  int count = 0;
};

// An entry of ops or by_kind; adds its time/flops/bytes to `sums` under its kind.
void check_op(Checker& ck, const json& j, const std::string& path, const Peak& peak, bool summed,
              std::map<std::string, OpSums>* sums, double* time_sum) {
  if (!j.is_object()) {
    ck.add(path, "expected an object");
    return;
  }
  ck.string(j, path, "name");
  ck.integer(j, path, "layer", -1);
  auto kind = ck.one_of(j, path, "kind", {"gemm", "attention", "norm", "elementwise", "embed", "sample"});
  if (summed) ck.integer(j, path, "count", 1);
  auto t = ck.number(j, path, "time_us");
  check_point(ck, j, path, t, peak);
  check_spread(ck, j, path, t);
  if (sums && kind && t) {
    OpSums& s = (*sums)[*kind];
    s.time += *t;
    s.flops += number_or_zero(j, "flops");
    s.bytes += number_or_zero(j, "bytes");
    s.count += 1;
  }
  if (time_sum && t) *time_sum += *t;
}

// The optional per-kernel timeline of one step: its advances add up to its span, the durations to
// summed_us and the launches to kernel_count (both derived: a reader recomputes them), busy time lies
// within the span and within the summed durations.
void check_timeline(Checker& ck, const json& r, const std::string& path) {
  const json* t = ck.object(r, path, "timeline");
  if (!t) return;
  const std::string tp = path + ".timeline";
  auto span = ck.number(*t, tp, "span_us");
  auto busy = ck.number(*t, tp, "busy_us");
  auto summed = ck.number(*t, tp, "summed_us");
  auto count = ck.integer(*t, tp, "kernel_count", 1);
  const json* kernels = ck.array(*t, tp, "kernels");
  if (!kernels) return;
  double advances = 0.0, durations = 0.0;
  int64_t launches = 0;
  for (size_t i = 0; i < kernels->size(); ++i) {
    const json& k = (*kernels)[i];
    const std::string kp = fmt::format("{}.kernels[{}]", tp, i);
    ck.string(k, kp, "name");
    launches += ck.integer(k, kp, "launches", 1).value_or(0);
    durations += ck.number(k, kp, "us").value_or(0.0);
    ck.number(k, kp, "lead_us");
    auto advance = ck.number(k, kp, "advance_us");
    if (advance && *advance < 0) ck.add(kp + ".advance_us", fmt::format("{} is negative", *advance));
    advances += advance.value_or(0.0);
  }
  if (span) ck.agree(tp + ".span_us", span, advances, "sum(kernels advance_us)");
  ck.agree(tp + ".summed_us", summed, durations, "sum(kernels us)");
  if (span && busy && !(*busy <= *span * (1 + kRelTol)))
    ck.add(tp + ".busy_us", fmt::format("{} exceeds the span {}", *busy, *span));
  if (summed && busy && !(*busy <= *summed * (1 + kRelTol)))
    ck.add(tp + ".busy_us", fmt::format("{} exceeds the summed durations {}", *busy, *summed));
  if (count && launches != *count)
    ck.add(tp + ".kernel_count", fmt::format("{} disagrees with the kernels' launches {}", *count, launches));
}

void check_run(Checker& ck, const json& r, const std::string& path, const Peak& peak) {
  if (!r.is_object()) {
    ck.add(path, "expected an object");
    return;
  }
  auto batch = ck.integer(r, path, "batch", 1);
  ck.integer(r, path, "context", 1);
  auto new_tokens = ck.integer(r, path, "new_tokens_per_seq", 1);
  ck.one_of(r, path, "weights", {"fp16", "w4a16"});
  ck.one_of(r, path, "kv", {"fp16", "int8", "int4"});
  ck.integer(r, path, "group_size", 1);
  if (r.contains("head")) ck.one_of(r, path, "head", {"fp16", "w4a16"});
  ck.string(r, path, "method");
  if (r.contains("repeats")) ck.integer(r, path, "repeats", 1);
  if (r.contains("contexts")) {
    const json* c = ck.array(r, path, "contexts");
    if (c && batch && c->size() != size_t(*batch))
      ck.add(path + ".contexts", fmt::format("{} entries for a batch of {}", c->size(), *batch));
  }

  std::optional<double> median;
  if (const json* step = ck.object(r, path, "step")) {
    std::string sp = path + ".step";
    if (const json* t = ck.object(*step, sp, "time_us")) median = check_step_time(ck, *t, sp + ".time_us");
    auto tps = ck.number(*step, sp, "tokens_per_s");
    if (median && *median > 0 && batch && new_tokens)
      ck.agree(sp + ".tokens_per_s", tps, double(*batch) * double(*new_tokens) / (*median * 1e-6),
               "batch*new_tokens_per_seq/time_us.median");
    check_point(ck, *step, sp, median, peak);
  }

  std::map<std::string, OpSums> by_ops;
  double op_time = 0;
  if (const json* ops = ck.array(r, path, "ops")) {
    std::set<std::string> names;
    for (size_t i = 0; i < ops->size(); ++i) {
      std::string op_path = fmt::format("{}.ops[{}]", path, i);
      check_op(ck, (*ops)[i], op_path, peak, false, &by_ops, &op_time);
      if ((*ops)[i].is_object() && (*ops)[i].contains("name") && (*ops)[i]["name"].is_string() &&
          !names.insert((*ops)[i]["name"].get<std::string>()).second)
        ck.add(op_path + ".name",
               fmt::format("duplicate op name '{}'", (*ops)[i]["name"].get<std::string>()));
    }
    if (const json* kinds = ck.array(r, path, "by_kind")) {
      std::set<std::string> seen;
      for (size_t i = 0; i < kinds->size(); ++i) {
        std::string kp = fmt::format("{}.by_kind[{}]", path, i);
        const json& k = (*kinds)[i];
        check_op(ck, k, kp, peak, true, nullptr, nullptr);
        if (!k.is_object() || !k.contains("kind") || !k["kind"].is_string()) continue;
        std::string kind = k["kind"].get<std::string>();
        seen.insert(kind);
        auto it = by_ops.find(kind);
        if (it == by_ops.end()) {
          ck.add(kp, fmt::format("kind '{}' has no op in ops", kind));
          continue;
        }
        auto value = [&](const char* key) -> std::optional<double> {
          return k.contains(key) && k[key].is_number() ? std::optional<double>(k[key].get<double>())
                                                       : std::nullopt;
        };
        ck.agree(kp + ".time_us", value("time_us"), it->second.time, "sum of ops time_us of this kind");
        ck.agree(kp + ".flops", value("flops"), it->second.flops, "sum of ops flops of this kind");
        ck.agree(kp + ".bytes", value("bytes"), it->second.bytes, "sum of ops bytes of this kind");
        ck.agree(kp + ".count", value("count"), it->second.count, "number of ops of this kind");
      }
      for (const auto& [kind, s] : by_ops)
        if (!seen.count(kind)) ck.add(path + ".by_kind", fmt::format("no entry for kind '{}' of ops", kind));
    }
  }
  auto coverage = ck.number(r, path, "coverage");
  if (median && *median > 0)
    ck.agree(path + ".coverage", coverage, op_time / *median, "sum(ops time_us)/step time");

  if (const json* u = ck.array(r, path, "unmeasured_ops"))
    for (const auto& name : *u)
      if (!name.is_string()) ck.add(path + ".unmeasured_ops", "expected strings");
  if (const json* p = ck.object(r, path, "predicted"))
    for (const char* key : {"time_us", "tokens_per_s", "memory_time_us", "compute_time_us"})
      ck.number(*p, path + ".predicted", key);
  if (r.contains("timeline")) check_timeline(ck, r, path);
}

// The optional environment fields of `device`, where present.
void check_environment(Checker& ck, const json& d, const std::string& dp) {
  for (const char* key :
       {"host_cpu", "compiler", "cuda_compiler", "uuid", "cublas", "nvidia_driver", "nvml_error"})
    if (d.contains(key)) ck.string(d, dp, key);
  if (d.contains("ecc")) ck.one_of(d, dp, "ecc", {"on", "off"});
  if (d.contains("power_limit_W"))
    if (auto w = ck.number(d, dp, "power_limit_W"); w && !(*w > 0))
      ck.add(dp + ".power_limit_W", "must be positive");
  if (d.contains("clocks_MHz")) {
    if (const json* c = ck.object(d, dp, "clocks_MHz")) {
      for (const char* key : {"sm", "sm_max", "memory", "memory_max"})
        if (c->contains(key)) ck.integer(*c, dp + ".clocks_MHz", key, 1);
    }
  }
}

void check_headline(Checker& ck, const json& h, const std::string& path) {
  if (!h.is_object()) {
    ck.add(path, "expected an object");
    return;
  }
  ck.one_of(h, path, "weights", {"fp16", "w4a16"});
  ck.one_of(h, path, "kv", {"fp16", "int8", "int4"});
  ck.integer(h, path, "context", 1);
  ck.integer(h, path, "group_size", 1);
  if (h.contains("head")) ck.one_of(h, path, "head", {"fp16", "w4a16"});
  if (const json* b = ck.array(h, path, "batches"))
    for (const auto& x : *b)
      if (!x.is_number_integer()) ck.add(path + ".batches", fmt::format("{} is not an integer", x.dump()));
  for (const char* key : {"measured_ridge_batch", "predicted_ridge_batch", "measured_gemm_ridge_batch",
                          "predicted_gemm_ridge_batch"}) {
    const json* v = ck.get(h, path, key);
    if (v && !v->is_null() && !v->is_number())
      ck.add(path + "." + key, fmt::format("expected a number or null, got {}", v->dump()));
  }
}

}  // namespace

std::vector<std::string> validate_report(const nlohmann::json& j) {
  Checker ck;
  const std::string root = "$";
  if (!j.is_object()) {
    ck.add(root, "a report must be a JSON object");
    return ck.problems;
  }
  if (auto schema = ck.string(j, root, "schema"); schema && *schema != kReportSchema)
    ck.add("$.schema", fmt::format("'{}' is not '{}'", *schema, kReportSchema));
  if (auto created = ck.string(j, root, "created");
      created && (created->size() < 19 || (*created)[4] != '-' || (*created)[10] != 'T'))
    ck.add("$.created", fmt::format("'{}' is not an ISO-8601 date-time", *created));
  ck.string(j, root, "git_commit");
  ck.string(j, root, "command");
  ck.string(j, root, "method");

  Peak peak;
  if (const json* d = ck.object(j, root, "device")) {
    const std::string dp = "$.device";
    ck.string(*d, dp, "name");
    ck.one_of(*d, dp, "backend", {"cuda", "cpu"});
    ck.integer(*d, dp, "sm_count", 0);
    ck.integer(*d, dp, "memory_bytes", 0);
    ck.string(*d, dp, "driver");
    ck.string(*d, dp, "cuda");
    if (const json* p = ck.object(*d, dp, "peak")) {
      auto gbps = ck.number(*p, dp + ".peak", "GBps");
      auto tflops = ck.number(*p, dp + ".peak", "tflops");
      ck.one_of(*p, dp + ".peak", "source", {"measured", "datasheet"});
      if (gbps && !(*gbps > 0)) ck.add(dp + ".peak.GBps", "must be positive");
      if (tflops && !(*tflops > 0)) ck.add(dp + ".peak.tflops", "must be positive");
      if (gbps && tflops) peak = {*gbps, *tflops};
      if (p->contains("ridge_flops_per_byte") && peak.ok())
        ck.agree(dp + ".peak.ridge_flops_per_byte", ck.number(*p, dp + ".peak", "ridge_flops_per_byte"),
                 peak.ridge(), "tflops*1e12/(GBps*1e9)");
      for (const char* key : {"file", "file_created"})
        if (p->contains(key)) ck.string(*p, dp + ".peak", key);
    }
    check_environment(ck, *d, dp);
    if (const json* s = ck.get(*d, dp, "datasheet"); s && !s->is_null()) {
      if (!s->is_object()) {
        ck.add(dp + ".datasheet", "expected an object or null");
      } else {
        ck.number(*s, dp + ".datasheet", "GBps");
        ck.number(*s, dp + ".datasheet", "tflops");
      }
    }
  }
  if (const json* m = ck.object(j, root, "model")) {
    ck.string(*m, "$.model", "name");
    if (const json* s = ck.get(*m, "$.model", "synthetic"); s && !s->is_boolean())
      ck.add("$.model.synthetic", "expected true or false");
    ck.integer(*m, "$.model", "params", 1);
    ck.object(*m, "$.model", "config");
  }
  if (const json* runs = ck.array(j, root, "runs"))
    for (size_t i = 0; i < runs->size(); ++i) check_run(ck, (*runs)[i], fmt::format("$.runs[{}]", i), peak);
  if (const json* h = ck.array(j, root, "headline"))
    for (size_t i = 0; i < h->size(); ++i) check_headline(ck, (*h)[i], fmt::format("$.headline[{}]", i));
  return ck.problems;
}

}  // namespace ridgeline
