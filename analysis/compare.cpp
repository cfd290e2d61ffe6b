// Report against report: matching configurations, the U test on their step samples, verdicts, and
// the three outputs (terminal text, Markdown, github-action-benchmark JSON).
#include "analysis/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "analysis/report_view.h"

namespace ridgeline {
namespace {

// The configurations of a report, in order of first appearance, repeated runs pooled.
std::vector<std::pair<ConfigKey, ConfigSide>> collect(const Report& r) {
  std::vector<std::pair<ConfigKey, ConfigSide>> out;
  std::map<ConfigKey, std::vector<const RunRecord*>> runs;
  for (const auto& run : r.runs) {
    ConfigKey k = config_key(r.model.name, run);
    if (!runs.count(k)) out.push_back({k, {}});
    runs[k].push_back(&run);
  }
  for (auto& [key, side] : out) {
    const auto& members = runs[key];
    side.runs = int(members.size());
    bool all_sampled = true;
    for (const auto* run : members) {
      all_sampled = all_sampled && !run->step.samples_us.empty();
      side.samples_us.insert(side.samples_us.end(), run->step.samples_us.begin(), run->step.samples_us.end());
    }
    if (!all_sampled) side.samples_us.clear();  // a partial pool would misstate the spread
    for (const auto* run : members)
      if (run->timeline) side.timeline = run->timeline;
    if (members.size() == 1) {
      side.median_us = members[0]->step.time_us.median;
      side.stddev_us = members[0]->step.time_us.stddev;
    } else {
      if (all_sampled && side.samples_us.size() >= 2) side.stddev_us = sample_stddev(side.samples_us);
      std::vector<double> pool;
      if (all_sampled) {
        pool = side.samples_us;
      } else {
        for (const auto* run : members) pool.push_back(run->step.time_us.median);
      }
      std::sort(pool.begin(), pool.end());
      side.median_us = percentile_sorted(pool, 0.5);
    }
    const RunRecord& first = *members[0];
    side.tokens_per_s = double(first.batch) * first.new_tokens_per_seq / (side.median_us * 1e-6);
  }
  return out;
}

// Every kernel of either timeline, in the base's order of first launch then the new ones, sorted by
// the size of the change of its advance (stable: ties keep that order).
std::vector<KernelChange> kernel_changes(const TimelineSummary& base, const TimelineSummary& current) {
  std::vector<KernelChange> out;
  std::map<std::string, size_t> at;
  auto row = [&](const std::string& name) -> KernelChange& {
    auto [it, fresh] = at.try_emplace(name, out.size());
    if (fresh) out.push_back({.name = name});
    return out[it->second];
  };
  for (const TimelineKernel& k : base.kernels) {
    KernelChange& r = row(k.name);
    r.base_launches = k.launches;
    r.base_advance_us = k.advance_us;
  }
  for (const TimelineKernel& k : current.kernels) {
    KernelChange& r = row(k.name);
    r.current_launches = k.launches;
    r.current_advance_us = k.advance_us;
  }
  std::stable_sort(out.begin(), out.end(), [](const KernelChange& a, const KernelChange& b) {
    return std::abs(a.change_us()) > std::abs(b.change_us());
  });
  return out;
}

std::string signed_percent(double change) {
  if (!std::isfinite(change)) return "n/a";
  return fmt::format("{:+.1f}%", 100 * change);
}

std::string p_cell(const ConfigComparison& c) {
  if (!c.test) return "untested";
  return format_sig(c.test->p, 2);
}

std::string key_list(const std::vector<UnmatchedConfig>& keys, size_t limit) {
  std::string s;
  for (size_t i = 0; i < keys.size() && i < limit; ++i) s += (i ? ", " : "") + config_label(keys[i].key);
  if (keys.size() > limit) s += fmt::format(" and {} more", keys.size() - limit);
  return s;
}

std::string device_text(const std::string& name) {
  return name.empty() ? std::string("an unnamed device") : name;
}

std::string peak_text(const Ceilings& c) {
  return fmt::format("{} GB/s, {} TFLOP/s ({})", format_sig(c.peak_GBps, 4), format_sig(c.peak_tflops, 3),
                     c.source);
}

bool differs(double a, double b) {
  return std::abs(a - b) > 1e-9 * std::max(std::abs(a), std::abs(b));
}

// The summary sentence of one comparison.
std::string summary(const ReportComparison& c) {
  size_t reg = c.count(Verdict::regression), imp = c.count(Verdict::improvement);
  size_t noise = c.count(Verdict::noise), same = c.count(Verdict::unchanged);
  std::string s = fmt::format(
      "{} regression{}, {} improvement{}, {} within the noise, {} unchanged of {} "
      "matched configuration{}",
      reg, reg == 1 ? "" : "s", imp, imp == 1 ? "" : "s", noise, same, c.configs.size(),
      c.configs.size() == 1 ? "" : "s");
  if (!c.only_in_base.empty() || !c.only_in_current.empty())
    s += fmt::format(" ({} only in the base, {} only in the new report)", c.only_in_base.size(),
                     c.only_in_current.size());
  return s;
}

// The distinct reasons tests were not run, with how many configurations each concerns.
std::vector<std::string> test_notes(const ReportComparison& c) {
  std::vector<std::pair<std::string, int>> notes;
  for (const auto& cfg : c.configs) {
    if (cfg.test_note.empty()) continue;
    auto it =
        std::find_if(notes.begin(), notes.end(), [&](const auto& n) { return n.first == cfg.test_note; });
    if (it == notes.end())
      notes.push_back({cfg.test_note, 1});
    else
      ++it->second;
  }
  std::vector<std::string> out;
  for (const auto& [note, n] : notes)
    out.push_back(fmt::format("{} ({} configuration{})", note, n, n == 1 ? "" : "s"));
  return out;
}

std::string regression_line(const ReportComparison& c, const ConfigComparison& cfg) {
  std::string test = cfg.test ? fmt::format("p = {}", format_sig(cfg.test->p, 2)) : cfg.test_note;
  return fmt::format("{} {}: {} -> {} ({}), tokens/s {} -> {}; {}", c.model, config_label(cfg.key),
                     format_time_us(cfg.base.median_us), format_time_us(cfg.current.median_us),
                     signed_percent(cfg.time_change), format_sig(cfg.base.tokens_per_s, 4),
                     format_sig(cfg.current.tokens_per_s, 4), test);
}

std::vector<std::string> header_row() {
  return {"configuration", "base", "new", "change", "tokens/s base", "tokens/s new", "p-value", "verdict"};
}

std::vector<std::string> config_row(const ConfigComparison& cfg) {
  return {config_label(cfg.key),
          format_time_us(cfg.base.median_us),
          format_time_us(cfg.current.median_us),
          signed_percent(cfg.time_change),
          format_sig(cfg.base.tokens_per_s, 4),
          format_sig(cfg.current.tokens_per_s, 4),
          p_cell(cfg),
          to_string(cfg.verdict)};
}

// Display width of UTF-8 text: code points (every character used here is one column wide).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s)
    if ((ch & 0xC0) != 0x80) ++n;
  return n;
}

std::string text_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], width(row[i]));
    }
  std::string o;
  for (const auto& row : rows) {
    std::string line = " ";
    for (size_t i = 0; i < row.size(); ++i) {
      std::string pad(w[i] - width(row[i]), ' ');
      // The configuration and the verdict read left to right; numbers line up on the right.
      line += " " + (i == 0 || i + 1 == row.size() ? row[i] + pad : pad + row[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o += line + "\n";
  }
  return o;
}

std::string md_cell(const std::string& s) {
  std::string o;
  for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return o;
}

// The kernels listed per configuration: in the Markdown table, and on the terminal's line.
constexpr size_t kKernelRows = 8, kKernelsInLine = 3;

// Per configuration whose two reports both recorded a timeline: the kernels whose advance of the
// step's end changed the most (what moved the step, where the per-op times, taken with serial
// launches, cannot say).
std::string kernel_changes_markdown(const ReportComparison& c) {
  std::string o;
  for (const auto& cfg : c.configs) {
    if (cfg.kernels.empty()) continue;
    if (o.empty())
      o += "\n### Kernels that moved the step\n\nFrom the two reports' timelines (`sweep --timeline`): each "
           "kernel's advance of the step's end, summed over its launches; the changes add up to the change "
           "of the timeline's span.\n";
    o += fmt::format(
        "\n**{}** ({} → {}):\n\n| kernel | launches | base | new | change |\n| --- | ---: | "
        "---: | ---: | ---: |\n",
        md_cell(config_label(cfg.key)), format_time_us(cfg.base.timeline->span_us),
        format_time_us(cfg.current.timeline->span_us));
    for (size_t i = 0; i < cfg.kernels.size() && i < kKernelRows; ++i) {
      const KernelChange& k = cfg.kernels[i];
      o += fmt::format("| {} | {} → {} | {} | {} | {:+.2f} µs |\n", md_cell(k.name), k.base_launches,
                       k.current_launches, format_time_us(k.base_advance_us),
                       format_time_us(k.current_advance_us), k.change_us());
    }
  }
  return o;
}

}  // namespace

ConfigKey config_key(const std::string& model, const RunRecord& r) {
  ConfigKey k;
  k.model = model;
  k.phase = r.new_tokens_per_seq == 1 ? "decode" : "prefill";
  k.new_tokens_per_seq = r.new_tokens_per_seq;
  k.batch = r.batch;
  k.context = r.context;
  k.weights = r.weights;
  k.kv = r.kv;
  k.group_size = r.weights == "w4a16" ? r.group_size : 128;
  k.head = r.head;
  return k;
}

std::string config_label(const ConfigKey& k) {
  std::string phase = k.phase == "prefill" ? fmt::format("prefill {}", k.new_tokens_per_seq) : k.phase;
  std::string w = k.weights;
  if (k.weights == "w4a16" && k.group_size != 128) w += fmt::format("(g{})", k.group_size);
  if (k.head == "w4a16") w += "(4-bit head)";
  return fmt::format("{} B={} ctx={} {}/{}", phase, k.batch, k.context, w, k.kv);
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::regression:
      return "REGRESSION";
    case Verdict::improvement:
      return "faster";
    case Verdict::noise:
      return "noise";
    case Verdict::unchanged:
      return "unchanged";
  }
  return "?";
}

