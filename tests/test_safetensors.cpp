// SafetensorsFile: well-formed files read back exactly; every malformed class is rejected with one
// line that names the file and, where one is involved, the tensor.
#include "engine/safetensors.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/safetensors_writer.h"

namespace ridgeline {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace ridgeline::testing;

// The error message of opening `bytes` written as a file, or "" if it opened.
std::string open_error(const TempDir& dir, const std::string& bytes,
                       const std::string& name = "bad.safetensors") {
  const std::string path = dir.file(name);
  write_bytes(path, bytes);
  try {
    SafetensorsFile f(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// One F32 tensor "w" of shape [2, 2] (16 bytes of data) with a hand-written header entry.
std::string one_tensor(const std::string& entry, size_t data_bytes = 16) {
  return raw_safetensors("{\"w\":" + entry + "}", std::string(data_bytes, '\x01'));
}

TEST(Safetensors, ReadsTensorsBackExactlyInFileOrder) {
  TempDir dir;
  std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, 1e-30f, -7.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x7f80};  // 1, -2, inf
  std::vector<int32_t> i32 = {-1, 2147483647, 42, 0};
  write_safetensors(dir.file("a.safetensors"),
                    {{"b.f32", "F32", {2, 3}, to_bytes(f32)},
                     {"a.bf16", "BF16", {3}, to_bytes(bf16)},
                     {"c.i32", "I32", {2, 1, 2}, to_bytes(i32)},
                     {"d.scalar", "F16", {}, to_bytes(std::vector<uint16_t>{0x3c00})},
                     {"e.empty", "F32", {0, 4}, ""}});
  SafetensorsFile f(dir.file("a.safetensors"));
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.tensors()[0].name, "b.f32");  // file order, not name order
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const TensorView* t = f.find("b.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::f32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->numel(), 6);
  EXPECT_EQ(t->nbytes, 24u);
  EXPECT_EQ(t->file, dir.file("a.safetensors"));
  std::vector<float> back(6);
  std::memcpy(back.data(), t->data, 24);
  EXPECT_EQ(back, f32);

  const TensorView* b = f.find("a.bf16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::bf16);
  std::vector<uint16_t> bback(3);
  std::memcpy(bback.data(), b->data, 6);
  EXPECT_EQ(bback, bf16);

  const TensorView* c = f.find("c.i32");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::i32);
  std::vector<int32_t> iback(4);
  std::memcpy(iback.data(), c->data, 16);
  EXPECT_EQ(iback, i32);

  EXPECT_EQ(f.find("d.scalar")->numel(), 1);
  EXPECT_EQ(f.find("e.empty")->numel(), 0);
  EXPECT_EQ(f.find("e.empty")->nbytes, 0u);
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(Safetensors, MovingKeepsViewsValid) {
  TempDir dir;
  std::vector<float> v = {4.0f, 5.0f};
  write_safetensors(dir.file("m.safetensors"), {{"x", "F32", {2}, to_bytes(v)}});
  SafetensorsFile a(dir.file("m.safetensors"));
  const uint8_t* data = a.find("x")->data;
  SafetensorsFile b(std::move(a));
  EXPECT_TRUE(a.tensors().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, not dangling
  std::vector<SafetensorsFile> files;
  files.push_back(std::move(b));
  files.emplace_back(dir.file("m.safetensors"));  // may reallocate: mappings must not move
  EXPECT_EQ(files[0].find("x")->data, data);
  float x1;
  std::memcpy(&x1, files[0].find("x")->data + 4, 4);
  EXPECT_EQ(x1, 5.0f);
}

TEST(Safetensors, ParsesEveryDtypeNameSafetensorsDefines) {
  for (const char* name : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
                           "BOOL", "F8_E4M3", "F8_E5M2"}) {
    auto d = parse_dtype(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_STREQ(to_string(*d), name);
  }
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_FALSE(parse_dtype("bf16").has_value());  // safetensors names are upper case
}

TEST(Safetensors, RejectsEmptyFile) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, ""), AllOf(HasSubstr("bad.safetensors: "), HasSubstr("file is empty")));
}

TEST(Safetensors, RejectsFileShorterThanTheLengthField) {
  TempDir dir;
  EXPECT_THAT(
      open_error(dir, std::string("\x10\x00\x00", 3), "short.safetensors"),
      AllOf(HasSubstr("short.safetensors: "), HasSubstr("3 bytes, shorter than the 8-byte header length")));
}

TEST(Safetensors, RejectsHeaderLengthOver100MB) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, le64(100'000'001) + "{}"),
              AllOf(HasSubstr("header length 100000001"), HasSubstr("100 MB limit")));
  EXPECT_THAT(open_error(dir, le64(~0ull) + "{}"), HasSubstr("100 MB limit"));
}

TEST(Safetensors, RejectsHeaderLongerThanTheFile) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, le64(64) + "{\"w\":{}}"),
              AllOf(HasSubstr("header length 64 runs past the end of the file"), HasSubstr("truncated")));
}

