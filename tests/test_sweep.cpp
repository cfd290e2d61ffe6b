// `ridgeline sweep` on the CPU backend, end to end: the report it writes is schema v1, complete and
// self-consistent, and what cannot run is recorded or refused rather than dropped; repetitions,
// prefill, failures and interruptions (run_sweep), and the command line's flags, exit codes and
// durability (ridgeline sweep).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "analysis/report.h"
#include "bench/build_info.h"
#include "bench/sweep/sweep.h"
#include "engine/cpu_backend.h"
#include "engine/inject_delay.h"
#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;
using ::testing::Not;

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
  auto r = test::run_cli("sweep --device cpu --model " +
                         test::shell_quote(test::data_path("tiny-internlm2-chat-awq")) +
                         " --weights w4a16,fp16 --out /dev/null");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cpu: --weights fp16: this checkpoint is AWQ 4-bit"));
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

namespace {

DeviceInfo test_device() {
  DeviceInfo dev;
  dev.backend = "cpu";
  dev.name = "test";
  dev.peak = measured_ceilings(10, 10, 0.01);
  return dev;
}

ModelSource tiny() {
  return resolve_model(test::data_path("tiny-internlm2-chat"));
}

// The CPU backend, except that measuring a decode step of `fail_batch` sequences throws: a
// configuration that fails while it is measured.
class FailingAtBatch final : public Backend {
 public:
  FailingAtBatch(std::unique_ptr<Backend> inner, int fail_batch) : in_(std::move(inner)), fail_(fail_batch) {}
  const ModelConfig& config() const override { return in_->config(); }
  DeviceKind device() const override { return in_->device(); }
  std::string device_name() const override { return in_->device_name(); }
  const Formats& formats() const override { return in_->formats(); }
  int create_sequence() override { return in_->create_sequence(); }
  void release_sequence(int seq) override { in_->release_sequence(seq); }
  int sequence_length(int seq) const override { return in_->sequence_length(seq); }
  int64_t capacity_tokens() const override { return in_->capacity_tokens(); }
  void forward(std::span<const int> s, std::span<const std::vector<int>> t, float* l) override {
    in_->forward(s, t, l);
  }
  void sample(std::span<const int> s, std::span<const SamplingParams> p, int* o) override {
    in_->sample(s, p, o);
  }
  void fill_context(int seq, int length, uint64_t seed) override { in_->fill_context(seq, length, seed); }
  DecodeTiming benchmark_decode(std::span<const int> seqs, int warmup, int iters) override {
    if (int(seqs.size()) == fail_) throw std::runtime_error("injected measurement failure");
    return in_->benchmark_decode(seqs, warmup, iters);
  }
  DecodeTiming benchmark_prefill(std::span<const int> seqs, int n, int warmup, int iters) override {
    return in_->benchmark_prefill(seqs, n, warmup, iters);
  }

 private:
  std::unique_ptr<Backend> in_;
  int fail_;
};

}  // namespace

TEST(Sweep, RepeatRunsTheWholeCrossProductInterleavedAndPoolsEachConfiguration) {
  ModelSource src = tiny();
  SweepSpec spec;
  spec.batches = {1, 2};
  spec.contexts = {16};
  spec.repeat = 3;
  spec.iters = 2;
  spec.warmup = 0;
  std::vector<std::string> progress;
  int loads = 0;
  auto factory = [&](const BackendOptions& o) {
    ++loads;
    return make_cpu_backend(src, o);
  };
  SweepResult r =
      run_sweep(src, spec, factory, test_device(), [&](const std::string& s) { progress.push_back(s); });
  // Configuration order inside each repetition, the repetitions one after another.
  std::vector<std::string> measured;
  for (const auto& line : progress)
    if (line.rfind("[", 0) == 0) measured.push_back(line.substr(0, line.find(':')));
  EXPECT_EQ(measured, (std::vector<std::string>{
                          "[1/6] rep 1/3 B=1 ctx=16 fp16/fp16", "[2/6] rep 1/3 B=2 ctx=16 fp16/fp16",
                          "[3/6] rep 2/3 B=1 ctx=16 fp16/fp16", "[4/6] rep 2/3 B=2 ctx=16 fp16/fp16",
                          "[5/6] rep 3/3 B=1 ctx=16 fp16/fp16", "[6/6] rep 3/3 B=2 ctx=16 fp16/fp16"}));
  EXPECT_EQ(loads, 1);  // one weights/KV pair: its backend stays loaded across the repetitions
  // One run per configuration, pooling every repetition's samples (step and ops).
  ASSERT_EQ(r.report.runs.size(), 2u);
  for (const auto& run : r.report.runs) {
    EXPECT_EQ(run.repeats, 3);
    EXPECT_EQ(run.step.time_us.n, 6);
    EXPECT_EQ(run.step.samples_us.size(), 6u);
    ASSERT_FALSE(run.ops.empty());
    for (const auto& op : run.ops) EXPECT_EQ(op.spread->n, 6) << op.name;
  }
  EXPECT_THAT(r.report.method, HasSubstr("3 times, interleaved"));
  nlohmann::json j = sweep_to_json(r);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["runs"][0]["repeats"], 3);
  EXPECT_EQ(report_from_json(j).runs[1].repeats, 3);
}

