// The CPU reference engine against the float32 references shipped with the tiny model.
#include <gtest/gtest.h>

#include <memory>

#include "engine/checkpoint.h"
#include "engine/cpu_backend.h"
#include "engine/generate.h"
#include "engine/host_weights.h"
#include "engine/model_source.h"
#include "kernels/cpu/reference.h"
#include "test_util.h"

using namespace ridgeline;

namespace {

// Loaded once: the tiny model's weights are shared by the tests below (each makes its own backend).
const HostWeights& tiny_weights(const std::string& dir = "tiny-internlm2-chat") {
  static std::map<std::string, HostWeights> cache;
  auto it = cache.find(dir);
  if (it == cache.end())
    it = cache.emplace(dir, load_host_weights(open_checkpoint(test::data_path(dir)))).first;
  return it->second;
}

std::unique_ptr<Backend> tiny_backend(KvFormat kv = KvFormat::fp16,
                                      const std::string& dir = "tiny-internlm2-chat") {
  BackendOptions o;
  o.formats.kv = kv;
  o.formats.weights = dir.find("awq") != std::string::npos ? WeightFormat::w4a16 : WeightFormat::fp16;
  return make_cpu_backend(tiny_weights(dir), o);
}

std::vector<int> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<int>>();
}

GenerateResult greedy(Backend& b, const std::vector<int>& prompt, int max_new, bool keep_logits = false) {
  GenerateOptions o;
  o.max_new_tokens = max_new;
  o.stop_ids = {2, 4};
  o.keep_logits = keep_logits;
  int seq = b.create_sequence();
  auto r = generate(b, seq, prompt, o);
  b.release_sequence(seq);
  return r;
}

void expect_cases_reproduced(const nlohmann::json& cases, KvFormat kv, const std::string& dir,
                             double logits_tol) {
  // Every reference file holds 7 cases: a renamed key gives null, and a loop over it would pass.
  ASSERT_TRUE(cases.is_array());
  ASSERT_EQ(cases.size(), 7u);
  auto backend = tiny_backend(kv, dir);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto expected = ids_of(c["output_ids"]);
    auto r = greedy(*backend, ids_of(c["prompt_ids"]), int(expected.size()) + 4, true);
    EXPECT_EQ(r.output_ids, expected);
    std::vector<float> first(r.step_logits.begin(), r.step_logits.begin() + backend->config().vocab);
    EXPECT_LT(test::rel_l2(first, c["first_step_logits"].get<std::vector<float>>()), logits_tol);
  }
}

}  // namespace

TEST(CpuEngine, ReproducesEveryReferenceCaseAndFirstStepLogits) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference.json"));
  ASSERT_EQ(ref["cases"].size(), 7u);
  expect_cases_reproduced(ref["cases"], KvFormat::fp16, "tiny-internlm2-chat", 1e-4);
}

TEST(CpuEngine, Int8KvCacheReproducesTheQuantizedReferences) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference_kv.json"));
  expect_cases_reproduced(ref["int8"], KvFormat::int8, "tiny-internlm2-chat", 1e-4);
}

TEST(CpuEngine, Int4KvCacheReproducesTheQuantizedReferences) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference_kv.json"));
  ASSERT_EQ(ref["int4"].size(), 7u);
  expect_cases_reproduced(ref["int4"], KvFormat::int4, "tiny-internlm2-chat", 1e-4);
}

TEST(CpuEngine, AwqCheckpointReproducesItsReferences) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat-awq/reference.json"));
  expect_cases_reproduced(ref["cases"], KvFormat::fp16, "tiny-internlm2-chat-awq", 1e-4);
}

TEST(CpuEngine, AwqWithInt8KvReproducesItsReferences) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference_kv.json"));
  expect_cases_reproduced(ref["awq_int8"], KvFormat::int8, "tiny-internlm2-chat-awq", 1e-4);
}

TEST(CpuEngine, DecodeWithKvCacheEqualsFullRecompute) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference.json"));
  const auto& c = ref["cases"][6];  // two_turns: the longest prompt
  auto backend = tiny_backend();
  auto r = greedy(*backend, ids_of(c["prompt_ids"]), 6, true);
  ASSERT_EQ(r.output_ids.size(), 6u);
  const int vocab = backend->config().vocab;
  // Recompute from scratch: prompt + the first k generated tokens in one prefill; its last logits
  // must equal the cached decode's logits for step k.
  std::vector<int> seqids = ids_of(c["prompt_ids"]);
  for (int k = 1; k < 6; ++k) {
    seqids.push_back(r.output_ids[k - 1]);
    int s = backend->create_sequence();
    std::vector<float> logits(vocab);
    std::vector<std::vector<int>> toks{seqids};
    int seq_arr[1] = {s};
    backend->forward(seq_arr, toks, logits.data());
    backend->release_sequence(s);
    std::vector<float> cached(r.step_logits.begin() + int64_t(k) * vocab,
                              r.step_logits.begin() + int64_t(k + 1) * vocab);
    EXPECT_LT(test::rel_l2(cached, logits), 1e-5) << "step " << k;
  }
}

TEST(CpuEngine, BatchOfMixedLengthsEqualsOneAtATime) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference.json"));
  auto backend = tiny_backend();
  const int vocab = backend->config().vocab;
  std::vector<int> seqs;
  std::vector<std::vector<int>> prompts;
  for (const auto& c : ref["cases"]) {
    seqs.push_back(backend->create_sequence());
    prompts.push_back(ids_of(c["prompt_ids"]));
  }
  std::vector<float> logits(seqs.size() * vocab);
  backend->forward(seqs, prompts, logits.data());
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<float> row(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
    EXPECT_LT(test::rel_l2(row, ref["cases"][i]["first_step_logits"].get<std::vector<float>>()), 1e-4);
  }
}

