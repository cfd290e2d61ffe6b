// Checkpoint loading (the real tiny checkpoints and crafted broken ones), host weights (bf16/fp16
// conversion, AWQ dequantization, synthetic presets) and the host-memory check.
#include "engine/checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/host_weights.h"
#include "engine/text_file.h"
#include "kernels/synthetic.h"
#include "tests/error_message.h"
#include "tests/safetensors_writer.h"

namespace ridgeline {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace ridgeline::testing;
namespace fs = std::filesystem;

const std::string kTiny = std::string(RIDGELINE_TEST_DATA) + "/tiny-internlm2-chat";
const std::string kTinyAwq = std::string(RIDGELINE_TEST_DATA) + "/tiny-internlm2-chat-awq";

// --- the real tiny checkpoints ------------------------------------------------------------------

// Raw bytes of tensor `name` read straight from the file, without SafetensorsFile.
std::vector<uint8_t> raw_tensor_bytes(const std::string& file, const std::string& name) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, all.data(), 8);
  auto header = nlohmann::json::parse(all.begin() + 8, all.begin() + 8 + static_cast<int64_t>(n));
  uint64_t begin = header[name]["data_offsets"][0], end = header[name]["data_offsets"][1];
  return std::vector<uint8_t>(all.begin() + 8 + n + begin, all.begin() + 8 + n + end);
}

// bf16 decoded by its definition (sign, 8-bit exponent with bias 127, 7-bit fraction).
double decode_bf16(uint16_t b) {
  int sign = b >> 15, exp = (b >> 7) & 0xff, frac = b & 0x7f;
  if (exp == 255) return frac ? std::nan("") : (sign ? -HUGE_VAL : HUGE_VAL);
  double v = exp == 0 ? std::ldexp(frac, -133) : std::ldexp(128 + frac, exp - 134);
  return sign ? -v : v;
}

