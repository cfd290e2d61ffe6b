// ridgeline compare: new sweep reports against a base report, configuration by configuration.
// Exit codes: 0 no regression, 1 at least one regression (each named on stdout), 2 unusable input
// (unreadable file, not JSON, another schema, an invalid report, nothing matched, reports of two
// devices without --across-devices) or an output file that cannot be written (found before
// comparing), so that 1 always means "slower".
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "analysis/compare.h"
#include "analysis/report_view.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/output_file.h"
#include "engine/error_text.h"
#include "engine/text_file.h"

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
  std::string text;
  try {
    text = read_text_file(path, "the report");  // a folder is named as such, not "basic_filebuf"
  } catch (const std::runtime_error& e) {
    throw Unusable(e.what());
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // The parser quotes what it last read, which can be the whole file: quoted short and escaped.
    throw Unusable(fmt::format("{}: not JSON: {}", path, excerpt(e.what())));
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

// An output that cannot be written is exit 2 too: 1 always means "slower". Opened before anything is
// compared, so that a path that cannot be written is found before a regression is printed (a disk
// that fills while writing still fails after it).
std::optional<OutputFile> open_output(const std::optional<std::string>& path) {
  if (!path) return std::nullopt;
  try {
    return std::optional<OutputFile>(std::in_place, *path);
  } catch (const std::exception& e) {
    throw Unusable(e.what());
  }
}

void write_output(std::optional<OutputFile>& file, const std::string& text) {
  try {
    file->write(text);
    file->publish();
  } catch (const std::exception& e) {
    throw Unusable(e.what());
  }
  fmt::print(stderr, "compare: wrote {}\n", file->path());
}

struct CompareFlags {
  std::vector<std::string> files;
  CompareOptions options;
  std::optional<std::string> md, github_benchmark;
};

int run_compare(const CompareFlags& f) {
  if (f.files.size() < 2)
    throw UsageError(fmt::format("expected a base report and at least one new report, got {} file{}",
                                 f.files.size(), f.files.size() == 1 ? "" : "s"));
  const CompareOptions& opt = f.options;
  try {
    std::optional<OutputFile> md = open_output(f.md), github = open_output(f.github_benchmark);
    const std::string& base_path = f.files[0];
    Report base = load(base_path);
    std::vector<ReportComparison> comparisons;
    for (size_t i = 1; i < f.files.size(); ++i) {
      const std::string& path = f.files[i];
      Report current = load(path);
      try {
        comparisons.push_back(compare_reports(base, current, opt, base_path, path));
      } catch (const std::exception& e) {
        throw Unusable(e.what());
      }
    }
    std::cout << compare_text(comparisons) << std::flush;
    if (md) write_output(md, compare_markdown(comparisons));
    if (github) write_output(github, github_benchmark_json(comparisons).dump(2) + "\n");
    size_t regressions = 0;
    for (const auto& c : comparisons) regressions += c.count(Verdict::regression);
    return regressions > 0 ? kExitRegression : 0;
  } catch (const Unusable& e) {
    fmt::print(stderr, "ridgeline compare: {}\n", e.what());
    return kExitUnusable;
  }
}

Runner define_compare(CLI::App& app) {
  auto f = std::make_shared<CompareFlags>();
  app.add_option("files", f->files, "the base report, then one or more new reports")
      ->type_name("REPORT.json");
  app.add_option("--threshold", f->options.threshold,
                 "a slowdown counts when the median step time grows by more than this fraction")
      ->type_name("F")
      ->check(number_in(0, 10, /*min_open=*/false))
      ->capture_default_str();
  app.add_option("--alpha", f->options.alpha, "significance level of the Mann-Whitney U test")
      ->type_name("F")
      ->check(number_in(0, 1, /*min_open=*/true))
      ->capture_default_str();
  app.add_flag("--across-devices", f->options.across_devices,
               "compare reports measured on different devices (refused without it: their step times "
               "differ by the device)");
  app.add_option("--md", f->md, "also write the comparison as Markdown")
      ->type_name("FILE")
      ->check(file_name());
  app.add_option("--github-benchmark", f->github_benchmark,
                 "also write github-action-benchmark JSON (customSmallerIsBetter)")
      ->type_name("FILE")
      ->check(file_name());
  return [f](const std::vector<std::string>&) { return run_compare(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"compare",
                          "compare sweep reports against a base; exit 1 on a significant slowdown, 2 on "
                          "unusable input",
                          "compare BASE.json NEW.json... [--threshold F] [--alpha F] [--across-devices]\n"
                          "[--md FILE] [--github-benchmark FILE]",
                          define_compare});

}  // namespace ridgeline::cli
