// --weights w4a16 on a model without quantization_config: the CPU backend quantizes its layer
// linears at load (round-to-nearest, engine/rtn_weights.h), so it must run exactly as the checkpoint
// `ridgeline quantize --method rtn` writes, and the sweep fills both weight rows from one model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend_factory.h"
#include "engine/checkpoint.h"
#include "engine/cpu_backend.h"
#include "engine/host_weights.h"
#include "engine/quantize.h"
#include "test_util.h"
#include "tests/safetensors_writer.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

const std::string kTiny = test::data_path("tiny-internlm2-chat");

BackendOptions cpu_options(WeightFormat weights) {
  BackendOptions o;
  o.device = DeviceKind::cpu;
  o.formats.weights = weights;
  o.max_sequences = 1;
  o.max_kv_tokens = 64;
  return o;
}

// The logits of every step of a greedy run: the prompt, then `steps` tokens fed back.
std::vector<std::vector<float>> greedy_logits(Backend& b, std::vector<int> prompt, int steps) {
  const int s = b.create_sequence();
  const int seqs[1] = {s};
  std::vector<std::vector<float>> all;
  std::vector<std::vector<int>> tokens{std::move(prompt)};
  for (int i = 0; i <= steps; ++i) {
    std::vector<float> logits(b.config().vocab);
    b.forward(seqs, tokens, logits.data());
    tokens = {{int(std::max_element(logits.begin(), logits.end()) - logits.begin())}};
    all.push_back(std::move(logits));
  }
  return all;
}

}  // namespace

TEST(QuantizeAtLoad, TheCpuBackendRunsAnUnquantizedCheckpointAsItsRtnCheckpoint) {
  ridgeline::testing::TempDir dir;
  QuantizeOptions q;
  q.method = QuantMethod::rtn;
  quantize_model(resolve_model(kTiny), dir.file("rtn"), q);
  const ModelSource fp = resolve_model(kTiny);
  const HostWeights source = load_host_weights(open_checkpoint(kTiny));
  HostWeights rtn = load_host_weights(open_checkpoint(dir.file("rtn")));
  ASSERT_EQ(rtn.config.quant_bits, 4);
  ASSERT_EQ(fp.config.quant_bits, 0);
  // The written checkpoint holds embeddings, norms and head as fp16, and 53 of the bf16 source's
  // embedding and head values lie below fp16's normal range (rounded there); the source's float ones
  // go back in, so that the two paths differ only in how the linears became 4-bit.
  rtn.tok_embeddings = source.tok_embeddings;
  rtn.norm = source.norm;
  rtn.output = source.output;
  for (size_t l = 0; l < rtn.layers.size(); ++l) {
    rtn.layers[l].attention_norm = source.layers[l].attention_norm;
    rtn.layers[l].ffn_norm = source.layers[l].ffn_norm;
  }

  auto at_load = make_cpu_backend(fp, cpu_options(WeightFormat::w4a16));
  auto from_checkpoint = make_cpu_backend(std::move(rtn), cpu_options(WeightFormat::w4a16));
  auto unquantized = make_cpu_backend(fp, cpu_options(WeightFormat::fp16));
  EXPECT_EQ(at_load->formats().weights, WeightFormat::w4a16);

  const std::vector<int> prompt{1, 3, 274, 19, 584, 352, 4, 19, 3, 276, 19};  // reference.json "greeting"
  const auto a = greedy_logits(*at_load, prompt, 6);
  const auto c = greedy_logits(*from_checkpoint, prompt, 6);
  const auto f = greedy_logits(*unquantized, prompt, 6);
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    // The same codes, scales and zeros, read back the same way: the same bits.
    EXPECT_EQ(a[i], c[i]);
    // And they are 4-bit weights, not the float ones.
    EXPECT_GT(test::rel_l2(a[i], f[i]), 1e-4);
  }
}

TEST(QuantizeAtLoad, TheSweepFillsBothWeightRowsFromOneUnquantizedModel) {
  ridgeline::testing::TempDir dir;
  const std::string out = dir.file("run.json");
  const auto r = test::run_cli("sweep --device cpu --model " + test::tiny_model_arg() +
                               " --weights fp16,w4a16 --batch 2 --context 32 --iters 2 --warmup 0 --out " +
                               test::shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("w4a16: " + kTiny +
                               " is unquantized, so its layer linears are quantized to 4 bits at load "
                               "(round-to-nearest, groups of 128"));
  const nlohmann::json j = test::load_json(out);
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["runs"][0]["weights"], "fp16");
  EXPECT_EQ(j["runs"][1]["weights"], "w4a16");
  // The cost model counts the 4-bit linears' bytes (codes, scales and zeros): fewer than fp16's.
  const double fp16_bytes = j["runs"][0]["step"]["bytes"], w4a16_bytes = j["runs"][1]["step"]["bytes"];
  EXPECT_LT(w4a16_bytes, 0.75 * fp16_bytes);
}

TEST(QuantizeAtLoad, AGroupThatDoesNotDivideTheLinearsIsRefusedWithItsReason) {
  const ModelSource fp = resolve_model(kTiny);
  BackendOptions o = cpu_options(WeightFormat::w4a16);
  o.formats.group_size = 96;  // hidden 512 is not a multiple of 96
  EXPECT_THAT([&] { make_cpu_backend(fp, o); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr(
                  "cpu: --weights w4a16 quantizes this checkpoint at load in groups of 96 inputs, which must "
                  "divide every linear's inputs (hidden 512, q_dim 512, intermediate 1408)")));
}