TEST(Checkpoint, OpensTheShardedBf16TinyModel) {
  Checkpoint ck = open_checkpoint(kTiny);
  EXPECT_FALSE(ck.awq);
  EXPECT_EQ(ck.files.size(), 2u);
  EXPECT_EQ(ck.tensors.size(), 4u * 7 + 3);
  EXPECT_EQ(ck.config.hidden, 512);
  EXPECT_EQ(ck.config.name, "tiny-internlm2-chat");
  const TensorView& wqkv = ck.get("model.layers.3.attention.wqkv.weight");
  EXPECT_EQ(wqkv.dtype, DType::bf16);
  EXPECT_EQ(wqkv.shape, (std::vector<int64_t>{1024, 512}));
  EXPECT_THAT(wqkv.file, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_EQ(ck.get("model.tok_embeddings.weight").shape, (std::vector<int64_t>{640, 512}));
  EXPECT_EQ(ck.get("model.layers.0.feed_forward.w2.weight").shape, (std::vector<int64_t>{512, 1408}));
  EXPECT_EQ(ck.get("output.weight").shape, (std::vector<int64_t>{640, 512}));
  EXPECT_THAT(error_of([&] { ck.get("model.layers.9.ffn_norm.weight"); }),
              AllOf(HasSubstr(kTiny), HasSubstr("no tensor 'model.layers.9.ffn_norm.weight'")));
}

TEST(Checkpoint, LinearSpecsFollowTheInternLM2Layout) {
  Checkpoint ck = open_checkpoint(kTiny);
  auto lin = internlm2_linears(ck.config, 2);
  ASSERT_EQ(lin.size(), 5u);
  EXPECT_EQ(lin[0].prefix, "model.layers.2.attention.wqkv");
  EXPECT_EQ(lin[0].out, 1024);  // (4 + 2*2) heads * 128
  EXPECT_EQ(lin[1].prefix, "model.layers.2.attention.wo");
  EXPECT_EQ(lin[4].prefix, "model.layers.2.feed_forward.w2");
  EXPECT_EQ(lin[4].in, 1408);
}

TEST(HostWeights, Bf16CheckpointConvertsExactly) {
  Checkpoint ck = open_checkpoint(kTiny);
  HostWeights w = load_host_weights(ck);
  ASSERT_EQ(w.layers.size(), 4u);
  EXPECT_EQ(w.layers[1].w1.shape, (std::vector<int64_t>{1408, 512}));
  EXPECT_EQ(w.layers[1].wo.shape, (std::vector<int64_t>{512, 512}));
  EXPECT_EQ(w.output.shape, (std::vector<int64_t>{640, 512}));

  struct Case {
    std::string shard, name;
    const HostTensor* host;
  };
  const std::string s1 = kTiny + "/model-00001-of-00002.safetensors",
                    s2 = kTiny + "/model-00002-of-00002.safetensors";
  for (const Case& c : {Case{s1, "model.tok_embeddings.weight", &w.tok_embeddings},
                        Case{s1, "model.layers.0.attention.wqkv.weight", &w.layers[0].wqkv},
                        Case{s2, "model.layers.3.feed_forward.w2.weight", &w.layers[3].w2},
                        Case{s2, "model.norm.weight", &w.norm}}) {
    std::vector<uint8_t> raw = raw_tensor_bytes(c.shard, c.name);
    ASSERT_EQ(raw.size(), c.host->data.size() * 2) << c.name;
    int distinct = 0;
    for (size_t i = 0; i < 64; ++i) {
      uint16_t b = static_cast<uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
      EXPECT_EQ(static_cast<double>(c.host->data[i]), decode_bf16(b)) << c.name << " element " << i;
      distinct += i > 0 && c.host->data[i] != c.host->data[i - 1];
    }
    EXPECT_GT(distinct, 1) << c.name << " should hold real, varied weights";
    size_t last = c.host->data.size() - 1;
    uint16_t lb = static_cast<uint16_t>(raw[2 * last] | (raw[2 * last + 1] << 8));
    EXPECT_EQ(static_cast<double>(c.host->data[last]), decode_bf16(lb)) << c.name << " last element";
  }
}

// ‖a∘scale_a − b∘scale_b‖ / ‖b∘scale_b‖ over W[out, in] with per-input-column scales.
double relative_l2_scaled(const HostTensor& a, const HostTensor& na, const HostTensor& b,
                          const HostTensor& nb) {
  const int64_t in = a.shape[1];
  double num = 0, den = 0;
  for (int64_t k = 0; k < a.numel(); ++k) {
    double x = double(a.data[k]) * na.data[k % in], y = double(b.data[k]) * nb.data[k % in];
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / den);
}

TEST(HostWeights, AwqCheckpointDequantizesCloseToTheUnquantizedModel) {
  Checkpoint ck = open_checkpoint(kTinyAwq);
  EXPECT_TRUE(ck.awq);
  EXPECT_EQ(ck.config.quant_group_size, 128);
  EXPECT_EQ(ck.get("model.layers.0.attention.wqkv.qweight").shape, (std::vector<int64_t>{512, 128}));
  EXPECT_EQ(ck.get("model.layers.0.feed_forward.w2.qzeros").shape, (std::vector<int64_t>{11, 64}));
  HostWeights q = load_host_weights(ck);
  HostWeights ref = load_host_weights(open_checkpoint(kTiny));
  ASSERT_EQ(q.layers[0].wqkv.shape, ref.layers[0].wqkv.shape);

  // AWQ divides attention_norm by a per-channel scale s and multiplies wqkv's input columns by s,
  // so the product the model computes, W·diag(norm), is what must stay close. Measured: 0.099 for
  // wqkv and 0.100 for w1 (4-bit RTN in groups of 128); unpacking nibbles in natural order instead gives
  // ~1.2.
  EXPECT_LT(relative_l2_scaled(q.layers[0].wqkv, q.layers[0].attention_norm, ref.layers[0].wqkv,
                               ref.layers[0].attention_norm),
            0.15);
  EXPECT_LT(
      relative_l2_scaled(q.layers[0].w1, q.layers[0].ffn_norm, ref.layers[0].w1, ref.layers[0].ffn_norm),
      0.15);
  HostTensor ones{{512}, std::vector<float>(512, 1.0f)};
  EXPECT_LT(relative_l2_scaled(q.layers[2].wo, ones, ref.layers[2].wo, ones), 0.15);  // wo is not rescaled
  EXPECT_EQ(q.output.shape, (std::vector<int64_t>{640, 512}));
}

TEST(HostWeights, AwqDequantizationFollowsTheDocumentedPacking) {
  // in = 256 (two groups of 128), out = 16 (two packed words per row).
  const int in = 256, out = 16, g = 128, groups = 2, words = 2;
  auto q = [](int i, int o) { return (i * 7 + o * 3) % 16; };
  auto z = [](int grp, int o) { return (grp * 5 + o) % 16; };
  auto s = [](int grp, int o) { return 0.5f + 0.25f * o - 0.125f * grp; };  // exact in fp16
  // README: nibble n of a word holds output column 8*j + pack[n], pack = [0,2,4,6,1,3,5,7].
  const int pack[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  auto packed = [&](auto value, int row, int j) {
    uint32_t word = 0;
    for (int n = 0; n < 8; ++n) word |= uint32_t(value(row, 8 * j + pack[n])) << (4 * n);
    return static_cast<int32_t>(word);
  };
  std::vector<int32_t> qw(in * words), qz(groups * words);
  std::vector<uint16_t> sc(groups * out);
  for (int i = 0; i < in; ++i)
    for (int j = 0; j < words; ++j) qw[i * words + j] = packed(q, i, j);
  for (int r = 0; r < groups; ++r) {
    for (int j = 0; j < words; ++j) qz[r * words + j] = packed(z, r, j);
    for (int o = 0; o < out; ++o) sc[r * out + o] = float_to_fp16(s(r, o));
  }
  auto view = [](const char* name, DType d, std::vector<int64_t> shape, const auto& v) {
    return TensorView{name, d, shape, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0]),
                      "mem"};
  };
  HostTensor W = dequantize_awq(view("x.qweight", DType::i32, {in, words}, qw),
                                view("x.qzeros", DType::i32, {groups, words}, qz),
                                view("x.scales", DType::f16, {groups, out}, sc), g);
  ASSERT_EQ(W.shape, (std::vector<int64_t>{out, in}));
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i)
      ASSERT_EQ(W.data[o * in + i], float(q(i, o) - z(i / g, o)) * s(i / g, o)) << "o=" << o << " i=" << i;

  EXPECT_THAT(error_of([&] {
                dequantize_awq(view("x.qweight", DType::i32, {in, words}, qw),
                               view("x.qzeros", DType::i32, {groups + 1, words}, qz),
                               view("x.scales", DType::f16, {groups, out}, sc), g);
              }),
              AllOf(HasSubstr("tensor 'x.qzeros' has shape [3, 2], expected [2, 2]")));
}

