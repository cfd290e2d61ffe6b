// JSON form of the report (to_json / report_from_json). Field names are the schema's; see
// reports/schema/ridgeline.report.v1.md.
#include "analysis/report.h"

#include <chrono>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {
namespace {

using nlohmann::json;

json optional_number(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

void put_point(json& j, const RooflinePoint& p, bool with_time) {
  if (with_time) j["time_us"] = p.time_us;
  j["flops"] = p.flops;
  j["bytes"] = p.bytes;
  j["arithmetic_intensity"] = p.arithmetic_intensity;
  j["achieved_GBps"] = p.achieved_GBps;
  j["bandwidth_utilization"] = p.bandwidth_utilization;
  j["achieved_tflops"] = p.achieved_tflops;
  j["compute_utilization"] = p.compute_utilization;
  j["roofline_time_us"] = p.roofline_time_us;
  j["roofline_efficiency"] = p.roofline_efficiency;
  j["bound"] = p.bound;
}

json op_json(const OpRecord& op, bool with_count) {
  json j = {{"name", op.name}, {"layer", op.layer}, {"kind", op.kind}};
  if (with_count) j["count"] = op.count;
  put_point(j, op.point, true);
  if (op.spread) {
    json s = {{"p10", op.spread->p10}, {"p90", op.spread->p90}, {"n", op.spread->n}};
    if (op.spread->mean) s["mean"] = *op.spread->mean;
    if (op.spread->stddev) s["stddev"] = *op.spread->stddev;
    j["time_spread_us"] = s;
  }
  return j;
}

json time_json(const TimeStats& t, const std::vector<double>& samples) {
  json j = {{"median", t.median}, {"p10", t.p10}, {"p90", t.p90}, {"n", t.n}};
  if (t.mean) j["mean"] = *t.mean;
  if (t.stddev) j["stddev"] = *t.stddev;
  if (!samples.empty()) j["samples"] = samples;
  return j;
}

json run_json(const RunRecord& r) {
  json j = {{"batch", r.batch},     {"context", r.context}, {"new_tokens_per_seq", r.new_tokens_per_seq},
            {"weights", r.weights}, {"kv", r.kv},           {"group_size", r.group_size},
            {"head", r.head},       {"method", r.method}};
  if (!r.contexts.empty()) j["contexts"] = r.contexts;
  if (r.repeats != 1) j["repeats"] = r.repeats;
  json step = {{"time_us", time_json(r.step.time_us, r.step.samples_us)},
               {"tokens_per_s", r.step.tokens_per_s}};
  put_point(step, r.step.point, false);
  j["step"] = step;
  j["ops"] = json::array();
  for (const auto& op : r.ops) j["ops"].push_back(op_json(op, false));
  j["by_kind"] = json::array();
  for (const auto& k : r.by_kind) j["by_kind"].push_back(op_json(k, true));
  j["coverage"] = r.coverage;
  j["unmeasured_ops"] = r.unmeasured_ops;
  j["predicted"] = {{"time_us", r.predicted.time_us},
                    {"tokens_per_s", r.predicted.tokens_per_s},
                    {"memory_time_us", r.predicted.memory_time_us},
                    {"compute_time_us", r.predicted.compute_time_us}};
  if (r.timeline) {
    json kernels = json::array();
    for (const TimelineKernel& k : r.timeline->kernels)
      kernels.push_back({{"name", k.name},
                         {"launches", k.launches},
                         {"us", k.us},
                         {"lead_us", k.lead_us},
                         {"advance_us", k.advance_us}});
    j["timeline"] = {{"span_us", r.timeline->span_us},
                     {"busy_us", r.timeline->busy_us},
                     {"summed_us", r.timeline->summed_us()},
                     {"kernel_count", r.timeline->kernel_count()},
                     {"kernels", kernels}};
  }
  return j;
}

// The environment's text fields and clocks (MHz) by their JSON keys: written and read from one list.
const std::pair<const char*, std::string EnvironmentInfo::*> kEnvText[] = {
    {"host_cpu", &EnvironmentInfo::host_cpu},
    {"compiler", &EnvironmentInfo::compiler},
    {"cuda_compiler", &EnvironmentInfo::cuda_compiler},
    {"uuid", &EnvironmentInfo::uuid},
    {"cublas", &EnvironmentInfo::cublas},
    {"nvidia_driver", &EnvironmentInfo::nvidia_driver},
    {"ecc", &EnvironmentInfo::ecc},
    {"nvml_error", &EnvironmentInfo::nvml_error}};
const std::pair<const char*, int EnvironmentInfo::*> kEnvClocks[] = {
    {"sm", &EnvironmentInfo::sm_clock_mhz},
    {"sm_max", &EnvironmentInfo::sm_clock_max_mhz},
    {"memory", &EnvironmentInfo::memory_clock_mhz},
    {"memory_max", &EnvironmentInfo::memory_clock_max_mhz}};

// Reading: every getter names the JSON path of what it could not find.
[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("report {}: {}", path, what));
}

const json& at(const json& j, const std::string& path, const char* key) {
  if (!j.is_object()) bad(path, "expected an object");
  auto it = j.find(key);
  if (it == j.end()) bad(path + "." + key, "missing");
  return *it;
}

double num(const json& j, const std::string& path, const char* key) {
  const json& v = at(j, path, key);
  if (!v.is_number()) bad(path + "." + key, fmt::format("expected a number, got {}", v.dump()));
  return v.get<double>();
}

int64_t integer(const json& j, const std::string& path, const char* key) {
  const json& v = at(j, path, key);
  if (!v.is_number_integer()) bad(path + "." + key, fmt::format("expected an integer, got {}", v.dump()));
  return v.get<int64_t>();
}

std::string str(const json& j, const std::string& path, const char* key) {
  const json& v = at(j, path, key);
  if (!v.is_string()) bad(path + "." + key, fmt::format("expected a string, got {}", v.dump()));
  return v.get<std::string>();
}

const json& array(const json& j, const std::string& path, const char* key) {
  const json& v = at(j, path, key);
  if (!v.is_array()) bad(path + "." + key, "expected an array");
  return v;
}

std::optional<double> nullable(const json& j, const std::string& path, const char* key) {
  const json& v = at(j, path, key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) bad(path + "." + key, fmt::format("expected a number or null, got {}", v.dump()));
  return v.get<double>();
}

std::optional<double> optional_num(const json& j, const std::string& path, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  return num(j, path, key);
}

std::vector<double> numbers(const json& j, const std::string& path, const char* key) {
  std::vector<double> out;
  for (const auto& v : array(j, path, key)) {
    if (!v.is_number()) bad(path + "." + key, fmt::format("expected numbers, got {}", v.dump()));
    out.push_back(v.get<double>());
  }
  return out;
}

RooflinePoint read_point(const json& j, const std::string& path, double time_us) {
  RooflinePoint p;
  p.time_us = time_us;
  p.flops = num(j, path, "flops");
  p.bytes = num(j, path, "bytes");
  p.arithmetic_intensity = num(j, path, "arithmetic_intensity");
  p.achieved_GBps = num(j, path, "achieved_GBps");
  p.bandwidth_utilization = num(j, path, "bandwidth_utilization");
  p.achieved_tflops = num(j, path, "achieved_tflops");
  p.compute_utilization = num(j, path, "compute_utilization");
  p.roofline_time_us = num(j, path, "roofline_time_us");
  p.roofline_efficiency = num(j, path, "roofline_efficiency");
  p.bound = str(j, path, "bound");
  return p;
}

OpRecord read_op(const json& j, const std::string& path, bool with_count) {
  OpRecord op;
  op.name = str(j, path, "name");
  op.layer = static_cast<int>(integer(j, path, "layer"));
  op.kind = str(j, path, "kind");
  if (with_count) op.count = static_cast<int>(integer(j, path, "count"));
  op.point = read_point(j, path, num(j, path, "time_us"));
  if (j.contains("time_spread_us")) {
    const json& s = at(j, path, "time_spread_us");
    std::string sp = path + ".time_spread_us";
    TimeStats t;
    t.median = op.point.time_us;
    t.p10 = num(s, sp, "p10");
    t.p90 = num(s, sp, "p90");
    t.n = static_cast<int>(integer(s, sp, "n"));
    t.mean = optional_num(s, sp, "mean");
    t.stddev = optional_num(s, sp, "stddev");
    op.spread = t;
  }
  return op;
}

RunRecord read_run(const json& j, const std::string& path) {
  RunRecord r;
  r.batch = static_cast<int>(integer(j, path, "batch"));
  r.context = static_cast<int>(integer(j, path, "context"));
  if (j.contains("contexts")) {
    for (const auto& c : array(j, path, "contexts")) {
      if (!c.is_number_integer()) bad(path + ".contexts", "expected integers");
      r.contexts.push_back(c.get<int>());
    }
  }
  r.new_tokens_per_seq = static_cast<int>(integer(j, path, "new_tokens_per_seq"));
  r.weights = str(j, path, "weights");
  r.kv = str(j, path, "kv");
  r.group_size = static_cast<int>(integer(j, path, "group_size"));
  if (j.contains("head")) r.head = str(j, path, "head");  // absent before 4-bit heads: fp16
  r.method = str(j, path, "method");
  if (j.contains("repeats")) r.repeats = static_cast<int>(integer(j, path, "repeats"));
  const json& step = at(j, path, "step");
  const std::string step_path = path + ".step";  // named: a temporary here trips -Wdangling-reference
  const json& t = at(step, step_path, "time_us");
  std::string tp = step_path + ".time_us";
  r.step.time_us.median = num(t, tp, "median");
  r.step.time_us.p10 = num(t, tp, "p10");
  r.step.time_us.p90 = num(t, tp, "p90");
  r.step.time_us.n = static_cast<int>(integer(t, tp, "n"));
  r.step.time_us.mean = optional_num(t, tp, "mean");
  r.step.time_us.stddev = optional_num(t, tp, "stddev");
  if (t.contains("samples")) r.step.samples_us = numbers(t, tp, "samples");
  r.step.tokens_per_s = num(step, path + ".step", "tokens_per_s");
  r.step.point = read_point(step, path + ".step", r.step.time_us.median);
  const json& ops = array(j, path, "ops");
  for (size_t i = 0; i < ops.size(); ++i)
    r.ops.push_back(read_op(ops[i], fmt::format("{}.ops[{}]", path, i), false));
  const json& kinds = array(j, path, "by_kind");
  for (size_t i = 0; i < kinds.size(); ++i)
    r.by_kind.push_back(read_op(kinds[i], fmt::format("{}.by_kind[{}]", path, i), true));
  r.coverage = num(j, path, "coverage");
  for (const auto& name : array(j, path, "unmeasured_ops")) {
    if (!name.is_string()) bad(path + ".unmeasured_ops", "expected strings");
    r.unmeasured_ops.push_back(name.get<std::string>());
  }
  const json& p = at(j, path, "predicted");
  std::string pp = path + ".predicted";
  r.predicted = {num(p, pp, "time_us"), num(p, pp, "tokens_per_s"), num(p, pp, "memory_time_us"),
                 num(p, pp, "compute_time_us")};
  if (j.contains("timeline")) {  // optional: only `sweep --timeline` on CUDA records it
    const json& tl = at(j, path, "timeline");
    const std::string tlp = path + ".timeline";
    TimelineSummary t;
    t.span_us = num(tl, tlp, "span_us");
    t.busy_us = num(tl, tlp, "busy_us");
    // summed_us and kernel_count follow from the kernels (validate_report checks that they do).
    const json& ks = array(tl, tlp, "kernels");
    for (size_t i = 0; i < ks.size(); ++i) {
      const std::string kp = fmt::format("{}.kernels[{}]", tlp, i);
      t.kernels.push_back({str(ks[i], kp, "name"), static_cast<int>(integer(ks[i], kp, "launches")),
                           num(ks[i], kp, "us"), num(ks[i], kp, "lead_us"), num(ks[i], kp, "advance_us")});
    }
    r.timeline = std::move(t);
  }
  return r;
}

}  // namespace

