// A report rendered as GitHub-flavoured Markdown: the header facts, the headline, the runs, formats
// side by side, the top ops and per-kind breakdowns as tables, the skipped configurations, and the
// SVG charts as separate files linked from the text.
#pragma once

#include <string>
#include <vector>

#include "analysis/report_set.h"
#include "analysis/report_view.h"

namespace ridgeline {

struct RenderedFile {
  std::string name;  // relative to the Markdown file
  std::string content;
};

struct MarkdownReport {
  std::string markdown;
  std::vector<RenderedFile> charts;  // "<chart_stem>-<slug>.svg", to be written beside the Markdown
};

// `chart_stem` names the chart files ("report" -> "report-roofline.svg", ...). With an empty stem
// (Markdown on stdout, nowhere to put files) the charts are left out and the text says how to get them.
MarkdownReport render_markdown(const ReportView& v, const std::string& chart_stem);
// Several reports side by side, charts as for a single report.
MarkdownReport render_markdown(const ReportSet& s, const std::string& chart_stem);

// A GFM pipe table; cells have `|`, `<` and line breaks escaped.
std::string markdown_table(const Table& t);

}  // namespace ridgeline
