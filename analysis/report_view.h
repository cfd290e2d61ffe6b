// What a rendered report shows, independent of its output format: the validated report with the
// sweep's skipped configurations, the header facts, headline sentences, and every table as rows of
// already formatted cells. render_markdown and render_html only lay these out, so that the two
// outputs cannot disagree on a number.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report.h"

namespace ridgeline {

// A configuration the sweep did not run, or that failed (the report's optional top-level "skipped"
// array; "phase" and "failed" are optional there: decode and false).
struct SkippedConfig {
  int batch = 0;
  int context = 0;  // the prompt length of a prefill
  std::string weights, kv;
  std::string reason;
  std::string phase = "decode";  // "decode" | "prefill"
  bool failed = false;           // an error while loading or measuring, not a configuration that cannot fit
};

struct ReportView {
  Report report;
  std::vector<SkippedConfig> skipped;  // empty when the report has no "skipped" array
  bool interrupted = false;            // the sweep was stopped early (top-level "interrupted": true)
};

// Validates `j` with validate_report and reads it. An invalid report throws std::runtime_error in one
// line naming `source`, the number of problems and the first few of them (with their JSON paths).
ReportView read_report_view(const nlohmann::json& j, const std::string& source);
// The same from a file; a missing file or one that is not JSON throws naming the file.
ReportView load_report_view(const std::string& path);

// Numbers as the report prints them. Non-finite values print as "n/a".
std::string format_sig(double v, int digits);  // `digits` significant digits, never drops integer digits
std::string format_time_us(double us);         // "850.3 µs", "16.93 ms", "1.234 s" (4 significant digits)
std::string format_percent(double fraction);   // 0.1717 -> "17.2%"
std::string format_count(double n);            // 12456448 -> "12.5 M", 1.89e9 -> "1.89 B"
std::string format_bytes(double bytes);        // binary units: "23.5 GiB"

// "fp16 weights + int8 KV"; the w4a16 group size is named when it is not 128, a 4-bit output head
// always ("w4a16 (4-bit head) weights + fp16 KV").
std::string format_label(const std::string& weights, const std::string& kv, int group_size,
                         const std::string& head = "fp16");
// "B=16, context 1024, fp16 weights + fp16 KV" (and the prefill length or mixed contexts if any).
std::string run_title(const RunRecord& r);

// A weight/KV format of the runs (with the head's), in order of first appearance.
struct RunFormat {
  std::string weights, kv;
  int group_size = 128;
  std::string head = "fp16";
  std::string label() const { return format_label(weights, kv, group_size, head); }
  bool operator==(const RunFormat&) const = default;
};
RunFormat run_format(const RunRecord& r);
// Every format of the report; fp16 weights + fp16 KV first when present (the baseline of comparisons).
std::vector<RunFormat> report_formats(const Report& r);

struct Fact {
  std::string name, value;
  bool code = false;  // show the value as code (the command line)
};
std::string report_title(const Report& r);
// Model, device, peaks (measured and datasheet), ridge, command, commit, date, method.
std::vector<Fact> report_facts(const Report& r);

// Cells are plain text; the renderers escape them.
struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
};

// One sentence per headline entry: the measured ridge batch beside the predicted one.
std::vector<std::string> headline_sentences(const Report& r);
Table headline_table(const Report& r);
// One row per run: batch, context, formats, step time median (p10-p90), tokens/s, achieved rates and
// utilizations, roofline efficiency, bound, coverage and the predicted step time.
Table runs_table(const Report& r);
// Tokens/s of every format side by side at the same (batch, context), with the speedup over the first
// format of report_formats; nullopt when the report has one format only.
std::optional<Table> format_comparison_table(const Report& r);
// Per non-baseline format: its speedup range over the baseline, one sentence each.
std::vector<std::string> format_comparison_sentences(const Report& r);
// Where a format does not pay: for each (batch, context) at which a format runs fewer tokens/s than
// the first (the table's base), the two step times and the ops (summed over the layers, from the
// serial per-op times) whose time grew most and shrank most. Empty when every format pays.
std::vector<std::string> format_shortfall_sentences(const Report& r);
// The same for prefills: each (batch, prompt length) at which a format runs fewer prompt tokens/s
// than fp16 weights + fp16 KV.
std::vector<std::string> prefill_shortfall_sentences(const Report& r);
// The paragraph before those sentences: for the prefill table (base fp16 weights + fp16 KV) or the
// decode formats table (base: its first format).
std::string format_shortfall_intro(bool prefill);
// The runs whose top ops are shown: for each format, at its largest decode context, the smallest and
// the largest batch. Indices into r.runs, in report order.
std::vector<size_t> focus_runs(const Report& r);
// Per kind of op: count, time, share of the summed op time, rates, utilizations, intensity, bound.
Table kinds_table(const RunRecord& r);
// The `n` slowest ops, with their share of the step time.
Table top_ops_table(const RunRecord& r, size_t n = 10);
Table skipped_table(const std::vector<SkippedConfig>& skipped);
// The prefill runs (time to first token): batch, prompt length, formats, TTFT median (p10-p90), prompt
// tokens/s, TFLOP/s, compute utilization, GB/s, roofline efficiency, bound, predicted TTFT; nullopt
// when the report has none.
std::optional<Table> prefill_table(const Report& r);
// The environment lines of report_facts (GPU state; build and host), empty when nothing is known.
std::vector<Fact> environment_facts(const DeviceInfo& d);

// The paragraphs that introduce the sections, the same in both renderings.
std::string headline_intro();
std::string runs_intro(const Report& r);
// What a report without runs says in their place: why there are none (interrupted before the first
// configuration finished, every configuration skipped, or nothing asked for).
std::string no_runs_sentence(const ReportView& v);
std::string top_ops_intro();
std::string kinds_intro();

// The per-kernel timeline of the runs that recorded one (`sweep --timeline`): the intro, a sentence
// per run (span, busy and idle time, kernels), and a table of its kernels by the step time they add
// (advance), largest first.
std::vector<size_t> timeline_runs(const Report& r);  // indices into r.runs, in report order
std::string timeline_intro();
std::string timeline_sentence(const TimelineSummary& t);
Table timeline_table(const TimelineSummary& t);
std::string prefill_intro();
// The line that says a report is incomplete because its sweep was interrupted.
std::string interrupted_note(const ReportView& v);

}  // namespace ridgeline