// --- crafted checkpoints ----------------------------------------------------------------------------

// hidden 16, 1 layer, 2 heads of 8, 1 KV head (qkv_dim 32), intermediate 32, vocab 8.
nlohmann::json small_config() {
  return {{"model_type", "internlm2"}, {"hidden_size", 16},        {"num_hidden_layers", 1},
          {"num_attention_heads", 2},  {"num_key_value_heads", 1}, {"intermediate_size", 32},
          {"vocab_size", 8},           {"rms_norm_eps", 1e-5},     {"tie_word_embeddings", false}};
}

std::vector<FakeTensor> small_tensors(const std::string& dtype = "F32") {
  return {zeros("model.tok_embeddings.weight", dtype, {8, 16}),
          zeros("model.layers.0.attention_norm.weight", dtype, {16}),
          zeros("model.layers.0.attention.wqkv.weight", dtype, {32, 16}),
          zeros("model.layers.0.attention.wo.weight", dtype, {16, 16}),
          zeros("model.layers.0.ffn_norm.weight", dtype, {16}),
          zeros("model.layers.0.feed_forward.w1.weight", dtype, {32, 16}),
          zeros("model.layers.0.feed_forward.w3.weight", dtype, {32, 16}),
          zeros("model.layers.0.feed_forward.w2.weight", dtype, {16, 32}),
          zeros("model.norm.weight", dtype, {16}),
          zeros("output.weight", dtype, {8, 16})};
}

void write_config(const TempDir& dir, const nlohmann::json& config) {
  write_bytes(dir.file("config.json"), config.dump());
}

std::vector<FakeTensor> without(std::vector<FakeTensor> ts, const std::string& name) {
  std::erase_if(ts, [&](const FakeTensor& t) { return t.name == name; });
  return ts;
}

std::vector<FakeTensor> replaced(std::vector<FakeTensor> ts, FakeTensor t) {
  for (auto& x : ts)
    if (x.name == t.name) x = t;
  return ts;
}

// Writes the tensors as two shards (first `split` tensors in shard 1) plus an index mapping each name
// to `index_shard(name)`.
void write_sharded(const TempDir& dir, const std::vector<FakeTensor>& ts, size_t split,
                   std::function<std::string(size_t, const std::string&)> index_shard = nullptr) {
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  std::vector<FakeTensor> a(ts.begin(), ts.begin() + split), b(ts.begin() + split, ts.end());
  write_safetensors(dir.file(s1), a);
  write_safetensors(dir.file(s2), b);
  nlohmann::json map = nlohmann::json::object();
  for (size_t k = 0; k < ts.size(); ++k)
    map[ts[k].name] = index_shard ? index_shard(k, ts[k].name) : (k < split ? s1 : s2);
  write_bytes(dir.file("model.safetensors.index.json"),
              nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump());
}

// model.norm.weight as 16 known values, each exact in every dense dtype: what a loader must give back
// (the other tensors are zeros, which any dtype decodes alike).
constexpr float kKnownNorm[8] = {0.5f, -2.0f, 3.0f, 0.125f, 1.0f, -1.5f, 4.0f, 0.25f};
FakeTensor known_norm(const std::string& dtype) {
  static const uint16_t f16[8] = {0x3800, 0xC000, 0x4200, 0x3000, 0x3C00, 0xBE00, 0x4400, 0x3400};
  std::vector<float> f32;
  std::vector<uint16_t> half;
  for (int i = 0; i < 16; ++i) {
    const float x = kKnownNorm[i % 8];
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    f32.push_back(x);
    half.push_back(dtype == "F16" ? f16[i % 8] : static_cast<uint16_t>(bits >> 16));  // BF16: the top half
  }
  return {"model.norm.weight", dtype, {16}, dtype == "F32" ? to_bytes(f32) : to_bytes(half)};
}

TEST(Checkpoint, OpensACraftedSingleFileCheckpointInAnyDenseDtype) {
  for (const char* dtype : {"F32", "F16", "BF16"}) {
    SCOPED_TRACE(dtype);
    TempDir dir;
    write_config(dir, small_config());
    write_safetensors(dir.file("model.safetensors"), replaced(small_tensors(dtype), known_norm(dtype)));
    Checkpoint ck = open_checkpoint(dir.path().string());
    EXPECT_EQ(ck.tensors.size(), 10u);
    HostWeights w = load_host_weights(ck);
    EXPECT_EQ(w.layers[0].w2.shape, (std::vector<int64_t>{16, 32}));
    ASSERT_EQ(w.norm.data.size(), 16u);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(w.norm.data[i], kKnownNorm[i % 8]) << "element " << i;
  }
}