TEST(Sweep, PrefillRunsTimeTheWholePromptAndAreJoinedWithThePrefillCostModel) {
  ModelSource src = tiny();
  SweepSpec spec;
  spec.batches = {1, 2};
  spec.contexts = {32};
  spec.phases = {Phase::decode, Phase::prefill};
  spec.prompt_lens = {32, 3000};  // 3000 exceeds the tiny model's 2048 positions: skipped
  spec.iters = 2;
  spec.warmup = 0;
  SweepResult r = run_sweep(
      src, spec, [&](const BackendOptions& o) { return make_cpu_backend(src, o); }, test_device(),
      [](const std::string&) {});
  ASSERT_EQ(r.report.runs.size(), 4u);
  const RunRecord& decode = r.report.runs[1];   // B=2 ctx=32
  const RunRecord& prefill = r.report.runs[3];  // B=2, 32 prompt tokens each
  EXPECT_EQ(decode.new_tokens_per_seq, 1);
  EXPECT_EQ(prefill.new_tokens_per_seq, 32);
  EXPECT_EQ(prefill.context, 32);
  EXPECT_EQ(prefill.batch, 2);
  // The cost model of a 32-token prefill, not of a decode step.
  StepShape shape;
  shape.batch = 2;
  shape.context = {32};
  shape.new_tokens_per_seq = 32;
  EXPECT_DOUBLE_EQ(prefill.step.point.flops, total(step_costs(src.config, shape)).flops);
  EXPECT_GT(prefill.step.point.flops, 20 * decode.step.point.flops);
  EXPECT_NEAR(prefill.step.tokens_per_s, 64 / (prefill.step.time_us.median * 1e-6),
              1e-6 * prefill.step.tokens_per_s);
  EXPECT_EQ(prefill.ops.size(), 9u * 4 + 4);  // every op timed, the first token's sample included
  EXPECT_EQ(prefill.ops.back().name, "sample");
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0].phase, Phase::prefill);
  EXPECT_FALSE(r.skipped[0].failed);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("a prompt of 3000 tokens exceeds the model's limit of 2048"));
  EXPECT_EQ(r.failures(), 0);
  // Only decode runs make the headline.
  ASSERT_EQ(r.report.headline.size(), 1u);
  EXPECT_EQ(r.report.headline[0].batches, (std::vector<int>{1, 2}));
  nlohmann::json j = sweep_to_json(r);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["skipped"][0]["phase"], "prefill");
  EXPECT_EQ(j["skipped"][0]["failed"], false);
}

TEST(Sweep, AConfigurationThatFailsIsRecordedAsAFailureAndTheRestStillRun) {
  ModelSource src = tiny();
  SweepSpec spec;
  spec.batches = {1, 2, 3};
  spec.contexts = {16};
  spec.iters = 2;
  spec.warmup = 0;
  auto factory = [&](const BackendOptions& o) -> std::unique_ptr<Backend> {
    return std::make_unique<FailingAtBatch>(make_cpu_backend(src, o), 2);
  };
  SweepResult r = run_sweep(src, spec, factory, test_device(), [](const std::string&) {});
  ASSERT_EQ(r.report.runs.size(), 2u);
  EXPECT_EQ(r.report.runs[0].batch, 1);
  EXPECT_EQ(r.report.runs[1].batch, 3);
  EXPECT_EQ(r.failures(), 1);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_TRUE(r.skipped[0].failed);
  EXPECT_EQ(r.skipped[0].batch, 2);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("injected measurement failure"));
  nlohmann::json j = sweep_to_json(r);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["skipped"][0]["failed"], true);

  // A backend that cannot be built fails every configuration of its formats.
  SweepResult none = run_sweep(
      src, spec,
      [](const BackendOptions&) -> std::unique_ptr<Backend> { throw std::runtime_error("no memory"); },
      test_device(), [](const std::string&) {});
  EXPECT_TRUE(none.report.runs.empty());
  EXPECT_EQ(none.failures(), 3);
}

