// `ridgeline compare` and the statistics under it: the Mann-Whitney U test against scipy's published
// values and a brute-force enumeration, sample thinning, matching configurations, verdicts, the exit
// codes of the command, and the shapes of its Markdown and github-action-benchmark outputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

#include "analysis/compare.h"
#include "analysis/stats.h"
#include "analysis/timeline.h"
#include "engine/model_source.h"
#include "test_util.h"

using namespace ridgeline;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

namespace fs = std::filesystem;

const Ceilings kCeil{3000, 700, "measured", 2900, 3000};

// `n` step samples around `median`: uniform over median * [1 - spread, 1 + spread] from a fixed
// pseudo-random sequence (a different `seed` gives other samples), with the median exactly `median`.
std::vector<double> noisy_samples(double median, int n, double spread, uint32_t seed) {
  std::vector<double> v;
  uint32_t x = seed * 2654435761u + 12345u;
  for (int i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;  // LCG: plenty for test noise
    v.push_back(median * (1 + spread * (2.0 * (x >> 8) / double(1u << 24) - 1)));
  }
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  double m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  for (double& s : v) s *= median / m;  // scale so that the median is exactly `median`
  return v;
}

struct Config {
  int batch;
  double step_us;  // median step time
};

// A 1.8b decode report at context 1024: one run per config, each with `n` step samples within
// ±spread of its median, and every op at twice its roofline time.
Report make_report(const std::vector<Config>& configs, double spread, int n, uint32_t seed,
                   const Ceilings& ceil = kCeil, int context = 1024) {
  ModelConfig c = preset_config("internlm2-chat-1_8b");
  Report r;
  r.created = "2025-01-31T12:00:00Z";
  r.git_commit = "abc123";
  r.command = "ridgeline sweep";
  r.method = "graph replay";
  r.device = {"NVIDIA H200", "cuda", 132, int64_t(141) << 30, "580", "13.0", ceil,
              std::nullopt,  "",     "",  EnvironmentInfo{}};
  r.model = {c.name, true, c.params(), c};
  for (const auto& cfg : configs) {
    StepShape s{cfg.batch, {context}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}};
    std::map<std::string, std::vector<double>> ops;
    for (const auto& op : step_costs(c, s)) ops[op.name] = {2 * roofline_time_us(op.flops, op.bytes, ceil)};
    r.runs.push_back(
        build_run(c, s, ceil, noisy_samples(cfg.step_us, n, spread, seed + uint32_t(cfg.batch)), ops, "m"));
  }
  r.headline = build_headline(c, r.runs, ceil);
  return r;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::path(::testing::TempDir()) / ("rl_compare_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const json& j) const {
    std::ofstream(path / name) << j.dump();
    return (path / name).string();
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

test::CliResult compare_cli(const std::vector<std::string>& files, const std::string& flags = "") {
  std::string args = "compare";
  for (const auto& f : files) {  // appended piecewise: GCC 12 warns (-Wrestrict, falsely) on " " + s
    args += ' ';
    args += test::shell_quote(f);
  }
  args += ' ';
  args += flags;
  return test::run_cli(args);
}

const std::vector<Config> kBase = {{1, 2000}, {16, 2600}, {64, 4300}};

}  // namespace

TEST(MannWhitney, MatchesScipyOnItsDocumentedExample) {
  // scipy.stats.mannwhitneyu's documentation: males vs females, U = 17; exact p = 0.1111 (1/9), the
  // asymptotic p (continuity-corrected) 0.11134688653314041.
  std::vector<double> males{19, 22, 16, 29, 24}, females{20, 11, 17, 12};
  MannWhitney exact = mann_whitney_u(males, females);
  EXPECT_DOUBLE_EQ(exact.u, 17);
  EXPECT_TRUE(exact.exact);
  EXPECT_NEAR(exact.p, 1.0 / 9, 1e-15);
  MannWhitney normal = mann_whitney_u(males, females, UTestMethod::asymptotic);
  EXPECT_FALSE(normal.exact);
  EXPECT_NEAR(normal.p, 0.11134688653314041, 1e-14);
  // Swapping the samples gives the other U and the same two-sided p.
  MannWhitney swapped = mann_whitney_u(females, males);
  EXPECT_DOUBLE_EQ(swapped.u, 3);
  EXPECT_NEAR(swapped.p, exact.p, 1e-15);
}

