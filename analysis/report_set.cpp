// The format-independent content of a multi-report rendering: labels, sources, side-by-side tables.
#include "analysis/report_set.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "analysis/compare.h"

namespace ridgeline {
namespace {

// Per configuration, in order of first appearance over the reports (the first report's first), the
// run of each report that has it (its first, when a report repeats a configuration).
struct Aligned {
  std::vector<ConfigKey> keys;
  std::map<ConfigKey, std::vector<const RunRecord*>> runs;  // one entry per report, null when absent
};

Aligned align(const ReportSet& s) {
  Aligned a;
  for (size_t i = 0; i < s.views.size(); ++i) {
    const Report& r = s.views[i].report;
    for (const auto& run : r.runs) {
      ConfigKey k = config_key(r.model.name, run);
      auto [it, fresh] = a.runs.try_emplace(k, s.views.size(), nullptr);
      if (fresh) a.keys.push_back(k);
      if (!it->second[i]) it->second[i] = &run;
    }
  }
  return a;
}

bool several_models(const ReportSet& s) {
  std::set<std::string> models;
  for (const auto& v : s.views) models.insert(v.report.model.name);
  return models.size() > 1;
}

std::string row_label(const ReportSet& s, const ConfigKey& k) {
  return several_models(s) ? k.model + " " + config_label(k) : config_label(k);
}

std::string change_cell(double now, double before) {
  if (!(before > 0) || !std::isfinite(now)) return "–";
  return fmt::format("{:+.1f}%", 100 * (now / before - 1));
}

std::string time_cell(const TimeStats& t) {
  double scale = t.median < 1e3 ? 1 : t.median < 1e6 ? 1e3 : 1e6;
  return fmt::format("{} ({}–{})", format_time_us(t.median), format_sig(t.p10 / scale, 4),
                     format_sig(t.p90 / scale, 4));
}

const OpRecord* kind_of(const RunRecord& r, const std::string& kind) {
  for (const auto& k : r.by_kind)
    if (k.kind == kind) return &k;
  return nullptr;
}

}  // namespace

std::vector<std::string> report_labels(const std::vector<std::string>& paths) {
  std::vector<std::string> stems;
  for (const auto& p : paths) stems.push_back(std::filesystem::path(p).stem().string());
  std::set<std::string> unique(stems.begin(), stems.end());
  if (unique.size() == stems.size() &&
      std::none_of(stems.begin(), stems.end(), [](auto& x) { return x.empty(); }))
    return stems;
  std::set<std::string> paths_unique(paths.begin(), paths.end());
  if (paths_unique.size() != paths.size()) {
    // The same file twice: number them, so that each still gets its own colour and column.
    std::vector<std::string> out;
    for (size_t i = 0; i < paths.size(); ++i) out.push_back(fmt::format("{} #{}", paths[i], i + 1));
    return out;
  }
  return paths;
}

ReportSet make_report_set(std::vector<ReportView> views, std::vector<std::string> labels) {
  if (views.empty()) throw std::runtime_error("a report set needs at least one report");
  if (labels.size() != views.size())
    throw std::runtime_error(fmt::format("{} labels for {} reports", labels.size(), views.size()));
  if (std::set<std::string>(labels.begin(), labels.end()).size() != labels.size())
    throw std::runtime_error("report labels must be unique");
  return {std::move(labels), std::move(views)};
}

ReportSet load_report_set(const std::vector<std::string>& paths) {
  std::vector<ReportView> views;
  for (const auto& p : paths) views.push_back(load_report_view(p));
  return make_report_set(std::move(views), report_labels(paths));
}

std::string report_set_title(const ReportSet& s) {
  std::string names;
  for (const auto& l : s.labels) names += (names.empty() ? "" : ", ") + l;
  return fmt::format("ridgeline reports side by side: {}", names);
}

Table report_set_sources_table(const ReportSet& s) {
  Table t{{"report", "model", "device", "peaks", "commit", "date", "runs", "skipped", "command"},
          {false, false, false, false, false, false, true, true, false},
          {}};
  for (size_t i = 0; i < s.views.size(); ++i) {
    const Report& r = s.views[i].report;
    const DeviceInfo& d = r.device;
    t.rows.push_back({s.labels[i], r.model.name, fmt::format("{} ({})", d.name, d.backend),
                      fmt::format("{} GB/s, {} TFLOP/s ({})", format_sig(d.peak.peak_GBps, 4),
                                  format_sig(d.peak.peak_tflops, 3), d.peak.source),
                      r.git_commit.empty() ? "unknown" : r.git_commit, r.created,
                      std::to_string(r.runs.size()), std::to_string(s.views[i].skipped.size()), r.command});
  }
  return t;
}

std::vector<std::string> report_set_notes(const ReportSet& s) {
  std::vector<std::string> out;
  const Report& first = s.views[0].report;
  std::vector<std::string> other_peaks, other_devices, other_models;
  for (size_t i = 1; i < s.views.size(); ++i) {
    const Report& r = s.views[i].report;
    auto differs = [](double a, double b) {
      return std::abs(a - b) > 1e-9 * std::max(std::abs(a), std::abs(b));
    };
    if (differs(r.device.peak.peak_GBps, first.device.peak.peak_GBps) ||
        differs(r.device.peak.peak_tflops, first.device.peak.peak_tflops))
      other_peaks.push_back(s.labels[i]);
    if (r.device.name != first.device.name) other_devices.push_back(s.labels[i]);
    if (r.model.name != first.model.name) other_models.push_back(s.labels[i]);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string o;
    for (const auto& x : v) o += (o.empty() ? "" : ", ") + x;
    return o;
  };
  if (!other_peaks.empty())
    out.push_back(fmt::format(
        "{} {} measured against other ceilings than {}: step times and tokens/s compare directly, but each "
        "report's utilizations and bounds are against its own peaks; the rooflines draw every report's "
        "roofs (dashed for all but the first).",
        list(other_peaks), other_peaks.size() == 1 ? "was" : "were", s.labels[0]));
  if (!other_devices.empty())
    out.push_back(fmt::format("{} ran on another device than {} ({}).", list(other_devices), s.labels[0],
                              first.device.name));
  if (!other_models.empty())
    out.push_back(fmt::format("{} measured another model than {} ({}): their configurations do not match.",
                              list(other_models), s.labels[0], first.model.name));
  return out;
}

Table report_set_runs_table(const ReportSet& s) {
  Table t{{"configuration"}, {false}, {}};
  for (size_t i = 0; i < s.views.size(); ++i) {
    t.header.push_back(s.labels[i] + " step (p10–p90)");
    t.header.push_back(s.labels[i] + " tokens/s");
    t.numeric.insert(t.numeric.end(), {true, true});
    if (i > 0) {
      t.header.push_back(fmt::format("{} vs {}", s.labels[i], s.labels[0]));
      t.numeric.push_back(true);
    }
  }
  Aligned a = align(s);
  for (const auto& k : a.keys) {
    const auto& runs = a.runs[k];
    std::vector<std::string> row{row_label(s, k)};
    for (size_t i = 0; i < runs.size(); ++i) {
      row.push_back(runs[i] ? time_cell(runs[i]->step.time_us) : "–");
      row.push_back(runs[i] ? format_sig(runs[i]->step.tokens_per_s, 3) : "–");
      if (i > 0)
        row.push_back(runs[i] && runs[0]
                          ? change_cell(runs[i]->step.time_us.median, runs[0]->step.time_us.median)
                          : "–");
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table report_set_kind_summary_table(const ReportSet& s) {
  Table t{{"kind"}, {false}, {}};
  for (size_t i = 1; i < s.views.size(); ++i) {
    t.header.push_back(fmt::format("{} vs {}: median (range)", s.labels[i], s.labels[0]));
    t.numeric.push_back(true);
  }
  Aligned a = align(s);
  std::vector<std::string> kinds;
  for (const auto& run : s.views[0].report.runs)
    for (const auto& k : run.by_kind)
      if (std::find(kinds.begin(), kinds.end(), k.kind) == kinds.end()) kinds.push_back(k.kind);
  for (const auto& kind : kinds) {
    std::vector<std::string> row{kind};
    for (size_t i = 1; i < s.views.size(); ++i) {
      std::vector<double> ratios;
      for (const auto& key : a.keys) {
        const auto& runs = a.runs[key];
        if (!runs[0] || !runs[i]) continue;
        const OpRecord *k0 = kind_of(*runs[0], kind), *ki = kind_of(*runs[i], kind);
        if (k0 && ki && k0->point.time_us > 0) ratios.push_back(ki->point.time_us / k0->point.time_us);
      }
      if (ratios.empty()) {
        row.push_back("–");
        continue;
      }
      std::sort(ratios.begin(), ratios.end());
      double med = percentile_sorted(ratios, 0.5);
      row.push_back(ratios.size() == 1
                        ? fmt::format("{:+.1f}%", 100 * (med - 1))
                        : fmt::format("{:+.1f}% ({:+.1f}% to {:+.1f}%, {} configurations)", 100 * (med - 1),
                                      100 * (ratios.front() - 1), 100 * (ratios.back() - 1), ratios.size()));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table report_set_kinds_table(const ReportSet& s) {
  Table t{{"configuration", "kind", s.labels[0] + " time"}, {false, false, true}, {}};
  for (size_t i = 1; i < s.views.size(); ++i) {
    t.header.push_back(s.labels[i] + " time");
    t.header.push_back(fmt::format("{} vs {}", s.labels[i], s.labels[0]));
    t.numeric.insert(t.numeric.end(), {true, true});
  }
  Aligned a = align(s);
  for (const auto& key : a.keys) {
    const auto& runs = a.runs[key];
    if (!runs[0] || std::none_of(runs.begin() + 1, runs.end(), [](auto* r) { return r != nullptr; }))
      continue;
    for (const auto& k0 : runs[0]->by_kind) {
      std::vector<std::string> row{row_label(s, key), k0.kind, format_time_us(k0.point.time_us)};
      for (size_t i = 1; i < runs.size(); ++i) {
        const OpRecord* ki = runs[i] ? kind_of(*runs[i], k0.kind) : nullptr;
        row.push_back(ki ? format_time_us(ki->point.time_us) : "–");
        row.push_back(ki ? change_cell(ki->point.time_us, k0.point.time_us) : "–");
      }
      t.rows.push_back(std::move(row));
    }
  }
  return t;
}

std::string report_set_intro(const ReportSet& s) {
  return fmt::format(
      "{} reports. Configurations are matched on model, phase, batch, context, weights and KV format; "
      "changes are against the first report, {} (+: slower). A report that repeats a configuration shows "
      "its first run. ridgeline compare says which changes are more than noise.",
      s.views.size(), s.labels[0]);
}

}  // namespace ridgeline
