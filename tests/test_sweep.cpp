// `ridgeline sweep` on the CPU backend, end to end: the report it writes is schema v1, complete and
// self-consistent, and what cannot run is recorded or refused rather than dropped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "analysis/report.h"
#include "bench/sweep/sweep.h"
#include "engine/cpu_backend.h"
#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;

TEST(Sweep, CpuSweepOnTheTinyModelWritesACompleteValidReport) {
  std::string out = ::testing::TempDir() + "/sweep.json";
  auto r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() +
                         " --batch 1,3 --context 33,4096 --kv fp16,int8 --iters 3 --warmup 1 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["schema"], "ridgeline.report.v1");
  for (const char* key : {"created", "git_commit", "command", "device", "model", "runs"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["device"]["backend"], "cpu");
  EXPECT_EQ(j["device"]["peak"]["source"], "measured");
  EXPECT_FALSE(j["model"]["synthetic"].get<bool>());
  // 2 batches x 1 runnable context x 2 KV formats; context 4096 exceeds the tiny model's 2048.
  ASSERT_EQ(j["runs"].size(), 4u);
  ASSERT_EQ(j["skipped"].size(), 4u);
  EXPECT_THAT(j["skipped"][0]["reason"].get<std::string>(), HasSubstr("exceeds the model's limit of 2048"));
  const double ridge =
      j["device"]["peak"]["tflops"].get<double>() * 1e12 / (j["device"]["peak"]["GBps"].get<double>() * 1e9);
  for (const auto& run : j["runs"]) {
    const auto& step = run["step"];
    for (const char* key : {"time_us", "tokens_per_s", "flops", "bytes", "arithmetic_intensity",
                            "achieved_GBps", "bandwidth_utilization", "achieved_tflops",
                            "compute_utilization", "roofline_time_us", "roofline_efficiency", "bound"})
      EXPECT_TRUE(step.contains(key)) << key;
    EXPECT_EQ(step["bound"], step["arithmetic_intensity"].get<double>() < ridge ? "memory" : "compute");
    EXPECT_NEAR(step["bandwidth_utilization"].get<double>(),
                step["achieved_GBps"].get<double>() / j["device"]["peak"]["GBps"].get<double>(), 1e-9);
    // Every op of the forward was timed: 9 per layer + embed, norm, output, sample.
    EXPECT_EQ(run["ops"].size(), 9u * 4 + 4);
    double sum = 0;
    for (const auto& op : run["ops"]) sum += op["time_us"].get<double>();
    EXPECT_NEAR(run["coverage"].get<double>(), sum / step["time_us"]["median"].get<double>(), 1e-9);
    EXPECT_EQ(step["time_us"]["n"], 3);
  }
  // INT8 KV moves fewer bytes than fp16 KV at the same shape, per the cost model.
  EXPECT_LT(j["runs"][2]["step"]["bytes"].get<double>(), j["runs"][0]["step"]["bytes"].get<double>());
  EXPECT_THAT(r.err, HasSubstr("B=3 ctx=33 fp16/int8"));  // a progress line per configuration
}

TEST(Sweep, FormatsNotBuiltForTheModelAreRefusedNotSkipped) {
  auto r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() +
                         " --weights fp16,w4a16 --out /dev/null");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cpu: --weights w4a16 needs an AWQ checkpoint"));
  r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() + " --kv int4 --out /dev/null");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cpu: --kv int4 is not built yet"));
  r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() + " --kv int3 --out /dev/null");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown KV-cache format 'int3' (expected fp16, int8 or int4)"));
}

TEST(Sweep, ConfigurationsThatDoNotFitTheKvCacheAreSkippedWithTheirReason) {
  ModelSource src = resolve_model(test::data_path("tiny-internlm2-chat"));
  SweepSpec spec;
  spec.batches = {1, 8};
  spec.contexts = {64};
  spec.iters = 2;
  spec.warmup = 0;
  DeviceInfo dev;
  dev.backend = "cpu";
  dev.name = "test";
  dev.peak = measured_ceilings(10, 10, 0.01);
  std::vector<std::string> progress;
  auto factory = [&](const BackendOptions& o) {
    BackendOptions opt = o;
    opt.max_kv_tokens = 100;  // room for one 64-token sequence, not eight
    return make_cpu_backend(src, opt);
  };
  SweepResult r = run_sweep(src, spec, factory, dev, [&](const std::string& s) { progress.push_back(s); });
  ASSERT_EQ(r.report.runs.size(), 1u);
  EXPECT_EQ(r.report.runs[0].batch, 1);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].batch, 8);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("needs 512 KV-cache tokens"));
  EXPECT_EQ(validate_report(sweep_to_json(r)), std::vector<std::string>{});
}
