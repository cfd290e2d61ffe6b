// The cost model and the roofline maths against numbers worked out by hand (in the comments).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "analysis/cost_model.h"
#include "analysis/roofline.h"
#include "engine/model_source.h"
#include "engine/ops.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

// internlm2-chat-1_8b: hidden 2048, 24 layers, 16 heads, 8 KV heads, head_dim 128, intermediate
// 8192, vocab 92544, untied head.
ModelConfig internlm2_1_8b() {
  return preset_config("internlm2-chat-1_8b");
}
// internlm2-chat-7b: hidden 4096, 32 layers, 32 heads, 8 KV heads, head_dim 128, intermediate 14336.
ModelConfig internlm2_7b() {
  return preset_config("internlm2-chat-7b");
}

Formats formats(WeightFormat w = WeightFormat::fp16, KvFormat kv = KvFormat::fp16, int group = 128) {
  Formats f;
  f.weights = w;
  f.group_size = group;
  f.kv = kv;
  return f;
}

StepShape shape(int batch, std::vector<int> context, int new_tokens, const Formats& f = formats()) {
  StepShape s;
  s.batch = batch;
  s.context = std::move(context);
  s.new_tokens_per_seq = new_tokens;
  s.formats = f;
  return s;
}

StepShape decode(int batch, int context, WeightFormat w = WeightFormat::fp16, KvFormat kv = KvFormat::fp16) {
  return shape(batch, {context}, 1, formats(w, kv));
}

// Bytes of one decoder layer's weights as stored (norms included).
double layer_weight_bytes(const ModelConfig& c, const Formats& f) {
  return double(linear_weight_bytes(c.hidden, c.qkv_dim(), f) + linear_weight_bytes(c.q_dim(), c.hidden, f) +
                linear_weight_bytes(c.hidden, 2 * int64_t(c.intermediate), f) +
                linear_weight_bytes(c.intermediate, c.hidden, f)) +
         2.0 * 2 * c.hidden;
}

const OpCost& find_op(const std::vector<OpCost>& ops, const std::string& name) {
  for (const auto& op : ops)
    if (op.name == name) return op;
  throw std::runtime_error("no op " + name);
}

// 1.8b, per layer: linear weights = wqkv 2048*(16+2*8)*128 = 8,388,608 + wo 2048*2048 = 4,194,304
// + w1,w3,w2 3*2048*8192 = 50,331,648 = 62,914,560 weights.
constexpr double kLinearWeightsPerLayer = 2048.0 * (16 + 16) * 128 + 2048.0 * 2048 + 3 * 2048.0 * 8192;
static_assert(kLinearWeightsPerLayer == 62914560.0);
// fp16: 2 B each + two fp16 norm weights of 2048: 125,829,120 + 8,192.
constexpr double kFp16LayerBytes = 2 * kLinearWeightsPerLayer + 2 * 2048 * 2;
static_assert(kFp16LayerBytes == 125837312.0);
// Embedding table = head = 92544*2048*2 = 379,060,224 B; final norm 4,096 B.
constexpr double kTableBytes = 92544.0 * 2048 * 2;
constexpr double kFp16ModelBytes = 2 * kTableBytes + 24 * kFp16LayerBytes + 2048 * 2;
static_assert(kFp16ModelBytes == 3778220032.0);
// w4a16, group 128: 0.5 B per weight = 31,457,280, plus 4 B (fp16 scale + zero) per group per
// output column: wqkv (2048/128)*4096*4 = 262,144; wo 16*2048*4 = 131,072; w13 16*16384*4 =
// 1,048,576; w2 (8192/128)*2048*4 = 524,288; total 1,966,080. Norms stay fp16 (8,192).
constexpr double kW4LayerBytes = 0.5 * kLinearWeightsPerLayer + 1966080.0 + 8192.0;
static_assert(kW4LayerBytes == 33431552.0);
constexpr double kW4ModelBytes = 2 * kTableBytes + 24 * kW4LayerBytes + 2048 * 2;  // tables and head fp16
static_assert(kW4ModelBytes == 1560481792.0);

// Decode GEMM FLOPs per token: 2 per weight of every GEMM = layers + output head (not the
// embedding, which is a row lookup): 2*(24*62,914,560 + 92544*2048) = 3,398,959,104.
constexpr double kGemmFlopsPerToken = 2 * (24 * kLinearWeightsPerLayer + 92544.0 * 2048);
static_assert(kGemmFlopsPerToken == 3398959104.0);

}  // namespace

TEST(CostModel, NamesEveryOpInForwardOrderWithItsKind) {
  auto ops = step_costs(internlm2_1_8b(), decode(1, 16));
  ASSERT_EQ(ops.size(), 4u + 9u * 24u);
  const char* layer_ops[] = {"attention_norm", "wqkv", "rope_kv_write", "attention", "wo",
                             "ffn_norm",       "w13",  "swiglu",        "w2"};
  const char* layer_kinds[] = {"norm", "gemm", "elementwise", "attention", "gemm",
                               "norm", "gemm", "elementwise", "gemm"};
  EXPECT_EQ(ops[0].name, "embed");
  EXPECT_EQ(ops[0].kind, "embed");
  EXPECT_EQ(ops[0].layer, -1);
  for (int l = 0; l < 24; ++l)
    for (int k = 0; k < 9; ++k) {
      const OpCost& op = ops[1 + 9 * l + k];
      EXPECT_EQ(op.name, "layers." + std::to_string(l) + "." + layer_ops[k]);
      EXPECT_EQ(op.kind, layer_kinds[k]) << op.name;
      EXPECT_EQ(op.layer, l) << op.name;
    }
  EXPECT_EQ(ops[217].name, "norm");
  EXPECT_EQ(ops[217].kind, "norm");
  EXPECT_EQ(ops[218].name, "output");
  EXPECT_EQ(ops[218].kind, "gemm");
  EXPECT_EQ(ops[219].name, "sample");
  EXPECT_EQ(ops[219].kind, "sample");
}

