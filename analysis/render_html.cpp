// HTML layout of the report view: one file, inline CSS and SVG, per-run breakdowns folded in <details>.
#include "analysis/render_html.h"

#include <fmt/format.h>

#include "analysis/svg_roofline.h"

namespace ridgeline {
namespace {

constexpr const char* kStyle =
    R"(body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
details { margin: 0.4em 0; } summary { cursor: pointer; }
.svg-wrap { overflow-x: auto; })";

std::string table_html(const Table& t) {
  std::string o = "<table>\n<thead><tr>";
  for (const auto& h : t.header) o += "<th>" + xml_escape(h) + "</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    o += "<tr>";
    for (size_t c = 0; c < row.size(); ++c)
      o += (c < t.numeric.size() && t.numeric[c] ? "<td class=\"num\">" : "<td>") + xml_escape(row[c]) +
           "</td>";
    o += "</tr>\n";
  }
  return o + "</tbody>\n</table>\n";
}

std::string para(const std::string& s) {
  return "<p>" + xml_escape(s) + "</p>\n";
}

std::string bullets(const std::vector<std::string>& items) {
  std::string o = "<ul>\n";
  for (const auto& s : items) o += "<li>" + xml_escape(s) + "</li>\n";
  return o + "</ul>\n";
}

std::string page_head(const std::string& title) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
      "charset=\"utf-8\">\n<title>{}</title>\n<style>\n{}\n"
      "</style>\n</head>\n<body>\n<h1>{}</h1>\n",
      xml_escape(title), kStyle, xml_escape(title));
}

std::string figure(const ReportChart& c) {
  return fmt::format(
      "<figure id=\"chart-{}\">\n<div "
      "class=\"svg-wrap\">\n{}</div>\n<figcaption>{}</figcaption>\n</figure>\n",
      xml_escape(c.slug), c.svg, xml_escape(c.caption));
}

}  // namespace

std::string render_html(const ReportView& v) {
  const Report& r = v.report;
  std::string o = page_head(report_title(r));
  o += "<dl class=\"facts\">\n";
  for (const auto& f : report_facts(r))
    o += fmt::format("<dt>{}</dt><dd>{}</dd>\n", xml_escape(f.name),
                     f.code ? "<code>" + xml_escape(f.value) + "</code>" : xml_escape(f.value));
  o += "</dl>\n";
  if (v.interrupted) o += para(interrupted_note(v));

  o += "<h2>Headline</h2>\n" + para(headline_intro());
  auto sentences = headline_sentences(r);
  if (sentences.empty())
    o += para("No decode runs at one context with two or more batches: no ridge batch to report.");
  else
    o += bullets(sentences) + table_html(headline_table(r));

  o += "<h2>Runs</h2>\n" +
       (r.runs.empty() ? para(no_runs_sentence(v)) : para(runs_intro(r)) + table_html(runs_table(r)));
  if (auto prefill = prefill_table(r)) {
    o += "<h2>Prefill</h2>\n" + para(prefill_intro()) + table_html(*prefill);
    if (auto shortfalls = prefill_shortfall_sentences(r); !shortfalls.empty())
      o +=
          "<h3>Where a format does not pay</h3>\n" + para(format_shortfall_intro(true)) + bullets(shortfalls);
  }

  if (auto cmp = format_comparison_table(r)) {
    o += "<h2>Formats side by side</h2>\n" + bullets(format_comparison_sentences(r)) + table_html(*cmp);
    if (auto shortfalls = format_shortfall_sentences(r); !shortfalls.empty())
      o += "<h3>Where a format does not pay</h3>\n" + para(format_shortfall_intro(false)) +
           bullets(shortfalls);
  }

  o += "<h2>Charts</h2>\n";
  for (const auto& c : report_charts(r)) o += figure(c);

  o += "<h2>Top ops</h2>\n" + para(top_ops_intro());
  for (size_t i : focus_runs(r))
    o += "<h3>" + xml_escape(run_title(r.runs[i])) + "</h3>\n" + table_html(top_ops_table(r.runs[i]));

  o += "<h2>Per-kind breakdown</h2>\n" + para(kinds_intro());
  for (const auto& run : r.runs) {
    o += fmt::format("<details>\n<summary>{}: step {}, coverage {}</summary>\n", xml_escape(run_title(run)),
                     xml_escape(format_time_us(run.step.time_us.median)),
                     xml_escape(format_percent(run.coverage)));
    o += table_html(kinds_table(run));
    if (!run.unmeasured_ops.empty()) {
      std::string names;
      for (const auto& n : run.unmeasured_ops) names += (names.empty() ? "" : ", ") + n;
      o += para("Cost-model ops without a measured time (fused into another op): " + names + ".");
    }
    o += "</details>\n";
  }

  if (const auto timelines = timeline_runs(r); !timelines.empty()) {
    o += "<h2>Where the overlapped step's time goes</h2>\n" + para(timeline_intro());
    for (size_t i : timelines)
      o += fmt::format("<details>\n<summary>{}: {}</summary>\n", xml_escape(run_title(r.runs[i])),
                       xml_escape(timeline_sentence(*r.runs[i].timeline))) +
           table_html(timeline_table(*r.runs[i].timeline)) + "</details>\n";
  }

  o += "<h2>Skipped configurations</h2>\n";
  o += v.skipped.empty() ? para("None: every configuration of the sweep ran.")
                         : table_html(skipped_table(v.skipped));
  o += "</body>\n</html>\n";
  return o;
}

std::string render_html(const ReportSet& s) {
  std::string o = page_head(report_set_title(s));
  o += para(report_set_intro(s));
  o += "<h2>Reports</h2>\n" + table_html(report_set_sources_table(s));
  auto notes = report_set_notes(s);
  if (!notes.empty()) o += bullets(notes);
  o += "<h2>Runs side by side</h2>\n" + table_html(report_set_runs_table(s));
  o += "<h2>Charts</h2>\n";
  std::vector<const Report*> reports;
  for (const auto& v : s.views) reports.push_back(&v.report);
  for (const auto& c : report_set_charts(reports, s.labels)) o += figure(c);
  if (s.views.size() > 1) {
    o += fmt::format("<h2>Per-kind deltas against {}</h2>\n", xml_escape(s.labels[0]));
    o += para("Each kind's summed op time against the first report, over the configurations both have.");
    o += table_html(report_set_kind_summary_table(s));
    o += "<details>\n<summary>Per configuration</summary>\n" + table_html(report_set_kinds_table(s)) +
         "</details>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

}  // namespace ridgeline