nlohmann::json device_to_json(const DeviceInfo& d) {
  json peak = {{"GBps", d.peak.peak_GBps},
               {"tflops", d.peak.peak_tflops},
               {"source", d.peak.source},
               {"ridge_flops_per_byte", d.peak.ridge()}};
  if (d.peak.copy_GBps > 0) peak["copy_GBps"] = d.peak.copy_GBps;
  if (d.peak.read_GBps > 0) peak["read_GBps"] = d.peak.read_GBps;
  if (!d.ceilings_file.empty()) peak["file"] = d.ceilings_file;
  if (!d.ceilings_created.empty()) peak["file_created"] = d.ceilings_created;
  json sheet =
      d.datasheet
          ? json{{"name", d.datasheet->name}, {"GBps", d.datasheet->GBps}, {"tflops", d.datasheet->tflops}}
          : json(nullptr);
  json j = {{"name", d.name},         {"backend", d.backend},
            {"sm_count", d.sm_count}, {"memory_bytes", d.memory_bytes},
            {"driver", d.driver},     {"cuda", d.cuda},
            {"peak", peak},           {"datasheet", sheet}};
  // The environment: only what is known is written.
  const EnvironmentInfo& e = d.env;
  for (const auto& [key, field] : kEnvText)
    if (!(e.*field).empty()) j[key] = e.*field;
  json clocks = json::object();
  for (const auto& [key, field] : kEnvClocks)
    if (e.*field > 0) clocks[key] = e.*field;
  if (!clocks.empty()) j["clocks_MHz"] = clocks;
  if (e.power_limit_w > 0) j["power_limit_W"] = e.power_limit_w;
  return j;
}

