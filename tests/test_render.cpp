// Rendered reports: the Markdown and HTML of a real CPU sweep (tests/data/reports/cpu-tiny-run.json),
// the SVG charts (well-formed, finite, points inside the plot, roofs where the ceilings put them),
// formats side by side, skipped configurations, and `ridgeline report` on good and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "analysis/ceilings.h"
#include "analysis/render_html.h"
#include "analysis/render_markdown.h"
#include "analysis/report_set.h"
#include "analysis/report_view.h"
#include "analysis/svg_roofline.h"
#include "engine/formats.h"
#include "engine/model_source.h"
#include "test_util.h"

using namespace ridgeline;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

namespace fs = std::filesystem;

std::string cpu_report_path() {
  return test::data_path("reports/cpu-tiny-run.json");
}

ReportView cpu_view() {
  return load_report_view(cpu_report_path());
}

// Tags open and close in nesting order (self-closing ones aside); no '<' or '>' inside a tag's
// attribute values; processing instructions and comments skipped. Enough to catch a broken writer.
::testing::AssertionResult well_formed_xml(const std::string& s) {
  std::vector<std::string> open;
  size_t i = 0;
  while ((i = s.find('<', i)) != std::string::npos) {
    size_t end = s.find('>', i);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed '<' at " << i;
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return ::testing::AssertionFailure() << "'<' inside tag: " << tag;
    i = end + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return ::testing::AssertionFailure()
               << "</" << name << "> closes <" << (open.empty() ? "" : open.back()) << ">";
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;
    open.push_back(tag.substr(0, tag.find_first_of(" \n\t")));
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> never closed";
  return ::testing::AssertionSuccess();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

std::vector<std::pair<double, double>> point_centres(const std::string& svg) {
  std::vector<std::pair<double, double>> out;
  std::regex re(R"re(class="point" transform="translate\(([^,]+),([^)]+)\)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
  return out;
}

// Every numeric attribute (coordinates, sizes, polyline points, translations) parses as a finite number.
void expect_finite_coordinates(const std::string& svg) {
  EXPECT_THAT(svg, Not(HasSubstr("nan")));
  EXPECT_THAT(svg, Not(HasSubstr("inf\"")));
  std::regex attr(R"re(\s(x|y|x1|y1|x2|y2|cx|cy|r|width|height)="([^"]*)")re");
  size_t checked = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attr); it != std::sregex_iterator(); ++it) {
    std::string v = (*it)[2];
    size_t used = 0;
    double d = std::stod(v, &used);
    EXPECT_EQ(used, v.size()) << (*it)[0];
    EXPECT_TRUE(std::isfinite(d)) << (*it)[0];
    ++checked;
  }
  EXPECT_GT(checked, 20u);
  std::regex pts(R"re(points="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), pts); it != std::sregex_iterator(); ++it) {
    std::string list = (*it)[1];
    std::regex num(R"([-0-9.]+)");
    for (auto n = std::sregex_iterator(list.begin(), list.end(), num); n != std::sregex_iterator(); ++n)
      EXPECT_TRUE(std::isfinite(std::stod((*n)[0]))) << list;
  }
}

struct Line {
  double x1, y1, x2, y2;
};

Line find_line(const std::string& svg, const std::string& cls) {
  std::regex re("class=\"" + cls + R"re(" x1="([^"]+)" y1="([^"]+)" x2="([^"]+)" y2="([^"]+)")re");
  std::smatch m;
  if (!std::regex_search(svg, m, re)) throw std::runtime_error("no line of class " + cls);
  return {std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4])};
}

// A roofline chart of the CPU report's steps, as a test builds it (report_charts keeps its own).
RooflineChart steps_chart(const Report& r) {
  RooflineChart c;
  c.title = "steps";
  c.ceilings = r.device.peak;
  for (const auto& run : r.runs)
    c.points.push_back({run.step.point.arithmetic_intensity, run.step.point.achieved_tflops,
                        "B=" + std::to_string(run.batch), "", "#123456", Marker::circle});
  return c;
}

ModelConfig internlm2_1_8b() {
  return preset_config("internlm2-chat-1_8b");
}

// A GPU-like report in three formats whose step times are chosen, so that tokens/s and speedups
// are known: w4a16 steps take 40% of the fp16 time, int8-KV steps 80%. The w4a16 runs come first,
// so the baseline has to be found, not assumed to lead.
// The header of a GPU-like 1.8b report whose runs a test adds (build_run against `ceil`).
Report h100_report(const ModelConfig& c, const Ceilings& ceil, const std::string& command) {
  Report r;
  r.created = "2025-01-31T12:00:00Z";
  r.git_commit = "abc123";
  r.command = command;
  r.method = "graph replay";
  r.device.name = "NVIDIA H100 80GB HBM3";
  r.device.backend = "cuda";
  r.device.sm_count = 132;
  r.device.memory_bytes = int64_t(80) << 30;
  r.device.driver = "580";
  r.device.cuda = "13.0";
  r.device.peak = ceil;
  r.device.datasheet = datasheet_for("NVIDIA H100 80GB HBM3");
  r.model = {c.name, true, c.params(), c};
  return r;
}