TEST(CostModel, Fp16WeightBytesAreTwoPerWeightPlusNorms) {
  ModelConfig c = internlm2_1_8b();
  EXPECT_EQ(layer_weight_bytes(c, formats()), kFp16LayerBytes);
  EXPECT_EQ(weight_bytes(c, formats()), kFp16ModelBytes);
  EXPECT_EQ(weight_bytes(c, formats()), 2.0 * double(c.params()));
  // Tied embeddings: the head is the table, stored once.
  c.tie_word_embeddings = true;
  EXPECT_EQ(weight_bytes(c, formats()), kFp16ModelBytes - kTableBytes);
}

TEST(CostModel, W4a16WeightBytesAreHalfBytePlusGroupScalesAndZeros) {
  ModelConfig c = internlm2_1_8b();
  const Formats w4 = formats(WeightFormat::w4a16);
  EXPECT_EQ(linear_weight_bytes(2048, 4096, w4), 2048.0 * 4096 / 2 + 262144.0);
  EXPECT_EQ(layer_weight_bytes(c, w4), kW4LayerBytes);
  EXPECT_EQ(weight_bytes(c, w4), kW4ModelBytes);
  // Group 64 doubles the scale/zero bytes: 2 * 1,966,080 more per layer minus the group-128 ones.
  EXPECT_EQ(layer_weight_bytes(c, formats(WeightFormat::w4a16, KvFormat::fp16, 64)),
            kW4LayerBytes + 1966080.0);
}

TEST(CostModel, KvBytesPerTokenCountKAndVOfEveryLayerAndHead) {
  // 1.8b fp16: 2 (K,V) * 24 layers * 8 heads * 128 * 2 B = 98,304 B.
  EXPECT_EQ(kv_bytes_per_token(internlm2_1_8b(), KvFormat::fp16), 98304.0);
  // 7b fp16: 2 * 32 * 8 * 128 * 2 B = 131,072 B.
  EXPECT_EQ(kv_bytes_per_token(internlm2_7b(), KvFormat::fp16), 131072.0);
  // int8: 2 * 24 * 8 * (128 * 1 B + 4 B scale/zero) = 384 * 132 = 50,688 B.
  EXPECT_EQ(kv_bytes_per_token(internlm2_1_8b(), KvFormat::int8), 50688.0);
  // int4: 384 * (64 + 4) = 26,112 B.
  EXPECT_EQ(kv_bytes_per_token(internlm2_1_8b(), KvFormat::int4), 26112.0);
  // fp16 : int8 = 256 / 132 = 64/33, a little under 2 because of the scales and zeros.
  EXPECT_DOUBLE_EQ(double(kv_bytes_per_token(internlm2_1_8b(), KvFormat::fp16)) /
                       double(kv_bytes_per_token(internlm2_1_8b(), KvFormat::int8)),
                   64.0 / 33.0);
}

TEST(CostModel, DecodeGemmFlopsAreTwoPerNonEmbeddingWeightPerToken) {
  ModelConfig c = internlm2_1_8b();
  for (int batch : {1, 8}) {
    auto ops = step_costs(c, decode(batch, 512));
    double gemm = 0;
    for (const auto& op : ops)
      if (op.kind == "gemm") gemm += op.flops;
    EXPECT_EQ(gemm, batch * kGemmFlopsPerToken);
    // params() minus the embedding table: every other weight is multiplied once per token.
    EXPECT_EQ(gemm, batch * 2.0 * double(c.params() - int64_t(c.vocab) * c.hidden - 24 * 2 * 2048 - 2048));
  }
}

// Per-op bytes at the 1.8b shape, decode, batch 1, context 1024, fp16, worked out from what each
// kernel reads and writes (the header comment of its kernels/*.cu file): the float32 residual
// stream (4 B), fp16 activations (2 B), float32 logits, int32 ids and indices, one block-table
// entry per 64 cached tokens. One test per op kind.
namespace {
constexpr double kH = 2048, kQkv = 4096, kInter = 8192, kVocab = 92544;
const std::vector<OpCost>& b1_ctx1024() {
  static const auto ops = step_costs(internlm2_1_8b(), decode(1, 1024));
  return ops;
}
}  // namespace

TEST(CostModelBytes, EmbedReadsItsIdAndRowAndWritesTheFloat32Residual) {
  // id 4 + row 2048*2 (fp16 table) + residual 2048*4 = 12,292.
  EXPECT_EQ(find_op(b1_ctx1024(), "embed").bytes, 4 + kH * 2 + kH * 4);
}

