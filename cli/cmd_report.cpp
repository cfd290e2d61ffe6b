// ridgeline report: a sweep's JSON report rendered as Markdown (to stdout by default, or a .md file
// with its SVG charts beside it) or as one self-contained HTML file. Given several reports, it renders
// them side by side (report_set.h): overlaid rooflines, tokens/s per report, per-kind deltas.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "analysis/render_html.h"
#include "analysis/render_markdown.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/output_file.h"

namespace ridgeline::cli {
namespace {

namespace fs = std::filesystem;

struct ReportFlags {
  std::vector<std::string> files;
  std::optional<std::string> out;
};

int run_report(const ReportFlags& f) {
  if (f.files.empty()) throw UsageError("expected a report file (run.json), or several to compare");
  for (const auto& file : f.files) {
    std::error_code ec;
    if (fs::is_directory(file, ec))  // else the reader's "basic_filebuf::underflow ... Is a directory"
      throw std::runtime_error(fmt::format("{}: is a directory, expected a report (run.json)", file));
  }
  // One report renders as before; several, side by side.
  std::optional<ReportView> view;
  std::optional<ReportSet> set;
  if (f.files.size() == 1)
    view = load_report_view(f.files[0]);
  else
    set = load_report_set(f.files);
  auto markdown = [&](const std::string& stem) {
    return view ? render_markdown(*view, stem) : render_markdown(*set, stem);
  };

  if (!f.out) {
    std::cout << markdown("").markdown;
    return 0;
  }
  fs::path path(*f.out);
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".html" || ext == ".htm") {
    write_file(path.string(), view ? render_html(*view) : render_html(*set));
    fmt::print(stderr, "report: wrote {}\n", path.string());
  } else if (ext == ".md" || ext == ".markdown") {
    MarkdownReport md = markdown(path.stem().string());
    // All or nothing: a chart that cannot be written leaves no report without its charts. The
    // Markdown goes last, so that it never names charts that are not there yet.
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& c : md.charts) files.emplace_back((path.parent_path() / c.name).string(), c.content);
    files.emplace_back(path.string(), md.markdown);
    write_files(files);
    fmt::print(stderr, "report: wrote {} and {} chart{} beside it\n", path.string(), md.charts.size(),
               md.charts.size() == 1 ? "" : "s");
  } else {
    throw UsageError(fmt::format("-o expects a .md or .html file name, got '{}'", *f.out));
  }
  return 0;
}

Runner define_report(CLI::App& app) {
  auto f = std::make_shared<ReportFlags>();
  app.add_option("files", f->files, "sweep reports; several render side by side")->type_name("REPORT.json");
  app.add_option("-o,--out", f->out, "a .html file (self-contained) or a .md file (SVG charts beside it)")
      ->type_name("FILE")
      ->default_str("Markdown to stdout")
      ->check(file_name());
  return [f](const std::vector<std::string>&) { return run_report(*f); };
}

}  // namespace

RIDGELINE_COMMAND(Command{"report", "render sweep reports as Markdown or HTML with roofline charts",
                          "report REPORT.json... [-o FILE.html|FILE.md]", define_report});

}  // namespace ridgeline::cli