json three_format_report() {
  ModelConfig c = internlm2_1_8b();
  Ceilings ceil{3000, 700, "measured", 2900, 3000};
  Report r = h100_report(c, ceil, "ridgeline sweep --weights w4a16,fp16 --kv fp16,int8");
  struct Fmt {
    WeightFormat w;
    KvFormat k;
    double time_scale;
  };
  for (Fmt f : {Fmt{WeightFormat::w4a16, KvFormat::fp16, 0.4}, Fmt{WeightFormat::fp16, KvFormat::fp16, 1.0},
                Fmt{WeightFormat::fp16, KvFormat::int8, 0.8}})
    for (int batch : {1, 16}) {
      StepShape s{batch, {1024}, 1, Formats{f.w, 128, f.k}};
      std::map<std::string, std::vector<double>> ops;
      for (const auto& op : step_costs(c, s)) ops[op.name] = {2 * roofline_time_us(op.flops, op.bytes, ceil)};
      double step = 2000.0 * batch * f.time_scale;  // fp16: 500 tokens/s at every batch
      r.runs.push_back(build_run(c, s, ceil, {0.9 * step, step, 1.1 * step}, ops, "per-op replay"));
    }
  r.headline = build_headline(c, r.runs, ceil);
  return to_json(r);
}

}  // namespace

TEST(ReportView, FormatsNumbersForReading) {
  EXPECT_EQ(format_sig(0.0015619327, 3), "0.00156");
  EXPECT_EQ(format_sig(9.996, 3), "10.0");
  EXPECT_EQ(format_sig(12345.6, 3), "12346");
  EXPECT_EQ(format_sig(2.068069529855982, 3), "2.07");
  EXPECT_EQ(format_sig(NAN, 3), "n/a");
  EXPECT_EQ(format_time_us(16925.82), "16.93 ms");
  EXPECT_EQ(format_time_us(850.31), "850.3 µs");
  EXPECT_EQ(format_time_us(1.5e6), "1.500 s");
  EXPECT_EQ(format_percent(0.17165567718821745), "17.2%");
  EXPECT_EQ(format_percent(0.00026), "0.026%");
  EXPECT_EQ(format_count(12456448), "12.5 M");
  EXPECT_EQ(format_bytes(25276063744.0), "23.5 GiB");
}

TEST(RenderMarkdown, ShowsHeaderHeadlineAndEveryRunOfTheCpuReport) {
  ReportView v = cpu_view();
  ASSERT_EQ(v.report.runs.size(), 6u);
  MarkdownReport md = render_markdown(v, "cpu");
  const std::string& m = md.markdown;
  EXPECT_THAT(m, HasSubstr("# ridgeline report: tiny-internlm2-chat on AMD EPYC\n"));
  EXPECT_THAT(m, HasSubstr("12.5 M parameters, checkpoint weights"));
  EXPECT_THAT(m, HasSubstr("- **Peaks (measured)**: 8.765 GB/s, 0.00914 TFLOP/s"));
  EXPECT_THAT(m, HasSubstr("- **Ridge**: 1.04 FLOP/B"));
  EXPECT_THAT(m, HasSubstr("- **Command**: `ridgeline sweep --out /tmp/run.json`"));
  EXPECT_THAT(m, HasSubstr("- **Git commit**: 545424277c38"));
  EXPECT_THAT(m, HasSubstr("- **Date**: 2026-11-24T16:39:51Z"));
  EXPECT_THAT(m, HasSubstr("- **Datasheet**: none for this device"));
  // Headline: measured beside predicted, per context.
  EXPECT_THAT(m, HasSubstr("- fp16 weights + fp16 KV, context 256: decode turns compute-bound at B≈2.07 "
                           "measured; the cost model predicts B≈1.01 (GEMMs alone: B≈1.02 measured, B≈1.05 "
                           "predicted); batches measured: 1, 4, 16."));
  EXPECT_THAT(m, HasSubstr("| fp16 | fp16 | 1024 | 1, 4, 16 | 1.46 | 0.896 | 1.09 | 1.05 |"));
  // Every run has its row; two checked cell by cell.
  EXPECT_THAT(m,
              HasSubstr("| 1 | 256 | fp16 | fp16 | 16.93 ms (8.367–17.23) | 59.1 | 1.50 | 17.2% | 0.00156 | "
                        "17.1% | 17.2% | memory | 29.7% | 3.017 ms |"));
  EXPECT_THAT(
      m, HasSubstr("| 16 | 1024 | fp16 | fp16 | 232.2 ms (228.0–242.0) | 68.9 | 0.405 | 4.6% | 0.00226 | "
                   "24.7% | 24.7% | compute | 103.9% | 57.41 ms |"));
  for (const auto& run : v.report.runs)
    EXPECT_THAT(m, HasSubstr(fmt::format("| {} | {} | fp16 | fp16 | {} (", run.batch, run.context,
                                         format_time_us(run.step.time_us.median))));
  // One format only: nothing to put side by side.
  EXPECT_THAT(m, Not(HasSubstr("## Formats side by side")));
  // Top ops of the smallest and largest batch at the largest context; per-kind tables for every run.
  EXPECT_THAT(m, HasSubstr("### B=1, context 1024, fp16 weights + fp16 KV\n\n| op | kind | time |"));
  EXPECT_THAT(m, HasSubstr("| layers.1.attention | attention | 36.23 ms | 15.6% |"));
  EXPECT_EQ(count(m, "| kind | ops | time | share of op time |"), 6u);
  EXPECT_THAT(m, HasSubstr("| gemm | 17 | 4.248 ms | 84.6% | 5.72 | 65.3% |"));
  EXPECT_THAT(m, HasSubstr("## Skipped configurations\n\nNone: every configuration of the sweep ran."));
  // Charts written beside, and linked.
  std::vector<std::string> names;
  for (const auto& c : md.charts) names.push_back(c.name);
  EXPECT_THAT(names, ::testing::ElementsAre("cpu-roofline-ctx256.svg", "cpu-roofline-ctx1024.svg",
                                            "cpu-kinds.svg", "cpu-throughput.svg"));
  for (const auto& n : names) EXPECT_THAT(m, HasSubstr("](" + n + ")"));
  // Without a place for files the charts are left out, and the text says how to get them.
  MarkdownReport bare = render_markdown(v, "");
  EXPECT_TRUE(bare.charts.empty());
  EXPECT_THAT(bare.markdown, HasSubstr("-o report.html"));
  EXPECT_THAT(bare.markdown, Not(HasSubstr(".svg)")));
}