TEST(Checkpoint, OpensACraftedShardedCheckpoint) {
  TempDir dir;
  write_config(dir, small_config());
  write_sharded(dir, small_tensors(), 4);
  Checkpoint ck = open_checkpoint(dir.path().string());
  EXPECT_EQ(ck.files.size(), 2u);
  EXPECT_EQ(ck.tensors.size(), 10u);
  EXPECT_THAT(ck.get("output.weight").file, HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(Checkpoint, RejectsAMissingTensorNamingIt) {
  TempDir dir;
  write_config(dir, small_config());
  write_safetensors(dir.file("model.safetensors"),
                    without(small_tensors(), "model.layers.0.feed_forward.w2.weight"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr(dir.path().string()),
                    HasSubstr("missing tensor 'model.layers.0.feed_forward.w2.weight'"),
                    HasSubstr("expected shape [16, 32]")));
}

TEST(Checkpoint, RejectsAWrongShapeNamingTheTensorAndBothShapes) {
  TempDir dir;
  write_config(dir, small_config());
  write_safetensors(dir.file("model.safetensors"),
                    replaced(small_tensors(), zeros("model.layers.0.attention.wo.weight", "F32", {16, 15})));
  EXPECT_THAT(
      error_of([&] { open_checkpoint(dir.path().string()); }),
      AllOf(HasSubstr("model.safetensors: "), HasSubstr("tensor 'model.layers.0.attention.wo.weight'"),
            HasSubstr("has shape [16, 15], expected [16, 16]")));
}

TEST(Checkpoint, RejectsANonFloatDenseTensor) {
  TempDir dir;
  write_config(dir, small_config());
  write_safetensors(dir.file("model.safetensors"),
                    replaced(small_tensors(), zeros("model.norm.weight", "I32", {16})));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("tensor 'model.norm.weight' has dtype I32, expected BF16, F16 or F32")));
}

TEST(Checkpoint, OutputHeadMayBeAbsentOnlyWhenTied) {
  TempDir dir;
  write_safetensors(dir.file("model.safetensors"), without(small_tensors(), "output.weight"));
  write_config(dir, small_config());
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("missing tensor 'output.weight'"), HasSubstr("tie_word_embeddings is false")));
  auto tied = small_config();
  tied["tie_word_embeddings"] = true;
  write_config(dir, tied);
  Checkpoint ck = open_checkpoint(dir.path().string());
  HostWeights w = load_host_weights(ck);
  EXPECT_EQ(w.output.shape, w.tok_embeddings.shape);
  EXPECT_EQ(w.output.data, w.tok_embeddings.data);
}

TEST(Checkpoint, RejectsAnIndexNamingAMissingShard) {
  TempDir dir;
  write_config(dir, small_config());
  write_sharded(dir, small_tensors(), 4, [](size_t k, const std::string&) {
    return k < 4 ? "model-00001-of-00002.safetensors" : "model-00003-of-00003.safetensors";
  });
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("model.safetensors.index.json: "),
                    HasSubstr("shard 'model-00003-of-00003.safetensors'"), HasSubstr("does not exist")));
}

TEST(Checkpoint, RejectsAnIndexEntryItsShardDoesNotHold) {
  TempDir dir;
  write_config(dir, small_config());
  // The index sends model.norm.weight (in shard 2) to shard 1.
  write_sharded(dir, small_tensors(), 4, [](size_t k, const std::string& name) {
    return k < 4 || name == "model.norm.weight" ? "model-00001-of-00002.safetensors"
                                                : "model-00002-of-00002.safetensors";
  });
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("model-00001-of-00002.safetensors: "), HasSubstr("tensor 'model.norm.weight'"),
                    HasSubstr("does not hold it")));
}

TEST(Checkpoint, RejectsATensorInTwoShards) {
  TempDir dir;
  write_config(dir, small_config());
  auto ts = small_tensors();
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), {ts.begin(), ts.begin() + 5});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), {ts.begin() + 4, ts.end()});  // ts[4] twice
  nlohmann::json map = nlohmann::json::object();
  for (size_t k = 0; k < ts.size(); ++k)
    map[ts[k].name] = k < 5 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  write_bytes(dir.file("model.safetensors.index.json"), nlohmann::json{{"weight_map", map}}.dump());
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("tensor '" + ts[4].name + "' is also in"), HasSubstr("exactly one shard")));
}

TEST(Checkpoint, RejectsShardNamesThatLeaveTheFolder) {
  TempDir dir;
  write_config(dir, small_config());
  write_sharded(dir, small_tensors(), 4,
                [](size_t, const std::string&) { return std::string("../escape.safetensors"); });
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("'../escape.safetensors' is not a file name in the checkpoint folder")));
}