TEST(Sweep, EveryUpdateIsAValidReportOfWhatFinishedAndAStopEndsTheSweepThere) {
  ModelSource src = tiny();
  SweepSpec spec;
  spec.batches = {1, 2, 3, 4};
  spec.contexts = {16};
  spec.iters = 2;
  spec.warmup = 0;
  std::vector<size_t> runs_seen;
  SweepHooks hooks;
  hooks.on_update = [&](const SweepResult& r) {
    runs_seen.push_back(r.report.runs.size());
    EXPECT_EQ(validate_report(sweep_to_json(r)), std::vector<std::string>{});
  };
  hooks.stop_requested = [&] { return runs_seen.size() >= 2; };  // after the second configuration
  SweepResult r = run_sweep(
      src, spec, [&](const BackendOptions& o) { return make_cpu_backend(src, o); }, test_device(),
      [](const std::string&) {}, hooks);
  EXPECT_EQ(runs_seen, (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.report.runs.size(), 2u);
  EXPECT_EQ(sweep_to_json(r)["interrupted"], true);
}

// ---- the command line: repetitions, shared ceilings, prefill, exit codes, durability ----------------

namespace {

// Sets an environment variable for the scope (the CLI runs as a child and inherits it).
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/rl_sweep_" + std::to_string(::getpid()) + "_" + name;
}

std::string tiny_sweep(const std::string& more) {
  return "sweep --device cpu --model " + test::tiny_model_arg() + " --warmup 0 " + more;
}

}  // namespace

TEST(SweepCli, RepeatPoolsTheInterleavedRepetitionsIntoOneRunPerConfiguration) {
  const std::string out = temp_path("repeat.json");
  auto r = test::run_cli(tiny_sweep("--batch 1,2 --context 16 --repeat 2 --iters 2 --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const auto& run : j["runs"]) {
    EXPECT_EQ(run["repeats"], 2);
    EXPECT_EQ(run["step"]["time_us"]["n"], 4);
  }
  EXPECT_THAT(r.err, HasSubstr("rep 2/2 B=2 ctx=16 fp16/fp16"));
}

TEST(SweepCli, CeilingsFileIsReadBackInsteadOfProbingAndRecordedInTheReport) {
  const std::string ceilings = temp_path("ceilings.json"), out = temp_path("shared.json");
  auto p = test::run_cli("probe --device cpu --out " + ceilings);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto c = test::load_json(ceilings);
  EXPECT_EQ(c["schema"], "ridgeline.ceilings.v1");
  EXPECT_FALSE(c["device"]["host_cpu"].get<std::string>().empty());
  c["device"]["peak"]["GBps"] = 12.5;  // recognisable peaks: these, not a new probe's, must be used
  c["device"]["peak"]["tflops"] = 0.25;
  std::ofstream(ceilings) << c.dump();
  auto r =
      test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 2 --ceilings " + ceilings + " --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("probe: measuring")));
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["device"]["peak"]["GBps"], 12.5);
  EXPECT_EQ(j["device"]["peak"]["tflops"], 0.25);
  EXPECT_EQ(j["device"]["peak"]["file"], ceilings);
  EXPECT_EQ(j["device"]["peak"]["file_created"], c["created"]);
  EXPECT_NEAR(j["runs"][0]["step"]["bandwidth_utilization"].get<double>(),
              j["runs"][0]["step"]["achieved_GBps"].get<double>() / 12.5, 1e-9);
}

TEST(SweepCli, CeilingsOfAnotherBackendOrAFileThatHasNoneAreRefused) {
  const std::string out = temp_path("refused.json");
  const std::string gpu = test::shell_quote(test::data_path("../../bench/ceilings/h200.json"));
  auto r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 1 --ceilings " + gpu + " --out " + out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("h200.json: its ceilings were measured on the cuda backend, this sweep "
                               "runs on cpu"));
  const std::string config = test::shell_quote(test::data_path("tiny-internlm2-chat/config.json"));
  r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 1 --ceilings " + config + " --out " + out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("config.json: not a ceilings file"));
  const std::string folder = test::shell_quote(test::data_path("tiny-internlm2-chat"));
  r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 1 --ceilings " + folder + " --out " + out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tiny-internlm2-chat: is a directory, expected a ceilings file"));
  EXPECT_THAT(r.err, Not(HasSubstr("basic_filebuf")));
}

