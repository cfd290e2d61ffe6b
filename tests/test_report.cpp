// The report: building runs from measured times, the validator, the JSON round trip, the headline
// ridge batches, and the device ceilings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "analysis/ceilings.h"
#include "analysis/report.h"
#include "bench/probe/probe.h"
#include "engine/model_source.h"
#include "test_util.h"

using namespace ridgeline;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

ModelConfig internlm2_1_8b() {
  return preset_config("internlm2-chat-1_8b");
}

const Ceilings kCeil{3000, 700, "measured", 2900, 3000};

// Synthetic measurements: each op at 80% of its roofline (GEMMs) or 50% (the rest), the step 10%
// slower than its ops (launch gaps).
std::map<std::string, double> synthetic_op_times(const ModelConfig& c, const StepShape& s) {
  std::map<std::string, double> t;
  for (const auto& op : step_costs(c, s))
    t[op.name] = roofline_time_us(op.flops, op.bytes, kCeil) / (op.kind == "gemm" ? 0.8 : 0.5);
  return t;
}

// `n` (odd) samples spread evenly over median * [1 - spread/2, 1 + spread/2], interleaved rather than
// sorted (as a real run's are); the middle one is exactly `median`, so the median is too.
std::vector<double> samples_around(double median, int n, double spread) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    int j = (i * 7) % n;  // a fixed permutation of 0..n-1 (n is not a multiple of 7 here)
    v.push_back(median * (1 + spread * (j - (n - 1) / 2) / double(n - 1)));
  }
  return v;
}

// Five samples per op around each synthetic time.
std::map<std::string, std::vector<double>> op_samples(const std::map<std::string, double>& times) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, t] : times) out[name] = samples_around(t, 5, 0.2);
  return out;
}

double sum_of(const std::map<std::string, double>& times) {
  double sum = 0;
  for (const auto& [name, t] : times) sum += t;
  return sum;
}

RunRecord synthetic_run(const ModelConfig& c, const StepShape& s) {
  auto ops = synthetic_op_times(c, s);
  double sum = sum_of(ops);
  return build_run(c, s, kCeil, samples_around(1.1 * sum, 51, 0.2), op_samples(ops),
                   "graph replay of each op, 100 launches, median");
}

Report synthetic_report() {
  ModelConfig c = internlm2_1_8b();
  Report r;
  r.created = "2025-01-31T12:00:00Z";
  r.git_commit = "0123abc";
  r.command = "ridgeline sweep --batch 1,16 --context 1024";
  r.method = "step: CUDA graph replay, 20 warm-up, median of 50";
  r.device = {"NVIDIA H100 80GB HBM3",
              "cuda",
              132,
              int64_t(80) << 30,
              "580.65",
              "13.0",
              kCeil,
              datasheet_for("NVIDIA H100 80GB HBM3"),
              "",
              "",
              EnvironmentInfo{}};
  r.model = {c.name, true, c.params(), c};
  for (int batch : {1, 16})
    r.runs.push_back(
        synthetic_run(c, StepShape{batch, {1024}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}}));
  r.runs.push_back(
      synthetic_run(c, StepShape{4, {1024}, 1, Formats{WeightFormat::w4a16, 128, KvFormat::int8}}));
  r.headline = build_headline(c, r.runs, kCeil);
  return r;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST(Report, RunJoinsMeasuredOpsWithTheCostModelByName) {
  ModelConfig c = internlm2_1_8b();
  StepShape s{16, {1024}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}};
  auto times = synthetic_op_times(c, s);
  double sum = sum_of(times);
  RunRecord r = build_run(c, s, kCeil, samples_around(2 * sum, 9, 1.0), op_samples(times), "m");
  ASSERT_EQ(r.ops.size(), 220u);
  EXPECT_EQ(r.ops[1].name, "layers.0.attention_norm");
  EXPECT_DOUBLE_EQ(r.ops[2].point.time_us, times.at("layers.0.wqkv"));
  EXPECT_DOUBLE_EQ(r.ops[2].point.roofline_efficiency, 0.8);
  EXPECT_DOUBLE_EQ(r.coverage, 0.5);
  EXPECT_DOUBLE_EQ(r.step.tokens_per_s, 16 / (2 * sum * 1e-6));
  CostTotals all = total(step_costs(c, s));
  EXPECT_DOUBLE_EQ(r.step.point.flops, all.flops);
  EXPECT_DOUBLE_EQ(r.step.point.bytes, all.bytes);
  // by_kind sums the ops of each kind.
  auto gemm =
      std::find_if(r.by_kind.begin(), r.by_kind.end(), [](const auto& k) { return k.kind == "gemm"; });
  ASSERT_NE(gemm, r.by_kind.end());
  EXPECT_EQ(gemm->count, 4 * 24 + 1);
  double gemm_time = 0;
  for (const auto& op : r.ops)
    if (op.kind == "gemm") gemm_time += op.point.time_us;
  EXPECT_NEAR(gemm->point.time_us, gemm_time, 1e-9 * gemm_time);
  // Predicted: every op at its roof, one after another.
  double roof_sum = 0;
  for (const auto& op : step_costs(c, s)) roof_sum += roofline_time_us(op.flops, op.bytes, kCeil);
  EXPECT_NEAR(r.predicted.time_us, roof_sum, 1e-9 * roof_sum);
  EXPECT_EQ(r.weights, "fp16");
  EXPECT_TRUE(r.unmeasured_ops.empty());
}