TEST(MannWhitney, ExactPValueMatchesAnEnumerationOfEveryRankAssignment) {
  for (size_t m : {1u, 3u, 5u, 8u})
    for (size_t n : {2u, 6u, 9u}) {
      SCOPED_TRACE(fmt::format("m={} n={}", m, n));
      // Ranks 0..m+n-1; a is every m-subset in turn; U = pairs (a > b).
      std::vector<int> u_of_subset;
      std::vector<bool> pick(m + n, false);
      std::fill(pick.begin(), pick.begin() + std::ptrdiff_t(m), true);
      do {
        int u = 0, below = 0;
        for (size_t r = 0; r < m + n; ++r) {
          if (pick[r])
            u += below;
          else
            ++below;
        }
        u_of_subset.push_back(u);
      } while (std::prev_permutation(pick.begin(), pick.end()));
      // The observed samples: a takes ranks {1, 3, ..} (odd ones first), so U is somewhere mid-range.
      std::vector<double> a, b;
      for (size_t r = 0; r < m + n; ++r) (a.size() < m && r % 2 == 1 ? a : b).push_back(double(r) * 1.5);
      while (a.size() < m) {  // not enough odd ranks: move the largest of b
        a.push_back(b.back());
        b.pop_back();
      }
      MannWhitney t = mann_whitney_u(a, b);
      ASSERT_TRUE(t.exact);
      double u = t.u, lo = 0, hi = 0;
      for (int x : u_of_subset) {
        lo += x <= u;
        hi += x >= u;
      }
      double expected = std::min(1.0, 2 * std::min(lo, hi) / double(u_of_subset.size()));
      EXPECT_NEAR(t.p, expected, 1e-12);
    }
}

TEST(MannWhitney, NormalApproximationCorrectsForTies) {
  // Worked by hand: U = 35, tie groups of 2, 3, 3, 2, 3, 2, 2, 3 in 24 values, z = 2.11934, p = 0.034062.
  std::vector<double> a{1, 2, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9}, b{3, 4, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11};
  MannWhitney t = mann_whitney_u(a, b);
  EXPECT_FALSE(t.exact);  // ties: never exact
  EXPECT_DOUBLE_EQ(t.u, 35);
  EXPECT_NEAR(t.z, 2.1193414148822143, 1e-12);
  EXPECT_NEAR(t.p, 0.03406162402278277, 1e-12);
  // Every value the same: nothing to tell apart.
  EXPECT_EQ(mann_whitney_u({5, 5, 5, 5, 5, 5, 5, 5, 5}, {5, 5, 5, 5, 5, 5, 5, 5, 5}).p, 1);
  EXPECT_THROW(mann_whitney_u({}, {1, 2}), std::runtime_error);
  EXPECT_THROW(mann_whitney_u({1, NAN}, {1, 2}), std::runtime_error);
}

TEST(MannWhitney, SaysWhenSamplesAreTooFewToReachAlpha) {
  EXPECT_NEAR(mann_whitney_min_p(3, 3), 0.1, 1e-12);  // 2 / C(6, 3)
  EXPECT_NEAR(mann_whitney_min_p(4, 4), 2.0 / 70, 1e-12);
  EXPECT_NEAR(mann_whitney_min_p(1, 50), 2.0 / 51, 1e-12);
  EXPECT_LT(mann_whitney_min_p(200, 200), 1e-100);
  // The exact test does reach its minimum when the samples do not overlap at all.
  EXPECT_NEAR(mann_whitney_u({1, 2, 3, 4}, {5, 6, 7, 8}).p, 2.0 / 70, 1e-15);
}

TEST(Stats, MeanStddevAndEvenThinning) {
  EXPECT_DOUBLE_EQ(sample_mean({1, 2, 3, 4}), 2.5);
  EXPECT_DOUBLE_EQ(sample_stddev({2, 4, 4, 4, 5, 5, 7, 9}), std::sqrt(32.0 / 7));
  EXPECT_EQ(sample_stddev({3}), 0);
  std::vector<double> ten(10);
  std::iota(ten.begin(), ten.end(), 0.0);
  EXPECT_THAT(thin_evenly(ten, 4), ::testing::ElementsAre(0, 3, 6, 9));
  EXPECT_THAT(thin_evenly(ten, 3), ::testing::ElementsAre(0, 5, 9));  // 4.5 rounds away from zero
  EXPECT_EQ(thin_evenly(ten, 10), ten);
  EXPECT_EQ(thin_evenly(ten, 50), ten);
  EXPECT_THAT(thin_evenly(ten, 1), ::testing::ElementsAre(0));
}