DeviceInfo device_from_json(const nlohmann::json& d, const std::string& dp) {
  DeviceInfo r;
  r.name = str(d, dp, "name");
  r.backend = str(d, dp, "backend");
  r.sm_count = static_cast<int>(integer(d, dp, "sm_count"));
  r.memory_bytes = integer(d, dp, "memory_bytes");
  r.driver = str(d, dp, "driver");
  r.cuda = str(d, dp, "cuda");
  const json& peak = at(d, dp, "peak");
  const std::string pp = dp + ".peak";
  r.peak.peak_GBps = num(peak, pp, "GBps");
  r.peak.peak_tflops = num(peak, pp, "tflops");
  r.peak.source = str(peak, pp, "source");
  if (peak.contains("copy_GBps")) r.peak.copy_GBps = num(peak, pp, "copy_GBps");
  if (peak.contains("read_GBps")) r.peak.read_GBps = num(peak, pp, "read_GBps");
  if (peak.contains("file")) r.ceilings_file = str(peak, pp, "file");
  if (peak.contains("file_created")) r.ceilings_created = str(peak, pp, "file_created");
  const json& sheet = at(d, dp, "datasheet");
  if (!sheet.is_null()) {
    Datasheet ds;
    ds.name = sheet.contains("name") ? str(sheet, dp + ".datasheet", "name") : std::string{};
    ds.GBps = num(sheet, dp + ".datasheet", "GBps");
    ds.tflops = num(sheet, dp + ".datasheet", "tflops");
    r.datasheet = ds;
  }
  EnvironmentInfo& e = r.env;
  for (const auto& [key, field] : kEnvText)
    if (d.contains(key)) e.*field = str(d, dp, key);
  if (d.contains("clocks_MHz")) {
    const json& c = at(d, dp, "clocks_MHz");
    for (const auto& [key, field] : kEnvClocks)
      if (c.contains(key)) e.*field = static_cast<int>(integer(c, dp + ".clocks_MHz", key));
  }
  if (d.contains("power_limit_W")) e.power_limit_w = num(d, dp, "power_limit_W");
  return r;
}