TEST(Report, OpsWithoutTimesAreListedAndUnknownNamesRejected) {
  ModelConfig c = internlm2_1_8b();
  StepShape s{1, {64}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}};
  auto times = synthetic_op_times(c, s);
  times.erase("layers.7.swiglu");  // fused into w13 by some kernel
  RunRecord r = build_run(c, s, kCeil, {900, 1000, 1100}, op_samples(times), "m");
  EXPECT_EQ(r.ops.size(), 219u);
  EXPECT_THAT(r.unmeasured_ops, ::testing::ElementsAre("layers.7.swiglu"));
  times["layers.7.swiglu_fused"] = 3.0;
  try {
    build_run(c, s, kCeil, {900, 1000, 1100}, op_samples(times), "m");
    FAIL() << "expected an unknown op name to throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'layers.7.swiglu_fused' has no cost-model entry"));
  }
  times.erase("layers.7.swiglu_fused");
  times["layers.0.wo"] = 0.0;
  EXPECT_THROW(build_run(c, s, kCeil, {900, 1000, 1100}, op_samples(times), "m"), std::runtime_error);
  times.erase("layers.0.wo");
  auto samples = op_samples(times);
  samples["layers.0.wo"] = {};
  try {
    build_run(c, s, kCeil, {900, 1000, 1100}, samples, "m");
    FAIL() << "expected an op without samples to throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'layers.0.wo' has no timing samples"));
  }
  EXPECT_THROW(build_run(c, s, kCeil, {}, op_samples(times), "m"), std::runtime_error);
}

TEST(Report, BuiltReportPassesValidation) {
  json j = to_json(synthetic_report());
  EXPECT_EQ(j["schema"], "ridgeline.report.v1");
  EXPECT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["device"]["datasheet"]["GBps"], 3350);
  EXPECT_EQ(j["device"]["peak"]["read_GBps"], 3000);
  EXPECT_EQ(j["headline"].size(), 2u);
  auto problems = validate_report(j);
  EXPECT_TRUE(problems.empty()) << joined(problems);
}

TEST(Report, ValidatorReportsADroppedField) {
  json j = to_json(synthetic_report());
  j["runs"][1]["ops"][5].erase("bytes");
  j["device"].erase("sm_count");
  j["runs"][0]["step"].erase("bound");
  auto problems = validate_report(j);
  EXPECT_THAT(problems, ::testing::Contains("$.runs[1].ops[5].bytes: missing"));
  EXPECT_THAT(problems, ::testing::Contains("$.device.sm_count: missing"));
  EXPECT_THAT(problems, ::testing::Contains("$.runs[0].step.bound: missing"));
}

TEST(Report, ValidatorReportsAWrongType) {
  json j = to_json(synthetic_report());
  j["runs"][0]["batch"] = "1";
  j["model"]["synthetic"] = 1;
  j["runs"][0]["ops"][0]["time_us"] = "fast";
  auto text = joined(validate_report(j));
  EXPECT_THAT(text, HasSubstr("$.runs[0].batch: expected an integer, got \"1\""));
  EXPECT_THAT(text, HasSubstr("$.model.synthetic: expected true or false"));
  EXPECT_THAT(text, HasSubstr("$.runs[0].ops[0].time_us: expected a number"));
}

