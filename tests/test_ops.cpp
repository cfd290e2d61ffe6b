// The op table (engine/ops.h) as the contract both backends follow: its names, order and count,
// the tensors it says each op moves, the weights it says a model stores, and the CPU backend running
// exactly its ops in its order. The CUDA backend's side is tests/gpu/test_cuda_engine.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine/backend_factory.h"
#include "engine/cpu_backend.h"
#include "engine/formats.h"
#include "engine/model_source.h"
#include "engine/ops.h"
#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

ModelSource tiny() {
  return resolve_model(test::data_path("tiny-internlm2-chat"));
}

std::vector<std::string> names(const std::vector<Op>& ops) {
  std::vector<std::string> v;
  for (const Op& op : ops) v.push_back(op.name);
  return v;
}

const Tensor* find_tensor(const std::vector<Tensor>& ts, const std::string& name) {
  for (const Tensor& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

TEST(OpTable, DecodeStepIsEmbedNinePerLayerThenNormOutputSample) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  const auto ops = step_ops(c, StepShape{});
  ASSERT_EQ(ops.size(), 1u + 9u * 24u + 3u);
  EXPECT_EQ(ops.front().name, "embed");
  EXPECT_EQ(ops[1].name, "layers.0.attention_norm");
  EXPECT_EQ(ops[9].name, "layers.0.w2");
  EXPECT_EQ(ops[10].name, "layers.1.attention_norm");
  EXPECT_EQ(ops[ops.size() - 3].name, "norm");
  EXPECT_EQ(ops[ops.size() - 2].name, "output");
  EXPECT_EQ(ops.back().name, "sample");
  for (const Op& op : ops) {
    EXPECT_EQ(op.name, op_name(op.type, op.layer));
    EXPECT_EQ(op.kind, kind_of(op.type));
    EXPECT_FALSE(op.reads.empty()) << op.name;
    EXPECT_FALSE(op.writes.empty()) << op.name;
  }
  // A prefill step has the same ops.
  StepShape prefill;
  prefill.batch = 2;
  prefill.context = {100};
  prefill.new_tokens_per_seq = 100;
  EXPECT_EQ(names(step_ops(c, prefill)), names(ops));
}

TEST(OpTable, OpNamesAreFormattedOnceAndRefuseWhatIsNotThere) {
  const OpNames n(3);
  EXPECT_EQ(n(OpType::wqkv, 2), "layers.2.wqkv");
  EXPECT_EQ(n(OpType::embed), "embed");
  EXPECT_EQ(n.layer(1), "layers.1");
  EXPECT_THROW(n(OpType::wqkv, 3), std::out_of_range);
  EXPECT_THROW(n(OpType::wqkv), std::out_of_range);  // a layer op needs its layer
  EXPECT_THROW(op_name(OpType::w2), std::invalid_argument);
}

TEST(OpTable, TensorsCarryTheFormatsTheKernelsStore) {
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  StepShape s;
  s.batch = 2;
  s.context = {300};
  s.formats.weights = WeightFormat::w4a16;
  s.formats.kv = KvFormat::int4;
  const auto ops = step_ops(c, s);
  const Op& rope = ops[3];
  ASSERT_EQ(rope.name, "layers.0.rope_kv_write");
  const Tensor* k = find_tensor(rope.writes, "layers.0.k_cache");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->dtype, Dtype::q4);
  EXPECT_EQ(k->shape, (std::vector<int64_t>{2, 8, 128}));
  EXPECT_EQ(k->group, 128);
  // 2 tokens * 8 heads * 128 codes at half a byte + 16 (scale, zero) pairs of 4 B.
  EXPECT_EQ(bytes(*k), 2 * 8 * 64 + 16 * 4);
  const Op& wqkv = ops[2];
  const Tensor* w = find_tensor(wqkv.reads, "layers.0.wqkv.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, Dtype::q4);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{4096, 2048}));
  EXPECT_EQ(bytes(*w), 4096 * 2048 / 2 + 4096 * 16 * 4);
  const Tensor* residual = find_tensor(ops[1].reads, "residual");
  ASSERT_NE(residual, nullptr);
  EXPECT_EQ(residual->dtype, Dtype::f32);
  const Tensor* logits = find_tensor(ops[ops.size() - 2].writes, "logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->dtype, Dtype::f32);
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{2, 92544}));
}

