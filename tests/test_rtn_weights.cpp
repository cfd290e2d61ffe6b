// rtn_quantize_linears (engine/rtn_weights.h): the CPU reference of a w4a16 preset.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

#include "engine/awq_format.h"
#include "engine/host_weights.h"
#include "engine/model_source.h"
#include "engine/quantize_rtn.h"
#include "engine/rtn_weights.h"

using namespace ridgeline;

namespace {

// The preset shapes are too big for a unit test; the tiny model's shapes with synthetic weights.
ModelConfig small_config() {
  ModelConfig c = preset_config("internlm2-chat-1_8b");
  c.hidden = 256;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 128;
  c.intermediate = 384;
  c.vocab = 64;
  c.n_layers = 2;
  return c;
}

}  // namespace

TEST(RtnWeights, EveryLinearEqualsItsRtnQuantizationReadBackAndNothingElseChanges) {
  const ModelConfig c = small_config();
  const HostWeights before = synthetic_host_weights(c, 7);
  HostWeights after = synthetic_host_weights(c, 7);
  rtn_quantize_linears(after, 128);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights &b = before.layers[l], &a = after.layers[l];
    int k = 0;
    for (auto [wb, wa] :
         {std::pair{&b.wqkv, &a.wqkv}, {&b.wo, &a.wo}, {&b.w1, &a.w1}, {&b.w3, &a.w3}, {&b.w2, &a.w2}}) {
      SCOPED_TRACE("layer " + std::to_string(l) + " linear " + std::to_string(k++));
      const HostTensor expect = awq_dequantize(rtn_quantize(*wb, 128, "test"));
      ASSERT_EQ(wa->shape, wb->shape);
      ASSERT_EQ(wa->data.size(), expect.data.size());
      EXPECT_EQ(std::memcmp(wa->data.data(), expect.data.data(), expect.data.size() * sizeof(float)), 0);
      EXPECT_NE(wa->data, wb->data) << "4-bit weights cannot equal 10-bit synthetic ones";
      // At most 16 levels in a group of 128 inputs.
      std::set<float> levels(wa->data.begin(), wa->data.begin() + 128);
      EXPECT_LE(levels.size(), 16u);
    }
    EXPECT_EQ(a.attention_norm.data, b.attention_norm.data);
    EXPECT_EQ(a.ffn_norm.data, b.ffn_norm.data);
  }
  EXPECT_EQ(after.tok_embeddings.data, before.tok_embeddings.data);
  EXPECT_EQ(after.output.data, before.output.data);
}

TEST(RtnWeights, RefusesAGroupThatDoesNotDivideTheInputsBeforeChangingAnything) {
  HostWeights w = synthetic_host_weights(small_config(), 7);
  const std::vector<float> wqkv = w.layers[0].wqkv.data;
  EXPECT_THROW(rtn_quantize_linears(w, 100), std::invalid_argument);
  EXPECT_EQ(w.layers[0].wqkv.data, wqkv);
}
