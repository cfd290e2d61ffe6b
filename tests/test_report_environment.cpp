// What a report records beside its runs (issue 11): the machine's environment in `device`, where the
// peaks came from (`sweep --ceilings FILE`), runs pooled over repetitions, and the prefill runs
// rendered beside decode: each written, read back, validated and rendered.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "analysis/render_html.h"
#include "analysis/render_markdown.h"
#include "analysis/report.h"
#include "analysis/report_view.h"
#include "analysis/svg_roofline.h"
#include "bench/sweep/sweep.h"
#include "engine/cpu_backend.h"
#include "test_util.h"
#include "tiny_sweep.h"

using namespace ridgeline;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

DeviceInfo h200_like() {
  DeviceInfo d;
  d.name = "NVIDIA H200";
  d.backend = "cuda";
  d.sm_count = 132;
  d.memory_bytes = int64_t(141) << 30;
  d.driver = "13.0";
  d.cuda = "13.0";
  d.peak = measured_ceilings(4200, 4600, 780);
  d.ceilings_file = "bench/ceilings/h200.json";
  d.ceilings_created = "2026-11-30T13:49:27Z";
  EnvironmentInfo& e = d.env;
  e.host_cpu = "Intel(R) Xeon(R) Platinum 8480+";
  e.compiler = "GNU 12.2.0";
  e.cuda_compiler = "NVIDIA 13.0.88";
  e.uuid = "GPU-5f3c0e4a-1b2c-3d4e-5f60-718293a4b5c6";
  e.cublas = "13.1.0";
  e.nvidia_driver = "580.95.05";
  e.sm_clock_mhz = 1980;
  e.sm_clock_max_mhz = 1980;
  e.memory_clock_mhz = 3201;
  e.memory_clock_max_mhz = 3201;
  e.power_limit_w = 700;
  e.ecc = "on";
  return d;
}

// A small real report: the tiny model on the CPU, decode and a 32-token prefill at batch 1 and 2,
// two repetitions, with the H200-like device section above. Measured once per process.
json tiny_report() {
  static const json report = [] {
    SweepSpec spec;
    spec.batches = {1, 2};
    spec.contexts = {32};
    spec.phases = {Phase::decode, Phase::prefill};
    spec.prompt_lens = {32};
    spec.repeat = 2;
    spec.iters = 2;
    spec.warmup = 0;
    return test::tiny_cpu_sweep(spec, h200_like());
  }();
  return report;
}

}  // namespace

TEST(ReportEnvironment, DeviceEnvironmentAndCeilingsFileRoundTripAndValidate) {
  const DeviceInfo d = h200_like();
  json j = device_to_json(d);
  EXPECT_EQ(j["nvidia_driver"], "580.95.05");
  EXPECT_EQ(j["clocks_MHz"]["sm"], 1980);
  EXPECT_EQ(j["power_limit_W"], 700.0);
  EXPECT_EQ(j["ecc"], "on");
  EXPECT_EQ(j["peak"]["file"], "bench/ceilings/h200.json");
  const DeviceInfo back = device_from_json(j, "$.device");
  EXPECT_EQ(back.env.uuid, d.env.uuid);
  EXPECT_EQ(back.env.memory_clock_max_mhz, 3201);
  EXPECT_EQ(back.env.cuda_compiler, "NVIDIA 13.0.88");
  EXPECT_EQ(back.ceilings_created, d.ceilings_created);
  EXPECT_EQ(device_to_json(back), j);

  // Unknown fields are left out rather than written empty: a CPU report has none of the GPU's.
  DeviceInfo cpu;
  cpu.name = "some CPU";
  cpu.backend = "cpu";
  cpu.peak = measured_ceilings(10, 10, 0.1);
  cpu.env.host_cpu = "some CPU";
  json c = device_to_json(cpu);
  EXPECT_FALSE(c.contains("clocks_MHz") || c.contains("ecc") || c.contains("uuid") ||
               c["peak"].contains("file"));
  EXPECT_EQ(c["host_cpu"], "some CPU");
}