size_t ReportComparison::count(Verdict v) const {
  return size_t(std::count_if(configs.begin(), configs.end(), [&](const auto& c) { return c.verdict == v; }));
}

ReportComparison compare_reports(const Report& base, const Report& current, const CompareOptions& opt,
                                 const std::string& base_label, const std::string& current_label) {
  if (!(opt.threshold >= 0) || !std::isfinite(opt.threshold))
    throw std::runtime_error(
        fmt::format("--threshold {} must be a fraction >= 0 (0.05 = 5%)", opt.threshold));
  if (!(opt.alpha > 0 && opt.alpha < 1))
    throw std::runtime_error(fmt::format("alpha {} must lie between 0 and 1", opt.alpha));
  const bool other_device =
      base.device.name != current.device.name || base.device.backend != current.device.backend;
  if (other_device && !opt.across_devices)
    throw std::runtime_error(fmt::format(
        "{} was measured on {} ({}) and {} on {} ({}): step times of two devices differ by the device as "
        "well as the code, so a slowdown between them is not a regression. Compare reports of one device "
        "(each card's baselines are reports/baselines/<card>-*.json.gz), or pass --across-devices to compare "
        "them anyway",
        base_label, device_text(base.device.name), base.device.backend, current_label,
        device_text(current.device.name), current.device.backend));
  ReportComparison c;
  c.base_label = base_label;
  c.current_label = current_label;
  c.model = current.model.name;
  c.base_device = base.device.name;
  c.current_device = current.device.name;
  c.options = opt;

  auto base_configs = collect(base), current_configs = collect(current);
  std::map<ConfigKey, const ConfigSide*> base_by_key;
  for (const auto& [k, side] : base_configs) base_by_key[k] = &side;
  std::map<ConfigKey, bool> matched;
  for (const auto& [key, side] : current_configs) {
    auto it = base_by_key.find(key);
    if (it == base_by_key.end()) {
      c.only_in_current.push_back({key, side});
      continue;
    }
    matched[key] = true;
    ConfigComparison cfg;
    cfg.key = key;
    cfg.base = *it->second;
    cfg.current = side;
    cfg.time_change = cfg.current.median_us / cfg.base.median_us - 1;
    cfg.throughput_change = cfg.current.tokens_per_s / cfg.base.tokens_per_s - 1;
    size_t n1 = cfg.base.samples_us.size(), n2 = cfg.current.samples_us.size();
    if (n1 == 0 || n2 == 0) {
      cfg.test_note = n1 == 0 && n2 == 0 ? "no samples: significance not tested"
                      : n1 == 0          ? "no samples in the base: significance not tested"
                                         : "no samples in the new report: significance not tested";
    } else if (double min_p = mann_whitney_min_p(n1, n2); min_p > opt.alpha) {
      cfg.test_note = fmt::format(
          "too few samples for the test ({} and {}: no outcome can reach p < {}, the smallest possible p "
          "is {}); decided on the medians",
          n1, n2, opt.alpha, fmt::format("{:.2g}", min_p));
    } else {
      cfg.test = mann_whitney_u(cfg.base.samples_us, cfg.current.samples_us);
    }
    bool significant = !cfg.test || cfg.test->p < opt.alpha;  // untestable: the medians decide
    if (cfg.time_change > opt.threshold)
      cfg.verdict = significant ? Verdict::regression : Verdict::noise;
    else if (cfg.time_change < -opt.threshold)
      cfg.verdict = significant ? Verdict::improvement : Verdict::noise;
    if (cfg.base.timeline && cfg.current.timeline)
      cfg.kernels = kernel_changes(*cfg.base.timeline, *cfg.current.timeline);
    c.configs.push_back(std::move(cfg));
  }
  for (const auto& [key, side] : base_configs)
    if (!matched.count(key)) c.only_in_base.push_back({key, side});

  if (c.configs.empty()) {
    auto describe = [](const std::vector<std::pair<ConfigKey, ConfigSide>>& list) {
      std::vector<UnmatchedConfig> u;
      for (const auto& [k, s] : list) u.push_back({k, s});
      return u.empty() ? std::string("no runs") : key_list(u, 4);
    };
    throw std::runtime_error(fmt::format(
        "no configuration of {} ({}) matches one of {} ({}): they are matched on model, phase, batch, "
        "context, weights and KV format; the base has {}; the new report has {}",
        current_label, current.model.name, base_label, base.model.name, describe(base_configs),
        describe(current_configs)));
  }

  const Ceilings &pb = base.device.peak, &pc = current.device.peak;
  if (differs(pb.peak_GBps, pc.peak_GBps) || differs(pb.peak_tflops, pc.peak_tflops)) {
    c.ceilings_differ = true;
    c.notes.push_back(fmt::format(
        "measured against different ceilings: base {}, new {}. Step times and tokens/s compare directly; "
        "utilizations, roofline efficiencies and bounds are each against their own ceilings",
        peak_text(pb), peak_text(pc)));
  }
  if (other_device)
    c.notes.push_back(fmt::format(
        "different devices (--across-devices): base {} ({}), new {} ({}); step times compare the devices "
        "as well as the code",
        device_text(base.device.name), base.device.backend, device_text(current.device.name),
        current.device.backend));
  if (base.git_commit != current.git_commit)
    c.notes.push_back(fmt::format("commits: base {}, new {}",
                                  base.git_commit.empty() ? "unknown" : base.git_commit,
                                  current.git_commit.empty() ? "unknown" : current.git_commit));
  if (base.method != current.method)
    c.notes.push_back(
        fmt::format("step times measured differently: base \"{}\", new \"{}\"", base.method, current.method));
  return c;
}

