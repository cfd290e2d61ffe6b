// The engine's safetensors writer (engine/safetensors_writer.h), read back by the engine's reader.
#include "engine/safetensors_writer.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "tests/safetensors_writer.h"

namespace ridgeline {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST(SafetensorsWriter, WritesEveryDtypeAlignedSortedAndReadableByTheReader) {
  testing::TempDir dir;
  const std::vector<uint16_t> half = {0x3c00, 0xc000, 0x7bff};  // 1, -2, 65504
  const std::vector<uint16_t> brain = {0x3f80, 0x4040};         // 1, 3
  const std::vector<float> single = {0.5f, -1.25f, 3.0f, 7.0f, 1e-3f, 2.0f};
  const std::vector<int32_t> ints = {-1, 0, 0x7fffffff, 42};
  // Given in an order that is neither by name nor by size: the file must not depend on it.
  const std::vector<TensorToWrite> tensors = {{"b.half", DType::f16, {3}, half.data()},
                                              {"a.brain", DType::bf16, {1, 2}, brain.data()},
                                              {"z.single", DType::f32, {2, 3}, single.data()},
                                              {"c.ints", DType::i32, {2, 2}, ints.data()}};
  const std::string path = dir.file("out.safetensors");
  write_safetensors(path, tensors);

  const std::string bytes = slurp(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u) << "data must start 8-byte aligned";
  const std::string header = bytes.substr(8, header_len);
  // Keys sorted; tensor data by element size (4-byte first), then name.
  EXPECT_LT(header.find("__metadata__"), header.find("a.brain"));
  EXPECT_LT(header.find("a.brain"), header.find("b.half"));
  const auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["c.ints"]["data_offsets"], nlohmann::json::array({0, 16}));
  EXPECT_EQ(j["z.single"]["data_offsets"], nlohmann::json::array({16, 40}));
  EXPECT_EQ(j["a.brain"]["data_offsets"], nlohmann::json::array({40, 44}));
  EXPECT_EQ(j["b.half"]["data_offsets"], nlohmann::json::array({44, 50}));
  EXPECT_EQ(j["__metadata__"]["format"], "pt");

  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 4u);
  auto same = [&](const std::string& name, DType d, std::vector<int64_t> shape, const void* data, size_t n) {
    const TensorView* t = f.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, d) << name;
    EXPECT_EQ(t->shape, shape) << name;
    ASSERT_EQ(t->nbytes, n) << name;
    EXPECT_EQ(std::memcmp(t->data, data, n), 0) << name;
  };
  same("b.half", DType::f16, {3}, half.data(), 6);
  same("a.brain", DType::bf16, {1, 2}, brain.data(), 4);
  same("z.single", DType::f32, {2, 3}, single.data(), 24);
  same("c.ints", DType::i32, {2, 2}, ints.data(), 16);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"out.safetensors"}) << "no temporary file left";
}

TEST(SafetensorsWriter, ReplacesAFileWholeAndLeavesItUntouchedOnError) {
  testing::TempDir dir;
  const std::string path = dir.file("m.safetensors");
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  write_safetensors(path, std::vector<TensorToWrite>{{"w", DType::f32, {2}, a.data()}});
  write_safetensors(path, std::vector<TensorToWrite>{{"w", DType::f32, {3}, b.data()}});
  EXPECT_EQ(SafetensorsFile(path).find("w")->shape, (std::vector<int64_t>{3}));
  const std::string before = slurp(path);

  try {
    write_safetensors(
        path, std::vector<TensorToWrite>{{"w", DType::f32, {2}, a.data()}, {"w", DType::f32, {2}, a.data()}});
    FAIL() << "a repeated name must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path + ": tensor 'w' is given twice"));
  }
  EXPECT_EQ(slurp(path), before);
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"m.safetensors"});

  try {
    write_safetensors(dir.file("no/such/folder/x.safetensors"),
                      std::vector<TensorToWrite>{{"w", DType::f32, {2}, a.data()}});
    FAIL() << "a missing folder must be reported";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("x.safetensors: cannot create a temporary file"));
  }
}

TEST(SafetensorsWriter, EmptyTensorsAndNoMetadataAreValid) {
  testing::TempDir dir;
  const std::string path = dir.file("e.safetensors");
  write_safetensors(path, std::vector<TensorToWrite>{{"empty", DType::f16, {0, 4}, nullptr}}, {});
  SafetensorsFile f(path);
  ASSERT_NE(f.find("empty"), nullptr);
  EXPECT_EQ(f.find("empty")->nbytes, 0u);
  EXPECT_TRUE(f.metadata().empty());
}

}  // namespace
}  // namespace ridgeline