TEST(Compare, IdenticalReportsExitZero) {
  TempDir dir;
  std::string base = dir.write("base.json", to_json(make_report(kBase, 0.01, 60, 1)));
  auto r = compare_cli({base, base});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 regressions, 0 improvements, 0 within the noise, 3 unchanged of 3"));
  EXPECT_THAT(r.out, HasSubstr("decode B=16 ctx=1024 fp16/fp16"));
  EXPECT_THAT(r.out, Not(HasSubstr("REGRESSION")));
  // Old reports (no samples) compare too, on their medians.
  std::string old = test::data_path("reports/cpu-tiny-run.json");
  auto o = compare_cli({old, old});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("no samples: significance not tested (6 configurations)"));
}

TEST(Compare, OneConfigurationTwentyPercentSlowerWithTightSamplesIsARegressionNamedByIt) {
  TempDir dir;
  std::string base = dir.write("base.json", to_json(make_report(kBase, 0.01, 60, 1)));
  std::vector<Config> slower = kBase;
  slower[1].step_us *= 1.2;  // B=16
  std::string now = dir.write("new.json", to_json(make_report(slower, 0.01, 60, 2)));
  auto r = compare_cli({base, now});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("REGRESSION internlm2-chat-1_8b decode B=16 ctx=1024 fp16/fp16: 2.600 ms -> "
                               "3.120 ms (+20.0%)"));
  EXPECT_THAT(r.out, Not(HasSubstr("REGRESSION internlm2-chat-1_8b decode B=1 ")));
  EXPECT_THAT(r.out, HasSubstr("1 regression, 0 improvements, 0 within the noise, 2 unchanged of 3"));
  // The other way round it is an improvement, and nothing fails.
  auto back = compare_cli({now, base});
  EXPECT_EQ(back.exit_code, 0) << back.out;
  EXPECT_THAT(back.out, HasSubstr("0 regressions, 1 improvement,"));
}

// 3% slower is significant by the samples (p ~0.001-0.02), but under the 5% threshold: unchanged,
// not noise (that verdict is the next test's), and nothing fails.
TEST(Compare, ThreePercentIsUnderTheThresholdUnchangedAndExitsZero) {
  TempDir dir;
  std::string base = dir.write("base.json", to_json(make_report(kBase, 0.10, 60, 1)));
  std::vector<Config> slower = kBase;
  for (auto& c : slower) c.step_us *= 1.03;
  std::string now = dir.write("new.json", to_json(make_report(slower, 0.10, 60, 7)));
  auto r = compare_cli({base, now});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("+3.0%"));
  EXPECT_THAT(r.out, HasSubstr("0 regressions, 0 improvements, 0 within the noise, 3 unchanged of 3"));
}

TEST(Compare, ASlowdownBeyondTheThresholdThatTheSamplesDoNotSupportIsNoise) {
  // 8% slower medians, but samples spread over ±40%: the U test cannot tell them apart.
  Report base = make_report(kBase, 0.40, 20, 1);
  std::vector<Config> slower = kBase;
  for (auto& c : slower) c.step_us *= 1.08;
  Report now = make_report(slower, 0.40, 20, 3);
  ReportComparison c = compare_reports(base, now, {}, "base.json", "new.json");
  ASSERT_EQ(c.configs.size(), 3u);
  for (const auto& cfg : c.configs) {
    ASSERT_TRUE(cfg.test.has_value());
    EXPECT_GT(cfg.test->p, 0.05);
    EXPECT_NEAR(cfg.time_change, 0.08, 1e-12);
    EXPECT_EQ(cfg.verdict, Verdict::noise);
  }
  EXPECT_EQ(c.count(Verdict::regression), 0u);
  // With a tighter threshold nothing changes: it is the test that says no.
  EXPECT_EQ(compare_reports(base, now, {0.01, 0.05}, "b", "n").count(Verdict::regression), 0u);
}