TEST(SweepCli, PrefillPhaseTimesPromptsBesideDecode) {
  const std::string out = temp_path("prefill.json");
  auto r = test::run_cli(
      tiny_sweep("--batch 1,2 --context 16 --phase decode,prefill --prompt-len 8,16 --iters 2 --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  ASSERT_EQ(j["runs"].size(), 6u);  // decode B=1,2; prefill of 8 and of 16 at B=1,2
  EXPECT_EQ(j["runs"][2]["new_tokens_per_seq"], 8);
  EXPECT_EQ(j["runs"][5]["new_tokens_per_seq"], 16);
  EXPECT_EQ(j["runs"][5]["batch"], 2);
  EXPECT_THAT(r.err, HasSubstr("prefill B=2 len=16 fp16/fp16: TTFT"));
  r = test::run_cli(tiny_sweep("--phase decode,prefil --out " + out));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown phase 'prefil' (expected decode or prefill)"));
}

TEST(SweepCli, ExitsOneWhenConfigurationsFailAndTheReportListsWhy) {
  // A delay for an op the model does not have fails every backend build: every configuration fails.
  ScopedEnv delay(kInjectDelayVariable, "layers.9.wqkv:100");
  const std::string out = temp_path("failed.json");
  auto r = test::run_cli(tiny_sweep("--batch 1,2 --context 16 --iters 1 --out " + out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'layers.9.wqkv' is not an op of tiny-internlm2-chat"));
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  ASSERT_EQ(j["skipped"].size(), 2u);
  EXPECT_EQ(j["skipped"][0]["failed"], true);
  EXPECT_THAT(j["skipped"][1]["reason"].get<std::string>(), HasSubstr("RIDGELINE_INJECT_DELAY_US"));
}

TEST(SweepCli, AnUnwritableOutFailsBeforeAnythingIsMeasured) {
  auto r = test::run_cli(tiny_sweep("--batch 1 --context 16 --out /nonexistent-dir/run.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent-dir/run.json"));
  EXPECT_THAT(r.err, Not(HasSubstr("probe: measuring")));
}

TEST(SweepCli, InjectedDelaySlowsTheNamedOpAndTheStepByAboutThatMuch) {
  const std::string plain = temp_path("plain.json"), slow = temp_path("slow.json");
  auto r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 3 --out " + plain));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  {
    ScopedEnv delay(kInjectDelayVariable, "layers.1.w2:20000");  // 20 ms: far above the tiny model's noise
    r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 3 --out " + slow));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto a = test::load_json(plain), b = test::load_json(slow);
  auto op_time = [](const nlohmann::json& j, const std::string& name) {
    for (const auto& op : j["runs"][0]["ops"])
      if (op["name"] == name) return op["time_us"].get<double>();
    return -1.0;
  };
  // -1 for an op the report does not have: the upper bounds below would hold for it.
  ASSERT_GT(op_time(a, "layers.1.w2"), 0);
  ASSERT_GT(op_time(b, "layers.0.w2"), 0);
  EXPECT_GE(op_time(b, "layers.1.w2"), 20000);
  EXPECT_LT(op_time(a, "layers.1.w2"), 20000);
  EXPECT_GE(b["runs"][0]["step"]["time_us"]["median"].get<double>(), 20000);
  EXPECT_LT(op_time(b, "layers.0.w2"), 20000);  // only the named op
}

TEST(SweepCli, RecordsTheCommitFromTheEnvironmentAndTheBuildEnvironment) {
  const std::string out = temp_path("commit.json");
  ScopedEnv commit(kGitCommitVariable, "feedc0de1234");
  auto r = test::run_cli(tiny_sweep("--batch 1 --context 16 --iters 1 --out " + out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = test::load_json(out);
  EXPECT_EQ(j["git_commit"], "feedc0de1234");
  EXPECT_FALSE(j["device"]["host_cpu"].get<std::string>().empty());
  EXPECT_FALSE(j["device"]["compiler"].get<std::string>().empty());
}

TEST(SweepCli, SigintAfterTheFirstConfigurationLeavesAValidReportOfWhatFinished) {
  const std::string out = temp_path("interrupted.json"), err = temp_path("interrupted.err");
  std::remove(out.c_str());
  const std::string cmd = "exec " + std::string(RIDGELINE_CLI) + " " +
                          tiny_sweep("--batch 1,2,3,4,5,6,7,8 --context 256 --iters 3 --out " + out) +
                          " 2> " + test::shell_quote(err) + " > /dev/null";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // The report appears, whole, when the first configuration is done (written atomically).
  bool appeared = false;
  for (int i = 0; i < 3000 && !appeared; ++i) {
    appeared = std::ifstream(out).good();
    if (!appeared) usleep(50'000);
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(appeared) << "no report after 150 s";
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  auto j = test::load_json(out);
  EXPECT_EQ(validate_report(j), std::vector<std::string>{});
  EXPECT_EQ(j["interrupted"], true);
  EXPECT_GE(j["runs"].size(), 1u);
  EXPECT_LT(j["runs"].size(), 8u);
  std::ifstream e(err);
  const std::string log((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
  EXPECT_THAT(log, HasSubstr("interrupted"));
}
