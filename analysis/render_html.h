// A report rendered as one self-contained HTML file: minimal inline CSS, the charts as inline SVG,
// no JavaScript and no external assets. The same content as the Markdown rendering.
#pragma once

#include <string>

#include "analysis/report_set.h"
#include "analysis/report_view.h"

namespace ridgeline {

std::string render_html(const ReportView& v);
// Several reports side by side: sources, runs, overlaid charts, per-kind deltas against the first.
std::string render_html(const ReportSet& s);

}  // namespace ridgeline
