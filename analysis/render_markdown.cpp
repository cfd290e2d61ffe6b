// Markdown layout of the report view: bullets for facts and sentences, GFM tables, chart links.
#include "analysis/render_markdown.h"

#include <iterator>

#include <fmt/format.h>

#include "analysis/svg_roofline.h"

namespace ridgeline {
namespace {

std::string cell(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '|')
      o += "\\|";
    else if (ch == '<')
      o += "&lt;";
    else if (ch == '\n' || ch == '\r')
      o += ' ';
    else
      o += ch;
  }
  return o;
}

// Inline code that survives backticks inside the text (CommonMark: a longer fence).
std::string code_span(const std::string& s) {
  std::string fence = s.find('`') == std::string::npos ? "`" : "`` ";
  std::string close = fence == "`" ? "`" : " ``";
  return fence + s + close;
}

}  // namespace

std::string markdown_table(const Table& t) {
  std::string o = "|";
  for (const auto& h : t.header) o += fmt::format(" {} |", cell(h));
  o += "\n|";
  for (size_t c = 0; c < t.header.size(); ++c)
    o += c < t.numeric.size() && t.numeric[c] ? " ---: |" : " --- |";
  o += "\n";
  for (const auto& row : t.rows) {
    o += "|";
    for (const auto& v : row) o += fmt::format(" {} |", cell(v));
    o += "\n";
  }
  return o;
}

MarkdownReport render_markdown(const ReportView& v, const std::string& chart_stem) {
  const Report& r = v.report;
  MarkdownReport out;
  std::string& o = out.markdown;
  auto add = [&o](const std::string& s) { o += s; };

  add(fmt::format("# {}\n\n", cell(report_title(r))));
  for (const auto& f : report_facts(r))
    add(fmt::format("- **{}**: {}\n", f.name, f.code ? code_span(f.value) : cell(f.value)));

  if (v.interrupted) add("\n> " + cell(interrupted_note(v)) + "\n");
  add("\n## Headline\n\n" + headline_intro() + "\n\n");
  auto sentences = headline_sentences(r);
  if (sentences.empty())
    add("No decode runs at one context with two or more batches: no ridge batch to report.\n");
  for (const auto& s : sentences) add("- " + cell(s) + "\n");
  if (!r.headline.empty()) add("\n" + markdown_table(headline_table(r)));

  add("\n## Runs\n\n" +
      (r.runs.empty() ? no_runs_sentence(v) : runs_intro(r) + "\n\n" + markdown_table(runs_table(r))));

  if (auto prefill = prefill_table(r)) {
    add("\n## Prefill\n\n" + prefill_intro() + "\n\n" + markdown_table(*prefill));
    if (auto shortfalls = prefill_shortfall_sentences(r); !shortfalls.empty()) {
      add("\n### Where a format does not pay\n\n" + format_shortfall_intro(true) + "\n\n");
      for (const auto& s : shortfalls) add("- " + cell(s) + "\n");
    }
  }

  if (auto cmp = format_comparison_table(r)) {
    add("\n## Formats side by side\n\n");
    for (const auto& s : format_comparison_sentences(r)) add("- " + cell(s) + "\n");
    add("\n" + markdown_table(*cmp));
    if (auto shortfalls = format_shortfall_sentences(r); !shortfalls.empty()) {
      add("\n### Where a format does not pay\n\n" + format_shortfall_intro(false) + "\n\n");
      for (const auto& s : shortfalls) add("- " + cell(s) + "\n");
    }
  }

  add("\n## Charts\n\n");
  if (chart_stem.empty()) {
    add("The SVG charts are written beside the report with `-o report.md`, or inline with `-o "
        "report.html`.\n\n");
  } else {
    for (auto& c : report_charts(r)) {
      std::string name = fmt::format("{}-{}.svg", chart_stem, c.slug);
      add(fmt::format("![{}]({})\n\n{}\n\n", c.title, name, cell(c.caption)));
      out.charts.push_back({name, std::move(c.svg)});
    }
  }

  add("## Top ops\n\n" + top_ops_intro() + "\n");
  for (size_t i : focus_runs(r)) {
    add(fmt::format("\n### {}\n\n", cell(run_title(r.runs[i]))));
    add(markdown_table(top_ops_table(r.runs[i])));
  }

  add("\n## Per-kind breakdown\n\n" + kinds_intro() + "\n");
  for (const auto& run : r.runs) {
    add(fmt::format("\n### {}\n\n", cell(run_title(run))));
    add(fmt::format("Step {} (coverage {}).\n\n", format_time_us(run.step.time_us.median),
                    format_percent(run.coverage)));
    add(markdown_table(kinds_table(run)));
    if (!run.unmeasured_ops.empty()) {
      std::string names;
      for (const auto& n : run.unmeasured_ops) names += (names.empty() ? "" : ", ") + n;
      add(fmt::format("\nCost-model ops without a measured time (fused into another op): {}.\n",
                      cell(names)));
    }
  }

  if (const auto timelines = timeline_runs(r); !timelines.empty()) {
    add("\n## Where the overlapped step's time goes\n\n" + timeline_intro() + "\n");
    for (size_t i : timelines) {
      const RunRecord& run = r.runs[i];
      add(fmt::format("\n### {}\n\n{}\n\n", cell(run_title(run)), cell(timeline_sentence(*run.timeline))));
      add(markdown_table(timeline_table(*run.timeline)));
    }
  }

  add("\n## Skipped configurations\n\n");
  if (v.skipped.empty())
    add("None: every configuration of the sweep ran.\n");
  else
    add(markdown_table(skipped_table(v.skipped)));
  return out;
}

MarkdownReport render_markdown(const ReportSet& s, const std::string& chart_stem) {
  MarkdownReport out;
  std::string& o = out.markdown;
  o += fmt::format("# {}\n\n{}\n\n## Reports\n\n", cell(report_set_title(s)), report_set_intro(s));
  o += markdown_table(report_set_sources_table(s));
  auto notes = report_set_notes(s);
  if (!notes.empty()) o += "\n";
  for (const auto& n : notes) o += "- " + cell(n) + "\n";
  o += "\n## Runs side by side\n\n" + markdown_table(report_set_runs_table(s));
  o += "\n## Charts\n\n";
  if (chart_stem.empty()) {
    o += "The SVG charts are written beside the report with `-o report.md`, or inline with `-o "
         "report.html`.\n\n";
  } else {
    std::vector<const Report*> reports;
    for (const auto& v : s.views) reports.push_back(&v.report);
    for (auto& c : report_set_charts(reports, s.labels)) {
      std::string name = fmt::format("{}-{}.svg", chart_stem, c.slug);
      o += fmt::format("![{}]({})\n\n{}\n\n", c.title, name, cell(c.caption));
      out.charts.push_back({name, std::move(c.svg)});
    }
  }
  if (s.views.size() > 1) {
    o += fmt::format("## Per-kind deltas against {}\n\n", cell(s.labels[0]));
    o += "Each kind's summed op time against the first report, over the configurations both have.\n\n";
    o += markdown_table(report_set_kind_summary_table(s));
    o += "\n### Per configuration\n\n" + markdown_table(report_set_kinds_table(s));
  }
  return out;
}

}  // namespace ridgeline
