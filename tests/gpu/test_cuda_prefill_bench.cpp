// The CUDA backend's prefill benchmark hook (Backend::benchmark_prefill): whole prefills timed back
// to back over every chunk, every op of the op table named once (chunks summed), the sequences left
// empty with their blocks back in the free list, and nothing of it visible to a real prefill after.
// The CPU twin is tests/test_prefill_bench.cpp. A .cpp: nothing here is device code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/model_source.h"
#include "engine/ops.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/test_util.h"

using namespace ridgeline;

namespace {

std::unique_ptr<Backend> tiny_cuda(int max_prefill_tokens) {
  BackendOptions o;
  o.max_sequences = 4;
  o.max_kv_tokens = 4096;
  CudaOptions copt;
  copt.max_prefill_tokens = max_prefill_tokens;
  return make_cuda_backend(resolve_model(test::data_path("tiny-internlm2-chat")), o, copt);
}

}  // namespace

TEST(CudaPrefillBench, TimesWholeChunkedPrefillsAndLeavesTheSequencesEmpty) {
  RL_REQUIRE_GPU();
  auto b = tiny_cuda(64);  // 3 x 50 tokens: three chunks, one sequence split across two
  std::vector<int> seqs{b->create_sequence(), b->create_sequence(), b->create_sequence()};
  const int64_t capacity = b->capacity_tokens();
  const DecodeTiming t = b->benchmark_prefill(seqs, 50, 1, 5);
  ASSERT_EQ(t.step_us.size(), 5u);
  for (double us : t.step_us) EXPECT_TRUE(us > 0 && std::isfinite(us));
  std::vector<std::string> names, table;
  for (const OpSamples& op : t.ops) {
    names.push_back(op.name);
    ASSERT_EQ(op.us.size(), 5u) << op.name;
    for (double us : op.us) EXPECT_TRUE(us >= 0 && std::isfinite(us)) << op.name;
  }
  for (const Op& op : step_ops(b->config(), StepShape{})) table.push_back(op.name);
  EXPECT_EQ(names, table);
  EXPECT_NE(t.method.find("whole prefill"), std::string::npos) << t.method;
  for (int s : seqs) EXPECT_EQ(b->sequence_length(s), 0);
  EXPECT_EQ(b->capacity_tokens(), capacity);
  if (t.method.find("CUPTI kernel") != std::string::npos) {
    // Kernel time alone, summed over the chunks: at most the whole prefill.
    double ops = 0;
    std::vector<double> steps = t.step_us;
    std::sort(steps.begin(), steps.end());
    for (const auto& op : t.ops) {
      std::vector<double> v = op.us;
      std::sort(v.begin(), v.end());
      ops += v[v.size() / 2];
    }
    EXPECT_LE(ops / steps[steps.size() / 2], 1.02);
    EXPECT_GT(ops / steps[steps.size() / 2], 0.2);
  } else if (test::gpu_required()) {
    ADD_FAILURE() << "no CUPTI kernel times on a GPU machine: " << t.method;
  }

  // A real prefill afterwards gives the logits a fresh backend gives: nothing of the benchmark stayed.
  const auto prompt = benchmark_prefill_tokens(b->config(), 1, 50);
  std::vector<float> after(b->config().vocab), fresh(b->config().vocab);
  const int one[1] = {seqs[1]};
  b->forward(one, prompt, after.data());
  auto c = tiny_cuda(64);
  const int other[1] = {c->create_sequence()};
  c->forward(other, prompt, fresh.data());
  // Same kernels on the same input; a tolerance only for any reduction order that may differ.
  EXPECT_LT(test::rel_l2(after, fresh), 1e-3);
  std::printf("tiny model, 3 x 50-token prefill in 64-token chunks: %.1f us (first sample), method: %s\n",
              t.step_us[0], t.method.c_str());
}

TEST(CudaPrefillBench, RefusesWhatDoesNotFitBeforeTouchingTheCache) {
  RL_REQUIRE_GPU();
  // Each prompt within the tiny model's context limit (2048), the three together beyond the 4096-token
  // cache: the refusal must be about the cache, not the context.
  auto b = tiny_cuda(4096);
  std::vector<int> seqs{b->create_sequence(), b->create_sequence(), b->create_sequence()};
  const int64_t capacity = b->capacity_tokens();
  try {
    b->benchmark_prefill(seqs, 1500, 0, 1);  // 4500 tokens, the cache holds 4096
    FAIL() << "a prefill larger than the KV cache was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b->capacity_tokens(), capacity);
  for (int s : seqs) EXPECT_EQ(b->sequence_length(s), 0);
}