TEST(Report, ValidatorReportsABoundInconsistentWithTheRidge) {
  json j = to_json(synthetic_report());
  json& op = j["runs"][0]["ops"][2];  // layers.0.wqkv at batch 1: intensity ~1, memory-bound
  ASSERT_EQ(op["name"], "layers.0.wqkv");
  ASSERT_EQ(op["bound"], "memory");
  op["bound"] = "compute";
  auto problems = validate_report(j);
  ASSERT_EQ(problems.size(), 1u) << joined(problems);
  EXPECT_THAT(problems[0], AllOf(HasSubstr("$.runs[0].ops[2].bound: 'compute'"), HasSubstr("below the ridge"),
                                 HasSubstr("expected 'memory'")));
}

TEST(Report, ValidatorReportsAUtilizationThatIsNotAchievedOverPeak) {
  json j = to_json(synthetic_report());
  j["runs"][2]["by_kind"][0]["bandwidth_utilization"] =
      j["runs"][2]["by_kind"][0]["bandwidth_utilization"].get<double>() * 1.001;
  j["runs"][0]["step"]["compute_utilization"] = 0.5;
  auto text = joined(validate_report(j));
  EXPECT_THAT(text, HasSubstr("$.runs[2].by_kind[0].bandwidth_utilization"));
  EXPECT_THAT(text, HasSubstr("achieved_GBps/peak.GBps"));
  EXPECT_THAT(text, HasSubstr("$.runs[0].step.compute_utilization"));
  // A change below the 1e-6 relative tolerance passes.
  json k = to_json(synthetic_report());
  k["runs"][0]["ops"][3]["bandwidth_utilization"] =
      k["runs"][0]["ops"][3]["bandwidth_utilization"].get<double>() * (1 + 1e-9);
  EXPECT_TRUE(validate_report(k).empty());
}

TEST(Report, ValidatorReportsCoverageAndSumsThatDoNotAddUp) {
  json j = to_json(synthetic_report());
  j["runs"][0]["coverage"] = 1.0;
  j["runs"][1]["ops"][4]["time_us"] =
      j["runs"][1]["ops"][4]["time_us"].get<double>() * 2;  // rates now wrong too
  auto text = joined(validate_report(j));
  EXPECT_THAT(text, HasSubstr("$.runs[0].coverage: 1 disagrees with sum(ops time_us)/step time"));
  EXPECT_THAT(text, HasSubstr("$.runs[1].coverage"));
  EXPECT_THAT(text, HasSubstr("sum of ops time_us of this kind"));
  EXPECT_THAT(text, HasSubstr("$.runs[1].ops[4].achieved_GBps"));
  json k = to_json(synthetic_report());
  k["schema"] = "ridgeline.report.v0";
  k["runs"][0]["weights"] = "int3";
  auto more = joined(validate_report(k));
  EXPECT_THAT(more, HasSubstr("$.schema: 'ridgeline.report.v0' is not 'ridgeline.report.v1'"));
  EXPECT_THAT(more, HasSubstr("$.runs[0].weights: 'int3' is not one of 'fp16', 'w4a16'"));
}

TEST(Report, RoundTripsThroughJson) {
  Report r = synthetic_report();
  json j = to_json(r);
  Report back = report_from_json(json::parse(j.dump()));
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.runs[1].ops[10].name, r.runs[1].ops[10].name);
  EXPECT_EQ(back.runs[1].ops[10].point.bytes, r.runs[1].ops[10].point.bytes);
  EXPECT_EQ(back.model.config.hidden, 2048);
  ASSERT_TRUE(back.device.datasheet.has_value());
  EXPECT_EQ(back.device.datasheet->name, "H100 SXM");
}

TEST(Report, FromJsonNamesThePathOfAMissingField) {
  json j = to_json(synthetic_report());
  j["runs"][1]["step"].erase("bytes");
  try {
    report_from_json(j);
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("$.runs[1].step.bytes: missing"));
  }
}

