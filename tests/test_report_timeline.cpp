// A run's optional per-kernel timeline (`sweep --timeline`): absent from CPU sweeps, written and read
// back whole, validated (advances add up to the span, launches to the kernel count, no negative
// advance), and rendered as the kernels by the step time they add, in Markdown and HTML.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "analysis/render_html.h"
#include "analysis/render_markdown.h"
#include "analysis/report.h"
#include "analysis/report_view.h"
#include "analysis/timeline.h"
#include "test_util.h"
#include "tiny_sweep.h"

using namespace ridgeline;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// The tiny model on the CPU, one decode configuration: a real report, measured once per process.
json tiny_report() {
  static const json report = [] {
    DeviceInfo device;
    device.name = "some CPU";
    device.backend = "cpu";
    device.peak = measured_ceilings(10, 10, 0.1);
    SweepSpec spec;
    spec.batches = {1};
    spec.contexts = {16};
    spec.iters = 2;
    spec.warmup = 0;
    return test::tiny_cpu_sweep(spec, device);
  }();
  return report;
}

// A step of four launches: attention overlapped by the GEMV after it, which adds the most.
TimelineSummary a_step() {
  return summarize_timeline({{"decode_attention_kernel<128, 2, 16>", 0.0, 6.0},
                             {"gemv_tc_kernel<1, (TcEpilogue)0>", 4.0, 15.0},
                             {"add_rmsnorm_kernel<1>", 14.0, 17.0},
                             {"gemv_tc_kernel<1, (TcEpilogue)0>", 16.5, 20.0}});
}

json with_timeline() {
  Report r = report_from_json(tiny_report());
  r.runs.at(0).timeline = a_step();
  return to_json(r);
}

}  // namespace

TEST(ReportTimeline, ACpuSweepRecordsNone) {
  const json j = tiny_report();
  ASSERT_FALSE(j["runs"].empty());
  for (const json& run : j["runs"]) EXPECT_FALSE(run.contains("timeline"));
  EXPECT_THAT(render_markdown(read_report_view(j, "cpu.json"), "").markdown,
              Not(HasSubstr("overlapped step's time goes")));
}

TEST(ReportTimeline, RoundTripsAndValidates) {
  const json j = with_timeline();
  EXPECT_THAT(validate_report(j), ::testing::IsEmpty());
  const json& t = j["runs"][0]["timeline"];
  EXPECT_DOUBLE_EQ(t["span_us"].get<double>(), 20.0);
  EXPECT_EQ(t["kernel_count"], 4);
  ASSERT_EQ(t["kernels"].size(), 3u);
  EXPECT_EQ(t["kernels"][1]["launches"], 2);
  EXPECT_DOUBLE_EQ(t["kernels"][1]["advance_us"].get<double>(), 9.0 + 3.0);  // 15 - 6, then 20 - 17
  EXPECT_EQ(to_json(report_from_json(j)), j);
}

TEST(ReportTimeline, TheValidatorChecksTheSumsAndSigns) {
  json j = with_timeline();
  json bad = j;
  bad["runs"][0]["timeline"]["kernels"][0]["advance_us"] = 5.0;  // was 6: the advances no longer add up
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("timeline.span_us")));
  bad = j;
  bad["runs"][0]["timeline"]["kernel_count"] = 5;
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("timeline.kernel_count")));
  bad = j;
  bad["runs"][0]["timeline"]["summed_us"] = 1.0;  // a reader recomputes it from the kernels
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("timeline.summed_us")));
  bad = j;
  bad["runs"][0]["timeline"]["kernels"][2]["advance_us"] = -2.0;
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("is negative")));
  bad = j;
  bad["runs"][0]["timeline"]["busy_us"] = 25.0;
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("exceeds the span")));
  bad = j;
  bad["runs"][0]["timeline"]["kernels"][0].erase("launches");
  EXPECT_THAT(validate_report(bad), ::testing::Contains(HasSubstr("launches: missing")));
}

TEST(ReportTimeline, RenderingListsTheKernelsByTheTimeTheyAdd) {
  const ReportView v = read_report_view(with_timeline(), "timeline.json");
  const std::string md = render_markdown(v, "").markdown;
  EXPECT_THAT(md, HasSubstr("## Where the overlapped step's time goes"));
  EXPECT_THAT(md, HasSubstr("4 kernels in 20.00 µs"));
  // The GEMV (12 us over two launches) before attention (6) before the norm (2).
  const size_t gemv = md.find("| gemv_tc_kernel&lt;1, (TcEpilogue)0> | 2 |");
  const size_t attention = md.find("| decode_attention_kernel&lt;128, 2, 16> | 1 |");
  const size_t norm = md.find("| add_rmsnorm_kernel&lt;1> | 1 |");
  ASSERT_NE(gemv, std::string::npos) << md;
  ASSERT_NE(attention, std::string::npos);
  ASSERT_NE(norm, std::string::npos);
  EXPECT_LT(gemv, attention);
  EXPECT_LT(attention, norm);
  EXPECT_THAT(md, HasSubstr("| -1.25 µs |"));  // the GEMV's mean lead: (4 - 6 + 16.5 - 17) / 2
  const std::string html = render_html(v);
  EXPECT_THAT(html, HasSubstr("Where the overlapped step's time goes"));
  EXPECT_THAT(html, HasSubstr("add_rmsnorm_kernel&lt;1&gt;"));
}

TEST(ReportTimeline, SweepTimelineOnTheCpuIsRefusedBeforeMeasuring) {
  // The CPU backend has no kernels to record: --timeline there is a usage error, said before any
  // measuring, rather than a sweep that runs and then says its runs have no timeline.
  const std::string out = ::testing::TempDir() + "/timeline.json";
  std::filesystem::remove(out);
  auto r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() +
                         " --batch 1 --context 16 --iters 1 --warmup 0 --timeline --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(
      r.err, HasSubstr("--timeline records the kernels a GPU ran (CUDA, CUPTI); this sweep runs on the CPU"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // nothing measured first
  EXPECT_FALSE(std::filesystem::exists(out));
}
