// The prefill benchmark hook (Backend::benchmark_prefill, bench/decode_bench.h's measure_prefill) on
// the CPU backend: it times whole prefills, names every op of the op table once, and leaves the
// sequences as empty as it found them (the GPU twin is tests/gpu/test_cuda_prefill_bench.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "bench/decode_bench.h"
#include "engine/cpu_backend.h"
#include "engine/ops.h"
#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

std::unique_ptr<Backend> tiny_cpu(int64_t max_kv_tokens = 0) {
  BackendOptions o;
  o.max_sequences = 3;
  o.max_kv_tokens = max_kv_tokens;
  return make_cpu_backend(resolve_model(test::data_path("tiny-internlm2-chat")), o);
}

}  // namespace

TEST(BenchmarkPrefill, TimesWholePrefillsOfEveryOpAndLeavesTheSequencesEmpty) {
  auto b = tiny_cpu();
  std::vector<int> seqs{b->create_sequence(), b->create_sequence()};
  const int64_t capacity = b->capacity_tokens();
  const DecodeTiming t = b->benchmark_prefill(seqs, 40, 1, 3);
  ASSERT_EQ(t.step_us.size(), 3u);
  for (double us : t.step_us) EXPECT_TRUE(us > 0 && std::isfinite(us));
  std::vector<std::string> names;
  for (const OpSamples& op : t.ops) {
    names.push_back(op.name);
    EXPECT_EQ(op.us.size(), 3u) << op.name;
  }
  std::vector<std::string> table;
  for (const Op& op : step_ops(b->config(), StepShape{})) table.push_back(op.name);
  EXPECT_EQ(names, table);  // the op table's ops, in its order, the first token's sample last
  EXPECT_THAT(t.method, HasSubstr("whole prefill"));
  for (int s : seqs) EXPECT_EQ(b->sequence_length(s), 0);
  EXPECT_EQ(b->capacity_tokens(), capacity);

  // Nothing of the benchmark stays behind: a real prefill afterwards gives a fresh backend's logits.
  const auto prompt = benchmark_prefill_tokens(b->config(), 1, 40);
  std::vector<float> after(b->config().vocab), fresh(b->config().vocab);
  const int one[1] = {seqs[0]};
  b->forward(one, prompt, after.data());
  auto c = tiny_cpu();
  const int s = c->create_sequence();
  const int other[1] = {s};
  c->forward(other, prompt, fresh.data());
  EXPECT_EQ(after, fresh);
}

TEST(BenchmarkPrefill, RefusesWhatDoesNotFitAndSequencesThatAreNotEmpty) {
  auto b = tiny_cpu(100);
  std::vector<int> seqs{b->create_sequence(), b->create_sequence()};
  EXPECT_THAT(
      [&] { b->benchmark_prefill(seqs, 60, 0, 1); },
      ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("KV cache full: 120 new tokens, room for 100")));
  b->fill_context(seqs[0], 10, 1);
  EXPECT_THAT([&] { b->benchmark_prefill(seqs, 5, 0, 1); },
              ::testing::ThrowsMessage<std::logic_error>(HasSubstr("needs empty sequences")));
  EXPECT_EQ(b->sequence_length(seqs[0]), 10);
}

TEST(BenchmarkPrefill, MeasurePrefillReleasesItsSequences) {
  auto b = tiny_cpu();
  const int64_t capacity = b->capacity_tokens();
  const DecodeTiming t = measure_prefill(*b, 3, 16, 0, 2);
  EXPECT_EQ(t.step_us.size(), 2u);
  EXPECT_EQ(b->capacity_tokens(), capacity);
  // All three slots are free again.
  for (int i = 0; i < 3; ++i) EXPECT_NO_THROW(b->create_sequence());
}
