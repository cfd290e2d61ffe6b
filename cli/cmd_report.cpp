// ridgeline report: a sweep's JSON report rendered as Markdown (to stdout by default, or a .md file
// with its SVG charts beside it) or as one self-contained HTML file.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>

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
  if (a.positional().size() != 1)
    throw UsageError(fmt::format("expected one report file (run.json), got {}", a.positional().size()));
  for (const auto& p : a.positional())
    if (p.size() > 1 && p[0] == '-') throw UsageError(fmt::format("unknown flag {}", p));
  ReportView view = load_report_view(a.positional()[0]);

  auto out = a.get("out");
  if (!out) {
    std::cout << render_markdown(view, "").markdown;
    return 0;
  }
  fs::path path(*out);
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".html" || ext == ".htm") {
    write_file(path, render_html(view));
    fmt::print(stderr, "report: wrote {}\n", path.string());
  } else if (ext == ".md" || ext == ".markdown") {
    MarkdownReport md = render_markdown(view, path.stem().string());
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

RIDGELINE_COMMAND(Command{"report",
                          "report run.json [-o report.html | -o report.md]   # Markdown to stdout without -o",
                          run_report});

}  // namespace ridgeline::cli