TEST(Compare, WithoutSamplesOrWithTooFewTheMediansDecideAndTheOutputSaysSo) {
  Report base = make_report(kBase, 0.01, 3, 1);
  std::vector<Config> slower = kBase;
  slower[0].step_us *= 1.2;
  Report now = make_report(slower, 0.01, 3, 2);
  ReportComparison few = compare_reports(base, now, {}, "b", "n");
  EXPECT_FALSE(few.configs[0].test.has_value());
  EXPECT_THAT(few.configs[0].test_note, HasSubstr("too few samples for the test (3 and 3"));
  EXPECT_EQ(few.configs[0].verdict, Verdict::regression);
  EXPECT_THAT(compare_text({few}),
              HasSubstr("too few samples for the test (3 and 3: no outcome can reach p < "
                        "0.05, the smallest possible p is 0.1); decided on the medians "
                        "(3 configurations)"));
  for (auto& run : base.runs) run.step.samples_us.clear();
  ReportComparison none = compare_reports(base, now, {}, "b", "n");
  EXPECT_EQ(none.configs[0].test_note, "no samples in the base: significance not tested");
  EXPECT_EQ(none.configs[0].verdict, Verdict::regression);
  EXPECT_EQ(none.configs[1].verdict, Verdict::unchanged);
  EXPECT_THAT(compare_markdown({none}), HasSubstr("no samples in the base: significance not tested"));
}

TEST(Compare, AnotherSchemaUnreadableOrInvalidInputExitsTwo) {
  TempDir dir;
  json j = to_json(make_report(kBase, 0.01, 20, 1));
  std::string base = dir.write("base.json", j);
  json other = j;
  other["schema"] = "ridgeline.report.v2";
  auto r = compare_cli({base, dir.write("v2.json", other)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("v2.json: schema 'ridgeline.report.v2' is not 'ridgeline.report.v1'"));
  auto missing = compare_cli({base, (dir.path / "nope.json").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.json: cannot open the report"));
  std::ofstream(dir.path / "text.json") << "not json";
  auto text = compare_cli({(dir.path / "text.json").string(), base});
  EXPECT_EQ(text.exit_code, 2);
  EXPECT_THAT(text.err, HasSubstr("text.json: not JSON"));
  json invalid = j;
  invalid["runs"][0]["step"]["tokens_per_s"] = 1.0;
  auto bad = compare_cli({base, dir.write("invalid.json", invalid)});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("invalid.json: not a valid ridgeline.report.v1 report"));
  auto one = compare_cli({base});
  EXPECT_EQ(one.exit_code, 2);
  EXPECT_THAT(one.err, HasSubstr("expected a base report and at least one new report"));
  EXPECT_EQ(compare_cli({base, base}, "--threshold -1").exit_code, 2);
}

TEST(Compare, NoMatchingConfigurationExitsTwo) {
  TempDir dir;
  std::string base = dir.write("base.json", to_json(make_report(kBase, 0.01, 20, 1)));
  std::string other = dir.write("ctx2048.json", to_json(make_report(kBase, 0.01, 20, 1, kCeil, 2048)));
  auto r = compare_cli({base, other});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no configuration of"));
  EXPECT_THAT(r.err, HasSubstr("the base has decode B=1 ctx=1024 fp16/fp16"));
  EXPECT_THAT(r.err, HasSubstr("the new report has decode B=1 ctx=2048 fp16/fp16"));
}

TEST(Compare, ReportsAgainstDifferentCeilingsStillCompareAndSaySo) {
  Report base = make_report(kBase, 0.01, 30, 1);
  Ceilings other{4800, 989, "datasheet"};
  Report now = make_report(kBase, 0.01, 30, 2, other);
  now.git_commit = "def456";
  ReportComparison c = compare_reports(base, now, {}, "base.json", "new.json");
  EXPECT_TRUE(c.ceilings_differ);
  EXPECT_EQ(c.count(Verdict::regression), 0u);
  std::string text = compare_text({c});
  EXPECT_THAT(text, HasSubstr("note: measured against different ceilings: base 3000 GB/s, 700 TFLOP/s "
                              "(measured), new 4800 GB/s, 989 TFLOP/s (datasheet)"));
  EXPECT_THAT(text, HasSubstr("note: commits: base abc123, new def456"));
  // Matching ignores the ceilings; only the model, phase, batch, context and formats count.
  EXPECT_EQ(c.configs.size(), 3u);
  EXPECT_TRUE(c.only_in_base.empty());
}

// An H100 sweep against the committed H200 baselines showed every configuration slower (the thirty-second
// session's baselines script did exactly that): the card, not the code. Reports of two devices are
// refused (exit 2, naming both) unless --across-devices asks for the comparison, which then says so.
TEST(Compare, ReportsOfTwoDevicesAreRefusedUnlessAskedFor) {
  TempDir dir;
  Report h200 = make_report(kBase, 0.01, 60, 1);
  std::vector<Config> slower = kBase;
  for (Config& c : slower) c.step_us *= 1.4;
  Report h100 = make_report(slower, 0.01, 60, 2, Ceilings{3081, 798, "measured"});
  h100.device.name = "NVIDIA H100 80GB HBM3";
  try {
    compare_reports(h200, h100, {}, "base.json", "new.json");
    ADD_FAILURE() << "reports of two devices compared without --across-devices";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("base.json was measured on NVIDIA H200 (cuda) and new.json on NVIDIA "
                                    "H100 80GB HBM3 (cuda)"));
    EXPECT_THAT(e.what(), HasSubstr("pass --across-devices"));
  }
  CompareOptions across;
  across.across_devices = true;
  ReportComparison c = compare_reports(h200, h100, across, "base.json", "new.json");
  EXPECT_EQ(c.count(Verdict::regression), 3u);
  EXPECT_THAT(compare_text({c}), HasSubstr("note: different devices (--across-devices): base NVIDIA H200 "
                                           "(cuda), new NVIDIA H100 80GB HBM3 (cuda)"));
  // The backend counts too: a CPU run is not a slow GPU run.
  Report cpu = make_report(kBase, 0.01, 60, 3);
  cpu.device.backend = "cpu";
  EXPECT_THROW(compare_reports(h200, cpu, {}, "b", "n"), std::runtime_error);

  const std::string base = dir.write("base.json", to_json(h200)), now = dir.write("new.json", to_json(h100));
  auto refused = compare_cli({base, now});
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("step times of two devices differ by the device"));
  EXPECT_THAT(refused.out, Not(HasSubstr("REGRESSION")));
  auto asked = compare_cli({base, now}, "--across-devices");
  EXPECT_EQ(asked.exit_code, 1) << asked.err;
  EXPECT_THAT(asked.out, HasSubstr("different devices (--across-devices)"));
}