std::string compare_text(const std::vector<ReportComparison>& comparisons) {
  std::string o;
  for (const auto& c : comparisons) {
    o += fmt::format("ridgeline compare: {} against {} ({}; threshold {}, Mann-Whitney U at alpha {})\n",
                     c.current_label, c.base_label, c.model, format_percent(c.options.threshold),
                     c.options.alpha);
    for (const auto& n : c.notes) o += "  note: " + n + "\n";
    std::vector<std::vector<std::string>> rows{header_row()};
    for (const auto& cfg : c.configs) rows.push_back(config_row(cfg));
    o += text_table(rows);
    for (const auto& n : test_notes(c)) o += "  " + n + "\n";
    if (!c.only_in_base.empty()) o += "  only in the base: " + key_list(c.only_in_base, 8) + "\n";
    if (!c.only_in_current.empty()) o += "  only in the new report: " + key_list(c.only_in_current, 8) + "\n";
    for (const auto& cfg : c.configs) {
      if (cfg.kernels.empty()) continue;
      std::string moved;
      for (size_t i = 0; i < cfg.kernels.size() && i < kKernelsInLine; ++i)
        moved +=
            fmt::format("{}{} {:+.2f} us", i ? ", " : "", cfg.kernels[i].name, cfg.kernels[i].change_us());
      o += fmt::format("  timeline {}: {}\n", config_label(cfg.key), moved);
    }
    o += "  " + summary(c) + "\n";
    for (const auto& cfg : c.configs)
      if (cfg.verdict == Verdict::regression) o += "REGRESSION " + regression_line(c, cfg) + "\n";
  }
  return o;
}