TEST(Checkpoint, RejectsAMalformedIndex) {
  TempDir dir;
  write_config(dir, small_config());
  write_bytes(dir.file("model.safetensors.index.json"), R"({"metadata": {}})");
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("model.safetensors.index.json: "), HasSubstr("missing object 'weight_map'")));
  write_bytes(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": 3}})");
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              HasSubstr("weight_map['a'] must be a shard file name"));
}

TEST(Checkpoint, ReportsACorruptShardByItsPath) {
  TempDir dir;
  write_config(dir, small_config());
  write_sharded(dir, small_tensors(), 4);
  const std::string shard = dir.file("model-00002-of-00002.safetensors");
  fs::resize_file(shard, fs::file_size(shard) - 4);  // truncated download
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr(shard + ": "), HasSubstr("run past the end of the data")));
}

TEST(Checkpoint, RejectsFoldersWithoutConfigOrWeights) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }), HasSubstr("has no config.json"));
  write_config(dir, small_config());
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              HasSubstr("neither model.safetensors nor model.safetensors.index.json"));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.file("absent")); }), HasSubstr("not a checkpoint folder"));
}

// A weight_map naming a tensor twice sends it to whichever shard the parser happened to keep.
TEST(Checkpoint, RejectsAnIndexThatNamesATensorTwice) {
  TempDir dir;
  write_config(dir, small_config());
  write_sharded(dir, small_tensors(), 4);
  const std::string index = dir.file("model.safetensors.index.json");
  const auto weight_map = nlohmann::json::parse(read_text_file(index, "index"))["weight_map"];
  write_bytes(index, R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors", )" +
                         weight_map.dump().substr(1) + "}");
  EXPECT_THAT(
      error_of([&] { open_checkpoint(dir.path().string()); }),
      AllOf(HasSubstr(index + ": index has the key 'model.norm.weight' twice in object ['weight_map']")));
}

TEST(Checkpoint, ParsesAnIndexFromText) {
  auto shards = parse_checkpoint_index(R"({"metadata": {"total_size": 8}, "weight_map": {"a": "s1", "b": "s2",
                                           "c": "s1"}})",
                                       "idx");
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards["s1"], (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(shards["s2"], (std::vector<std::string>{"b"}));
  EXPECT_THAT(error_of([] { parse_checkpoint_index(R"({"weight_map": {}})", "idx"); }),
              HasSubstr("idx: weight_map is empty"));
  EXPECT_THAT(
      error_of([] { parse_checkpoint_index(R"({"weight_map": 5})", "idx"); }),
      HasSubstr("idx: missing object 'weight_map' (tensor name -> shard file), found an integer (5)"));
  // A NUL would make the checked name and the opened file differ.
  EXPECT_THAT(error_of([] { parse_checkpoint_index(R"({"weight_map": {"a": "s1\u0000/../x"}})", "idx"); }),
              HasSubstr(R"(weight_map['a'] = 's1\x00/../x' is not a file name in the checkpoint folder)"));
  EXPECT_THAT(error_of([] { parse_checkpoint_index(R"({"weight_map": {"a": "s\tb"}})", "idx"); }),
              HasSubstr("is not a file name"));
}

// Folders where files belong are named as such, never "basic_filebuf::underflow".
TEST(Checkpoint, NamesFoldersGivenWhereFilesBelong) {
  TempDir dir;
  fs::create_directory(dir.path() / "config.json");
  EXPECT_EQ(error_of([&] { open_checkpoint(dir.path().string()); }),
            dir.file("config.json") + ": is a directory, expected a config.json file");
  fs::remove(dir.path() / "config.json");
  write_config(dir, small_config());
  fs::create_directory(dir.path() / "model.safetensors");
  EXPECT_EQ(error_of([&] { open_checkpoint(dir.path().string()); }),
            dir.file("model.safetensors") + ": is a directory, expected a safetensors file");
  fs::remove(dir.path() / "model.safetensors");
  fs::create_directory(dir.path() / "model.safetensors.index.json");
  EXPECT_EQ(error_of([&] { open_checkpoint(dir.path().string()); }),
            dir.file("model.safetensors.index.json") + ": is a directory, expected a checkpoint index");
  fs::remove(dir.path() / "model.safetensors.index.json");
  write_sharded(dir, small_tensors(), 4);
  fs::remove(dir.path() / "model-00002-of-00002.safetensors");
  fs::create_directory(dir.path() / "model-00002-of-00002.safetensors");
  EXPECT_EQ(error_of([&] { open_checkpoint(dir.path().string()); }),
            dir.file("model-00002-of-00002.safetensors") + ": is a directory, expected a safetensors file");
}