TEST(RenderHtml, IsOneSelfContainedFileWithTheSameNumbersAndInlineSvg) {
  ReportView v = cpu_view();
  std::string h = render_html(v);
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(h, HasSubstr("<meta charset=\"utf-8\">"));
  EXPECT_THAT(h, HasSubstr("<td class=\"num\">16.93 ms (8.367–17.23)</td><td class=\"num\">59.1</td>"));
  EXPECT_THAT(h, HasSubstr("<td class=\"num\">232.2 ms (228.0–242.0)</td><td class=\"num\">68.9</td>"));
  EXPECT_THAT(h, HasSubstr("decode turns compute-bound at B≈1.46 measured; the cost model predicts B≈0.896"));
  EXPECT_EQ(count(h, "<tr><td class=\"num\">"), 6u);  // the runs table's rows (the others lead with text)
  // Four charts inline; nothing fetched from elsewhere, no script.
  EXPECT_EQ(count(h, "<svg "), 4u);
  EXPECT_EQ(count(h, "</svg>"), 4u);
  EXPECT_THAT(h, Not(HasSubstr("<script")));
  EXPECT_THAT(h, Not(HasSubstr("src=")));
  EXPECT_THAT(h, Not(HasSubstr("href=")));
  EXPECT_THAT(h, Not(HasSubstr("@import")));
  EXPECT_EQ(count(h, "<details>"), 6u);
  EXPECT_TRUE(well_formed_xml(h.substr(h.find("<body>"), h.find("</body>") + 7 - h.find("<body>"))));
}

TEST(SvgRoofline, ReportChartsAreWellFormedWithFiniteCoordinatesAndPointsInsideThePlot) {
  ReportView v = cpu_view();
  auto charts = report_charts(v.report);
  ASSERT_EQ(charts.size(), 4u);
  size_t points = 0;
  for (const auto& c : charts) {
    SCOPED_TRACE(c.slug);
    EXPECT_EQ(count(c.svg, "<svg "), 1u);
    EXPECT_EQ(count(c.svg, "</svg>"), 1u);
    EXPECT_TRUE(well_formed_xml(c.svg));
    expect_finite_coordinates(c.svg);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        c.svg, m,
        std::regex(R"re(class="plot-area" x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)")re")));
    double x0 = std::stod(m[1]), y0 = std::stod(m[2]), x1 = x0 + std::stod(m[3]), y1 = y0 + std::stod(m[4]);
    auto centres = point_centres(c.svg);
    EXPECT_FALSE(centres.empty());
    for (auto [x, y] : centres) {
      EXPECT_GE(x, x0);
      EXPECT_LE(x, x1);
      EXPECT_GE(y, y0);
      EXPECT_LE(y, y1);
    }
    points += centres.size();
  }
  // 3 steps per context chart; 5 kinds (embed has no FLOPs) x 2 runs; 6 throughput points.
  EXPECT_EQ(points, 3u + 3u + 10u + 6u);
  EXPECT_THAT(charts[2].svg, HasSubstr("Not drawn (a zero value has no place on a log axis): embed"));
}

TEST(SvgRoofline, PointsSitAtTheirIntensityAndThroughput) {
  ReportView v = cpu_view();
  RooflineChart chart = steps_chart(v.report);
  PlotArea a = roofline_area(chart);
  std::string svg = roofline_svg(chart);
  auto centres = point_centres(svg);
  ASSERT_EQ(centres.size(), v.report.runs.size());
  for (size_t i = 0; i < centres.size(); ++i) {
    auto [x, y] = centres[i];
    EXPECT_TRUE(a.contains(x, y));
    // 0.1 px of rounding is well under 0.1% of a decade here.
    EXPECT_NEAR(a.x.from_px(x) / chart.points[i].x, 1.0, 2e-3);
    EXPECT_NEAR(a.y.from_px(y) / chart.points[i].y, 1.0, 2e-3);
  }
  // The axes hold the ridge, the compute roof and every point, and the ends are 1, 2 or 5 x 10^k.
  EXPECT_LE(a.x.lo, chart.ceilings.ridge() / 10);
  EXPECT_GE(a.y.hi, chart.ceilings.peak_tflops);
  for (double end : {a.x.lo, a.x.hi, a.y.lo, a.y.hi}) {
    double mant = end / std::pow(10.0, std::floor(std::log10(end) + 1e-9));
    EXPECT_TRUE(std::abs(mant - 1) < 1e-9 || std::abs(mant - 2) < 1e-9 || std::abs(mant - 5) < 1e-9) << end;
  }
}

