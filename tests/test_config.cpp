#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/config.h"
#include "engine/model_source.h"
#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

nlohmann::json tiny_json() {
  return test::load_json(test::data_path("tiny-internlm2-chat/config.json"));
}

std::string error_of(const nlohmann::json& j) {
  try {
    config_from_json(j, "config.json");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, ParsesTinyModel) {
  ModelConfig c = load_config(test::data_path("tiny-internlm2-chat/config.json"));
  EXPECT_EQ(c.hidden, 512);
  EXPECT_EQ(c.n_layers, 4);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate, 1408);
  EXPECT_EQ(c.vocab, 640);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling, RopeScaling::none);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.qkv_dim(), (4 + 2 * 2) * 128);
  EXPECT_EQ(c.params(), 12456448);  // reference.json meta.params
}

TEST(Config, ParsesReal7bConfigAndMatchesPreset) {
  ModelConfig c = load_config(test::data_path("internlm2-chat-7b-meta/config.json"));
  ModelConfig p = preset_config("internlm2-chat-7b");
  EXPECT_EQ(c.hidden, p.hidden);
  EXPECT_EQ(c.n_layers, p.n_layers);
  EXPECT_EQ(c.n_heads, p.n_heads);
  EXPECT_EQ(c.n_kv_heads, p.n_kv_heads);
  EXPECT_EQ(c.intermediate, p.intermediate);
  EXPECT_EQ(c.vocab, p.vocab);
  EXPECT_EQ(c.max_positions, p.max_positions);
  // 7.74B parameters: the published size of internlm2-chat-7b.
  EXPECT_NEAR(double(c.params()), 7.737e9, 0.01e9);
}

TEST(Config, PresetsHaveTheDocumentedShapes) {
  ModelConfig c = preset_config("internlm2-chat-1_8b");
  EXPECT_EQ(c.hidden, 2048);
  EXPECT_EQ(c.n_layers, 24);
  EXPECT_EQ(c.n_heads, 16);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.intermediate, 8192);
  EXPECT_EQ(c.vocab, 92544);
  ModelConfig b = preset_config("internlm2-chat-20b");
  EXPECT_EQ(b.hidden, 6144);
  EXPECT_EQ(b.n_layers, 48);
  EXPECT_EQ(b.n_heads, 48);
  EXPECT_EQ(b.n_kv_heads, 8);
  EXPECT_EQ(b.intermediate, 16384);
  EXPECT_NEAR(double(b.params()), 19.86e9, 0.1e9);
  EXPECT_THAT([] { preset_config("internlm2-chat-3b"); }, ::testing::Throws<std::runtime_error>());
}

TEST(Config, RejectsInconsistentShapesNamingTheField) {
  auto j = tiny_json();
  j["num_key_value_heads"] = 3;
  EXPECT_THAT(error_of(j), HasSubstr("num_key_value_heads (3) must divide num_attention_heads (4)"));
  j = tiny_json();
  j["num_attention_heads"] = 3;
  EXPECT_THAT(error_of(j), HasSubstr("must divide hidden_size"));
  j = tiny_json();
  j.erase("hidden_size");
  EXPECT_THAT(error_of(j), HasSubstr("missing integer 'hidden_size'"));
  j = tiny_json();
  j["vocab_size"] = "640";
  EXPECT_THAT(error_of(j), HasSubstr("'vocab_size' must be an integer"));
  j = tiny_json();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}};
  EXPECT_THAT(error_of(j), HasSubstr("rope_scaling type 'yarn'"));
  j = tiny_json();
  j["model_type"] = "llama";
  EXPECT_THAT(error_of(j), HasSubstr("model_type is 'llama'"));
  j = tiny_json();
  j["num_hidden_layers"] = -2;
  EXPECT_THAT(error_of(j), HasSubstr("num_hidden_layers"));
  EXPECT_EQ(error_of(tiny_json()), "");
}

TEST(Config, DynamicNtkRaisesTheBaseOnlyPastTheTrainedContext) {
  auto j = tiny_json();
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  ModelConfig c = config_from_json(j, "config.json");
  EXPECT_EQ(c.rope_scaling, RopeScaling::dynamic);
  EXPECT_DOUBLE_EQ(rope_base_for_length(c, 2048), 1e6);
  // len 4096 = 2x max_positions: ratio 2*2 - 1 = 3, exponent 128/126.
  EXPECT_NEAR(rope_base_for_length(c, 4096), 1e6 * std::pow(3.0, 128.0 / 126.0), 1e-3);
}

TEST(Config, ParsesAwqQuantizationConfig) {
  ModelConfig c = load_config(test::data_path("tiny-internlm2-chat-awq/config.json"));
  EXPECT_EQ(c.quant_bits, 4);
  EXPECT_EQ(c.quant_group_size, 128);
}