TEST(OpTable, WeightTensorsAreEveryParameterStoredOnce) {
  ModelConfig c = preset_config("internlm2-chat-7b");
  EXPECT_EQ(weight_bytes(c, Formats{}), 2 * c.params());
  const auto w = weight_tensors(c, Formats{});
  std::set<std::string> seen;
  for (const Tensor& t : w) EXPECT_TRUE(seen.insert(t.name).second) << t.name << " listed twice";
  EXPECT_EQ(w.size(), 1u + 6u * 32u + 2u);
  c.tie_word_embeddings = true;
  EXPECT_EQ(weight_bytes(c, Formats{}), 2 * c.params());
  // Every weight an op reads is a stored weight (the embedding rows and the tied head included).
  std::set<std::string> stored;
  for (const Tensor& t : weight_tensors(c, Formats{})) stored.insert(t.name);
  for (const Op& op : step_ops(c, StepShape{}))
    for (const Tensor& t : op.reads)
      if (t.name.find("weight") != std::string::npos || t.name == "tok_embeddings") {
        EXPECT_TRUE(stored.count(t.name)) << op.name << " reads " << t.name;
      }
}

TEST(OpTable, AFourBitHeadIsCountedInTheW4A16Layout) {
  // `quantize --quantize-head`: the 1.8b head [92544, 2048] at half a byte per weight plus an fp16
  // scale and zero per 128 inputs: 94,765,056 + 92544 * 16 * 4 = 100,687,872 bytes, against
  // 379,060,224 as fp16.
  const ModelConfig c = preset_config("internlm2-chat-1_8b");
  const Formats w4{WeightFormat::w4a16, 128, KvFormat::fp16};
  Formats head4 = w4;
  head4.head = WeightFormat::w4a16;
  EXPECT_EQ(weight_bytes(c, w4) - weight_bytes(c, head4), 278'372'352);
  const auto w = weight_tensors(c, head4);
  ASSERT_EQ(w.back().name, "output.weight");
  EXPECT_EQ(w.back().dtype, Dtype::q4);
  EXPECT_EQ(w.back().shape, (std::vector<int64_t>{92544, 2048}));
  EXPECT_EQ(w.back().group, 128);
  EXPECT_EQ(bytes(w.back()), 100'687'872);
  EXPECT_EQ(w.size(), weight_tensors(c, w4).size());

  // The output op reads the same head, decode and batched prefill alike: its bytes drop by as much.
  for (int n : {1, 5}) {
    SCOPED_TRACE(n);
    StepShape s;
    s.batch = 3;
    s.context = {40};
    s.new_tokens_per_seq = n;
    s.formats = w4;
    const auto base = step_ops(c, s);
    const Op& fp16_head = base[base.size() - 2];
    s.formats = head4;
    const auto ops = step_ops(c, s);
    const Op& out = ops[ops.size() - 2];
    ASSERT_EQ(out.name, "output");
    const Tensor* h = find_tensor(out.reads, "output.weight");
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->dtype, Dtype::q4);
    EXPECT_EQ(fp16_head.bytes() - out.bytes(), 278'372'352);
    s.formats.group_size = 0;
    s.formats.weights = WeightFormat::fp16;  // the head alone asks for a group
    EXPECT_THAT([&] { step_ops(c, s); },
                ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("group_size must be > 0")));
  }

  // A tied model's 4-bit head is a tensor of its own (the quantizer unties it): the embeddings stay.
  ModelConfig tied = c;
  tied.tie_word_embeddings = true;
  EXPECT_EQ(weight_bytes(tied, head4), weight_bytes(tied, w4) + 100'687'872);
  std::set<std::string> stored;
  for (const Tensor& t : weight_tensors(tied, head4)) stored.insert(t.name);
  StepShape s;
  s.formats = head4;
  for (const Op& op : step_ops(tied, s))
    for (const Tensor& t : op.reads)
      if (t.name.find("weight") != std::string::npos || t.name == "tok_embeddings") {
        EXPECT_TRUE(stored.count(t.name)) << op.name << " reads " << t.name;
      }
}