TEST(Safetensors, RejectsInvalidJson) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, raw_safetensors("{\"w\": {\"dtype\": ", "")),
              AllOf(HasSubstr("bad.safetensors: "), HasSubstr("header is not valid JSON")));
}

TEST(Safetensors, RejectsHeaderThatIsNotAnObject) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, raw_safetensors("[1, 2, 3]", "")),
              HasSubstr("JSON header must be an object, got an array"));
  EXPECT_THAT(open_error(dir, raw_safetensors("{\"w\": 3}", "")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("must be an object")));
}

TEST(Safetensors, RejectsDeeplyNestedHeader) {
  TempDir dir;
  std::string deep = "{\"w\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(open_error(dir, raw_safetensors(deep, "")), HasSubstr("nests deeper than"));
}

TEST(Safetensors, RejectsUnknownDtypeNamingTheTensor) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"Q4","shape":[2,2],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("unknown dtype 'Q4'")));
}

TEST(Safetensors, RejectsMissingOrMistypedFields) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, one_tensor(R"({"shape":[2,2],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("missing string 'dtype'")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("missing array 'shape'")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,8,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("'data_offsets' must be an array of 2 integers")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,"2"],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("shape must hold integers")));
}

TEST(Safetensors, RejectsShapeThatDisagreesWithOffsets) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("shape [2, 3] of dtype F32 needs 24 bytes"),
                    HasSubstr("hold 16")));
}

TEST(Safetensors, RejectsOffsetsPastTheEndOfTheFile) {
  TempDir dir;
  // A consistent header whose data was cut short.
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})", 12)),
              AllOf(HasSubstr("tensor 'w'"),
                    HasSubstr("data_offsets [0, 16] run past the end of the data (12 bytes")));
  EXPECT_THAT(
      open_error(dir,
                 one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[18446744073709551600,16]})")),
      AllOf(HasSubstr("tensor 'w'"), HasSubstr("end before they begin")));
}

TEST(Safetensors, RejectsOverlappingTensors) {
  TempDir dir;
  std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  EXPECT_THAT(open_error(dir, raw_safetensors(header, std::string(24, '\0'))),
              AllOf(HasSubstr("tensor 'b'"), HasSubstr("overlaps tensor 'a'")));
}

TEST(Safetensors, RejectsGapsAndTrailingBytes) {
  TempDir dir;
  std::string gap = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})";
  EXPECT_THAT(open_error(dir, raw_safetensors(gap, std::string(20, '\0'))),
              AllOf(HasSubstr("gap of 4 unused bytes between tensor 'a'"), HasSubstr("tensor 'b'")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})", 12)),
              AllOf(HasSubstr("gap of 4 unused bytes before the first tensor 'w'")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})", 20)),
              AllOf(HasSubstr("4 bytes of data after the last tensor 'w'")));
}

TEST(Safetensors, RejectsNegativeDimension) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("negative dimension -2")));
}

TEST(Safetensors, RejectsDimensionsWhoseProductOverflows) {
  TempDir dir;
  // Each dimension fits int64; 2^32 * 2^32 does not.
  EXPECT_THAT(
      open_error(dir, one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]})")),
      AllOf(HasSubstr("tensor 'w'"), HasSubstr("element count of shape"), HasSubstr("overflows int64")));
  // The element count fits int64, the byte count does not.
  EXPECT_THAT(
      open_error(dir, one_tensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]})")),
      AllOf(HasSubstr("tensor 'w'"), HasSubstr("byte size")));
  // One dimension beyond int64 (JSON parses it as unsigned), and one beyond uint64 (parsed as a double).
  EXPECT_THAT(
      open_error(dir, one_tensor(R"({"dtype":"F32","shape":[10000000000000000000],"data_offsets":[0,16]})")),
      AllOf(HasSubstr("tensor 'w'"), HasSubstr("dimension 10000000000000000000 overflows int64")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[1e30],"data_offsets":[0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("is not an integer")));
}

TEST(Safetensors, RejectsNonIntegerOffsets) {
  TempDir dir;
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0.0,16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("data_offsets must be two non-negative integers")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":["0",16]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("a string")));
  EXPECT_THAT(open_error(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[-16,0]})")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("negative data offset -16")));
}

TEST(Safetensors, RejectsMissingFileAndFolders) {
  TempDir dir;
  EXPECT_THAT([&] { SafetensorsFile f(dir.file("nope.safetensors")); },
              ::testing::ThrowsMessage<std::runtime_error>(
                  AllOf(HasSubstr("nope.safetensors: "), HasSubstr("cannot open safetensors file"))));
  EXPECT_THAT([&] { SafetensorsFile f(dir.path().string()); },
              ::testing::ThrowsMessage<std::runtime_error>(
                  ::testing::StrEq(dir.path().string() + ": is a directory, expected a safetensors file")));
  EXPECT_THAT([&] { SafetensorsFile f("/dev/null"); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("/dev/null: is not a regular file")));
}

