// The format-independent content of a rendered report: facts, sentences and formatted tables.
#include "analysis/report_view.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/formats.h"
#include "engine/text_file.h"

namespace ridgeline {
namespace {

using nlohmann::json;

std::vector<SkippedConfig> read_skipped(const json& j, const std::string& source) {
  std::vector<SkippedConfig> out;
  auto it = j.find("skipped");
  if (it == j.end()) return out;
  auto bad = [&](const std::string& path, const char* what) {
    throw std::runtime_error(fmt::format("{}: {}: {}", source, path, what));
  };
  if (!it->is_array()) bad("$.skipped", "expected an array of {batch, context, weights, kv, reason}");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& s = (*it)[i];
    std::string p = fmt::format("$.skipped[{}]", i);
    if (!s.is_object()) bad(p, "expected an object");
    auto integer = [&](const char* key) {
      auto f = s.find(key);
      if (f == s.end() || !f->is_number_integer()) bad(p + "." + key, "expected an integer");
      return f->get<int>();
    };
    auto text = [&](const char* key) {
      auto f = s.find(key);
      if (f == s.end() || !f->is_string()) bad(p + "." + key, "expected a string");
      return f->get<std::string>();
    };
    SkippedConfig c{integer("batch"), integer("context"), text("weights"), text("kv"), text("reason")};
    if (s.contains("phase")) {
      c.phase = text("phase");
      if (c.phase != "decode" && c.phase != "prefill")
        bad(p + ".phase", "expected \"decode\" or \"prefill\"");
    }
    if (s.contains("failed")) {
      if (!s["failed"].is_boolean()) bad(p + ".failed", "expected true or false");
      c.failed = s["failed"].get<bool>();
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool is_plain_decode(const RunRecord& r) {
  return r.new_tokens_per_seq == 1 && r.contexts.empty();
}

// A prefill of one prompt length for every sequence.
bool is_plain_prefill(const RunRecord& r) {
  return r.new_tokens_per_seq > 1 && r.contexts.empty();
}

// The format comparisons are made against.
const RunFormat kBaseFormat{"fp16", "fp16", kDefaultGroupSize};

std::string weights_cell(const std::string& weights, int group_size, const std::string& head) {
  const char* head_note = head == "w4a16" ? ", 4-bit head" : "";
  return weights == "w4a16" ? fmt::format("w4a16 (g{}{})", group_size, head_note) : weights;
}

std::string context_cell(const RunRecord& r) {
  std::string s = r.contexts.empty() ? std::to_string(r.context) : fmt::format("≤{} (mixed)", r.context);
  if (r.new_tokens_per_seq != 1) s += fmt::format(" (prefill {})", r.new_tokens_per_seq);
  return s;
}

// Median with p10-p90 in the median's unit: "16.93 ms (8.367–17.23)".
std::string time_range_cell(const TimeStats& t) {
  double scale = t.median < 1e3 ? 1 : t.median < 1e6 ? 1e3 : 1e6;
  return fmt::format("{} ({}–{})", format_time_us(t.median), format_sig(t.p10 / scale, 4),
                     format_sig(t.p90 / scale, 4));
}

std::string batch_list(const std::vector<int>& batches) {
  std::string s;
  for (int b : batches) s += (s.empty() ? "" : ", ") + std::to_string(b);
  return s;
}

std::string ridge_cell(const std::optional<double>& b, const char* absent) {
  return b ? format_sig(*b, 3) : std::string(absent);
}

// The columns shared by the per-kind and the top-ops tables, after their leading ones.
void append_point_cells(std::vector<std::string>& row, const RooflinePoint& p) {
  row.push_back(format_sig(p.achieved_GBps, 3));
  row.push_back(format_percent(p.bandwidth_utilization));
  row.push_back(format_sig(p.achieved_tflops, 3));
  row.push_back(format_percent(p.compute_utilization));
  row.push_back(format_sig(p.arithmetic_intensity, 3));
  row.push_back(format_percent(p.roofline_efficiency));
  row.push_back(p.bound);
}
const std::vector<std::string> kPointHeader = {"GB/s",   "BW util",       "TFLOP/s", "compute util",
                                               "FLOP/B", "roofline eff.", "bound"};
const std::vector<bool> kPointNumeric = {true, true, true, true, true, true, false};

}  // namespace

ReportView read_report_view(const nlohmann::json& j, const std::string& source) {
  auto problems = validate_report(j);
  if (!problems.empty()) {
    size_t shown = std::min<size_t>(problems.size(), 3);
    std::string list;
    for (size_t i = 0; i < shown; ++i) list += (i ? "; " : "") + problems[i];
    if (problems.size() > shown) list += fmt::format("; and {} more", problems.size() - shown);
    throw std::runtime_error(fmt::format("{}: not a valid {} report ({} problem{}): {}", source,
                                         kReportSchema, problems.size(), problems.size() == 1 ? "" : "s",
                                         list));
  }
  ReportView v;
  try {
    v.report = report_from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", source, e.what()));
  }
  v.skipped = read_skipped(j, source);
  if (auto it = j.find("interrupted"); it != j.end()) {
    if (!it->is_boolean())
      throw std::runtime_error(fmt::format("{}: $.interrupted: expected true or false", source));
    v.interrupted = it->get<bool>();
  }
  return v;
}

ReportView load_report_view(const std::string& path) {
  // read_text_file names a folder, a missing file and a size past its limit, and reads a gzipped
  // report (reports/baselines/*.json.gz) as the JSON inside.
  const std::string text = read_text_file(path, "the report");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // Not e.what(): the parser quotes what it last read, which can be a whole line of the file.
    throw std::runtime_error(fmt::format("{}: not JSON: a syntax error at byte {}", path, e.byte));
  }
  return read_report_view(j, path);
}

std::string format_sig(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  if (v == 0) return "0";
  double a = std::abs(v);
  if (a < 1e-4 || a >= 1e15) return fmt::format("{:.{}e}", v, std::max(0, digits - 1));
  int mag = static_cast<int>(std::floor(std::log10(a)));
  int decimals = std::max(0, digits - 1 - mag);
  // Rounding may carry into a new leading digit (9.996 -> 10.00): then one decimal fewer.
  double rounded = std::round(a * std::pow(10.0, decimals)) / std::pow(10.0, decimals);
  if (rounded > 0 && std::floor(std::log10(rounded)) > mag) decimals = std::max(0, decimals - 1);
  return fmt::format("{:.{}f}", v, decimals);
}

std::string format_time_us(double us) {
  if (!std::isfinite(us)) return "n/a";
  if (us < 1e3) return format_sig(us, 4) + " µs";
  if (us < 1e6) return format_sig(us / 1e3, 4) + " ms";
  return format_sig(us / 1e6, 4) + " s";
}

std::string format_percent(double fraction) {
  if (!std::isfinite(fraction)) return "n/a";
  double p = 100 * fraction;
  if (p != 0 && std::abs(p) < 0.1) return format_sig(p, 2) + "%";
  return fmt::format("{:.1f}%", p);
}

std::string format_count(double n) {
  if (!std::isfinite(n)) return "n/a";
  if (n < 1e3) return fmt::format("{:.0f}", n);
  if (n < 1e6) return format_sig(n / 1e3, 3) + " k";
  if (n < 1e9) return format_sig(n / 1e6, 3) + " M";
  return format_sig(n / 1e9, 3) + " B";
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return format_sig(bytes, 3) + " " + units[u];
}

std::string format_label(const std::string& weights, const std::string& kv, int group_size,
                         const std::string& head) {
  std::string notes;
  if (weights == "w4a16" && group_size != kDefaultGroupSize) notes = fmt::format("group {}", group_size);
  if (head == "w4a16") notes += notes.empty() ? "4-bit head" : ", 4-bit head";
  return fmt::format("{}{} weights + {} KV", weights, notes.empty() ? "" : " (" + notes + ")", kv);
}

std::string run_title(const RunRecord& r) {
  std::string ctx =
      r.contexts.empty() ? fmt::format("context {}", r.context) : fmt::format("contexts up to {}", r.context);
  std::string s =
      fmt::format("B={}, {}, {}", r.batch, ctx, format_label(r.weights, r.kv, r.group_size, r.head));
  if (r.new_tokens_per_seq != 1) s += fmt::format(", prefill of {} tokens", r.new_tokens_per_seq);
  return s;
}

RunFormat run_format(const RunRecord& r) {
  return {r.weights, r.kv, r.weights == "w4a16" ? r.group_size : kDefaultGroupSize, r.head};
}

std::vector<RunFormat> report_formats(const Report& r) {
  std::vector<RunFormat> out;
  for (const auto& run : r.runs) {
    RunFormat f = run_format(run);
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  auto base = std::find(out.begin(), out.end(), kBaseFormat);
  if (base != out.end()) std::rotate(out.begin(), base, base + 1);
  return out;
}

std::string report_title(const Report& r) {
  return fmt::format("ridgeline report: {} on {}", r.model.name, r.device.name);
}

std::vector<Fact> report_facts(const Report& r) {
  const ModelConfig& c = r.model.config;
  const DeviceInfo& d = r.device;
  std::vector<Fact> out;
  out.push_back(
      {"Model",
       fmt::format("{} ({} parameters, {}): {} layers, hidden {}, {} heads / {} KV heads of "
                   "{}, FFN {}, vocab {}",
                   r.model.name, format_count(double(r.model.params)),
                   r.model.synthetic ? "synthetic weights on preset shapes" : "checkpoint weights",
                   c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.intermediate, c.vocab)});
  std::string dev = fmt::format("{}, {} backend", d.name, d.backend);
  if (d.sm_count > 0) dev += fmt::format(", {} SMs", d.sm_count);
  if (d.memory_bytes > 0) dev += fmt::format(", {} memory", format_bytes(double(d.memory_bytes)));
  if (!d.driver.empty()) dev += fmt::format(", driver {}", d.driver);
  if (!d.env.nvidia_driver.empty()) dev += fmt::format(" (NVIDIA driver {})", d.env.nvidia_driver);
  if (!d.cuda.empty()) dev += fmt::format(", CUDA {}", d.cuda);
  out.push_back({"Device", dev});
  // The CPU reference runs every format for correctness, not speed: say so wherever its report is read.
  const bool quantized = std::any_of(r.runs.begin(), r.runs.end(), [](const RunRecord& run) {
    return run.weights != "fp16" || run.kv != "fp16";
  });
  if (d.backend == "cpu" && quantized)
    out.push_back(
        {"Quantized formats",
         "simulated on the CPU: it holds float32 weights (w4a16 dequantized at load) and a float32 KV "
         "cache (int8/int4 values, fake-quantized in place), so its times say nothing about what "
         "the formats buy on a GPU; the bytes are the cost model's, for the GPU's layouts"});
  for (auto& f : environment_facts(d)) out.push_back(std::move(f));
  std::string peak =
      fmt::format("{} GB/s, {} TFLOP/s", format_sig(d.peak.peak_GBps, 4), format_sig(d.peak.peak_tflops, 3));
  if (d.peak.copy_GBps > 0)
    peak += fmt::format("; copy {} GB/s (read + written)", format_sig(d.peak.copy_GBps, 4));
  if (d.peak.read_GBps > 0)
    peak += fmt::format("; read-only stream {} GB/s", format_sig(d.peak.read_GBps, 4));
  if (!d.ceilings_file.empty())
    peak += fmt::format("; read from {}{} rather than measured by this run", d.ceilings_file,
                        d.ceilings_created.empty() ? "" : " (probed " + d.ceilings_created + ")");
  out.push_back({fmt::format("Peaks ({})", d.peak.source), peak});
  if (d.datasheet) {
    const Datasheet& s = *d.datasheet;
    out.push_back(
        {"Datasheet", fmt::format("{}: {} GB/s, {} TFLOP/s; the peaks above are {} and {} of it",
                                  s.name.empty() ? d.name : s.name, format_sig(s.GBps, 4),
                                  format_sig(s.tflops, 3), format_percent(d.peak.peak_GBps / s.GBps),
                                  format_percent(d.peak.peak_tflops / s.tflops))});
  } else {
    out.push_back({"Datasheet", "none for this device"});
  }
  out.push_back({"Ridge", fmt::format("{} FLOP/B (peak FLOP/s over peak B/s): ops below it are memory-bound",
                                      format_sig(d.peak.ridge(), 3))});
  out.push_back({"Command", r.command, true});
  out.push_back({"Git commit", r.git_commit.empty() ? "unknown" : r.git_commit});
  out.push_back({"Date", r.created});
  out.push_back({"Method", r.runs.empty() ? "none: no configuration was measured" : r.method});
  // The report's method is its first run's (and, for a repeated sweep, how the repetitions pool); a
  // run measured another way (a prefill beside decode steps, another prompt length) gets its own
  // line, named by its phase.
  std::vector<std::string> other_methods;
  for (const auto& run : r.runs)
    if (!run.method.empty() && run.method != r.runs.front().method &&
        std::find(other_methods.begin(), other_methods.end(), run.method) == other_methods.end()) {
      other_methods.push_back(run.method);
      out.push_back({run.new_tokens_per_seq > 1
                         ? fmt::format("Method (prefill runs of {} tokens)", run.new_tokens_per_seq)
                         : std::string("Method (decode runs)"),
                     run.method});
    }
  return out;
}

std::vector<std::string> headline_sentences(const Report& r) {
  std::vector<std::string> out;
  for (const auto& h : r.headline) {
    int largest = h.batches.empty() ? 0 : *std::max_element(h.batches.begin(), h.batches.end());
    // A measured ridge is a knee between measured batches: with one batch there is none to see.
    std::string measured =
        h.measured_ridge_batch ? fmt::format("decode turns compute-bound at B≈{} measured",
                                             format_sig(*h.measured_ridge_batch, 3))
        : h.batches.size() < 2
            ? fmt::format("one batch measured (B={}), and a measured ridge needs two or more", largest)
            : fmt::format("no compute roof was reached up to B={} measured", largest);
    std::string predicted =
        h.predicted_ridge_batch
            ? fmt::format("the cost model predicts B≈{}", format_sig(*h.predicted_ridge_batch, 3))
            : std::string("the cost model predicts the step stays memory-bound at every batch");
    std::string gemm;
    if (h.measured_gemm_ridge_batch || h.predicted_gemm_ridge_batch)
      gemm = fmt::format(" (GEMMs alone: {} measured, {} predicted)",
                         h.measured_gemm_ridge_batch ? "B≈" + format_sig(*h.measured_gemm_ridge_batch, 3)
                         : h.batches.size() < 2      ? std::string("one batch, none")
                                                     : std::string("not reached"),
                         h.predicted_gemm_ridge_batch ? "B≈" + format_sig(*h.predicted_gemm_ridge_batch, 3)
                                                      : std::string("none"));
    out.push_back(fmt::format("{}, context {}: {}; {}{}; batches measured: {}.",
                              format_label(h.weights, h.kv, h.group_size, h.head), h.context, measured,
                              predicted, gemm, batch_list(h.batches)));
  }
  return out;
}

Table headline_table(const Report& r) {
  Table t{{"weights", "KV", "context", "batches", "measured ridge B", "predicted ridge B",
           "measured GEMM ridge B", "predicted GEMM ridge B"},
          {false, false, true, false, true, true, true, true},
          {}};
  for (const auto& h : r.headline) {
    const char* unmeasured = h.batches.size() < 2 ? "needs 2+ batches" : "not reached";
    t.rows.push_back({weights_cell(h.weights, h.group_size, h.head), h.kv, std::to_string(h.context),
                      batch_list(h.batches), ridge_cell(h.measured_ridge_batch, unmeasured),
                      ridge_cell(h.predicted_ridge_batch, "none"),
                      ridge_cell(h.measured_gemm_ridge_batch, unmeasured),
                      ridge_cell(h.predicted_gemm_ridge_batch, "none")});
  }
  return t;
}

Table runs_table(const Report& r) {
  Table t{{"B", "context", "weights", "KV", "step median (p10–p90)", "tokens/s", "GB/s", "BW util", "TFLOP/s",
           "compute util", "roofline eff.", "bound", "coverage", "predicted step"},
          {true, true, false, false, true, true, true, true, true, true, true, false, true, true},
          {}};
  for (const auto& run : r.runs) {
    const RooflinePoint& p = run.step.point;
    t.rows.push_back({std::to_string(run.batch), context_cell(run),
                      weights_cell(run.weights, run.group_size, run.head), run.kv,
                      time_range_cell(run.step.time_us), format_sig(run.step.tokens_per_s, 3),
                      format_sig(p.achieved_GBps, 3), format_percent(p.bandwidth_utilization),
                      format_sig(p.achieved_tflops, 3), format_percent(p.compute_utilization),
                      format_percent(p.roofline_efficiency), p.bound, format_percent(run.coverage),
                      format_time_us(run.predicted.time_us)});
  }
  return t;
}

namespace {

// The plain decode run of each (format index, batch, context), the first where several match, and
// the (batch, context) pairs that at least two formats share, by context then batch.
struct Comparison {
  std::vector<RunFormat> formats;
  std::map<std::tuple<size_t, int, int>, const RunRecord*> runs;
  std::vector<std::pair<int, int>> shared;  // (batch, context)
  const RunRecord* run(size_t f, int batch, int context) const {
    auto it = runs.find({f, batch, context});
    return it == runs.end() ? nullptr : it->second;
  }
};

Comparison compare(const Report& r) {
  Comparison c;
  c.formats = report_formats(r);
  std::map<std::pair<int, int>, int> formats_at;
  for (const auto& run : r.runs) {
    if (!is_plain_decode(run)) continue;
    size_t f = std::find(c.formats.begin(), c.formats.end(), run_format(run)) - c.formats.begin();
    if (c.runs.emplace(std::tuple{f, run.batch, run.context}, &run).second)
      ++formats_at[{run.batch, run.context}];
  }
  for (const auto& [key, n] : formats_at)
    if (n >= 2) c.shared.push_back(key);
  std::sort(c.shared.begin(), c.shared.end(),
            [](auto a, auto b) { return std::tie(a.second, a.first) < std::tie(b.second, b.first); });
  return c;
}

}  // namespace

std::optional<Table> format_comparison_table(const Report& r) {
  Comparison c = compare(r);
  if (c.formats.size() < 2 || c.shared.empty()) return std::nullopt;  // e.g. prefill runs only
  Table t{{"B", "context"}, {true, true}, {}};
  for (size_t f = 0; f < c.formats.size(); ++f) {
    t.header.push_back(c.formats[f].label() + " tokens/s");
    t.numeric.push_back(true);
    if (f > 0) {
      t.header.push_back("speedup");
      t.numeric.push_back(true);
    }
  }
  for (auto [batch, context] : c.shared) {
    std::vector<std::string> row{std::to_string(batch), std::to_string(context)};
    const RunRecord* base = c.run(0, batch, context);
    for (size_t f = 0; f < c.formats.size(); ++f) {
      const RunRecord* run = c.run(f, batch, context);
      row.push_back(run ? format_sig(run->step.tokens_per_s, 3) : "–");
      if (f == 0) continue;
      row.push_back(run && base ? fmt::format("{:.2f}×", run->step.tokens_per_s / base->step.tokens_per_s)
                                : "–");
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::vector<std::string> format_comparison_sentences(const Report& r) {
  Comparison c = compare(r);
  std::vector<std::string> out;
  for (size_t f = 1; f < c.formats.size(); ++f) {
    struct Point {
      double speedup;
      int batch, context;
    };
    std::vector<Point> pts;
    for (auto [batch, context] : c.shared) {
      const RunRecord* a = c.run(0, batch, context);
      const RunRecord* b = c.run(f, batch, context);
      if (a && b) pts.push_back({b->step.tokens_per_s / a->step.tokens_per_s, batch, context});
    }
    if (pts.empty()) continue;
    auto [lo, hi] = std::minmax_element(pts.begin(), pts.end(),
                                        [](const Point& a, const Point& b) { return a.speedup < b.speedup; });
    std::string vs = fmt::format("{} against {}", c.formats[f].label(), c.formats[0].label());
    if (pts.size() == 1) {
      out.push_back(fmt::format("{}: {:.2f}× the tokens/s at B={}, context {}.", vs, lo->speedup, lo->batch,
                                lo->context));
    } else {
      out.push_back(fmt::format(
          "{}: from {:.2f}× the tokens/s (B={}, context {}) to {:.2f}× (B={}, context {}) "
          "over {} configurations.",
          vs, lo->speedup, lo->batch, lo->context, hi->speedup, hi->batch, hi->context, pts.size()));
    }
  }
  // The output head is a third of a 4-bit 1.8b model's bytes: say which w4a16 rows keep it in fp16.
  if (!out.empty() && std::any_of(c.formats.begin(), c.formats.end(), [](const RunFormat& f) {
        return f.weights == "w4a16" && f.head != "w4a16";
      }))
    out.push_back(
        "w4a16 quantizes the layers' linear weights; the embeddings and the output head stay fp16 unless "
        "the label says \"4-bit head\".");
  return out;
}

namespace {

// "layers.12.rope_kv_write" -> "rope_kv_write"; names outside a layer stay as they are.
std::string op_type_of(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return name;
  const size_t dot = name.find('.', 7);
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

struct OpSum {
  double us = 0;
  int count = 0;
};

std::map<std::string, OpSum> ops_by_type(const RunRecord& run) {
  std::map<std::string, OpSum> m;
  for (const OpRecord& op : run.ops) {
    OpSum& s = m[op_type_of(op.name)];
    s.us += op.point.time_us;
    s.count += op.count;
  }
  return m;
}

std::string signed_time_us(double us) {
  return (us < 0 ? "−" : "+") + format_time_us(std::abs(us));
}

}  // namespace

namespace {

// "; more time in X +a, Y +b; less in Z -c": the op types (summed over the layers) whose time grew
// and shrank most from `base` to `run`, those under 5% of the step's difference (or 1 us) left out:
// at that size they are noise.
std::string op_differences(const RunRecord& base, const RunRecord& run) {
  const auto a = ops_by_type(base), b = ops_by_type(run);
  struct Delta {
    std::string type;
    double us;
    int only_here;  // ops of a type the base does not run (fused away there), else 0
  };
  std::vector<Delta> deltas;
  for (const auto& [type, sum] : b) {
    auto it = a.find(type);
    deltas.push_back({type, sum.us - (it == a.end() ? 0.0 : it->second.us), it == a.end() ? sum.count : 0});
  }
  for (const auto& [type, sum] : a)
    if (!b.count(type)) deltas.push_back({type, -sum.us, 0});
  std::sort(deltas.begin(), deltas.end(), [](const Delta& x, const Delta& y) { return x.us > y.us; });
  const double floor_us = std::max(1.0, 0.05 * (run.step.time_us.median - base.step.time_us.median));
  std::vector<std::string> more, less;
  for (const Delta& d : deltas)
    if (d.us >= floor_us && more.size() < 3)
      more.push_back(d.only_here ? fmt::format("{} {} ({} ops the base does not run)", d.type,
                                               signed_time_us(d.us), d.only_here)
                                 : fmt::format("{} {}", d.type, signed_time_us(d.us)));
  for (auto d = deltas.rbegin(); d != deltas.rend() && d->us <= -floor_us && less.size() < 2; ++d)
    less.push_back(fmt::format("{} {}", d->type, signed_time_us(d->us)));
  std::string out;
  if (!more.empty()) out += "; more time in " + fmt::format("{}", fmt::join(more, ", "));
  if (!less.empty()) out += "; less in " + fmt::format("{}", fmt::join(less, ", "));
  return out;
}

}  // namespace

std::vector<std::string> format_shortfall_sentences(const Report& r) {
  Comparison c = compare(r);
  std::vector<std::string> out;
  for (size_t f = 1; f < c.formats.size(); ++f)
    for (auto [batch, context] : c.shared) {
      const RunRecord* base = c.run(0, batch, context);
      const RunRecord* run = c.run(f, batch, context);
      if (!base || !run || run->step.tokens_per_s >= base->step.tokens_per_s) continue;
      out.push_back(
          fmt::format("B={}, context {}: {} runs {:.2f}× the tokens/s of {} (step {} against {}){}.", batch,
                      context, c.formats[f].label(), run->step.tokens_per_s / base->step.tokens_per_s,
                      c.formats[0].label(), format_time_us(run->step.time_us.median),
                      format_time_us(base->step.time_us.median), op_differences(*base, *run)));
    }
  return out;
}

std::vector<std::string> prefill_shortfall_sentences(const Report& r) {
  std::vector<std::string> out;
  for (const RunRecord& run : r.runs) {
    if (!is_plain_prefill(run) || run_format(run) == kBaseFormat) continue;
    auto base = std::find_if(r.runs.begin(), r.runs.end(), [&](const RunRecord& b) {
      return is_plain_prefill(b) && run_format(b) == kBaseFormat && b.batch == run.batch &&
             b.new_tokens_per_seq == run.new_tokens_per_seq;
    });
    if (base == r.runs.end() || run.step.tokens_per_s >= base->step.tokens_per_s) continue;
    out.push_back(fmt::format(
        "B={}, {}-token prompt: {} runs {:.2f}× the prompt tokens/s of {} (TTFT {} against {}){}.", run.batch,
        run.new_tokens_per_seq, run_format(run).label(), run.step.tokens_per_s / base->step.tokens_per_s,
        kBaseFormat.label(), format_time_us(run.step.time_us.median),
        format_time_us(base->step.time_us.median), op_differences(*base, run)));
  }
  return out;
}

std::string format_shortfall_intro(bool prefill) {
  const std::string base = prefill
                               ? "prompt tokens/s than fp16 weights + fp16 KV at the same batch and prompt"
                               : "tokens/s than the table's first format at the same batch and context";
  return "Each configuration where a format runs fewer " + base +
         ": its time against the base's, then the ops (summed over the layers, each timed with serial "
         "launches) whose time grew most (up to three) and shrank most (up to two), each by at least 5% of "
         "the difference. Overlapped launches hide part of the per-op times in a decode step, so the "
         "differences need not add up to the step's; and an op that changes shape between formats (on the "
         "GPU, RoPE and the KV write move from wqkv into attention with a quantized cache) moves time from "
         "one op to another.";
}

std::vector<size_t> focus_runs(const Report& r) {
  std::set<size_t> chosen;
  for (const auto& f : report_formats(r)) {
    int context = -1;
    for (const auto& run : r.runs)
      if (is_plain_decode(run) && run_format(run) == f) context = std::max(context, run.context);
    std::optional<size_t> smallest, largest;
    for (size_t i = 0; i < r.runs.size(); ++i) {
      const RunRecord& run = r.runs[i];
      if (!is_plain_decode(run) || !(run_format(run) == f) || run.context != context) continue;
      if (!smallest || run.batch < r.runs[*smallest].batch) smallest = i;
      if (!largest || run.batch > r.runs[*largest].batch) largest = i;
    }
    if (smallest) chosen.insert(*smallest);
    if (largest) chosen.insert(*largest);
  }
  return {chosen.begin(), chosen.end()};
}

Table kinds_table(const RunRecord& r) {
  Table t{{"kind", "ops", "time", "share of op time"}, {false, true, true, true}, {}};
  t.header.insert(t.header.end(), kPointHeader.begin(), kPointHeader.end());
  t.numeric.insert(t.numeric.end(), kPointNumeric.begin(), kPointNumeric.end());
  double total = 0;
  for (const auto& k : r.by_kind) total += k.point.time_us;
  for (const auto& k : r.by_kind) {
    std::vector<std::string> row{k.kind, std::to_string(k.count), format_time_us(k.point.time_us),
                                 format_percent(total > 0 ? k.point.time_us / total : 0)};
    append_point_cells(row, k.point);
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table top_ops_table(const RunRecord& r, size_t n) {
  Table t{{"op", "kind", "time", "share of step"}, {false, false, true, true}, {}};
  t.header.insert(t.header.end(), kPointHeader.begin(), kPointHeader.end());
  t.numeric.insert(t.numeric.end(), kPointNumeric.begin(), kPointNumeric.end());
  std::vector<const OpRecord*> ops;
  for (const auto& op : r.ops) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const OpRecord* a, const OpRecord* b) { return a->point.time_us > b->point.time_us; });
  if (ops.size() > n) ops.resize(n);
  for (const OpRecord* op : ops) {
    std::vector<std::string> row{op->name, op->kind, format_time_us(op->point.time_us),
                                 format_percent(op->point.time_us / r.step.time_us.median)};
    append_point_cells(row, op->point);
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table skipped_table(const std::vector<SkippedConfig>& skipped) {
  Table t{{"B", "context", "weights", "KV", "reason"}, {true, true, false, false, false}, {}};
  for (const auto& s : skipped)
    t.rows.push_back(
        {std::to_string(s.batch),
         s.phase == "prefill" ? fmt::format("prefill of {}", s.context) : std::to_string(s.context),
         s.weights, s.kv, s.failed ? "failed: " + s.reason : s.reason});
  return t;
}

std::optional<Table> prefill_table(const Report& r) {
  Table t{{"B", "prompt", "weights", "KV", "TTFT median (p10–p90)", "prompt tokens/s", "TFLOP/s",
           "compute util", "GB/s", "roofline eff.", "bound", "predicted TTFT"},
          {true, true, false, false, true, true, true, true, true, true, false, true},
          {}};
  for (const auto& run : r.runs) {
    if (!is_plain_prefill(run)) continue;
    const RooflinePoint& p = run.step.point;
    t.rows.push_back({std::to_string(run.batch), std::to_string(run.new_tokens_per_seq),
                      weights_cell(run.weights, run.group_size, run.head), run.kv,
                      time_range_cell(run.step.time_us), format_sig(run.step.tokens_per_s, 3),
                      format_sig(p.achieved_tflops, 3), format_percent(p.compute_utilization),
                      format_sig(p.achieved_GBps, 3), format_percent(p.roofline_efficiency), p.bound,
                      format_time_us(run.predicted.time_us)});
  }
  if (t.rows.empty()) return std::nullopt;
  return t;
}

std::vector<Fact> environment_facts(const DeviceInfo& d) {
  const EnvironmentInfo& e = d.env;
  std::vector<Fact> out;
  std::vector<std::string> gpu;
  auto clock = [](const char* what, int now, int max) {
    std::string s =
        fmt::format("{} clock {}", what, now > 0 ? fmt::format("{} MHz", now) : std::string("unknown"));
    if (max > 0) s += fmt::format(" (max {} MHz)", max);
    return s;
  };
  if (e.sm_clock_mhz > 0 || e.sm_clock_max_mhz > 0)
    gpu.push_back(clock("SM", e.sm_clock_mhz, e.sm_clock_max_mhz));
  if (e.memory_clock_mhz > 0 || e.memory_clock_max_mhz > 0)
    gpu.push_back(clock("memory", e.memory_clock_mhz, e.memory_clock_max_mhz));
  if (e.power_limit_w > 0) gpu.push_back(fmt::format("power limit {} W", format_sig(e.power_limit_w, 3)));
  if (!e.ecc.empty()) gpu.push_back("ECC " + e.ecc);
  if (!e.uuid.empty()) gpu.push_back(e.uuid);
  if (!e.nvml_error.empty()) gpu.push_back("NVML: " + e.nvml_error);
  if (!gpu.empty()) {
    std::string s;
    for (const auto& g : gpu) s += (s.empty() ? "" : ", ") + g;
    out.push_back({"GPU state", s});
  }
  std::vector<std::string> build;
  if (!e.compiler.empty()) build.push_back("built with " + e.compiler);
  if (!e.cuda_compiler.empty()) build.push_back("nvcc " + e.cuda_compiler);
  if (!e.cublas.empty()) build.push_back("cuBLAS " + e.cublas);
  if (!e.host_cpu.empty()) build.push_back("host CPU " + e.host_cpu);
  if (!build.empty()) {
    std::string s;
    for (const auto& b : build) s += (s.empty() ? "" : "; ") + b;
    out.push_back({"Build and host", s});
  }
  return out;
}

std::string headline_intro() {
  return "The ridge batch is where decode stops being memory-bound. Measured: the knee of the roofline that "
         "the runs trace out (the bandwidth the smallest batch achieves against the highest FLOP rate any "
         "batch achieves), reported only where that batch has really left the bandwidth roof: at least 10% "
         "less bandwidth than the smallest batch, at an intensity at or above the device ridge; otherwise "
         "not reached. Predicted: the batch at which the cost model's step intensity reaches the device "
         "ridge.";
}

std::string no_runs_sentence(const ReportView& v) {
  if (v.interrupted)
    return "No configuration was measured: the sweep was interrupted before the first one finished.";
  if (!v.skipped.empty()) return "No configuration was measured: \"Skipped configurations\" below says why.";
  return "No configuration was measured.";
}

std::string runs_intro(const Report& r) {
  int repeats = 0;
  for (const auto& run : r.runs) repeats = std::max(repeats, run.repeats);
  std::string pooled =
      repeats > 1
          ? fmt::format(" Each run pools the samples of up to {} interleaved repetitions of the sweep.",
                        repeats)
          : std::string();
  return fmt::format(
      "{} run{}. Rates and utilizations divide the cost model's bytes and FLOPs by the measured median step "
      "time, against the peaks above. Roofline efficiency is the roofline time over the measured time; "
      "coverage is the summed op time over the step time (over 100% where overlapped launches hide part "
      "of the ops' serially timed times); the predicted step runs every op at its roof, one after "
      "another.{}",
      r.runs.size(), r.runs.size() == 1 ? "" : "s", pooled);
}

std::string prefill_intro() {
  return "Time to first token: the prefill of every sequence's prompt (all of it, in the backend's chunks) "
         "and "
         "the greedy sample of each first token, timed whole. Prompt tokens/s counts the prompt tokens of "
         "the "
         "whole batch; TFLOP/s and the roofline place the prefill on the compute side of the same roofs as "
         "decode.";
}

std::string interrupted_note(const ReportView& v) {
  return v.interrupted ? fmt::format(
                             "This sweep was interrupted: the report holds the {} configuration{} that "
                             "finished, and the rest were not run.",
                             v.report.runs.size(), v.report.runs.size() == 1 ? "" : "s")
                       : std::string();
}

std::string top_ops_intro() {
  return "The slowest ops of each format's smallest and largest batch at its largest context, with their "
         "share "
         "of the step time.";
}

std::vector<size_t> timeline_runs(const Report& r) {
  std::vector<size_t> out;
  for (size_t i = 0; i < r.runs.size(); ++i)
    if (r.runs[i].timeline) out.push_back(i);
  return out;
}

std::string timeline_intro() {
  return "One decode step's kernels as the GPU ran them (CUPTI's record of one more graph replay, "
         "overlapped launches as timed): a kernel's advance is how far its end moved the step's end "
         "past every kernel before it, so the advances add up to the step; the op tables above time "
         "each op alone, with serial launches. A negative lead is a kernel that started before the one "
         "before it ended.";
}

std::string timeline_sentence(const TimelineSummary& t) {
  return fmt::format("{} kernels in {} (busy {}, idle {}); their durations sum to {}.", t.kernel_count(),
                     format_time_us(t.span_us), format_time_us(t.busy_us), format_time_us(t.idle_us()),
                     format_time_us(t.summed_us()));
}

Table timeline_table(const TimelineSummary& t) {
  Table out{{"kernel", "launches", "advance", "share of step", "advance each", "duration each", "lead each"},
            {false, true, true, true, true, true, true},
            {}};
  std::vector<const TimelineKernel*> ks;
  for (const auto& k : t.kernels) ks.push_back(&k);
  std::stable_sort(ks.begin(), ks.end(), [](const TimelineKernel* a, const TimelineKernel* b) {
    return a->advance_us > b->advance_us;
  });
  for (const TimelineKernel* k : ks) {
    const double n = std::max(k->launches, 1);
    out.rows.push_back({k->name, std::to_string(k->launches), format_time_us(k->advance_us),
                        format_percent(t.span_us > 0 ? k->advance_us / t.span_us : 0.0),
                        format_time_us(k->advance_us / n), format_time_us(k->us / n),
                        fmt::format("{:+.2f} µs", k->lead_us / n)});
  }
  return out;
}

std::string kinds_intro() {
  return "Per run, the ops of each kind summed: time, share of the summed op time, and where they sit "
         "against "
         "the roofs.";
}

}  // namespace ridgeline
