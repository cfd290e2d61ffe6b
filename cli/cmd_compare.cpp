// ridgeline compare: new sweep reports against a base report, configuration by configuration.
// Exit codes: 0 no regression, 1 at least one regression (each named on stdout), 2 unusable input
// (unreadable file, not JSON, another schema, an invalid report, nothing matched) or an output file
// that cannot be written, so that 1 always means "slower".
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "analysis/compare.h"
#include "analysis/report_view.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace ridgeline::cli {
namespace {

using nlohmann::json;

constexpr int kExitRegression = 1;
constexpr int kExitUnusable = 2;

// Thrown for anything that makes the comparison impossible: exit 2, not 1.
struct Unusable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Report load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Unusable(fmt::format("{}: cannot open the report (no such file, or unreadable)", path));
  json j;
  try {
    j = json::parse(f);
  } catch (const json::parse_error& e) {
    throw Unusable(fmt::format("{}: not JSON: {}", path, e.what()));
  }
  // Another schema gets its own line rather than a list of missing fields.
  if (!j.is_object() || !j.contains("schema") || !j["schema"].is_string())
    throw Unusable(fmt::format("{}: not a ridgeline report (no \"schema\" string)", path));
  if (j["schema"] != kReportSchema)
    throw Unusable(fmt::format("{}: schema '{}' is not '{}', the one this build compares", path,
                               j["schema"].get<std::string>(), kReportSchema));
  try {
    return read_report_view(j, path).report;
  } catch (const std::exception& e) {
    throw Unusable(e.what());
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Unusable(fmt::format("{}: cannot open for writing", path));
  f << text;
  if (!f) throw Unusable(fmt::format("{}: write failed", path));
}

int run_compare(const std::vector<std::string>& argv) {
  Args a(argv, {"threshold", "alpha", "md", "github-benchmark"});
  for (const auto& p : a.positional())
    if (p.size() > 1 && p[0] == '-') throw UsageError(fmt::format("unknown flag {}", p));
  if (a.positional().size() < 2)
    throw UsageError(fmt::format("expected a base report and at least one new report, got {} file{}",
                                 a.positional().size(), a.positional().size() == 1 ? "" : "s"));
  CompareOptions opt;
  opt.threshold = a.get_double("threshold", opt.threshold);
  opt.alpha = a.get_double("alpha", opt.alpha);
  if (!(opt.threshold >= 0) || opt.threshold >= 10)
    throw UsageError(fmt::format("--threshold {} must be a fraction >= 0 (0.05 = 5%)", opt.threshold));
  if (!(opt.alpha > 0 && opt.alpha < 1))
    throw UsageError(fmt::format("--alpha {} must lie between 0 and 1", opt.alpha));

  try {
    const std::string& base_path = a.positional()[0];
    Report base = load(base_path);
    std::vector<ReportComparison> comparisons;
    for (size_t i = 1; i < a.positional().size(); ++i) {
      const std::string& path = a.positional()[i];
      Report current = load(path);
      try {
        comparisons.push_back(compare_reports(base, current, opt, base_path, path));
      } catch (const std::exception& e) {
        throw Unusable(e.what());
      }
    }
    std::cout << compare_text(comparisons) << std::flush;
    if (auto md = a.get("md")) {
      write_file(*md, compare_markdown(comparisons));
      fmt::print(stderr, "compare: wrote {}\n", *md);
    }
    if (auto gb = a.get("github-benchmark")) {
      write_file(*gb, github_benchmark_json(comparisons).dump(2) + "\n");
      fmt::print(stderr, "compare: wrote {}\n", *gb);
    }
    size_t regressions = 0;
    for (const auto& c : comparisons) regressions += c.count(Verdict::regression);
    return regressions > 0 ? kExitRegression : 0;
  } catch (const Unusable& e) {
    fmt::print(stderr, "ridgeline compare: {}\n", e.what());
    return kExitUnusable;
  }
}

}  // namespace

RIDGELINE_COMMAND(Command{"compare",
                          "compare BASE.json NEW.json... [--threshold 0.05] [--alpha 0.05] [--md FILE] "
                          "[--github-benchmark FILE]   # exit 1 on a regression, 2 on unusable input",
                          run_compare});

}  // namespace ridgeline::cli