TEST(CpuEngine, FixedSeedSamplesTheSameTextTwiceAndOtherSeedsDiffer) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference.json"));
  auto prompt = ids_of(ref["cases"][0]["prompt_ids"]);
  auto backend = tiny_backend();
  auto run = [&](uint64_t seed) {
    GenerateOptions o;
    o.max_new_tokens = 24;
    o.sampling = {2.0f, 0, 1.0f, seed};  // hot enough that the draw matters
    int s = backend->create_sequence();
    auto r = generate(*backend, s, prompt, o);
    backend->release_sequence(s);
    return r.output_ids;
  };
  auto a = run(42), b = run(42);
  EXPECT_EQ(a, b);
  bool any_differs = false;
  for (uint64_t seed = 1; seed <= 4; ++seed) any_differs |= run(seed) != a;
  EXPECT_TRUE(any_differs);
}

TEST(CpuEngine, RefusesTokensThatDoNotFitBeforeTouchingTheCache) {
  BackendOptions o;
  o.max_kv_tokens = 16;
  auto backend = make_cpu_backend(tiny_weights(), o);
  int s = backend->create_sequence();
  std::vector<std::vector<int>> toks{std::vector<int>(20, 5)};
  int seq_arr[1] = {s};
  EXPECT_THROW(backend->forward(seq_arr, toks, nullptr), std::runtime_error);
  EXPECT_EQ(backend->sequence_length(s), 0);
  toks[0].assign(10, 5);
  backend->forward(seq_arr, toks, nullptr);
  EXPECT_EQ(backend->sequence_length(s), 10);
  toks[0] = {700};  // outside the 640-token vocabulary
  EXPECT_THROW(backend->forward(seq_arr, toks, nullptr), std::invalid_argument);
}

TEST(CpuEngine, PresetRunsAndStaysFinite) {
  // A 2-layer cut of the 1.8b preset's shapes keeps the test fast while using the real widths.
  ModelConfig c = preset_config("internlm2-chat-1_8b");
  c.n_layers = 2;
  c.vocab = 4096;
  auto backend = make_cpu_backend(synthetic_host_weights(c, 7), BackendOptions{});
  auto r = greedy(*backend, {1, 100, 200, 300}, 3, true);
  ASSERT_EQ(r.output_ids.size(), 3u);
  for (float v : r.step_logits) ASSERT_TRUE(std::isfinite(v));
  double ss = 0;
  for (float v : r.step_logits) ss += double(v) * v;
  EXPECT_GT(ss, 0.0);
}

// Dynamic NTK (rope_scaling "dynamic"): inside the trained context the base is rope_theta and the
// logits are those of the unscaled model bit for bit; past it every step rotates at a larger base,
// which moves them. The tiny model's trained context cut to three tokens past the prompt, factor 64
// (the GPU test CudaEngineQuantizedKv.DynamicNtkPastTheTrainedContextFollowsTheCpuBackend uses the
// same setting and leans on this distance to tell a stale RoPE table from a current one).
TEST(CpuEngine, DynamicNtkMovesTheLogitsOnlyPastTheTrainedContext) {
  auto ref = test::load_json(test::data_path("tiny-internlm2-chat/reference.json"));
  const std::vector<int> prompt = ids_of(ref["cases"][0]["prompt_ids"]);
  HostWeights scaled = tiny_weights();
  scaled.config.rope_scaling = RopeScaling::dynamic;
  scaled.config.rope_factor = 64.0;
  scaled.config.max_positions = int(prompt.size()) + 3;
  BackendOptions o;
  o.max_kv_tokens = 2048;
  auto plain = make_cpu_backend(tiny_weights(), o);
  auto ntk = make_cpu_backend(std::move(scaled), o);
  const int vocab = plain->config().vocab;
  const int max_positions = int(prompt.size()) + 3;
  std::vector<int> seq = prompt;
  double smallest_past = 1e30;
  for (int step = 0; step < 16; ++step) {
    std::vector<float> lp(vocab), ln(vocab);
    std::vector<std::vector<int>> toks{seq};
    const int sp = plain->create_sequence(), sn = ntk->create_sequence();
    const int a[1] = {sp}, b[1] = {sn};
    plain->forward(a, toks, lp.data());
    ntk->forward(b, toks, ln.data());
    plain->release_sequence(sp);
    ntk->release_sequence(sn);
    const double d = test::rel_l2(ln, lp);
    if (int(seq.size()) <= max_positions)
      EXPECT_EQ(d, 0.0) << "length " << seq.size() << " is inside the trained context";
    else
      smallest_past = std::min(smallest_past, d);
    seq.push_back(int(std::max_element(lp.begin(), lp.end()) - lp.begin()));
  }
  std::printf("dynamic NTK, factor 64, past the trained context: smallest relative L2 to unscaled %.2e\n",
              smallest_past);
  EXPECT_GT(smallest_past, 3e-2) << "measured 5.3e-2 at the closest step";
}

// Both backends take the config the caller resolved (ModelSource::config), not a reread of the
// checkpoint's config.json: a test or tool that edits it (a cut trained context, RoPE scaling) gets
// the same model on either.
TEST(CpuEngine, FactoryTakesTheSourcesConfig) {
  ModelSource src = resolve_model(test::data_path("tiny-internlm2-chat"));
  src.config.rope_scaling = RopeScaling::dynamic;
  src.config.rope_factor = 64.0;
  src.config.max_positions = 14;
  BackendOptions o;
  o.max_kv_tokens = 256;
  auto b = make_cpu_backend(src, o);
  EXPECT_EQ(b->config().rope_scaling, RopeScaling::dynamic);
  EXPECT_EQ(b->config().rope_factor, 64.0);
  EXPECT_EQ(b->config().max_positions, 14);
}