TEST(SvgRoofline, MemoryRoofPassesThroughTheRidgeAtPeakCompute) {
  for (Ceilings ceil : {cpu_view().report.device.peak, Ceilings{3350, 989, "datasheet"}}) {
    SCOPED_TRACE(ceil.peak_GBps);
    RooflineChart chart;
    chart.title = "roofs";
    chart.ceilings = ceil;
    chart.points = {{0.5, ceil.peak_tflops / 1e4, "a", "", "#000", Marker::square},
                    {2000, ceil.peak_tflops / 3, "b", "", "#000", Marker::diamond}};
    PlotArea a = roofline_area(chart);
    std::string svg = roofline_svg(chart);
    EXPECT_TRUE(well_formed_xml(svg));
    Line mem = find_line(svg, "roof-memory");
    Line comp = find_line(svg, "roof-compute");
    Line ridge = find_line(svg, "ridge");
    double rx = a.x.to_px(ceil.ridge()), ry = a.y.to_px(ceil.peak_tflops);
    // The memory roof ends at (ridge, peak TFLOP/s), where the flat compute roof starts.
    EXPECT_NEAR(mem.x2, rx, 0.06);
    EXPECT_NEAR(mem.y2, ry, 0.06);
    EXPECT_NEAR(comp.x1, rx, 0.06);
    EXPECT_NEAR(comp.y1, ry, 0.06);
    EXPECT_NEAR(comp.y2, ry, 0.06);
    EXPECT_NEAR(comp.x2, a.right, 0.06);
    EXPECT_NEAR(ridge.x1, rx, 0.06);
    EXPECT_NEAR(ridge.x2, rx, 0.06);
    // Its other end is on the line TFLOP/s = GB/s x intensity / 1000, at the edge of the plot.
    double x_start = a.x.from_px(mem.x1), y_start = a.y.from_px(mem.y1);
    EXPECT_NEAR(y_start / (ceil.peak_GBps * x_start / 1e3), 1.0, 3e-3);
    EXPECT_TRUE(std::abs(mem.x1 - a.left) < 0.06 || std::abs(mem.y1 - a.bottom) < 0.06);
    EXPECT_LT(mem.x1, mem.x2);
    EXPECT_GT(mem.y1, mem.y2);  // rising: SVG's y grows downwards
  }
}

TEST(SvgRoofline, LogAxisRoundsOutToNiceValuesAndKeepsAPowerOfTen) {
  LogAxis a = log_axis(0.0016, 0.0091, 100, 500);
  EXPECT_DOUBLE_EQ(a.lo, 0.001);
  EXPECT_DOUBLE_EQ(a.hi, 0.01);
  EXPECT_DOUBLE_EQ(a.to_px(0.001), 100);
  EXPECT_DOUBLE_EQ(a.to_px(0.01), 500);
  EXPECT_NEAR(a.to_px(std::sqrt(0.001 * 0.01)), 300, 1e-9);
  EXPECT_NEAR(a.from_px(300), std::sqrt(0.001 * 0.01), 1e-15);
  LogAxis b = log_axis(2.2, 20235, 0, 1);
  EXPECT_DOUBLE_EQ(b.lo, 2);
  EXPECT_DOUBLE_EQ(b.hi, 50000);
  LogAxis c = log_axis(30, 40, 0, 1);  // [20, 50] holds no power of ten: widened to the nearer one
  EXPECT_DOUBLE_EQ(c.lo, 10);
  EXPECT_DOUBLE_EQ(c.hi, 50);
  LogAxis d = log_axis(70, 70, 0, 1);  // one value: still an axis of some length
  EXPECT_LT(d.lo, 70);
  EXPECT_GT(d.hi, 70);
  EXPECT_THROW(log_axis(0, 1, 0, 1), std::runtime_error);
}

TEST(ReportView, PutsFormatsSideBySideWithSpeedupsOverFp16) {
  ReportView v = read_report_view(three_format_report(), "three.json");
  auto formats = report_formats(v.report);
  ASSERT_EQ(formats.size(), 3u);
  EXPECT_EQ(formats[0].label(), "fp16 weights + fp16 KV");
  EXPECT_EQ(formats[1].label(), "w4a16 weights + fp16 KV");
  auto t = format_comparison_table(v.report);
  ASSERT_TRUE(t.has_value());
  EXPECT_THAT(t->header, ::testing::ElementsAre("B", "context", "fp16 weights + fp16 KV tokens/s",
                                                "w4a16 weights + fp16 KV tokens/s", "speedup",
                                                "fp16 weights + int8 KV tokens/s", "speedup"));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_THAT(t->rows[0], ::testing::ElementsAre("1", "1024", "500", "1250", "2.50×", "625", "1.25×"));
  EXPECT_THAT(t->rows[1], ::testing::ElementsAre("16", "1024", "500", "1250", "2.50×", "625", "1.25×"));
  std::string m = render_markdown(v, "g").markdown;
  EXPECT_THAT(m, HasSubstr("## Formats side by side"));
  EXPECT_THAT(m,
              HasSubstr("- w4a16 weights + fp16 KV against fp16 weights + fp16 KV: from 2.50× the tokens/s"));
  EXPECT_THAT(m, HasSubstr("| 1 | 1024 | 500 | 1250 | 2.50× | 625 | 1.25× |"));
  EXPECT_THAT(m, HasSubstr("- **Datasheet**: H100 SXM: 3350 GB/s, 989 TFLOP/s"));
  // Top ops for each format's smallest and largest batch.
  EXPECT_EQ(focus_runs(v.report).size(), 6u);
  EXPECT_EQ(count(m, "| op | kind | time | share of step |"), 6u);
  EXPECT_THAT(render_html(v), HasSubstr("<h2>Formats side by side</h2>"));
}