// The format forbids repeated keys; nlohmann (and Python) would silently keep the last copy, so a
// file could show one tensor to one reader and another to the next.
TEST(Safetensors, RejectsDuplicateKeysNamingTheKey) {
  TempDir dir;
  const std::string entry = R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  EXPECT_THAT(
      open_error(dir, raw_safetensors("{\"w\":" + entry + ",\"w\":" + entry + "}", std::string(16, 'x'))),
      AllOf(HasSubstr("bad.safetensors: header has the key 'w' twice in the top-level object")));
  EXPECT_THAT(
      open_error(dir, one_tensor(R"({"dtype":"F32","dtype":"I32","shape":[2,2],"data_offsets":[0,16]})")),
      HasSubstr("bad.safetensors: header has the key 'dtype' twice in object ['w']"));
  EXPECT_THAT(open_error(dir, raw_safetensors(R"({"__metadata__":{"format":"pt","format":"np"}})", "")),
              HasSubstr("the key 'format' twice in object ['__metadata__']"));
}

// Untrusted names and strings are quoted short and escaped: one printable line however hostile.
TEST(Safetensors, ErrorLinesStayShortAndPrintable) {
  TempDir dir;
  auto check = [](const std::string& e) {
    EXPECT_THAT(e, HasSubstr("bad.safetensors: "));
    EXPECT_LT(e.size(), 400u) << e.substr(0, 400);
    EXPECT_EQ(e.find('\0'), std::string::npos);
    EXPECT_EQ(e.find('\n'), std::string::npos);
  };
  // A 100 KB metadata string with a raw NUL (invalid JSON: nlohmann echoes the token it read).
  std::string e = open_error(
      dir, raw_safetensors(
               "{\"__metadata__\":{\"k\":\"" + std::string(100000, 'm') + std::string(1, '\0') + "\"}}", ""));
  check(e);
  EXPECT_THAT(e, HasSubstr("header is not valid JSON"));
  // A 100 KB tensor name with an escaped NUL and an unknown dtype of 100 KB (dtype names are short,
  // so that excerpt is cut at 32 bytes).
  const std::string name = std::string(100000, 'n') + "\\u0000";
  e = open_error(dir, raw_safetensors("{\"" + name + "\":{\"dtype\":\"" + std::string(100000, 'Q') +
                                          "\",\"shape\":[],\"data_offsets\":[0,0]}}",
                                      ""));
  check(e);
  EXPECT_THAT(
      e, AllOf(HasSubstr("tensor 'nnnn"), HasSubstr("... (100001 bytes)"), HasSubstr("unknown dtype 'QQQ"),
               HasSubstr("unknown dtype '" + std::string(32, 'Q') + "... (100000 bytes)'")));
  // A short name with control bytes is escaped, not cut.
  e = open_error(dir, raw_safetensors(R"({"a\nb":{"dtype":"Q4","shape":[2,2],"data_offsets":[0,16]}})",
                                      std::string(16, 'x')));
  check(e);
  EXPECT_THAT(e, HasSubstr(R"(tensor 'a\x0ab': unknown dtype 'Q4')"));
  // A shape of 100000 dimensions whose product overflows.
  std::string dims = "[";
  for (int i = 0; i < 100000; ++i) dims += i ? ",65536" : "65536";
  e = open_error(dir, one_tensor(R"({"dtype":"F32","shape":)" + dims + R"(],"data_offsets":[0,16]})"));
  check(e);
  EXPECT_THAT(e, HasSubstr("overflows"));
}

// parse_safetensors() is the whole validation, on bytes in memory (what the fuzzer drives).
TEST(Safetensors, ParsesFileBytesInMemoryWithViewsIntoThem) {
  const std::string bytes = safetensors_bytes({zeros("a", "F16", {3}), zeros("b", "I8", {2, 2})});
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  SafetensorsContents c = parse_safetensors(p, bytes.size(), "mem");
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_EQ(c.tensors[0].name, "a");
  EXPECT_EQ(c.tensors[1].data + c.tensors[1].nbytes, p + bytes.size());
  EXPECT_EQ(c.metadata.at("format"), "pt");
  EXPECT_THAT([&] { parse_safetensors(p, 5, "mem"); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("mem: file is 5 bytes")));
  EXPECT_THAT([&] { parse_safetensors(nullptr, 0, "mem"); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("mem: file is empty")));
}

TEST(Safetensors, AcceptsAHeaderWithOnlyMetadata) {
  TempDir dir;
  EXPECT_EQ(open_error(dir, raw_safetensors(R"({"__metadata__":{"format":"pt"}})", "")), "");
  EXPECT_THAT(open_error(dir, raw_safetensors(R"({"__metadata__":[1]})", "")),
              HasSubstr("bad.safetensors: '__metadata__' must be an object"));
}

}  // namespace
}  // namespace ridgeline
