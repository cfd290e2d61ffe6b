// Several reports side by side (`ridgeline report a.json b.json ...`): a label per report, what each
// was measured on, the runs of every configuration next to each other, and the per-kind op times
// against the first report. Like report_view.h, everything is formatted cells, so that the HTML and
// Markdown renderings cannot disagree; the charts are report_set_charts (svg_roofline.h).
#pragma once

#include <string>
#include <vector>

#include "analysis/report_view.h"

namespace ridgeline {

struct ReportSet {
  std::vector<std::string> labels;  // one per report, unique: the file's stem (its path when stems repeat)
  std::vector<ReportView> views;    // in the order given; the first is what deltas are taken against
};

// Loads and validates every file (as load_report_view does). Needs at least one path.
ReportSet load_report_set(const std::vector<std::string>& paths);
// A set from reports already read, with the labels given (they must be as many, and unique).
ReportSet make_report_set(std::vector<ReportView> views, std::vector<std::string> labels);
// Unique labels for the paths: their stems, or the paths themselves when two stems are the same.
std::vector<std::string> report_labels(const std::vector<std::string>& paths);

std::string report_set_title(const ReportSet& s);
// Per report: label, model, device and backend, peaks, commit, date, runs, skipped, command.
Table report_set_sources_table(const ReportSet& s);
// What makes the reports harder to compare: other ceilings, other models or devices.
std::vector<std::string> report_set_notes(const ReportSet& s);
// One row per configuration (compare.h's matching): each report's median step time (p10-p90) and
// tokens/s, and for every report after the first the change of its step time against the first.
Table report_set_runs_table(const ReportSet& s);
// Per kind of op, per report after the first: the median change of that kind's summed op time
// against the first report over the configurations both have, with the smallest and largest.
Table report_set_kind_summary_table(const ReportSet& s);
// Per configuration of the first report that another report shares, per kind: each report's time and
// its change against the first.
Table report_set_kinds_table(const ReportSet& s);

std::string report_set_intro(const ReportSet& s);

}  // namespace ridgeline