// Mistyped keys name the key, what was expected and what was found; never a bare nlohmann type error.
TEST(Config, MistypedKeysNameTheKeyAndWhatWasExpected) {
  auto with = [](const char* key, nlohmann::json v) {
    auto j = tiny_json();
    j[key] = std::move(v);
    return error_of(j);
  };
  EXPECT_EQ(with("rope_scaling", {{"type", 5}}),
            "config.json: 'rope_scaling.type' must be a string, found an integer (5)");
  EXPECT_EQ(
      with("rope_scaling", 5),
      "config.json: 'rope_scaling' must be null or an object {\"type\", \"factor\"}, found an integer (5)");
  EXPECT_EQ(with("rope_scaling", {{"type", "dynamic"}, {"factor", "2"}}),
            "config.json: 'rope_scaling.factor' must be a number, found a string ('2')");
  EXPECT_THAT(with("rope_scaling", {{"factor", 2.0}}), HasSubstr("'rope_scaling' has no 'type'"));
  EXPECT_THAT(with("rope_scaling", {{"type", "linear"}, {"factor", 0.5}}),
              HasSubstr("'rope_scaling.factor' must be a finite number >= 1, found 0.5"));
  EXPECT_EQ(
      with("quantization_config", 5),
      "config.json: 'quantization_config' must be null or an object (AWQ settings), found an integer (5)");
  EXPECT_EQ(with("quantization_config", {{"quant_method", "awq"}, {"bits", "4"}}),
            "config.json: 'quantization_config.bits' must be an integer, found a string ('4')");
  EXPECT_EQ(with("quantization_config", {{"quant_method", 1}}),
            "config.json: 'quantization_config.quant_method' must be a string, found an integer (1)");
  EXPECT_EQ(with("quantization_config",
                 {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"zero_point", 1}}),
            "config.json: 'quantization_config.zero_point' must be true or false, found an integer (1)");
  EXPECT_EQ(with("hidden_act", 1), "config.json: 'hidden_act' must be a string, found an integer (1)");
  EXPECT_EQ(with("bias", "no"), "config.json: 'bias' must be true or false, found a string ('no')");
  EXPECT_EQ(with("torch_dtype", {1}), "config.json: 'torch_dtype' must be a string, found an array of 1");
  EXPECT_EQ(with("hidden_size", 512.5),
            "config.json: 'hidden_size' must be an integer, found a floating-point number (512.5)");
  EXPECT_EQ(with("hidden_size", 18446744073709551615ull),
            "config.json: 'hidden_size' = 18446744073709551615 is out of range");
  // A 100 KB string value is quoted short.
  std::string e = with("vocab_size", std::string(100000, 'v'));
  EXPECT_THAT(e, HasSubstr("'vocab_size' must be an integer, found a string ('vvv"));
  EXPECT_LT(e.size(), 200u);
}

TEST(Config, ModelTypeMustBeInternlm2AndSaysWhatWasFound) {
  auto j = tiny_json();
  j["model_type"] = 5;
  EXPECT_EQ(error_of(j), "config.json: 'model_type' must be the string 'internlm2', found an integer (5)");
  j["model_type"] = "llama";
  EXPECT_EQ(error_of(j),
            "config.json: model_type is 'llama', ridgeline runs 'internlm2' models (InternLM2, InternLM2.5)");
  j["model_type"] = std::string("internlm2\0x", 11);
  EXPECT_THAT(error_of(j), HasSubstr("model_type is 'internlm2\\x00x'"));
  // Configs that ridgeline writes itself (inside reports) carry no model_type.
  j.erase("model_type");
  EXPECT_EQ(error_of(j), "");
}

TEST(Config, LoadConfigNamesFoldersAndRefusesRepeatedKeys) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("rl_config_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "config.json");
  auto load_error = [](const fs::path& p) {
    try {
      load_config(p.string());
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(load_error(dir / "config.json"),
            (dir / "config.json").string() + ": is a directory, expected a config.json file");
  fs::remove(dir / "config.json");
  std::ofstream(dir / "config.json") << R"({"hidden_size": 512, "hidden_size": 1024})";
  EXPECT_EQ(load_error(dir / "config.json"),
            (dir / "config.json").string() +
                ": config has the key 'hidden_size' twice in the top-level object (keys must be unique: JSON "
                "readers disagree on which copy counts)");
  std::ofstream(dir / "config.json") << R"({"hidden_size": )";
  EXPECT_THAT(load_error(dir / "config.json"),
              HasSubstr("config.json: config is not valid JSON (parse error"));
  fs::remove_all(dir);
}