TEST(Compare, PoolsARepeatedConfigurationAndListsTheUnmatched) {
  Report base = make_report(kBase, 0.01, 30, 1);
  Report now = make_report({{1, 2000}, {1, 2100}, {256, 9000}}, 0.01, 30, 2);
  ReportComparison c = compare_reports(base, now, {}, "base.json", "new.json");
  ASSERT_EQ(c.configs.size(), 1u);
  EXPECT_EQ(c.configs[0].current.runs, 2);
  EXPECT_EQ(c.configs[0].current.samples_us.size(), 60u);
  EXPECT_GT(c.configs[0].current.median_us, 2000);
  EXPECT_LT(c.configs[0].current.median_us, 2100);
  ASSERT_EQ(c.only_in_base.size(), 2u);
  ASSERT_EQ(c.only_in_current.size(), 1u);
  EXPECT_EQ(config_label(c.only_in_current[0].key), "decode B=256 ctx=1024 fp16/fp16");
  EXPECT_THAT(compare_text({c}), HasSubstr("only in the base: decode B=16 ctx=1024 fp16/fp16, decode B=64 "
                                           "ctx=1024 fp16/fp16"));
}

TEST(Compare, WritesMarkdownAndGithubBenchmarkJson) {
  TempDir dir;
  std::string base = dir.write("base.json", to_json(make_report(kBase, 0.01, 60, 1)));
  std::vector<Config> slower = kBase;
  slower[2].step_us *= 1.25;  // B=64
  std::string now = dir.write("new.json", to_json(make_report(slower, 0.01, 60, 2)));
  fs::path md = dir.path / "diff.md", gb = dir.path / "bench.json";
  auto r = compare_cli({base, now}, "--md " + test::shell_quote(md.string()) + " --github-benchmark " +
                                        test::shell_quote(gb.string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::string m = slurp(md);
  EXPECT_THAT(m, HasSubstr("## ridgeline compare: `" + now + "` against `" + base + "`"));
  EXPECT_THAT(m, HasSubstr("**1 regression** (slower by more than 5.0% and significant at alpha 0.05)"));
  EXPECT_THAT(m, HasSubstr("| configuration | base | new | change | tokens/s base | tokens/s new | p-value | "
                           "verdict |\n| --- | ---: |"));
  EXPECT_THAT(m, HasSubstr("| decode B=64 ctx=1024 fp16/fp16 | 4.300 ms | 5.375 ms | +25.0% |"));
  EXPECT_THAT(m, HasSubstr("| **REGRESSION** |"));
  EXPECT_THAT(
      m, HasSubstr(
             "Regressions:\n\n- internlm2-chat-1_8b decode B=64 ctx=1024 fp16/fp16: 4.300 ms -> 5.375 ms"));
  json j = test::load_json(gb.string());
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  for (const auto& e : j) {
    EXPECT_TRUE(e["name"].is_string());
    EXPECT_EQ(e["unit"], "us");
    EXPECT_TRUE(e["value"].is_number());
    EXPECT_TRUE(e["range"].is_string());
    EXPECT_TRUE(e["extra"].is_string());
    for (const auto& [key, value] : e.items())
      EXPECT_THAT((std::vector<std::string>{"name", "unit", "value", "range", "extra"}),
                  ::testing::Contains(key));
  }
  EXPECT_EQ(j[2]["name"], "internlm2-chat-1_8b decode B=64 ctx=1024 fp16/fp16 (NVIDIA H200)");
  EXPECT_NEAR(j[2]["value"].get<double>(), 4300 * 1.25, 1e-9);
  EXPECT_THAT(j[2]["range"].get<std::string>(), HasSubstr("± "));
  EXPECT_THAT(j[2]["extra"].get<std::string>(), HasSubstr("base 4.300 ms (+25.0%), p = "));
  EXPECT_THAT(j[2]["extra"].get<std::string>(), HasSubstr("; REGRESSION"));
  // Two new reports: each entry names its file.
  auto two = compare_cli({base, base, now}, "--github-benchmark " + test::shell_quote(gb.string()));
  EXPECT_EQ(two.exit_code, 1);
  json both = test::load_json(gb.string());
  ASSERT_EQ(both.size(), 6u);
  EXPECT_THAT(both[0]["name"].get<std::string>(), HasSubstr("[" + base + "]"));
  EXPECT_THAT(both[5]["name"].get<std::string>(), HasSubstr("[" + now + "]"));
}

TEST(Compare, TimelinesOnBothSidesNameTheKernelsThatMovedTheStep) {
  Report base = make_report(kBase, 0.01, 60, 1), now = make_report(kBase, 0.01, 60, 2);
  // B=16 recorded in both: the GEMV's advance grew by 30 us, attention's shrank by 5, a new kernel
  // appeared; B=1 only in the base, B=64 in neither.
  base.runs[1].timeline = summarize_timeline({{"attn", 0, 10}, {"gemv", 8, 40}, {"gemv", 39, 50}});
  now.runs[1].timeline =
      summarize_timeline({{"attn", 0, 5}, {"gemv", 4, 66}, {"gemv", 65, 75}, {"argmax", 74, 77}});
  base.runs[0].timeline = summarize_timeline({{"attn", 0, 10}});
  const ReportComparison c = compare_reports(base, now, {}, "base.json", "new.json");
  ASSERT_EQ(c.configs.size(), 3u);
  EXPECT_TRUE(c.configs[0].kernels.empty());  // only the base has a timeline at B=1
  EXPECT_TRUE(c.configs[2].kernels.empty());
  const auto& k = c.configs[1].kernels;
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[0].name, "gemv");  // 40 -> 70
  EXPECT_DOUBLE_EQ(k[0].change_us(), 30.0);
  EXPECT_EQ(k[0].base_launches, 2);
  EXPECT_EQ(k[1].name, "attn");  // 10 -> 5
  EXPECT_DOUBLE_EQ(k[1].change_us(), -5.0);
  EXPECT_EQ(k[2].name, "argmax");  // absent -> 2
  EXPECT_EQ(k[2].base_launches, 0);
  EXPECT_DOUBLE_EQ(k[2].change_us(), 2.0);
  double sum = 0;
  for (const KernelChange& x : k) sum += x.change_us();
  EXPECT_DOUBLE_EQ(sum, now.runs[1].timeline->span_us - base.runs[1].timeline->span_us);

  const std::string md = compare_markdown({c});
  EXPECT_THAT(md, HasSubstr("### Kernels that moved the step"));
  EXPECT_THAT(md, HasSubstr("**decode B=16 ctx=1024 fp16/fp16** (50.00 µs → 77.00 µs)"));
  EXPECT_THAT(md, HasSubstr("| gemv | 2 → 2 | 40.00 µs | 70.00 µs | +30.00 µs |"));
  EXPECT_THAT(md, HasSubstr("| argmax | 0 → 1 | 0 µs | 2.000 µs | +2.00 µs |"));
  EXPECT_THAT(compare_text({c}),
              HasSubstr("timeline decode B=16 ctx=1024 fp16/fp16: gemv +30.00 us, attn -5.00 us"));
  // Without timelines on both sides there is no such section.
  EXPECT_THAT(compare_markdown({compare_reports(make_report(kBase, 0.01, 60, 1), now, {}, "a", "b")}),
              Not(HasSubstr("Kernels that moved")));
}