TEST(Report, HeadlineFindsTheMeasuredRidgeBesideThePredictedOne) {
  // 1.8b fp16 at context 16 on 3000 GB/s / 700 TFLOP/s: the step turns compute-bound at B = 457.45
  // (test_cost_model.cpp works it out). Steps measured on a roofline at 70% of both ceilings have
  // the same ridge intensity, so the measured knee, found between the measured batches 256 and 1024,
  // must land on it.
  ModelConfig c = internlm2_1_8b();
  std::vector<RunRecord> runs;
  for (int batch : {1, 4, 16, 64, 256, 1024}) {
    StepShape s{batch, {16}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}};
    CostTotals t = total(step_costs(c, s));
    double step_us = roofline_time_us(t.flops, t.bytes, kCeil) / 0.7;
    runs.push_back(
        build_run(c, s, kCeil, std::vector<double>(10, step_us), op_samples(synthetic_op_times(c, s)), "m"));
  }
  auto h = build_headline(c, runs, kCeil);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].weights, "fp16");
  EXPECT_EQ(h[0].context, 16);
  EXPECT_THAT(h[0].batches, ::testing::ElementsAre(1, 4, 16, 64, 256, 1024));
  ASSERT_TRUE(h[0].predicted_ridge_batch.has_value());
  EXPECT_NEAR(*h[0].predicted_ridge_batch, 457.45, 0.01);
  ASSERT_TRUE(h[0].measured_ridge_batch.has_value());
  EXPECT_NEAR(*h[0].measured_ridge_batch, *h[0].predicted_ridge_batch, 1e-6 * 457.45);
  ASSERT_TRUE(h[0].predicted_gemm_ridge_batch.has_value());
  EXPECT_NEAR(*h[0].predicted_gemm_ridge_batch, 275.78, 0.01);
  // The GEMMs, each at 80% of its own roof, leave the bandwidth roof somewhere between the batch where
  // the first (the head, whose weights are widest) and the last GEMM turn compute-bound.
  ASSERT_TRUE(h[0].measured_gemm_ridge_batch.has_value());
  EXPECT_GT(*h[0].measured_gemm_ridge_batch, 200);
  EXPECT_LT(*h[0].measured_gemm_ridge_batch, 350);
  // At context 1024 the KV traffic keeps the step memory-bound: no ridge, measured or predicted.
  auto long_ctx = synthetic_report();
  ASSERT_FALSE(long_ctx.headline.empty());
  EXPECT_FALSE(long_ctx.headline[0].predicted_ridge_batch.has_value());
  EXPECT_FALSE(long_ctx.headline[0].measured_ridge_batch.has_value());
}

TEST(Ceilings, DatasheetIsChosenByDeviceName) {
  auto h100 = datasheet_for("NVIDIA H100 80GB HBM3");
  ASSERT_TRUE(h100.has_value());
  EXPECT_EQ(h100->name, "H100 SXM");
  EXPECT_EQ(h100->GBps, 3350);
  EXPECT_EQ(h100->tflops, 989);
  auto h200 = datasheet_for("NVIDIA H200");
  ASSERT_TRUE(h200.has_value());
  EXPECT_EQ(h200->GBps, 4800);
  EXPECT_EQ(h200->tflops, 989);
  auto a100 = datasheet_for("NVIDIA A100-SXM4-40GB");
  ASSERT_TRUE(a100.has_value());
  EXPECT_EQ(a100->GBps, 1555);
  EXPECT_EQ(a100->tflops, 312);
  auto pcie = datasheet_for("NVIDIA H100 PCIe");
  ASSERT_TRUE(pcie.has_value());
  EXPECT_EQ(pcie->GBps, 2000);
  EXPECT_EQ(pcie->tflops, 756);
  EXPECT_EQ(datasheet_for("NVIDIA H100 NVL")->GBps, 3900);
  EXPECT_EQ(datasheet_for("NVIDIA A100-SXM4-80GB")->GBps, 2039);
  EXPECT_EQ(datasheet_for("nvidia l40s")->tflops, 362);
  EXPECT_EQ(datasheet_for("NVIDIA GeForce RTX 4090")->GBps, 1008);
  EXPECT_FALSE(datasheet_for("NVIDIA GH200 480GB").has_value());  // not an H200
  EXPECT_FALSE(datasheet_for("AMD EPYC 9654 96-Core Processor").has_value());
  Ceilings c = datasheet_ceilings(*h100);
  EXPECT_EQ(c.source, "datasheet");
  EXPECT_DOUBLE_EQ(c.ridge(), 989e12 / 3350e9);
}