std::string compare_markdown(const std::vector<ReportComparison>& comparisons) {
  std::string o;
  for (const auto& c : comparisons) {
    size_t reg = c.count(Verdict::regression);
    o += fmt::format("## ridgeline compare: `{}` against `{}`\n\n", c.current_label, c.base_label);
    o += reg > 0 ? fmt::format("**{} regression{}** (slower by more than {} and significant at alpha {}). ",
                               reg, reg == 1 ? "" : "s", format_percent(c.options.threshold), c.options.alpha)
                 : std::string("**No regression.** ");
    o += md_cell(summary(c)) + fmt::format("; model {}.\n\n", md_cell(c.model));
    for (const auto& n : c.notes) o += "- " + md_cell(n) + "\n";
    for (const auto& n : test_notes(c)) o += "- " + md_cell(n) + "\n";
    if (!c.notes.empty() || !test_notes(c).empty()) o += "\n";
    auto header = header_row();
    o += "|";
    for (const auto& h : header) o += fmt::format(" {} |", h);
    o += "\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    for (const auto& cfg : c.configs) {
      auto row = config_row(cfg);
      if (cfg.verdict == Verdict::regression) row.back() = "**REGRESSION**";
      o += "|";
      for (const auto& cell : row) o += fmt::format(" {} |", md_cell(cell));
      o += "\n";
    }
    if (!c.only_in_base.empty()) o += "\nOnly in the base: " + md_cell(key_list(c.only_in_base, 8)) + ".\n";
    if (!c.only_in_current.empty())
      o += "\nOnly in the new report: " + md_cell(key_list(c.only_in_current, 8)) + ".\n";
    if (reg > 0) {
      o += "\nRegressions:\n\n";
      for (const auto& cfg : c.configs)
        if (cfg.verdict == Verdict::regression) o += "- " + md_cell(regression_line(c, cfg)) + "\n";
    }
    o += kernel_changes_markdown(c);
    o += "\n";
  }
  return o;
}