nlohmann::json to_json(const Report& r) {
  json j = {{"schema", r.schema},
            {"created", r.created},
            {"git_commit", r.git_commit},
            {"command", r.command},
            {"method", r.method}};
  j["device"] = device_to_json(r.device);
  j["model"] = {{"name", r.model.name},
                {"synthetic", r.model.synthetic},
                {"params", r.model.params},
                {"config", config_to_json(r.model.config)}};
  j["runs"] = json::array();
  for (const auto& run : r.runs) j["runs"].push_back(run_json(run));
  j["headline"] = json::array();
  for (const auto& h : r.headline)
    j["headline"].push_back({{"weights", h.weights},
                             {"kv", h.kv},
                             {"context", h.context},
                             {"group_size", h.group_size},
                             {"head", h.head},
                             {"batches", h.batches},
                             {"measured_ridge_batch", optional_number(h.measured_ridge_batch)},
                             {"predicted_ridge_batch", optional_number(h.predicted_ridge_batch)},
                             {"measured_gemm_ridge_batch", optional_number(h.measured_gemm_ridge_batch)},
                             {"predicted_gemm_ridge_batch", optional_number(h.predicted_gemm_ridge_batch)}});
  return j;
}

Report report_from_json(const nlohmann::json& j) {
  Report r;
  const std::string root = "$";
  r.schema = str(j, root, "schema");
  if (r.schema != kReportSchema)
    bad("$.schema", fmt::format("'{}' is not '{}', which this build reads", r.schema, kReportSchema));
  r.created = str(j, root, "created");
  r.git_commit = str(j, root, "git_commit");
  r.command = str(j, root, "command");
  r.method = str(j, root, "method");

  r.device = device_from_json(at(j, root, "device"), "$.device");

  const json& m = at(j, root, "model");
  r.model.name = str(m, "$.model", "name");
  const std::string model_path = "$.model";
  const json& synthetic = at(m, model_path, "synthetic");
  if (!synthetic.is_boolean()) bad("$.model.synthetic", "expected true or false");
  r.model.synthetic = synthetic.get<bool>();
  r.model.params = integer(m, "$.model", "params");
  r.model.config = config_from_json(at(m, "$.model", "config"), "report $.model.config");
  r.model.config.name = r.model.name;

  const json& runs = array(j, root, "runs");
  for (size_t i = 0; i < runs.size(); ++i) r.runs.push_back(read_run(runs[i], fmt::format("$.runs[{}]", i)));

  const json& headline = array(j, root, "headline");
  for (size_t i = 0; i < headline.size(); ++i) {
    const json& h = headline[i];
    std::string p = fmt::format("$.headline[{}]", i);
    HeadlineEntry e;
    e.weights = str(h, p, "weights");
    e.kv = str(h, p, "kv");
    e.context = static_cast<int>(integer(h, p, "context"));
    e.group_size = static_cast<int>(integer(h, p, "group_size"));
    if (h.contains("head")) e.head = str(h, p, "head");
    for (const auto& b : array(h, p, "batches")) {
      if (!b.is_number_integer()) bad(p + ".batches", "expected integers");
      e.batches.push_back(b.get<int>());
    }
    e.measured_ridge_batch = nullable(h, p, "measured_ridge_batch");
    e.predicted_ridge_batch = nullable(h, p, "predicted_ridge_batch");
    e.measured_gemm_ridge_batch = nullable(h, p, "measured_gemm_ridge_batch");
    e.predicted_gemm_ridge_batch = nullable(h, p, "predicted_gemm_ridge_batch");
    r.headline.push_back(std::move(e));
  }
  return r;
}

std::string utc_timestamp() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ridgeline