// fp16 KV with RoPE fused into wqkv against int8 KV, which runs rope_kv_write as its own launch and
// a slower attention at B=1 (as the H200 sweeps measure), but is faster at B=16.
json kv_shortfall_report() {
  ModelConfig c = internlm2_1_8b();
  Ceilings ceil{3000, 700, "measured", 2900, 3000};
  Report r = h100_report(c, ceil, "ridgeline sweep --kv fp16,int8");
  for (KvFormat kv : {KvFormat::fp16, KvFormat::int8})
    for (int batch : {1, 16}) {
      StepShape s{batch, {1024}, 1, Formats{WeightFormat::fp16, 128, kv}};
      s.fusions.rope_in_wqkv = kv == KvFormat::fp16;
      std::map<std::string, std::vector<double>> ops;
      for (const auto& op : step_costs(c, s)) {
        const std::string type = op.name.substr(op.name.rfind('.') + 1);
        double us = 10.0;
        if (type == "rope_kv_write") us = 3.0;
        if (type == "attention" && kv == KvFormat::int8) us = batch == 1 ? 12.0 : 6.0;
        if (type == "wqkv" && kv == KvFormat::int8) us = 9.5;
        ops[op.name] = {us};
      }
      const bool int8 = kv == KvFormat::int8;
      const double step = batch == 1 ? (int8 ? 1300.0 : 1200.0) : (int8 ? 1500.0 : 1600.0);
      r.runs.push_back(build_run(c, s, ceil, {step, step, step}, ops, "per-op replay"));
    }
  // A 512-token prefill in each format: int8's takes 4.4 instead of 4.0 ms, its attention 24 x 10 us
  // more.
  for (KvFormat kv : {KvFormat::fp16, KvFormat::int8}) {
    StepShape s{1, {512}, 512, Formats{WeightFormat::fp16, 128, kv}};
    std::map<std::string, std::vector<double>> ops;
    for (const auto& op : step_costs(c, s)) {
      const bool attention = op.name.substr(op.name.rfind('.') + 1) == "attention";
      ops[op.name] = {attention && kv == KvFormat::int8 ? 30.0 : 20.0};
    }
    const double ttft = kv == KvFormat::int8 ? 4400.0 : 4000.0;
    r.runs.push_back(build_run(c, s, ceil, {ttft, ttft, ttft}, ops, "per-op replay"));
  }
  return to_json(r);
}

TEST(ReportView, SaysWhereAFormatDoesNotPayAndWhichOpsCost) {
  ReportView v = read_report_view(kv_shortfall_report(), "kv.json");
  auto s = format_shortfall_sentences(v.report);
  // B=1 only: int8 is slower there (1300 against 1200 us) and faster at B=16 (1500 against 1600).
  ASSERT_EQ(s.size(), 1u);
  EXPECT_THAT(s[0], HasSubstr("B=1, context 1024: fp16 weights + int8 KV runs 0.92× the tokens/s of fp16 "
                              "weights + fp16 KV (step 1.300 ms against 1.200 ms)"));
  // 24 layers: rope_kv_write 24 x 3 us that the base fuses away, attention 24 x 2 us more, wqkv
  // 24 x 0.5 us less.
  EXPECT_THAT(s[0], HasSubstr("more time in rope_kv_write +72.00 µs (24 ops the base does not run), "
                              "attention +48.00 µs"));
  EXPECT_THAT(s[0], HasSubstr("less in wqkv −12.00 µs"));
  std::string m = render_markdown(v, "g").markdown;
  EXPECT_THAT(m, HasSubstr("### Where a format does not pay"));
  EXPECT_THAT(m, HasSubstr("- " + s[0]));
  EXPECT_THAT(render_html(v), HasSubstr("<h3>Where a format does not pay</h3>"));
  // The prefills, against the fp16 prefill at the same prompt length.
  auto p = prefill_shortfall_sentences(v.report);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0],
            "B=1, 512-token prompt: fp16 weights + int8 KV runs 0.91× the prompt tokens/s of fp16 weights + "
            "fp16 KV (TTFT 4.400 ms against 4.000 ms); more time in attention +240.0 µs.");
  EXPECT_THAT(m, HasSubstr("- " + p[0]));
  EXPECT_EQ(count(m, "### Where a format does not pay"), 2u);
  // Each section names its own base: fp16/fp16 for the prompts, the table's first format for decode.
  EXPECT_THAT(m, HasSubstr("Each configuration where a format runs fewer prompt tokens/s than fp16 weights + "
                           "fp16 KV at the same batch and prompt: its time"));
  EXPECT_THAT(m, HasSubstr("Each configuration where a format runs fewer tokens/s than the table's first "
                           "format at the same batch and context: its time"));
  // A report of prefills alone has no decode rows to put side by side: no empty table.
  json prefills = kv_shortfall_report();
  json& runs = prefills["runs"];
  runs.erase(
      std::remove_if(runs.begin(), runs.end(), [](const json& x) { return x["new_tokens_per_seq"] == 1; }),
      runs.end());
  ReportView only = read_report_view(prefills, "prefills.json");
  EXPECT_FALSE(format_comparison_table(only.report).has_value());
  const std::string pm = render_markdown(only, "g").markdown;
  EXPECT_THAT(pm, Not(HasSubstr("## Formats side by side")));
  EXPECT_THAT(pm, HasSubstr("- " + p[0]));
  // Where every format pays, no section.
  ReportView three = read_report_view(three_format_report(), "three.json");
  EXPECT_TRUE(format_shortfall_sentences(three.report).empty());
  EXPECT_THAT(render_markdown(three, "g").markdown, Not(HasSubstr("does not pay")));
}