TEST(CostModelBytes, NormsReadAndWriteTheFloat32ResidualAndWriteFp16) {
  // layers.0.attention_norm adds nothing yet: reads the residual (4 B) and the weight, writes x (2 B).
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.0.attention_norm").bytes, kH * 4 + kH * 2 + kH * 2);
  // Every later norm, the final one included: residual read + written (4 + 4), the sublayer output
  // read (2), x written (2): 12 B per element, + the fp16 weight: 28,672.
  for (const char* name : {"layers.1.attention_norm", "layers.5.ffn_norm", "layers.0.ffn_norm", "norm"})
    EXPECT_EQ(find_op(b1_ctx1024(), name).bytes, kH * 12 + kH * 2) << name;
}

TEST(CostModelBytes, GemmsReadInputAndWeightsAndWriteTheirOutput) {
  // wqkv: x 2048*2 + W 4096*2048*2 + qkv 4096*2 = 16,789,504.
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.3.wqkv").bytes, kH * 2 + kQkv * kH * 2 + kQkv * 2);
  // w13: x + W [16384, 2048] + gate_up 16384*2 = 67,145,728.
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.3.w13").bytes, kH * 2 + 2 * kInter * kH * 2 + 2 * kInter * 2);
  // output: x + the fp16 head + float32 logits: 2048*2 + 92544*2048*2 + 92544*4 = 379,434,496.
  EXPECT_EQ(find_op(b1_ctx1024(), "output").bytes, kH * 2 + kVocab * kH * 2 + kVocab * 4);
}

TEST(CostModelBytes, RopeKvWriteAndSwigluMoveTheirActivationsAndTheNewKv) {
  // rope_kv_write: qkv 4096*2 + slot, position, block-table entry 3*4 + q 2048*2 + K and V of the
  // new token 2 * 8 heads * 128 * 2 = 20,396.
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.3.rope_kv_write").bytes, kQkv * 2 + 12 + kH * 2 + 2 * 8 * 128 * 2);
  // swiglu: gate_up 16384*2 read, act 8192*2 written = 49,152.
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.3.swiglu").bytes, 2 * kInter * 2 + kInter * 2);
}

TEST(CostModelBytes, DecodeAttentionReadsTheWholeContextOnce) {
  // q 2048*2 + slot and context length 8 + 16 block-table entries 64 + K and V 1024 * 4,096 + out
  // 2048*2 = 4,202,568.
  EXPECT_EQ(find_op(b1_ctx1024(), "layers.3.attention").bytes, kH * 2 + 8 + 64 + 1024 * 4096.0 + kH * 2);
}

TEST(CostModelBytes, SampleReadsFloat32LogitsAndWritesOneId) {
  EXPECT_EQ(find_op(b1_ctx1024(), "sample").bytes, kVocab * 4 + 4);
}

TEST(CostModelBytes, EveryOpsBytesAreTheSumOfItsOpTableTensors) {
  const ModelConfig c = internlm2_1_8b();
  const StepShape s = decode(4, 1000, WeightFormat::w4a16, KvFormat::int8);
  const auto ops = step_ops(c, s);
  const auto costs = step_costs(c, s);
  ASSERT_EQ(ops.size(), costs.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    int64_t sum = 0;
    for (const Tensor& t : ops[i].reads) sum += bytes(t);
    for (const Tensor& t : ops[i].writes) sum += bytes(t);
    EXPECT_EQ(costs[i].bytes, double(sum)) << ops[i].name;
    EXPECT_EQ(costs[i].name, ops[i].name);
  }
  // The sum above holds by construction (step_costs adds up the op table's tensors); what the
  // tensors are is checked by hand here for this format pair. wqkv: x 4*2048*2 + the 4-bit weight
  // 2048*4096/2 + 262,144 (scales and zeros) + qkv 4*4096*2 = 4,505,600. Attention: q 4*2048*2 +
  // slots and context lengths 2*4*4 + 4*16 block-table entries 256 + K and V of 4*1000 tokens at
  // 2*8*(128 + 4) = 2,112 B + out 4*2048*2 = 8,481,056.
  EXPECT_EQ(find_op(costs, "layers.0.wqkv").bytes, 4505600.0);
  EXPECT_EQ(find_op(costs, "layers.0.attention").bytes, 8481056.0);
}