// A tensor name of 100 KB in a shard is quoted short in the "in two shards" message.
TEST(Checkpoint, QuotesHostileTensorNamesShort) {
  TempDir dir;
  write_config(dir, small_config());
  const std::string huge(100000, 't');
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), {zeros(huge, "F32", {1})});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), {zeros(huge, "F32", {1})});
  write_bytes(dir.file("model.safetensors.index.json"),
              nlohmann::json{
                  {"weight_map",
                   {{huge, "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}}
                  .dump());
  std::string e = error_of([&] { open_checkpoint(dir.path().string()); });
  EXPECT_THAT(e, AllOf(HasSubstr("is also in"), HasSubstr("... (100000 bytes)")));
  EXPECT_LT(e.size(), 600u);
}

// hidden 128 so that AWQ group 128 divides it; intermediate 256.
nlohmann::json awq_config() {
  auto c = small_config();
  c["hidden_size"] = 128;
  c["intermediate_size"] = 256;
  c["quantization_config"] = {
      {"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"zero_point", true}};
  return c;
}

std::vector<FakeTensor> awq_tensors() {
  // head_dim 64, 2 query heads + 2*1 KV heads: qkv_dim 256.
  std::vector<FakeTensor> ts = {zeros("model.tok_embeddings.weight", "F16", {8, 128}),
                                zeros("model.layers.0.attention_norm.weight", "F16", {128}),
                                zeros("model.layers.0.ffn_norm.weight", "F16", {128}),
                                zeros("model.norm.weight", "F16", {128}),
                                zeros("output.weight", "F16", {8, 128})};
  struct L {
    const char* name;
    int64_t out, in;
  };
  for (L l : {L{"attention.wqkv", 256, 128}, L{"attention.wo", 128, 128}, L{"feed_forward.w1", 256, 128},
              L{"feed_forward.w3", 256, 128}, L{"feed_forward.w2", 128, 256}}) {
    std::string p = std::string("model.layers.0.") + l.name;
    ts.push_back(zeros(p + ".qweight", "I32", {l.in, l.out / 8}));
    ts.push_back(zeros(p + ".qzeros", "I32", {l.in / 128, l.out / 8}));
    ts.push_back(zeros(p + ".scales", "F16", {l.in / 128, l.out}));
  }
  return ts;
}

TEST(Checkpoint, ValidatesAwqTensorShapesAndDtypes) {
  TempDir dir;
  write_config(dir, awq_config());
  write_safetensors(dir.file("model.safetensors"), awq_tensors());
  Checkpoint ck = open_checkpoint(dir.path().string());
  EXPECT_TRUE(ck.awq);
  EXPECT_EQ(load_host_weights(ck).layers[0].w2.shape, (std::vector<int64_t>{128, 256}));

  write_safetensors(dir.file("model.safetensors"),
                    replaced(awq_tensors(), zeros("model.layers.0.feed_forward.w2.qzeros", "I32", {1, 16})));
  EXPECT_THAT(
      error_of([&] { open_checkpoint(dir.path().string()); }),
      AllOf(HasSubstr("tensor 'model.layers.0.feed_forward.w2.qzeros' has shape [1, 16], expected [2, 16]")));
  write_safetensors(dir.file("model.safetensors"),
                    replaced(awq_tensors(), zeros("model.layers.0.attention.wo.scales", "F32", {1, 128})));
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("tensor 'model.layers.0.attention.wo.scales' has dtype F32, expected F16")));
  write_safetensors(dir.file("model.safetensors"),
                    without(awq_tensors(), "model.layers.0.attention.wqkv.qweight"));
  EXPECT_THAT(
      error_of([&] { open_checkpoint(dir.path().string()); }),
      AllOf(HasSubstr("missing tensor 'model.layers.0.attention.wqkv.qweight'"), HasSubstr("I32 [128, 32]")));

  // AWQ tensors under a config without quantization_config: the hint says what is wrong.
  write_safetensors(dir.file("model.safetensors"), awq_tensors());
  auto plain = awq_config();
  plain.erase("quantization_config");
  write_config(dir, plain);
  EXPECT_THAT(error_of([&] { open_checkpoint(dir.path().string()); }),
              AllOf(HasSubstr("missing tensor 'model.layers.0.attention.wqkv.weight'"),
                    HasSubstr("config.json lacks quantization_config")));
}

TEST(Checkpoint, ValidatesAFourBitOutputHead) {
  // `ridgeline quantize --quantize-head`: output.qweight/qzeros/scales in place of output.weight.
  std::vector<FakeTensor> head4 = without(awq_tensors(), "output.weight");
  head4.push_back(zeros("output.qweight", "I32", {128, 1}));
  head4.push_back(zeros("output.qzeros", "I32", {1, 1}));
  head4.push_back(zeros("output.scales", "F16", {1, 8}));
  TempDir dir;
  const std::string d = dir.path().string();
  write_config(dir, awq_config());
  write_safetensors(dir.file("model.safetensors"), head4);
  const Checkpoint ck = open_checkpoint(d);
  EXPECT_TRUE(ck.has("output.qweight"));
  EXPECT_EQ(load_host_weights(ck).output.shape, (std::vector<int64_t>{8, 128}));

  write_safetensors(dir.file("model.safetensors"), replaced(head4, zeros("output.qzeros", "I32", {1, 2})));
  EXPECT_THAT(error_of([&] { open_checkpoint(d); }),
              HasSubstr("tensor 'output.qzeros' has shape [1, 2], expected [1, 1]"));
  write_safetensors(dir.file("model.safetensors"), without(head4, "output.scales"));
  EXPECT_THAT(error_of([&] { open_checkpoint(d); }),
              AllOf(HasSubstr("missing tensor 'output.scales'"), HasSubstr("F16 [1, 8]")));
}

TEST(Checkpoint, ListsTensorsFromTheIndexOrTheHeaderAlone) {
  // The sharded tiny model answers from its index; a single file from its header.
  EXPECT_TRUE(checkpoint_lists_tensor(kTiny, "output.weight"));
  EXPECT_FALSE(checkpoint_lists_tensor(kTiny, "output.qweight"));
  EXPECT_TRUE(checkpoint_lists_tensor(kTinyAwq, "model.layers.0.attention.wqkv.qweight"));
  TempDir dir;
  const std::string d = dir.path().string();
  write_config(dir, awq_config());
  write_safetensors(dir.file("model.safetensors"), without(awq_tensors(), "model.norm.weight"));
  EXPECT_TRUE(checkpoint_lists_tensor(d, "output.weight"));  // open_checkpoint would refuse the folder
  EXPECT_FALSE(checkpoint_lists_tensor(d, "model.norm.weight"));
  // Unreadable: false, and open_checkpoint names the problem.
  write_bytes(dir.file("model.safetensors"), "not a safetensors file");
  EXPECT_FALSE(checkpoint_lists_tensor(d, "output.weight"));
  EXPECT_FALSE(checkpoint_lists_tensor(dir.file("missing"), "output.weight"));
}

// --- 16-bit floats ------------------------------------------------------------------------------------

TEST(HalfFloats, Fp16WidensEveryValueExactly) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    const int sign = h >> 15, exp = (h >> 10) & 31, frac = h & 1023;
    const float got = fp16_to_float(h);
    if (exp == 31) {
      EXPECT_TRUE(frac ? std::isnan(got) : std::isinf(got)) << b;
      continue;
    }
    double want = exp == 0 ? std::ldexp(frac, -24) : std::ldexp(1024 + frac, exp - 25);
    ASSERT_EQ(static_cast<double>(got), sign ? -want : want) << "bits " << b;
    ASSERT_EQ(std::signbit(got), sign == 1) << "bits " << b;
    ASSERT_EQ(float_to_fp16(got), h) << "round trip of bits " << b;
  }
}

TEST(HalfFloats, Fp16NarrowsWithRoundToNearestEven) {
  EXPECT_EQ(float_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(float_to_fp16(1.0f + 0x1p-11f), 0x3c00);      // tie, to even (down)
  EXPECT_EQ(float_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, to even (up)
  EXPECT_EQ(float_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  EXPECT_EQ(float_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7c00);  // rounds past the largest finite value
  EXPECT_EQ(float_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_fp16(0x1p-25f), 0x0000);             // tie between 0 and the smallest subnormal: even
  EXPECT_EQ(float_to_fp16(3 * 0x1p-25f), 0x0002);         // tie between 1 and 2 subnormal steps: even
  EXPECT_EQ(float_to_fp16(0x1p-14f - 0x1p-26f), 0x0400);  // rounds up into the normal range
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(std::nanf("")))));
}

TEST(HalfFloats, Bf16WidensExactlyAndNarrowsToNearestEven) {
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xc040), -3.0f);
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = bf16_to_float(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(static_cast<double>(f), decode_bf16(static_cast<uint16_t>(b))) << b;
    ASSERT_EQ(float_to_bf16(f), b) << b;
  }
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), 0x3f80);  // tie, to even
  EXPECT_EQ(float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
}

