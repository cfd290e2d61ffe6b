// ridgeline report: a sweep's JSON report rendered as Markdown (to stdout by default, or a .md file
// with its SVG charts beside it) or as one self-contained HTML file. Given several reports, it renders
// them side by side (report_set.h): overlaid rooflines, tokens/s per report, per-kind deltas.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "analysis/render_html.h"
#include "analysis/render_markdown.h"
#include "cli/args.h"
#include "cli/commands.h"

namespace ridgeline::cli {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open for writing", path.string()));
  f << text;
  if (!f) throw std::runtime_error(fmt::format("{}: write failed", path.string()));
}

int run_report(const std::vector<std::string>& argv) {
  // `-o FILE` is the short form of --out (Args knows long flags only).
  std::vector<std::string> args;
  for (const auto& s : argv) args.push_back(s == "-o" ? "--out" : s);
  Args a(args, {"out"});
  if (a.positional().empty()) throw UsageError("expected a report file (run.json), or several to compare");
  for (const auto& p : a.positional())
    if (p.size() > 1 && p[0] == '-') throw UsageError(fmt::format("unknown flag {}", p));
  // One report renders as before; several, side by side.
  std::optional<ReportView> view;
  std::optional<ReportSet> set;
  if (a.positional().size() == 1)
    view = load_report_view(a.positional()[0]);
  else
    set = load_report_set(a.positional());
  auto markdown = [&](const std::string& stem) {
    return view ? render_markdown(*view, stem) : render_markdown(*set, stem);
  };

  auto out = a.get("out");
  if (!out) {
    std::cout << markdown("").markdown;
    return 0;
  }
  fs::path path(*out);
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".html" || ext == ".htm") {
    write_file(path, view ? render_html(*view) : render_html(*set));
    fmt::print(stderr, "report: wrote {}\n", path.string());
  } else if (ext == ".md" || ext == ".markdown") {
    MarkdownReport md = markdown(path.stem().string());
    write_file(path, md.markdown);
    for (const auto& c : md.charts) write_file(path.parent_path() / c.name, c.content);
    fmt::print(stderr, "report: wrote {} and {} chart{} beside it\n", path.string(), md.charts.size(),
               md.charts.size() == 1 ? "" : "s");
  } else {
    throw UsageError(fmt::format("-o expects a .md or .html file name, got '{}'", *out));
  }
  return 0;
}

}  // namespace

RIDGELINE_COMMAND(Command{
    "report",
    "report run.json [more.json...] [-o report.html | -o report.md]   # Markdown to stdout "
    "without -o; several reports side by side",
    run_report});

}  // namespace ridgeline::cli