// No bound on how long the probe takes: a wall-clock limit in a test fails on a loaded machine
// (10.1 s under ctest -j8 here) and says nothing about correctness.
TEST(Ceilings, MeasuresPlausibleCpuCeilings) {
  Ceilings c = measure_cpu_ceilings();
  EXPECT_EQ(c.source, "measured");
  // Any machine that runs the tests copies faster than 0.5 GB/s and multiplies faster than
  // 0.1 GFLOP/s; nothing single-threaded reaches 1 TB/s or 10 TFLOP/s.
  EXPECT_GT(c.peak_GBps, 0.5);
  EXPECT_LT(c.peak_GBps, 1000);
  EXPECT_GT(c.peak_tflops, 1e-4);
  EXPECT_LT(c.peak_tflops, 10);
  EXPECT_EQ(c.copy_GBps, c.peak_GBps);
}

TEST(Report, RunKeepsItsStepSamplesThinnedEvenlyAndEachOpsSpread) {
  ModelConfig c = internlm2_1_8b();
  StepShape s{4, {256}, 1, Formats{WeightFormat::fp16, 128, KvFormat::fp16}};
  auto times = synthetic_op_times(c, s);
  double sum = sum_of(times);
  // 1001 step samples: more than are kept, so they are thinned, first and last kept, in time order.
  std::vector<double> step;
  for (int i = 0; i <= 1000; ++i) step.push_back(sum * (1.5 + 0.001 * i));
  auto ops = op_samples(times);
  ops["layers.0.wqkv"] = {10, 20, 30, 40, 50};
  RunRecord r = build_run(c, s, kCeil, step, ops, "m");
  EXPECT_EQ(r.step.time_us.n, 1001);
  ASSERT_EQ(r.step.samples_us.size(), kMaxKeptSamples);
  EXPECT_EQ(r.step.samples_us.front(), step.front());
  EXPECT_EQ(r.step.samples_us.back(), step.back());
  EXPECT_TRUE(std::is_sorted(r.step.samples_us.begin(), r.step.samples_us.end()));  // time order kept
  EXPECT_DOUBLE_EQ(r.step.time_us.median, sum * 2.0);
  ASSERT_TRUE(r.step.time_us.mean && r.step.time_us.stddev);
  EXPECT_NEAR(*r.step.time_us.mean, sum * 2.0, 1e-9 * sum);
  // The standard deviation of 0..1000 (n - 1 denominator) is sqrt(1001 * 1002 / 12).
  EXPECT_NEAR(*r.step.time_us.stddev, sum * 0.001 * std::sqrt(1001.0 * 1002.0 / 12.0), 1e-9 * sum);
  const OpRecord& wqkv = r.ops[2];
  ASSERT_EQ(wqkv.name, "layers.0.wqkv");
  ASSERT_TRUE(wqkv.spread.has_value());
  EXPECT_DOUBLE_EQ(wqkv.point.time_us, 30);
  EXPECT_DOUBLE_EQ(wqkv.spread->median, 30);
  EXPECT_DOUBLE_EQ(wqkv.spread->p10, 14);  // position 0.4 between 10 and 20
  EXPECT_DOUBLE_EQ(wqkv.spread->p90, 46);
  EXPECT_DOUBLE_EQ(*wqkv.spread->mean, 30);
  EXPECT_DOUBLE_EQ(*wqkv.spread->stddev, std::sqrt(250.0));
  EXPECT_EQ(wqkv.spread->n, 5);
  for (const auto& k : r.by_kind) EXPECT_FALSE(k.spread.has_value()) << k.kind;
  // All of it in the JSON, and valid.
  Report rep = synthetic_report();
  rep.runs.push_back(r);
  json j = to_json(rep);
  const json& t = j["runs"][3]["step"]["time_us"];
  EXPECT_EQ(t["samples"].size(), kMaxKeptSamples);
  EXPECT_EQ(t["n"], 1001);
  EXPECT_TRUE(t.contains("mean") && t.contains("stddev"));
  EXPECT_EQ(j["runs"][3]["ops"][2]["time_spread_us"],
            json({{"p10", 14.0}, {"p90", 46.0}, {"n", 5}, {"mean", 30.0}, {"stddev", std::sqrt(250.0)}}));
  EXPECT_FALSE(j["runs"][3]["by_kind"][0].contains("time_spread_us"));
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  Report back = report_from_json(json::parse(j.dump()));
  EXPECT_EQ(back.runs[3].step.samples_us, r.step.samples_us);
  EXPECT_EQ(to_json(back), j);
}