// --- synthetic presets and the memory check --------------------------------------------------------------

ModelConfig tiny_shapes() {
  return open_checkpoint(kTiny).config;
}

TEST(SyntheticWeights, ShiftsFollowTheFanIn) {
  ModelConfig c = tiny_shapes();       // hidden 512, 4 layers, intermediate 1408
  EXPECT_EQ(synthetic_shift(512), 5);  // log2(sqrt(512)) = 4.5 rounds up
  EXPECT_EQ(synthetic_shift(2048), 6);
  EXPECT_EQ(synthetic_shift(4096), 6);
  EXPECT_EQ(synthetic_shift(8192), 7);
  EXPECT_EQ(synthetic_linear_shift(c, 1), 5);
  EXPECT_EQ(synthetic_linear_shift(c, 2), 5 + 2);  // + round(log2(sqrt(8))) = 2 for the residual
  EXPECT_EQ(synthetic_linear_shift(c, 4), 5);
  EXPECT_EQ(synthetic_linear_shift(c, 5), 5);
  EXPECT_EQ(synthetic_linear_shift(c, 6), 5 + 2);  // log2(sqrt(1408)) = 5.23
  EXPECT_THROW(synthetic_linear_shift(c, 3), std::invalid_argument);
}

TEST(SyntheticWeights, FollowTheGeneratorAndAreDeterministicPerSeed) {
  ModelConfig c = tiny_shapes();
  HostWeights a = synthetic_host_weights(c, 7), b = synthetic_host_weights(c, 7),
              d = synthetic_host_weights(c, 8);
  ASSERT_EQ(a.layers.size(), 4u);
  EXPECT_EQ(a.layers[2].wqkv.shape, (std::vector<int64_t>{1024, 512}));
  EXPECT_EQ(a.layers[2].w2.shape, (std::vector<int64_t>{512, 1408}));
  EXPECT_EQ(a.output.shape, (std::vector<int64_t>{640, 512}));

  // Spot values against kernels/synthetic.h with the documented ids and shifts.
  EXPECT_EQ(a.tok_embeddings.data[12345], synthetic_value(7, 0, 12345, 0));
  EXPECT_EQ(a.norm.data[100], synthetic_norm_value(7, 1, 100));
  EXPECT_EQ(a.output.data[999], synthetic_value(7, 2, 999, 5));
  EXPECT_EQ(a.layers[3].attention_norm.data[5], synthetic_norm_value(7, 16 + 8 * 3 + 0, 5));
  EXPECT_EQ(a.layers[3].wo.data[4321], synthetic_value(7, 16 + 8 * 3 + 2, 4321, 7));
  EXPECT_EQ(a.layers[1].w3.data[70000], synthetic_value(7, 16 + 8 * 1 + 5, 70000, 5));
  EXPECT_EQ(a.layers[0].w2.data.back(), synthetic_value(7, 16 + 6, 512 * 1408 - 1, 7));

  auto all = [](const HostWeights& w) {
    std::vector<const HostTensor*> ts = {&w.tok_embeddings, &w.norm, &w.output};
    for (const auto& l : w.layers)
      for (const HostTensor* t : {&l.attention_norm, &l.wqkv, &l.wo, &l.ffn_norm, &l.w1, &l.w3, &l.w2})
        ts.push_back(t);
    return ts;
  };
  auto ta = all(a), tb = all(b), td = all(d);
  for (size_t k = 0; k < ta.size(); ++k) {
    EXPECT_EQ(ta[k]->data, tb[k]->data) << "tensor " << k << " differs between two runs with one seed";
    int64_t same = 0;
    for (int64_t i = 0; i < ta[k]->numel(); ++i) same += ta[k]->data[i] == td[k]->data[i];
    // Linears: equal by chance 1 time in 1024; norms: 1 in 16.
    EXPECT_LT(same, ta[k]->numel() / 8) << "tensor " << k << " barely changes with the seed";
  }
}