TEST(OpTable, CpuBackendRunsTheOpTablesOpsInItsOrder) {
  BackendOptions o;
  o.max_sequences = 2;
  auto b = make_cpu_backend(tiny(), o);
  const int s1 = b->create_sequence(), s2 = b->create_sequence();
  b->fill_context(s1, 20, 1);
  b->fill_context(s2, 7, 2);
  const int seqs[2] = {s1, s2};
  const DecodeTiming t = b->benchmark_decode(seqs, 0, 1);
  std::vector<std::string> measured;
  for (const OpSamples& op : t.ops) measured.push_back(op.name);
  EXPECT_EQ(measured, names(step_ops(b->config(), StepShape{})));
}

TEST(Backends, EveryBackendValidatesForwardCallsTheSameWay) {
  BackendOptions o;
  o.max_sequences = 2;
  auto b = make_cpu_backend(tiny(), o);
  const int s = b->create_sequence();
  const int twice[2] = {s, s};
  const std::vector<std::vector<int>> tokens{{1}, {2}};
  EXPECT_THAT([&] { b->forward(twice, tokens, nullptr); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("listed twice")));
  const int one[1] = {s};
  const std::vector<std::vector<int>> bad{{b->config().vocab}};
  EXPECT_THAT([&] { b->forward(one, bad, nullptr); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("outside the vocabulary")));
  EXPECT_EQ(b->sequence_length(s), 0);
}

TEST(Backends, SupportsNamesTheBackendAndTheFormatItRefuses) {
  const ModelSource src = tiny();
  const ModelSource awq = resolve_model(test::data_path("tiny-internlm2-chat-awq"));
  Formats f;
  EXPECT_TRUE(supports(DeviceKind::cpu, src, f));
  EXPECT_TRUE(supports(DeviceKind::cpu, src, Formats{WeightFormat::fp16, 128, KvFormat::int8}));
  // An unquantized checkpoint runs as w4a16 quantized at load, in groups that divide its linears.
  EXPECT_TRUE(supports(DeviceKind::cpu, src, Formats{WeightFormat::w4a16, 128, KvFormat::fp16}));
  EXPECT_THAT(supports(DeviceKind::cpu, src, Formats{WeightFormat::w4a16, 96, KvFormat::fp16}).reason,
              HasSubstr("cpu: --weights w4a16 quantizes this checkpoint at load in groups of 96 inputs"));
  EXPECT_THAT(supports(DeviceKind::cpu, awq, f).reason,
              HasSubstr("cpu: --weights fp16: this checkpoint is AWQ"));
  EXPECT_TRUE(supports(DeviceKind::cpu, awq, default_formats(awq)));
  EXPECT_EQ(default_formats(awq).weights, WeightFormat::w4a16);
  // The head runs as the checkpoint stores it (fp16 here; test_quantize has a 4-bit one).
  EXPECT_EQ(default_formats(awq).head, WeightFormat::fp16);
  Formats head4 = default_formats(awq);
  head4.head = WeightFormat::w4a16;
  for (DeviceKind d : {DeviceKind::cpu, DeviceKind::cuda})
    EXPECT_THAT(supports(d, awq, head4).reason, HasSubstr("the output head is fp16 in "));
  // The CUDA backend's refusals start with its name too (in a build without CUDA, every one does).
  ModelSource odd = src;
  odd.config.head_dim = 96;
  EXPECT_THAT(supports(DeviceKind::cuda, odd, Formats{WeightFormat::fp16, 128, KvFormat::int8}).reason,
              HasSubstr("cuda: "));
  // make_backend refuses with the same line.
  BackendOptions o;
  o.formats.weights = WeightFormat::w4a16;
  o.formats.group_size = 96;
  EXPECT_THAT([&] { make_backend(src, o); }, ::testing::ThrowsMessage<std::runtime_error>(HasSubstr(
                                                 "cpu: --weights w4a16 quantizes this checkpoint")));
}

TEST(Formats, ParseAndPrintInOnePlace) {
  for (WeightFormat w : {WeightFormat::fp16, WeightFormat::w4a16})
    EXPECT_EQ(parse_weight_format(to_string(w)), w);
  for (KvFormat k : {KvFormat::fp16, KvFormat::int8, KvFormat::int4})
    EXPECT_EQ(parse_kv_format(to_string(k)), k);
  EXPECT_THAT([] { parse_kv_format("int2"); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("expected fp16, int8 or int4")));
  EXPECT_EQ(kv_bits(KvFormat::int4), 4);
  EXPECT_EQ(Formats{}.group_size, kDefaultGroupSize);
}
