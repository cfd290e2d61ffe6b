// `ridgeline compare`: the runs of a new report against those of a base report, configuration by
// configuration, with a noise-aware verdict. A configuration is (model, phase, batch, context,
// weights, kv); its change is the new median step time over the base one, and the stored step
// samples decide, by a two-sided Mann-Whitney U test, whether the change is more than noise. A
// regression is a slowdown beyond the threshold that is also significant at alpha.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report.h"
#include "analysis/stats.h"

namespace ridgeline {

struct CompareOptions {
  double threshold = 0.05;  // relative slowdown of the median step time that counts (0.05 = 5%)
  double alpha = 0.05;      // significance level of the U test (Google Benchmark's compare.py uses 0.05)
  // Reports measured on different devices (name or backend) are refused unless this is set: their step
  // times differ by the card as well as the code, so a slowdown between them is no regression.
  bool across_devices = false;
};

// What a configuration is matched on. The phase is "decode" (new_tokens_per_seq 1) or "prefill";
// prefill runs also match on new_tokens_per_seq, since prefills of different lengths are different
// work. w4a16 runs match on their group size too.
struct ConfigKey {
  std::string model;
  std::string phase;
  int new_tokens_per_seq = 1;
  int batch = 0, context = 0;
  std::string weights, kv;
  int group_size = 128;
  std::string head = "fp16";  // the output head's format
  auto operator<=>(const ConfigKey&) const = default;
};
ConfigKey config_key(const std::string& model, const RunRecord& r);
// "decode B=16 ctx=1024 fp16/fp16" ("prefill 512 B=1 ctx=512 w4a16/int8"); the model is left out.
std::string config_label(const ConfigKey& k);

// One configuration's measurements in one report; runs repeated within a report are pooled.
struct ConfigSide {
  double median_us = 0;
  double tokens_per_s = 0;
  int runs = 0;                     // runs pooled (1 unless the report repeats the configuration)
  std::vector<double> samples_us;   // the kept step samples, pooled; empty when the report has none
  std::optional<double> stddev_us;  // of all the step samples (one run) or of the pool; none if unknown
  std::optional<TimelineSummary> timeline;  // the per-kernel timeline (sweep --timeline), the last run's
};

// One kernel's advance of the step's end (runs[].timeline) in both reports: what moved the step.
struct KernelChange {
  std::string name;
  int base_launches = 0, current_launches = 0;         // 0: the kernel is absent from that step
  double base_advance_us = 0, current_advance_us = 0;  // summed over the step's launches
  double change_us() const { return current_advance_us - base_advance_us; }
};

enum class Verdict {
  regression,   // slower beyond the threshold, and significant (or untestable: see `tested`)
  improvement,  // faster beyond the threshold, and significant (or untestable)
  noise,        // beyond the threshold but not significant
  unchanged,    // within the threshold
};
const char* to_string(Verdict v);

struct ConfigComparison {
  ConfigKey key;
  ConfigSide base, current;
  double time_change = 0;           // current.median_us / base.median_us - 1 (+0.20: 20% slower)
  double throughput_change = 0;     // current.tokens_per_s / base.tokens_per_s - 1
  std::optional<MannWhitney> test;  // the U test on the samples; none when it could not be run
  std::string test_note;            // why not ("no samples: significance not tested", too few samples), or ""
  Verdict verdict = Verdict::unchanged;
  // Where both reports recorded a timeline for the configuration: every kernel of either step, the
  // largest change of its advance first (the changes add up to the change of the timed step's span).
  std::vector<KernelChange> kernels;
};

// A configuration only one of the two reports has.
struct UnmatchedConfig {
  ConfigKey key;
  ConfigSide side;
};

struct ReportComparison {
  std::string base_label, current_label;           // file names, as given
  std::string model, base_device, current_device;  // for names and notes
  std::vector<ConfigComparison> configs;           // in the current report's order
  std::vector<UnmatchedConfig> only_in_base;       // configurations the current report lacks
  std::vector<UnmatchedConfig> only_in_current;    // configurations the base lacks
  std::vector<std::string> notes;  // what differs between the two besides the runs (ceilings, device, ...)
  CompareOptions options;
  bool ceilings_differ = false;
  size_t count(Verdict v) const;
};

// Compares every configuration present in both. Without samples on either side (reports written
// before samples were kept), or with samples too few for the test to reach alpha, the verdict is
// decided on the medians alone and `test_note` says so. Throws std::runtime_error when nothing
// matches (naming what each report holds).
ReportComparison compare_reports(const Report& base, const Report& current, const CompareOptions& opt,
                                 const std::string& base_label, const std::string& current_label);

// The plain-text summary for a terminal: one table per comparison, then one line per regression.
std::string compare_text(const std::vector<ReportComparison>& comparisons);
// The same as GitHub-flavoured Markdown, for a pull-request comment.
std::string compare_markdown(const std::vector<ReportComparison>& comparisons);
// github-action-benchmark's `customSmallerIsBetter` input: one entry per configuration of each
// current report (matched or not), [{"name", "unit": "us", "value": median step time, "range":
// "± stddev" (when samples are kept), "extra": base median, change, p-value and verdict}]. Names
// are "<model> <configuration> (<device>)", with the current file's label added when there are several.
nlohmann::json github_benchmark_json(const std::vector<ReportComparison>& comparisons);

}  // namespace ridgeline