TEST(Report, ValidatorChecksTheSamplesAndSpreadsWherePresent) {
  json j = to_json(synthetic_report());  // 51 samples per step: all kept
  ASSERT_EQ(j["runs"][0]["step"]["time_us"]["samples"].size(), 51u);
  EXPECT_TRUE(validate_report(j).empty());
  json& t = j["runs"][0]["step"]["time_us"];
  t["mean"] = t["mean"].get<double>() * 1.01;
  t["stddev"] = t["stddev"].get<double>() * 2;
  json& t1 = j["runs"][1]["step"]["time_us"];
  t1["samples"][0] = t1["samples"][0].get<double>() * 3;  // the p90 and the mean no longer match
  j["runs"][2]["step"]["time_us"]["n"] = 50;              // fewer than the samples kept
  json& spread = j["runs"][0]["ops"][3]["time_spread_us"];
  spread["p10"] = j["runs"][0]["ops"][3]["time_us"].get<double>() * 1.5;
  j["runs"][0]["ops"][4]["time_spread_us"]["stddev"] = -1;
  auto text = joined(validate_report(j));
  EXPECT_THAT(text, HasSubstr("$.runs[0].step.time_us.mean: "));
  EXPECT_THAT(text, HasSubstr("disagrees with the mean of samples"));
  EXPECT_THAT(text, HasSubstr("$.runs[0].step.time_us.stddev: "));
  EXPECT_THAT(text, HasSubstr("$.runs[1].step.time_us.p90: "));
  EXPECT_THAT(text, HasSubstr("$.runs[1].step.time_us.mean: "));
  EXPECT_THAT(text, HasSubstr("$.runs[2].step.time_us.samples: 51 samples but n is 50"));
  EXPECT_THAT(text, HasSubstr("$.runs[0].ops[3].time_spread_us: p10"));
  EXPECT_THAT(text, HasSubstr("$.runs[0].ops[4].time_spread_us.stddev: -1 is negative"));
  // Thinned samples (fewer than n) are not held to the summary of all of them.
  json k = to_json(synthetic_report());
  k["runs"][0]["step"]["time_us"]["n"] = 5000;
  EXPECT_TRUE(validate_report(k).empty()) << joined(validate_report(k));
  k["runs"][0]["step"]["time_us"]["samples"][3] = -2.0;
  EXPECT_THAT(joined(validate_report(k)),
              HasSubstr("$.runs[0].step.time_us.samples[3]: -2.0 is not a positive time"));
}

// The committed baselines (reports/baselines/*.json.gz) are what the GPU CI gate, scripts/targets.py
// and `ridgeline compare` read: each one decompresses, validates against the schema and converts.
TEST(Report, EveryCommittedBaselineLoadsAndValidates) {
  const std::filesystem::path dir = test::data_path("../../reports/baselines");
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    SCOPED_TRACE(path);
    ASSERT_TRUE(path.ends_with(".json.gz")) << "baselines are committed gzipped";
    const json j = test::load_json(path);
    EXPECT_EQ(validate_report(j), std::vector<std::string>{});
    EXPECT_FALSE(report_from_json(j).runs.empty());
    ++seen;
  }
  EXPECT_GE(seen, 10);  // the H200 and H100 sets, as README lists them
}

TEST(Report, ReportsWrittenBeforeSamplesWereKeptStillLoadAndValidate) {
  for (const char* rel : {"reports/cpu-tiny-run.json", "reports/h100-internlm2-chat-1_8b-5837e05.json.gz"}) {
    SCOPED_TRACE(rel);
    json j = test::load_json(test::data_path(rel));
    ASSERT_FALSE(j["runs"][0]["step"]["time_us"].contains("samples"));
    EXPECT_EQ(validate_report(j), std::vector<std::string>{});
    Report r = report_from_json(j);
    ASSERT_FALSE(r.runs.empty());
    EXPECT_TRUE(r.runs[0].step.samples_us.empty());
    EXPECT_FALSE(r.runs[0].step.time_us.mean.has_value());
    EXPECT_FALSE(r.runs[0].ops[0].spread.has_value());
    // Written back, nothing is invented for what was not recorded.
    json back = to_json(r);
    EXPECT_FALSE(back["runs"][0]["step"]["time_us"].contains("mean"));
    EXPECT_FALSE(back["runs"][0]["ops"][0].contains("time_spread_us"));
  }
}