TEST(ReportEnvironment, TheValidatorChecksTheOptionalFieldsWherePresent) {
  json j = tiny_report();
  ASSERT_EQ(validate_report(j), std::vector<std::string>{});
  json bad = j;
  bad["device"]["ecc"] = "maybe";
  bad["device"]["clocks_MHz"]["sm"] = "fast";
  bad["device"]["power_limit_W"] = -1;
  bad["device"]["peak"]["file"] = 3;
  bad["runs"][0]["repeats"] = 0;
  const auto problems = validate_report(bad);
  const std::string all = ::testing::PrintToString(problems);
  EXPECT_THAT(all, HasSubstr("$.device.ecc: 'maybe' is not one of 'on', 'off'"));
  EXPECT_THAT(all, HasSubstr("$.device.clocks_MHz.sm: expected an integer"));
  EXPECT_THAT(all, HasSubstr("$.device.power_limit_W: must be positive"));
  EXPECT_THAT(all, HasSubstr("$.device.peak.file: expected a string"));
  EXPECT_THAT(all, HasSubstr("$.runs[0].repeats: 0 is below the minimum 1"));
  EXPECT_EQ(problems.size(), 5u);
}

TEST(ReportEnvironment, RenderingNamesTheEnvironmentTheCeilingsFileAndThePooledRepetitions) {
  ReportView v = read_report_view(tiny_report(), "env.json");
  const std::string html = render_html(v);
  EXPECT_THAT(html, HasSubstr("NVIDIA driver 580.95.05"));
  EXPECT_THAT(html, HasSubstr("SM clock 1980 MHz (max 1980 MHz), memory clock 3201 MHz (max 3201 MHz), power "
                              "limit 700 W, ECC on, GPU-5f3c0e4a"));
  EXPECT_THAT(html, HasSubstr("built with GNU 12.2.0; nvcc NVIDIA 13.0.88; cuBLAS 13.1.0; host CPU Intel"));
  EXPECT_THAT(html, HasSubstr("read from bench/ceilings/h200.json (probed 2026-11-30T13:49:27Z)"));
  EXPECT_THAT(html, HasSubstr("pools the samples of up to 2 interleaved repetitions"));
  EXPECT_THAT(html, Not(HasSubstr("interrupted")));
}

TEST(ReportEnvironment, PrefillRunsGetTheirTableAndShareTheRooflineOfTheirContextWithDecode) {
  ReportView v = read_report_view(tiny_report(), "prefill.json");
  const std::string html = render_html(v);
  EXPECT_THAT(html, HasSubstr("<h2>Prefill</h2>"));
  EXPECT_THAT(html, HasSubstr("TTFT median (p10–p90)"));
  const auto t = prefill_table(v.report);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[1][0], "2");   // B
  EXPECT_EQ(t->rows[1][1], "32");  // prompt tokens
  // One roofline for context 32 with both: decode circles labelled B=..., prefill squares P32 B=...
  const auto charts = report_charts(v.report);
  ASSERT_FALSE(charts.empty());
  EXPECT_EQ(charts[0].title, "Roofline of each decode step and prefill, context 32");
  EXPECT_THAT(charts[0].svg, HasSubstr(">P32 B=2<"));
  EXPECT_THAT(charts[0].svg, HasSubstr(">B=2<"));
  EXPECT_THAT(charts[0].svg, HasSubstr("prefill (TTFT)"));
  const std::string md = render_markdown(v, "").markdown;
  EXPECT_THAT(md, HasSubstr("## Prefill"));
}

TEST(ReportEnvironment, AnInterruptedSweepSaysSoAndFailedConfigurationsAreMarked) {
  json j = tiny_report();
  j["interrupted"] = true;
  j["skipped"] = json::array({{{"batch", 64},
                               {"context", 512},
                               {"weights", "fp16"},
                               {"kv", "fp16"},
                               {"reason", "CUDA error: out of memory"},
                               {"phase", "prefill"},
                               {"failed", true}}});
  ReportView v = read_report_view(j, "i.json");
  EXPECT_TRUE(v.interrupted);
  const std::string html = render_html(v);
  EXPECT_THAT(html, HasSubstr("This sweep was interrupted"));
  EXPECT_THAT(html, HasSubstr("<td class=\"num\">prefill of 512</td>"));
  EXPECT_THAT(html, HasSubstr("<td>failed: CUDA error: out of memory</td>"));
  j["skipped"][0]["phase"] = "decoding";
  EXPECT_THROW(read_report_view(j, "i.json"), std::runtime_error);
}