TEST(CostModel, DecodeStepTotalsMatchHandCount) {
  // Batch 1, context 1024, fp16.
  // FLOPs: GEMMs 3,398,959,104
  //  + attention 24 layers * 16 heads * 1024 keys * (4*128 + 5) = 203,292,672
  //  + norms: layer 0 attention_norm 4*2048 (no residual add yet), the other 47 layer norms and the
  //    final norm 5*2048 each: 8,192 + 48*10,240 = 499,712
  //  + rope 24 * 6 * (2048 + 1024) = 442,368; swiglu 24 * 5 * 8192 = 983,040; sample 3 * 92544 = 277,632
  //  = 3,604,454,528.
  constexpr double kFlops = 3398959104.0 + 203292672.0 + 499712.0 + 442368.0 + 983040.0 + 277632.0;
  static_assert(kFlops == 3604454528.0);
  // Bytes: weights read = everything but the embedding table (3,778,220,032 - 379,060,224 =
  // 3,399,159,808), plus per sequence (the tests above): embed 12,292; a layer 24,576 (attention
  // norm) + 12,288 (wqkv activations) + 16,396 (rope_kv_write) + 8,200 + 64 + 1024*4,096 (attention)
  // + 8,192 (wo) + 24,576 (ffn_norm) + 36,864 (w13) + 49,152 (swiglu) + 20,480 (w2), layer 0's
  // attention norm 12,288 less; final norm 24,576; output 4,096 + 370,176; sample 370,180:
  // 5,389,608 + 24 * 8,264 + 24 * 4,194,304 = 106,251,240.
  constexpr double kPerSequence = 5389608.0 + 24 * 8264.0 + 24 * 1024 * 4096.0;
  static_assert(kPerSequence == 106251240.0);
  constexpr double kBytes = (kFp16ModelBytes - kTableBytes) + kPerSequence;
  static_assert(kBytes == 3505411048.0);
  CostTotals t = total(step_costs(internlm2_1_8b(), decode(1, 1024)));
  EXPECT_EQ(t.flops, kFlops);
  EXPECT_EQ(t.bytes, kBytes);
  EXPECT_EQ(t.count, 220);
}

TEST(CostModel, SingleOpsMatchHandCount) {
  auto ops = step_costs(internlm2_1_8b(), decode(4, 1024));
  // wqkv at batch 4: 2*4*2048*4096 FLOPs; weights 16,777,216 B + x 4*2048*2 + out 4*4096*2.
  EXPECT_EQ(find_op(ops, "layers.3.wqkv").flops, 2.0 * 4 * 2048 * 4096);
  EXPECT_EQ(find_op(ops, "layers.3.wqkv").bytes, 16777216.0 + 16384.0 + 32768.0);
  // attention: KV of 4 sequences * 1024 tokens * 4,096 B + q and out 2 * 4*2048*2 + slots and
  // context lengths 4*8 + 4*16 block-table entries.
  EXPECT_EQ(find_op(ops, "layers.3.attention").bytes, 4 * 1024 * 4096.0 + 32768.0 + 32 + 256);
  EXPECT_EQ(find_op(ops, "layers.3.attention").flops, 16.0 * 4 * 1024 * (4 * 128 + 5));
  // The output head is fp16 even when the layers are w4a16.
  auto w4 = step_costs(internlm2_1_8b(), decode(4, 1024, WeightFormat::w4a16));
  EXPECT_EQ(find_op(w4, "output").bytes, find_op(ops, "output").bytes);
  EXPECT_LT(find_op(w4, "layers.3.w2").bytes, 0.3 * find_op(ops, "layers.3.w2").bytes);
}

TEST(CostModel, QuantizedKvShrinksAttentionAndCacheWriteBytes) {
  auto fp16 = step_costs(internlm2_1_8b(), decode(2, 1000));
  auto int8 = step_costs(internlm2_1_8b(), decode(2, 1000, WeightFormat::fp16, KvFormat::int8));
  auto int4 = step_costs(internlm2_1_8b(), decode(2, 1000, WeightFormat::fp16, KvFormat::int4));
  // Per token per layer the cache holds 2*8*(128*2) = 4,096 B in fp16, 2*8*(128+4) = 2,112 B in
  // int8 and 2*8*(64+4) = 1,088 B in int4.
  EXPECT_EQ(find_op(fp16, "layers.0.attention").bytes - find_op(int8, "layers.0.attention").bytes,
            2 * 1000 * (4096.0 - 2112.0));
  EXPECT_EQ(find_op(fp16, "layers.0.attention").bytes - find_op(int4, "layers.0.attention").bytes,
            2 * 1000 * (4096.0 - 1088.0));
  EXPECT_EQ(find_op(fp16, "layers.0.rope_kv_write").bytes - find_op(int8, "layers.0.rope_kv_write").bytes,
            2 * (4096.0 - 2112.0));
  EXPECT_EQ(find_op(fp16, "layers.0.attention").flops, find_op(int8, "layers.0.attention").flops);
}

TEST(CostModel, PrefillCountsOnlyTheCausalTriangle) {
  ModelConfig c = internlm2_1_8b();
  // A fresh 4-token prompt: queries see 1, 2, 3, 4 keys = 10 pairs per head.
  EXPECT_EQ(find_op(step_costs(c, shape(1, {4}, 4)), "layers.0.attention").flops, 16.0 * 10 * (4 * 128 + 5));
  // 4 new tokens after 6 cached ones (context 10): 7+8+9+10 = 34 pairs, 10 tokens of KV read, plus
  // per token a slot and a position (4*8 B) and one block-table entry (4 B).
  auto ops = step_costs(c, shape(1, {10}, 4));
  EXPECT_EQ(find_op(ops, "layers.0.attention").flops, 16.0 * 34 * (4 * 128 + 5));
  EXPECT_EQ(find_op(ops, "layers.0.attention").bytes, 10 * 4096.0 + 2 * 4 * 2048 * 2 + 4 * 8 + 4);
  // GEMMs see every new token; the head only the last one of the sequence.
  EXPECT_EQ(find_op(ops, "layers.0.w2").flops, 2.0 * 4 * 8192 * 2048);
  EXPECT_EQ(find_op(ops, "output").flops, 2.0 * 1 * 2048 * 92544);
  // The final norm runs over every new row (the kernel does); only the head is per sequence.
  EXPECT_EQ(find_op(ops, "norm").bytes, 4 * 2048 * 12.0 + 2048 * 2);
  // Several sequences: their last rows are gathered (read, written, read again) before the head.
  auto two = step_costs(c, shape(2, {10}, 4));
  EXPECT_EQ(find_op(two, "output").bytes, 2 * 2048 * 2 * 3.0 + 92544 * 2048 * 2.0 + 2 * 92544 * 4.0);
}