nlohmann::json github_benchmark_json(const std::vector<ReportComparison>& comparisons) {
  nlohmann::json out = nlohmann::json::array();
  auto entry = [&](const ReportComparison& c, const ConfigKey& key, const ConfigSide& side,
                   const std::string& extra) {
    std::string name = fmt::format("{} {} ({})", c.model, config_label(key), c.current_device);
    if (comparisons.size() > 1) name += " [" + c.current_label + "]";
    nlohmann::json e = {{"name", name}, {"unit", "us"}, {"value", side.median_us}};
    if (side.stddev_us) e["range"] = fmt::format("± {}", format_sig(*side.stddev_us, 3));
    e["extra"] = fmt::format("{} tokens/s; {}", format_sig(side.tokens_per_s, 4), extra);
    out.push_back(std::move(e));
  };
  for (const auto& c : comparisons) {
    for (const auto& cfg : c.configs)
      entry(c, cfg.key, cfg.current,
            fmt::format(
                "base {} ({}), {}; {}", format_time_us(cfg.base.median_us), signed_percent(cfg.time_change),
                cfg.test ? "p = " + format_sig(cfg.test->p, 2) : cfg.test_note, to_string(cfg.verdict)));
    for (const auto& u : c.only_in_current) entry(c, u.key, u.side, "not in the base");
  }
  return out;
}

}  // namespace ridgeline