TEST(SyntheticWeights, EveryValueIsExactInFp16AndBounded) {
  ModelConfig c = tiny_shapes();
  HostWeights w = synthetic_host_weights(c, 0x5EED);
  auto check = [](const HostTensor& t, float bound, const char* what) {
    for (float v : t.data) {
      ASSERT_EQ(fp16_to_float(float_to_fp16(v)), v) << what << " value " << v << " is not exact in fp16";
      ASSERT_LE(std::fabs(v), bound) << what;
    }
  };
  check(w.tok_embeddings, 1.0f, "embeddings");
  check(w.output, 0x1p-5f, "output");
  check(w.norm, 1.125f, "norm");
  for (const auto& l : w.layers) {
    check(l.attention_norm, 1.125f, "attention_norm");
    check(l.ffn_norm, 1.125f, "ffn_norm");
    check(l.wqkv, 0x1p-5f, "wqkv");
    check(l.wo, 0x1p-7f, "wo");
    check(l.w1, 0x1p-5f, "w1");
    check(l.w3, 0x1p-5f, "w3");
    check(l.w2, 0x1p-7f, "w2");
  }
}

TEST(HostMemory, RefusesWeightsThatDoNotFitBeforeAllocating) {
  EXPECT_GT(available_host_memory_bytes(), 0);
  ModelConfig huge;
  huge.name = "enormous";
  huge.hidden = 65536;
  huge.n_layers = 2000;
  huge.n_heads = 256;
  huge.n_kv_heads = 256;
  huge.head_dim = 256;
  huge.intermediate = 262144;
  huge.vocab = 1000000;
  EXPECT_GT(host_weights_bytes(huge), int64_t{1} << 48);  // ~0.55 PB: fits no host
  EXPECT_THAT(error_of([&] { synthetic_host_weights(huge, 1); }),
              AllOf(HasSubstr("preset enormous needs "),
                    HasSubstr(" GB of host memory for the CPU backend; "), HasSubstr(" GB available")));
  EXPECT_THAT(error_of([] { check_host_memory(int64_t{1} << 62, "checkpoint /x"); }),
              HasSubstr("checkpoint /x needs 4611686018.4 GB of host memory"));
}

TEST(HostMemory, CountsATiedHeadAsACopy) {
  ModelConfig c = tiny_shapes();
  int64_t untied = host_weights_bytes(c);
  EXPECT_EQ(untied, c.params() * 4);
  c.tie_word_embeddings = true;
  EXPECT_EQ(host_weights_bytes(c), untied);  // params() drops the head, the copy adds it back
}

}  // namespace
}  // namespace ridgeline