TEST(ReportView, SaysQuantizedFormatsAreSimulatedOnlyForCpuReportsThatHaveThem) {
  const std::string note = "simulated on the CPU";
  json gpu = three_format_report();
  EXPECT_THAT(render_markdown(read_report_view(gpu, "g.json"), "g").markdown, Not(HasSubstr(note)));
  json cpu = gpu;
  cpu["device"]["backend"] = "cpu";
  const std::string m = render_markdown(read_report_view(cpu, "c.json"), "c").markdown;
  EXPECT_THAT(m, HasSubstr("- **Quantized formats**: " + note));
  EXPECT_THAT(render_html(read_report_view(cpu, "c.json")), HasSubstr(note));
  // The plain CPU report (fp16 weights and KV only) has nothing simulated to warn about.
  EXPECT_THAT(render_markdown(cpu_view(), "cpu").markdown, Not(HasSubstr(note)));
}

TEST(ReportView, RendersSkippedConfigurationsAndRejectsMalformedOnes) {
  json j = test::load_json(cpu_report_path());
  j["skipped"] = json::array({{{"batch", 256},
                               {"context", 4096},
                               {"weights", "w4a16"},
                               {"kv", "int8"},
                               {"reason", "KV cache needs 96 GiB | more than the <free> 80 GiB"}}});
  ReportView v = read_report_view(j, "s.json");
  ASSERT_EQ(v.skipped.size(), 1u);
  EXPECT_THAT(
      render_markdown(v, "").markdown,
      HasSubstr("| 256 | 4096 | w4a16 | int8 | KV cache needs 96 GiB \\| more than the &lt;free> 80 GiB |"));
  EXPECT_THAT(render_html(v),
              HasSubstr("<td>KV cache needs 96 GiB | more than the &lt;free&gt; 80 GiB</td>"));
  j["skipped"][0].erase("reason");
  try {
    read_report_view(j, "s.json");
    FAIL() << "a skipped entry without a reason was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("s.json: $.skipped[0].reason: expected a string"));
  }
}

TEST(ReportCli, WritesMarkdownWithItsChartsAndHtml) {
  fs::path dir = fs::path(::testing::TempDir()) / ("rl_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string in = test::shell_quote(cpu_report_path());
  auto md = test::run_cli("report " + in + " -o " + test::shell_quote((dir / "rep.md").string()));
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(fs::exists(dir / "rep.md"));
  for (const char* svg :
       {"rep-roofline-ctx256.svg", "rep-roofline-ctx1024.svg", "rep-kinds.svg", "rep-throughput.svg"})
    EXPECT_TRUE(fs::exists(dir / svg)) << svg;
  auto html = test::run_cli("report " + in + " --out=" + test::shell_quote((dir / "rep.html").string()));
  ASSERT_EQ(html.exit_code, 0) << html.err;
  std::ifstream f(dir / "rep.html");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(count(text, "<svg "), 4u);
  auto out = test::run_cli("report " + in);
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out.rfind("# ridgeline report: tiny-internlm2-chat on AMD EPYC\n", 0), 0u);
  auto bad_ext = test::run_cli("report " + in + " -o " + test::shell_quote((dir / "rep.pdf").string()));
  EXPECT_EQ(bad_ext.exit_code, 2);
  EXPECT_THAT(bad_ext.err, HasSubstr("-o expects a .md or .html file name"));
  fs::remove_all(dir);
}

TEST(ReportCli, RefusesAMissingFileNonJsonAndAnInvalidReportWithOneClearLine) {
  fs::path dir = fs::path(::testing::TempDir()) / ("rl_report_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);

  auto missing = test::run_cli("report " + test::shell_quote((dir / "nope.json").string()));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("nope.json: cannot open the report"));

  std::ofstream(dir / "text.json") << "not json at all";
  auto text = test::run_cli("report " + test::shell_quote((dir / "text.json").string()));
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_THAT(text.err, HasSubstr("text.json: not JSON"));

  json j = test::load_json(cpu_report_path());
  j["runs"][0]["step"].erase("bytes");
  j["runs"][2]["step"]["tokens_per_s"] = 1e6;
  std::ofstream(dir / "invalid.json") << j.dump();
  auto invalid = test::run_cli("report " + test::shell_quote((dir / "invalid.json").string()) + " -o " +
                               test::shell_quote((dir / "r.md").string()));
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.err, HasSubstr("invalid.json: not a valid ridgeline.report.v1 report"));
  EXPECT_THAT(invalid.err, HasSubstr("$.runs[0].step.bytes: missing"));
  EXPECT_THAT(invalid.err, HasSubstr("$.runs[2].step.tokens_per_s"));
  EXPECT_EQ(count(invalid.err, "\n"), 1u) << invalid.err;
  EXPECT_FALSE(fs::exists(dir / "r.md"));
  fs::remove_all(dir);
}