TEST(CostModel, PrefillChunksFollowTheBackendsPacking) {
  // One pass when the prefill fits a chunk, or without chunks.
  EXPECT_EQ(prefill_chunks(1, 2048, 4096).chunks, 1);
  EXPECT_EQ(prefill_chunks(256, 512, 0).chunks, 1);
  // 16 x 512 = 8192 rows: two chunks of whole sequences, each with 8 sequences ending: the head in both.
  PrefillChunks p = prefill_chunks(16, 512, 4096);
  EXPECT_EQ(p.chunks, 2);
  EXPECT_EQ(p.head_chunks, 2);
  EXPECT_EQ(p.kv_reread_tokens, 0);
  // One 5000-token prompt: its second piece re-reads the first 4096 rows; the head runs once.
  p = prefill_chunks(1, 5000, 4096);
  EXPECT_EQ(p.chunks, 2);
  EXPECT_EQ(p.head_chunks, 1);
  EXPECT_EQ(p.kv_reread_tokens, 4096);
  // 3 x 3000 = 9000 rows in chunks of 4096, 4096, 808: sequence 1 crosses the first boundary after
  // 1096 of its tokens, sequence 2 the second after 2192; each chunk sees a sequence end.
  p = prefill_chunks(3, 3000, 4096);
  EXPECT_EQ(p.chunks, 3);
  EXPECT_EQ(p.head_chunks, 3);
  EXPECT_EQ(p.kv_reread_tokens, 1096 + 2192);
}

TEST(CostModel, AChunkedPrefillReadsTheWeightsOnceAChunk) {
  ModelConfig c = internlm2_1_8b();
  StepShape one = shape(16, {512}, 512);
  StepShape chunked = one;
  chunked.prefill_chunk_tokens = 4096;
  const auto a = step_costs(c, one), b = step_costs(c, chunked);
  // Two chunks, the head in both: one more pass over every weight but the embeddings (by hand:
  // 24 layers x (wqkv 4096 + wo 2048 + w13 16384 + w2 8192 rows of 2048) x 2 B, the 24 x 2 norm
  // weights, the final norm's and the head's 92544 x 2048 x 2 B).
  const double extra =
      24.0 * (4096 + 2048 + 16384 + 8192) * 2048 * 2 + 24.0 * 2 * 2048 * 2 + 2048 * 2 + 92544.0 * 2048 * 2;
  EXPECT_EQ(extra, 3399159808.0);
  EXPECT_EQ(total(b).bytes - total(a).bytes, extra);
  EXPECT_EQ(find_op(b, "embed").bytes, find_op(a, "embed").bytes);
  EXPECT_EQ(total(b).flops, total(a).flops);
  // A sequence continued into the next chunk re-reads its earlier K/V rows there: one 5000-token
  // prompt re-reads 4096 rows of every layer's attention (fp16: 2 x 8 heads x 128 x 2 B a row).
  StepShape long_one = shape(1, {5000}, 5000);
  long_one.prefill_chunk_tokens = 4096;
  const auto l = step_costs(c, long_one), l1 = step_costs(c, shape(1, {5000}, 5000));
  EXPECT_EQ(find_op(l, "layers.3.attention").bytes - find_op(l1, "layers.3.attention").bytes, 4096.0 * 4096);
  // The head runs in the one chunk where the prompt ends: not read again.
  EXPECT_EQ(find_op(l, "output").bytes, find_op(l1, "output").bytes);
  // Decode steps are never chunked.
  StepShape decode = shape(256, {1024}, 1);
  decode.prefill_chunk_tokens = 4096;
  EXPECT_EQ(total(step_costs(c, decode)).bytes, total(step_costs(c, shape(256, {1024}, 1))).bytes);
}