namespace {

// The CPU report measured again: 30% slower, with samples kept, on a machine with 1.5x the memory
// bandwidth. Built by build_run from the first report's own op times, so it is a valid report.
json slower_cpu_report() {
  Report r = cpu_view().report;
  Ceilings ceil = r.device.peak;
  ceil.peak_GBps *= 1.5;
  ceil.copy_GBps *= 1.5;
  for (auto& run : r.runs) {
    StepShape s{run.batch,
                {run.context},
                run.new_tokens_per_seq,
                Formats{parse_weight_format(run.weights), run.group_size, parse_kv_format(run.kv)}};
    std::map<std::string, std::vector<double>> ops;
    for (const auto& op : run.ops) {
      double t = 1.3 * op.point.time_us;
      ops[op.name] = {0.95 * t, t, 1.05 * t};
    }
    double m = 1.3 * run.step.time_us.median;
    run = build_run(r.model.config, s, ceil, {0.97 * m, m, 1.02 * m, 1.01 * m, 0.99 * m}, ops, run.method);
  }
  r.device.peak = ceil;
  r.git_commit = "fedcba987654";
  r.headline = build_headline(r.model.config, r.runs, ceil);
  return to_json(r);
}

ReportSet cpu_pair() {
  return make_report_set({cpu_view(), read_report_view(slower_cpu_report(), "slower.json")},
                         {"cpu-tiny-run", "slower"});
}

std::vector<std::string> chart_svgs(const std::string& html) {
  std::vector<std::string> out;
  for (size_t i = html.find("<svg "); i != std::string::npos; i = html.find("<svg ", i + 1))
    out.push_back(html.substr(i, html.find("</svg>", i) + 6 - i));
  return out;
}

// Runs chromium headless (the flags a machine without network needs) with `args`; its stderr is kept.
// Returns nullopt when chromium is not installed.
std::optional<test::CliResult> chromium(const fs::path& profile, const std::string& args) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0) return std::nullopt;
  fs::path out = profile.parent_path() / "chromium.out", err = profile.parent_path() / "chromium.err";
  std::string cmd =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      test::shell_quote(profile.string()) + " --enable-logging=stderr --v=0 " + args + " > " +
      test::shell_quote(out.string()) + " 2> " + test::shell_quote(err.string());
  int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  test::CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace

TEST(RenderSet, PutsTwoCpuSweepsSideBySide) {
  ReportSet s = cpu_pair();
  auto runs = report_set_runs_table(s);
  EXPECT_THAT(runs.header,
              ::testing::ElementsAre("configuration", "cpu-tiny-run step (p10–p90)", "cpu-tiny-run tokens/s",
                                     "slower step (p10–p90)", "slower tokens/s", "slower vs cpu-tiny-run"));
  ASSERT_EQ(runs.rows.size(), 6u);
  EXPECT_THAT(runs.rows[0], ::testing::ElementsAre("decode B=1 ctx=256 fp16/fp16", "16.93 ms (8.367–17.23)",
                                                   "59.1", "22.00 ms (21.52–22.36)", "45.4", "+30.0%"));
  auto kinds = report_set_kind_summary_table(s);
  ASSERT_FALSE(kinds.rows.empty());
  EXPECT_THAT(kinds.rows[0], ::testing::ElementsAre("embed", "+30.0% (+30.0% to +30.0%, 6 configurations)"));
  EXPECT_EQ(report_set_kinds_table(s).rows.size(), 6u * 6);  // 6 configurations x 6 kinds
  auto notes = report_set_notes(s);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("slower was measured against other ceilings than cpu-tiny-run"));

  std::string h = render_html(s);
  EXPECT_TRUE(well_formed_xml(h.substr(h.find("<body>"), h.find("</body>") + 7 - h.find("<body>"))));
  EXPECT_THAT(h, Not(HasSubstr("<script")));
  auto svgs = chart_svgs(h);
  ASSERT_EQ(svgs.size(), 3u);  // a roofline per context (256, 1024) and tokens/s against batch
  for (const auto& svg : svgs) {
    EXPECT_TRUE(well_formed_xml(svg));
    expect_finite_coordinates(svg);
  }
  // Each roofline holds both reports' three steps at its context, each report in its own colour and
  // marker, and the second report's roofs, dashed.
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(point_centres(svgs[c]).size(), 6u);
    EXPECT_EQ(count(svgs[c], "<circle r=\"4.2\" fill=\"#1f77b4\""), 3u + 1);  // + its legend entry
    EXPECT_EQ(count(svgs[c], "<rect x=\"-3.8\" y=\"-3.8\" width=\"7.6\" height=\"7.6\" fill=\"#d62728\""),
              3u + 2);  // + the legend entries for the report and for its roofs
    EXPECT_EQ(count(svgs[c], "class=\"roof-memory-overlay\""), 1u);
    EXPECT_EQ(count(svgs[c], "class=\"roof-compute-overlay\""), 1u);
    EXPECT_THAT(svgs[c], HasSubstr(">slower roofs</text>"));
  }
  // The overlaid compute roof is at the same TFLOP/s (only the bandwidth changed), its ridge 1.5x lower.
  Line mem = find_line(svgs[0], "roof-memory"), over = find_line(svgs[0], "roof-memory-overlay");
  EXPECT_NEAR(over.y2, mem.y2, 0.06);
  EXPECT_LT(over.x2, mem.x2);
  EXPECT_EQ(point_centres(svgs[2]).size(), 12u);  // 2 reports x 2 contexts x 3 batches
  EXPECT_THAT(h, HasSubstr("<h2>Per-kind deltas against cpu-tiny-run</h2>"));

  std::string m = render_markdown(s, "cmp").markdown;
  EXPECT_THAT(m, HasSubstr("# ridgeline reports side by side: cpu-tiny-run, slower\n"));
  EXPECT_THAT(m, HasSubstr("| decode B=16 ctx=1024 fp16/fp16 | 232.2 ms (228.0–242.0) | 68.9 | 301.9 ms"));
  EXPECT_THAT(m, HasSubstr("![Roofline of each step, context 256](cmp-roofline-ctx256.svg)"));
}