TEST(CostModel, TotalsEqualTheSumOfOpsPerLayerAndPerKind) {
  ModelConfig c = internlm2_1_8b();
  StepShape mixed = shape(3, {100, 2000, 37}, 1, formats(WeightFormat::w4a16, KvFormat::int8));
  auto ops = step_costs(c, mixed);
  double flops = 0, bytes = 0;
  for (const auto& op : ops) {
    flops += op.flops;
    bytes += op.bytes;
  }
  CostTotals t = total(ops);
  EXPECT_DOUBLE_EQ(t.flops, flops);
  EXPECT_DOUBLE_EQ(t.bytes, bytes);
  EXPECT_DOUBLE_EQ(t.intensity(), flops / bytes);

  auto layers = totals_by_layer(ops);
  ASSERT_EQ(layers.size(), 25u);  // 24 layers + the global ops under -1
  EXPECT_EQ(layers.at(-1).count, 4);
  EXPECT_EQ(layers.at(5).count, 9);
  double lf = 0, lb = 0;
  for (const auto& [layer, tot] : layers) {
    lf += tot.flops;
    lb += tot.bytes;
  }
  EXPECT_DOUBLE_EQ(lf, flops);
  EXPECT_DOUBLE_EQ(lb, bytes);

  auto kinds = totals_by_kind(ops);
  std::vector<std::string> names;
  double kf = 0, kb = 0;
  int count = 0;
  for (const auto& [kind, tot] : kinds) {
    names.push_back(kind);
    kf += tot.flops;
    kb += tot.bytes;
    count += tot.count;
  }
  EXPECT_THAT(names, ::testing::ElementsAre("embed", "norm", "gemm", "elementwise", "attention", "sample"));
  EXPECT_EQ(count, 220);
  EXPECT_DOUBLE_EQ(kf, flops);
  EXPECT_DOUBLE_EQ(kb, bytes);
  // Per-sequence contexts: attention reads 100 + 2000 + 37 tokens of KV per layer, and 2 + 32 + 1
  // block-table entries.
  EXPECT_EQ(find_op(ops, "layers.0.attention").bytes,
            2137 * 2.0 * 8 * (128 + 4) + 2 * 3 * 2048 * 2 + 3 * 8 + 35 * 4);
}