TEST(ReportCli, RendersSeveralReportsSideBySideAndOneAsBefore) {
  fs::path dir = fs::path(::testing::TempDir()) / ("rl_report_set_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "slower.json") << slower_cpu_report().dump();
  std::string files =
      test::shell_quote(cpu_report_path()) + " " + test::shell_quote((dir / "slower.json").string());
  auto html = test::run_cli("report " + files + " -o " + test::shell_quote((dir / "cmp.html").string()));
  ASSERT_EQ(html.exit_code, 0) << html.err;
  std::ifstream f(dir / "cmp.html");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, render_html(cpu_pair()));
  auto md = test::run_cli("report " + files + " -o " + test::shell_quote((dir / "cmp.md").string()));
  ASSERT_EQ(md.exit_code, 0) << md.err;
  for (const char* svg : {"cmp-roofline-ctx256.svg", "cmp-roofline-ctx1024.svg", "cmp-throughput.svg"})
    EXPECT_TRUE(fs::exists(dir / svg)) << svg;
  auto out = test::run_cli("report " + files);
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out.rfind("# ridgeline reports side by side: cpu-tiny-run, slower\n", 0), 0u);
  auto none = test::run_cli("report");
  EXPECT_EQ(none.exit_code, 2);
  fs::remove_all(dir);
}

// The multi-run HTML in a real browser: it loads without a console message, and the browser builds
// every chart point as an SVG element inside its plot. A copy of the report gets a script that counts
// them into the title (the report itself has none), then chromium --dump-dom hands the title back.
TEST(RenderSetInChromium, LoadsWithoutConsoleErrorsAndDrawsEveryPoint) {
  fs::path dir = fs::path(::testing::TempDir()) / ("rl_chromium_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string html = render_html(cpu_pair());
  const std::string probe = R"(<script>
(function () {
  var svgs = document.querySelectorAll("figure svg"), counts = [], outside = 0, notsvg = 0;
  svgs.forEach(function (svg) {
    var plot = svg.querySelector("rect.plot-area").getBoundingClientRect();
    var points = svg.querySelectorAll("g.point");
    counts.push(points.length);
    points.forEach(function (g) {
      if (!(g instanceof SVGGElement)) notsvg++;
      var b = g.getBoundingClientRect(), cx = (b.left + b.right) / 2, cy = (b.top + b.bottom) / 2;
      if (!(b.width > 0) || cx < plot.left || cx > plot.right || cy < plot.top || cy > plot.bottom) outside++;
    });
  });
  document.title = "charts=" + svgs.length + ";points=" + counts.join(",") + ";outside=" + outside +
                   ";notsvg=" + notsvg;
  console.info("ridgeline-probe-done");
})();
</script>
)";
  std::string probed = html;
  probed.insert(probed.rfind("</body>"), probe);
  std::ofstream(dir / "cmp.html") << html;
  std::ofstream(dir / "probed.html") << probed;
  auto r = chromium(dir / "profile",
                    "--dump-dom " + test::shell_quote("file://" + (dir / "probed.html").string()));
  if (!r) GTEST_SKIP() << "chromium not installed (Debian package 'chromium'; scripts/setup.sh installs it)";
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("<title>charts=3;points=6,6,12;outside=0;notsvg=0</title>"));
  // Console messages reach stderr as "...:CONSOLE...] "text", source: ..."; the probe's own line shows
  // that they are captured, and must be the only one.
  std::vector<std::string> console;
  std::istringstream lines(r->err);
  for (std::string line; std::getline(lines, line);)
    if (line.find(":CONSOLE") != std::string::npos) console.push_back(line);
  ASSERT_EQ(console.size(), 1u) << r->err;
  EXPECT_THAT(console[0], HasSubstr("\"ridgeline-probe-done\""));
  // A screenshot of the report itself, as a reader sees it.
  fs::path png = dir / "cmp.png";
  auto shot = chromium(dir / "profile-shot", "--hide-scrollbars --window-size=1280,3000 --screenshot=" +
                                                 test::shell_quote(png.string()) + " " +
                                                 test::shell_quote("file://" + (dir / "cmp.html").string()));
  ASSERT_TRUE(shot.has_value());
  ASSERT_EQ(shot->exit_code, 0) << shot->err;
  std::ifstream f(png, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  EXPECT_GT(fs::file_size(png), 50'000u);  // a page of tables and charts, not a blank one
  if (!std::getenv("RIDGELINE_KEEP_SCREENSHOT")) fs::remove_all(dir);
}