TEST(CostModel, RejectsInconsistentShapes) {
  ModelConfig c = internlm2_1_8b();
  auto error_of = [&](const StepShape& s) {
    try {
      step_costs(c, s);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(error_of(shape(4, {10, 20}, 1)), HasSubstr("2 context lengths"));
  EXPECT_THAT(error_of(shape(1, {3}, 4)), HasSubstr("shorter than the 4 new"));
  EXPECT_THAT(error_of(shape(0, {3}, 1)), HasSubstr("batch must be > 0"));
  EXPECT_THAT(error_of(shape(1, {3}, 1, formats(WeightFormat::w4a16, KvFormat::fp16, 0))),
              HasSubstr("group_size"));
  EXPECT_THROW(parse_weight_format("int4"), std::invalid_argument);
  EXPECT_EQ(parse_kv_format("int8"), KvFormat::int8);
  EXPECT_EQ(parse_kv_format("int4"), KvFormat::int4);
  EXPECT_STREQ(to_string(parse_weight_format("w4a16")), "w4a16");
}

TEST(CostModel, PredictsGemmRidgeBatchOf1_8bFp16ByHand) {
  // Ridge of 3000 GB/s / 700 TFLOP/s: 700e12 / 3000e9 = 233.33 FLOP/B.
  Ceilings ceil{3000, 700, "datasheet"};
  double r = 700e12 / 3000e9;
  // GEMMs at batch B: flops = B * 3,398,959,104; bytes = weights 3,398,959,104 (fp16: 2 B per weight,
  // as many bytes as FLOPs per token) + B * activations b1, where b1 per layer = (2048+4096 +
  // 2048+2048 + 2048+16384 + 8192+2048)*2 = 77,824, times 24 = 1,867,776, + head 2048*2 + float32
  // logits 92544*4 = 374,272: b1 = 2,242,048. B*f/(W + B*b1) = r  =>  B = r / (1 - r*b1/f) = 275.78.
  double b1 = 24 * 77824.0 + 374272.0;
  double expected = r / (1 - r * b1 / kGemmFlopsPerToken);
  EXPECT_NEAR(expected, 275.78, 0.01);
  auto b = predicted_ridge_batch(internlm2_1_8b(), formats(), 1024, ceil, "gemm");
  ASSERT_TRUE(b.has_value());
  EXPECT_NEAR(*b, expected, 1e-6 * expected);
  // The cost model at the integer batches around it brackets the ridge.
  auto gemm_intensity = [&](int batch) {
    CostTotals t;
    for (const auto& op : step_costs(internlm2_1_8b(), decode(batch, 1024)))
      if (op.kind == "gemm") t.add(op);
    return t.intensity();
  };
  EXPECT_LT(gemm_intensity(275), r);
  EXPECT_GE(gemm_intensity(276), r);
}

TEST(CostModel, PredictsTheCudaRidgeFromTheOpTableTheCudaBackendRuns) {
  // The H200 ceilings of the 7b baseline (ridge 172.1 FLOP/B), 7b at context 1024 with an int8 cache:
  // past 16 rows the CUDA step rotates and writes K/V inside attention (rope_in_attention), so no q
  // round trip; the unfused table (the CPU's) crossed at B = 2078.6, the reports' figure before.
  const Ceilings ceil{4595.86799672321, 790.9700502480932, "measured"};
  const ModelConfig c = internlm2_7b();
  const Formats f = formats(WeightFormat::fp16, KvFormat::int8);
  const auto unfused = predicted_ridge_batch(c, f, 1024, ceil);
  const auto fused = predicted_ridge_batch(c, f, 1024, ceil, "", true);
  ASSERT_TRUE(unfused && fused);
  EXPECT_NEAR(*unfused, 2078.56, 0.01);
  EXPECT_NEAR(*fused, 1937.3, 0.1);  // the audit's hand figure
  // The fused op table's own intensity brackets the fused prediction at the integer batches.
  auto step_intensity = [&](int batch) {
    StepShape s = decode(batch, 1024, WeightFormat::fp16, KvFormat::int8);
    s.fusions = cuda_fusions(c, s);
    return total(step_costs(c, s)).intensity();
  };
  const int below = int(std::floor(*fused));
  EXPECT_LT(step_intensity(below), ceil.ridge());
  EXPECT_GE(step_intensity(below + 1), ceil.ridge());
}

TEST(CostModel, PredictsNoStepRidgeWhenLongContextAttentionDominates) {
  // At context 1024, each sequence adds 3,604,454,528 FLOPs but 106,251,240 B (100,663,296 of KV +
  // the rest): the step's intensity tends to 33.9 FLOP/B as the batch grows, below the 233.3 ridge,
  // so decode never turns compute-bound.
  Ceilings ceil{3000, 700, "datasheet"};
  EXPECT_LT(3604454528.0 / 106251240.0, 34.0);
  EXPECT_FALSE(predicted_ridge_batch(internlm2_1_8b(), formats(), 1024, ceil).has_value());
}

TEST(CostModel, PredictsStepRidgeAtShortContextByHand) {
  // Context 16: per sequence f1 = 3,398,959,104 (GEMMs) + 24*16*16*517 = 3,176,448 (attention) +
  // 499,712 + 442,368 + 983,040 + 277,632 (norms, rope, swiglu, sample) = 3,404,338,304 FLOPs and
  // b1 = 5,389,608 + 24 * (8,200 + 4) (attention's q, out, indices, one block-table entry) +
  // 24*16*4,096 (KV) = 7,159,368 B; fixed bytes w = 3,399,159,808 (weights).
  // B = r*w / (f1 - r*b1) = 457.45.
  Ceilings ceil{3000, 700, "datasheet"};
  double r = 700e12 / 3000e9;
  double f1 = 3404338304.0, b1 = 7159368.0, w = 3399159808.0;
  double expected = r * w / (f1 - r * b1);
  EXPECT_NEAR(expected, 457.45, 0.01);
  auto b = predicted_ridge_batch(internlm2_1_8b(), formats(), 16, ceil);
  ASSERT_TRUE(b.has_value());
  EXPECT_NEAR(*b, expected, 1e-6 * expected);
  EXPECT_LT(total(step_costs(internlm2_1_8b(), decode(457, 16))).intensity(), r);
  EXPECT_GE(total(step_costs(internlm2_1_8b(), decode(458, 16))).intensity(), r);
  // W4A16 GEMMs read 0.5*24*62,914,560 + 24*1,966,080 (scales, zeros) + 379,060,224 (fp16 head)
  // = 1,181,220,864 B of weights for the same FLOPs: B = r*W / (f - r*b1) with the GEMM f and b1
  // of the test above = 95.84, about 3x sooner than fp16 (the fp16 head keeps it from 4x).
  double w4_weights = 0.5 * 24 * kLinearWeightsPerLayer + 24 * 1966080.0 + kTableBytes;
  double w4_expected = r * w4_weights / (kGemmFlopsPerToken - r * (24 * 77824.0 + 374272.0));
  EXPECT_NEAR(w4_expected, 95.84, 0.01);
  auto w4 = predicted_ridge_batch(internlm2_1_8b(), formats(WeightFormat::w4a16), 16, ceil, "gemm");
  ASSERT_TRUE(w4.has_value());
  EXPECT_NEAR(*w4, w4_expected, 1e-6 * w4_expected);
}

TEST(Roofline, PointFollowsDesignFormulas) {
  Ceilings c{3000, 700, "measured"};
  // 1e9 FLOPs, 1e8 B in 100 µs: intensity 10; 1e8 B / 1e-4 s = 1000 GB/s = 1/3 of the roof;
  // 1e9 / 1e-4 s = 10 TFLOP/s; roofline time max(1e8/3e12 s, 1e9/7e14 s) = 33.33 µs; memory-bound.
  RooflinePoint p = roofline_point(1e9, 1e8, 100, c);
  EXPECT_DOUBLE_EQ(p.arithmetic_intensity, 10);
  EXPECT_DOUBLE_EQ(p.achieved_GBps, 1000);
  EXPECT_DOUBLE_EQ(p.bandwidth_utilization, 1.0 / 3);
  EXPECT_DOUBLE_EQ(p.achieved_tflops, 10);
  EXPECT_DOUBLE_EQ(p.compute_utilization, 10.0 / 700);
  EXPECT_DOUBLE_EQ(p.roofline_time_us, 1e8 / 3e12 * 1e6);
  EXPECT_DOUBLE_EQ(p.roofline_efficiency, p.roofline_time_us / 100);
  EXPECT_EQ(p.bound, "memory");
  // 1e12 FLOPs over 1e9 B: intensity 1000 > 233.3, compute-bound, roof time 1e12/7e14 s.
  RooflinePoint q = roofline_point(1e12, 1e9, 2000, c);
  EXPECT_EQ(q.bound, "compute");
  EXPECT_DOUBLE_EQ(q.roofline_time_us, 1e12 / 7e14 * 1e6);
  EXPECT_DOUBLE_EQ(c.ridge(), 700e12 / 3000e9);
  EXPECT_THROW(roofline_point(1, 1, 0, c), std::runtime_error);
}

TEST(Roofline, MeasuredCeilingsTakeTheFasterOfCopyAndReadStream) {
  Ceilings c = measured_ceilings(3010, 3150, 760);
  EXPECT_EQ(c.peak_GBps, 3150);
  EXPECT_EQ(c.source, "measured");
  EXPECT_EQ(c.copy_GBps, 3010);
}

TEST(Roofline, SummarizeInterpolatesPercentilesLinearly) {
  // Sorted 1..5: p10 at position 0.4 -> 1.4, median 3, p90 at position 3.6 -> 4.6.
  TimeStats t = summarize({5, 1, 4, 2, 3});
  EXPECT_DOUBLE_EQ(t.median, 3);
  EXPECT_DOUBLE_EQ(t.p10, 1.4);
  EXPECT_DOUBLE_EQ(t.p90, 4.6);
  EXPECT_EQ(t.n, 5);
  EXPECT_DOUBLE_EQ(summarize({4, 1, 3, 2}).median, 2.5);
  EXPECT_THROW(summarize({}), std::runtime_error);
}

TEST(Roofline, InterpolatesRidgeBatchLogLinearly) {
  // Intensity proportional to batch: log-log interpolation is exact.
  std::vector<double> b{1, 4, 16, 64}, ai{2, 8, 32, 128};
  EXPECT_NEAR(*interpolate_ridge_batch(b, ai, 16), 8, 1e-12);
  EXPECT_NEAR(*interpolate_ridge_batch(b, ai, 100), 50, 1e-9);
  EXPECT_EQ(*interpolate_ridge_batch(b, ai, 1), 1);  // already compute-bound at the first batch
  EXPECT_FALSE(interpolate_ridge_batch(b, ai, 500).has_value());
  EXPECT_THROW(interpolate_ridge_batch({1, 1}, {1, 2}, 1.5), std::runtime_error);
}

namespace {

// A step on an ideal roofline at effective ceilings (bw B/µs, f FLOP/µs): 1 GB of weights plus 1 MB
// per sequence, 2 GFLOP per sequence.
std::vector<RidgeSample> ideal_steps(double bw, double f, std::vector<double> batches) {
  std::vector<RidgeSample> s;
  for (double b : batches) {
    double flops = 2e9 * b, bytes = 1e9 + 1e6 * b;
    s.push_back({b, flops, bytes, std::max(bytes / bw, flops / f)});
  }
  return s;
}

}  // namespace

TEST(Roofline, MeasuredRidgeBatchIsTheKneeOfTheMeasuredRoofline) {
  // Effective ceilings 1.6e6 B/µs (1600 GB/s) and 4e8 FLOP/µs (400 TFLOP/s): ridge 250 FLOP/B,
  // reached where 2e9 B / (1e9 + 1e6 B) = 250, B = 2.5e11/1.75e9 = 142.857, found exactly between
  // the measured batches 64 and 256 because flops and bytes are affine in the batch.
  auto samples = ideal_steps(1.6e6, 4e8, {1, 4, 16, 64, 256});
  auto b = measured_ridge_batch(samples, 250);
  ASSERT_TRUE(b.has_value());
  EXPECT_NEAR(*b, 2.5e11 / 1.75e9, 1e-9);
  // Order does not matter.
  std::reverse(samples.begin(), samples.end());
  EXPECT_NEAR(*measured_ridge_batch(samples, 250), *b, 1e-9);
  // Efficiencies below 1 on both roofs in the same proportion leave the knee where it was: the
  // measured ridge intensity is a ratio of achieved rates.
  EXPECT_NEAR(*measured_ridge_batch(ideal_steps(0.8 * 1.6e6, 0.8 * 4e8, {1, 4, 16, 64, 256}), 250), *b, 1e-9);
  // A weaker achieved compute roof (300 TFLOP/s against 1600 GB/s: ridge 187.5 FLOP/B) moves the knee
  // to smaller batches: 2e9 B / (1e9 + 1e6 B) = 187.5 at B = 1.875e11 / 1.8125e9 = 103.45.
  auto weaker = measured_ridge_batch(ideal_steps(1.6e6, 3e8, {1, 4, 16, 64, 256}), 250);
  ASSERT_TRUE(weaker.has_value());
  EXPECT_NEAR(*weaker, 1.875e11 / 1.8125e9, 1e-9);
}

TEST(Roofline, MeasuredRidgeBatchIsAbsentWhileTheStepRidesTheBandwidthRoof) {
  // Compute roof so high that every batch up to 256 stays memory-bound.
  EXPECT_FALSE(measured_ridge_batch(ideal_steps(1.6e6, 1e12, {1, 4, 16, 64, 256}), 250).has_value());
  // A single batch cannot locate a knee.
  EXPECT_FALSE(measured_ridge_batch(ideal_steps(1.6e6, 4e8, {256}), 250).has_value());
  // Bandwidth lost below the device's ridge intensity is inefficiency, not a compute roof: here the
  // larger batches run at 70% of the small-batch bandwidth while their intensity stays under 500.
  auto slow = ideal_steps(1.6e6, 1e12, {1, 4, 16, 64, 256});
  for (size_t i = 2; i < slow.size(); ++i) slow[i].time_us /= 0.7;
  EXPECT_FALSE(measured_ridge_batch(slow, 500).has_value());
  // The same measurements against a device ridge of 100 FLOP/B: the knee is real.
  EXPECT_TRUE(measured_ridge_batch(slow, 100).has_value());
}
