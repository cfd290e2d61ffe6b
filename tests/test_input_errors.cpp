// Hostile or mistaken input files give one short, printable line naming the file and what is wrong:
// excerpt() for untrusted text, read_text_file() for paths that are folders, parse_strict_json()
// for repeated keys, and the messages parser built on them.
#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/chat_template.h"
#include "engine/error_text.h"
#include "engine/strict_json.h"
#include "engine/text_file.h"
#include "engine/tokenizer.h"
#include "tests/error_message.h"
#include "tests/safetensors_writer.h"

namespace ridgeline {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace ridgeline::testing;

// One line, no control bytes: what a terminal or a log can show safely.
bool printable_line(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

// --- excerpt ---------------------------------------------------------------------------------------

TEST(ErrorText, EscapesControlBytesBackslashesAndInvalidUtf8) {
  EXPECT_EQ(excerpt(std::string("a\0b\n\x7f", 5)), "a\\x00b\\x0a\\x7f");
  EXPECT_EQ(excerpt("C:\\x"), "C:\\\\x");
  EXPECT_EQ(excerpt("caf\xc3\xa9 \xe4\xb8\xad"), "caf\xc3\xa9 \xe4\xb8\xad");  // valid UTF-8 kept
  EXPECT_EQ(excerpt("\xff\xc3("), "\\xff\\xc3(");                              // invalid bytes escaped
  EXPECT_EQ(excerpt("\xed\xa0\x80"), "\\xed\\xa0\\x80");                       // a UTF-16 surrogate
  EXPECT_EQ(excerpt("\xc0\xaf"), "\\xc0\\xaf");                                // an overlong '/'
  EXPECT_EQ(excerpt(""), "");
}

TEST(ErrorText, CutsLongTextAtACharacterBoundaryAndSaysHowLongItWas) {
  std::string text = std::string(100000, 'a');
  std::string e = excerpt(text);
  EXPECT_EQ(e, std::string(200, 'a') + "... (100000 bytes)");
  // 0x00 takes 4 output bytes: 50 of them fill the 200.
  e = excerpt(std::string(1000, '\0'));
  EXPECT_EQ(e.size(), 200 + std::string("... (1000 bytes)").size());
  EXPECT_THAT(e, HasSubstr("... (1000 bytes)"));
  // A 3-byte character that would straddle the limit is left out whole.
  e = excerpt("ab\xe4\xb8\xad", 4);
  EXPECT_EQ(e, "ab... (5 bytes)");
  EXPECT_EQ(excerpt("abcd", 4), "abcd");  // exactly at the limit: not cut
}

// --- read_text_file ----------------------------------------------------------------------------------

TEST(TextFile, ReadsBytesExactly) {
  TempDir dir;
  const std::string bytes("x\0y\r\n\xff", 6);
  write_bytes(dir.file("f"), bytes);
  EXPECT_EQ(read_text_file(dir.file("f"), "a test file"), bytes);
}

TEST(TextFile, NamesDirectoriesMissingFilesAndOversizedFiles) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { read_text_file(dir.path().string(), "a config.json file"); }),
            dir.path().string() + ": is a directory, expected a config.json file");
  EXPECT_THAT(error_of([&] { read_text_file(dir.file("absent.json"), "a messages JSON file"); }),
              AllOf(HasSubstr(dir.file("absent.json") + ": cannot open a messages JSON file"),
                    HasSubstr("No such file or directory")));
  write_bytes(dir.file("big"), std::string(2000, 'x'));
  EXPECT_THAT(error_of([&] { read_text_file(dir.file("big"), "a config.json file", 1000); }),
              AllOf(HasSubstr(dir.file("big") + ": a config.json file is larger than the 0.001 MB limit")));
  // A character device has no size up front: the limit applies while reading.
  EXPECT_THAT(error_of([&] { read_text_file("/dev/zero", "a messages JSON file", 100000); }),
              HasSubstr("/dev/zero: a messages JSON file is larger than"));
}

// gzip's own bytes for `{"schema": 1}\n` (Python's gzip.compress, mtime 0): read back as the text, so
// a report gzipped by any gzip writer loads, not only one ridgeline wrote.
TEST(TextFile, ReadsAGzipFileAsTheTextInside) {
  TempDir dir;
  const unsigned char bytes[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56,
                                 0x2a, 0x4e, 0xce, 0x48, 0xcd, 0x4d, 0x54, 0xb2, 0x52, 0x30, 0xac, 0xe5,
                                 0x02, 0x00, 0x9e, 0x14, 0xed, 0xd1, 0x0e, 0x00, 0x00, 0x00};
  write_bytes(dir.file("r.json.gz"), std::string(reinterpret_cast<const char*>(bytes), sizeof bytes));
  EXPECT_EQ(read_text_file(dir.file("r.json.gz"), "the report"), "{\"schema\": 1}\n");
  // The name does not matter, the magic bytes do; and two members in a row are one text, as
  // `gzip -d` reads them.
  const std::string big(300000, 'r');  // several of the reader's 64 KB buffers
  write_bytes(dir.file("r.json"), gzip_compress("{\"a\": \"") + gzip_compress(big + "\"}"));
  EXPECT_EQ(read_text_file(dir.file("r.json"), "the report"), "{\"a\": \"" + big + "\"}");
}

TEST(TextFile, NamesABrokenOrTruncatedGzipFileAndBoundsWhatItDecompressesTo) {
  TempDir dir;
  const std::string packed = gzip_compress(std::string(5000, 'x'));
  write_bytes(dir.file("cut.gz"), packed.substr(0, packed.size() / 2));
  EXPECT_EQ(error_of([&] { read_text_file(dir.file("cut.gz"), "the report"); }),
            dir.file("cut.gz") + ": the report is not a valid gzip file (it ends early)");
  std::string bad = packed;
  bad[3] = 0x20;  // reserved flag bits set: no gzip writer sets them
  write_bytes(dir.file("bad.gz"), bad);
  EXPECT_THAT(error_of([&] { read_text_file(dir.file("bad.gz"), "the report"); }),
              HasSubstr(dir.file("bad.gz") + ": the report is not a valid gzip file ("));
  write_bytes(dir.file("tail.gz"), packed + "junk");
  EXPECT_THAT(error_of([&] { read_text_file(dir.file("tail.gz"), "the report"); }),
              HasSubstr("is not a valid gzip file"));
  // 5000 bytes unpacked from ~30: the limit holds for what comes out, not only what goes in.
  write_bytes(dir.file("bomb.gz"), packed);
  EXPECT_EQ(error_of([&] { read_text_file(dir.file("bomb.gz"), "the report", 1000); }),
            dir.file("bomb.gz") +
                ": the report decompressed is larger than the 0.001 MB limit (is this the "
                "right file?)");
  EXPECT_EQ(read_text_file(dir.file("bomb.gz"), "the report", 5000), std::string(5000, 'x'));
}

// --- parse_strict_json -------------------------------------------------------------------------------

TEST(StrictJson, RefusesARepeatedKeyNamingTheKeyAndTheObject) {
  EXPECT_EQ(error_of([] { parse_strict_json(R"({"a": 1, "b": 2, "a": 3})", "f.json", "index"); }),
            "f.json: index has the key 'a' twice in the top-level object (keys must be unique: JSON readers "
            "disagree on which copy counts)");
  EXPECT_THAT(error_of([] { parse_strict_json(R"({"weight_map": {"w": "s1", "w": "s2"}})", "f", "index"); }),
              HasSubstr("the key 'w' twice in object ['weight_map']"));
  EXPECT_THAT(error_of([] {
                parse_strict_json(R"([{"role": "user"}, {"role": "user", "content": "", "role": "system"}])",
                                  "m.json", "messages file");
              }),
              HasSubstr("the key 'role' twice in object [1]"));
  EXPECT_THAT(error_of([] { parse_strict_json(R"({"x": [[], {"k": 1, "k": 1}]})", "f", "doc"); }),
              HasSubstr("twice in object ['x'][1]"));
}

// Found by fuzz_checkpoint_index: a repeated key under 60 levels of long keys gave a 3 KB message
// (the whole path). The path now keeps its innermost steps within 120 bytes.
TEST(StrictJson, ARepeatedKeyDeepUnderLongKeysStaysOneShortLine) {
  std::string text, close;
  for (int i = 0; i < 60; ++i) {
    text += "{\"" + std::string(100, char('a' + i % 26)) + "\": ";
    close += "}";
  }
  text += R"({"k": 1, "k": 2})" + close;
  std::string e = error_of([&] { parse_strict_json(text, "f.json", "index"); });
  EXPECT_THAT(e, HasSubstr("f.json: index has the key 'k' twice in object ...['"));
  EXPECT_THAT(e, HasSubstr("... (100 bytes)']"));  // the innermost key, itself cut at 40 bytes
  EXPECT_LT(e.size(), 400u);
}

TEST(StrictJson, AcceptsTheSameKeyInDifferentObjects) {
  auto j = parse_strict_json(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]})", "f", "doc");
  EXPECT_EQ(j["c"][1]["k"], 4);
}

TEST(StrictJson, RefusesDeepNestingAndKeepsSyntaxErrorsShort) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(error_of([&] { parse_strict_json(deep, "f", "doc"); }), "f: doc nests deeper than 64 levels");
  EXPECT_NO_THROW(parse_strict_json(std::string(64, '[') + std::string(64, ']'), "f", "doc"));
  // nlohmann echoes the whole token it choked on; an unterminated 100 KB string must not come back.
  std::string e = error_of([] { parse_strict_json("{\"k\": \"" + std::string(100000, 'v'), "f", "doc"); });
  EXPECT_THAT(e, HasSubstr("f: doc is not valid JSON ("));
  EXPECT_LT(e.size(), 400u);
  EXPECT_THAT(e, Not(HasSubstr("[json.exception")));
}

TEST(StrictJson, DescribesValuesForExpectedFoundMessages) {
  using nlohmann::json;
  EXPECT_EQ(describe_json(json(5)), "an integer (5)");
  EXPECT_EQ(describe_json(json(-5)), "an integer (-5)");
  EXPECT_EQ(describe_json(json(0.5)), "a floating-point number (0.5)");
  EXPECT_EQ(describe_json(json("a\nb")), "a string ('a\\x0ab')");
  EXPECT_EQ(describe_json(json::object()), "an object");
  EXPECT_EQ(describe_json(json::array({1, 2})), "an array of 2");
  EXPECT_EQ(describe_json(json(nullptr)), "null");
  EXPECT_EQ(describe_json(json(true)), "a boolean (true)");
  EXPECT_LT(describe_json(json(std::string(100000, 'x'))).size(), 150u);
}

// --- messages files ----------------------------------------------------------------------------------

TEST(MessagesFile, ADirectoryIsNamedAsSuch) {
  TempDir dir;
  std::string e = error_of([&] { parse_messages_json(dir.path().string()); });
  EXPECT_EQ(e, dir.path().string() + ": is a directory, expected a messages JSON file");
}

TEST(MessagesFile, RefusesARepeatedRole) {
  TempDir dir;
  write_bytes(dir.file("m.json"), R"([{"role": "user", "content": "hi", "role": "system"}])");
  EXPECT_THAT(error_of([&] { parse_messages_json(dir.file("m.json")); }),
              AllOf(HasSubstr(dir.file("m.json") + ": "), HasSubstr("the key 'role' twice in object [0]")));
}

TEST(MessagesFile, MistypedFieldsAreNamed) {
  EXPECT_EQ(error_of([] { parse_messages_text(R"([{"role": "user", "content": 5}])", "m.json"); }),
            "m.json: message 0: \"content\" must be a string, found an integer (5)");
  EXPECT_THAT(error_of([] { parse_messages_text(R"([{"content": "x"}])", "m.json"); }),
              HasSubstr("m.json: message 0 has no \"role\""));
  EXPECT_THAT(error_of([] { parse_messages_text(R"(["hi"])", "m.json"); }),
              HasSubstr("m.json: message 0 must be an object, found a string ('hi')"));
  EXPECT_THAT(error_of([] { parse_messages_text("[]", "m.json"); }),
              HasSubstr("m.json: messages must be a non-empty JSON array, found an array of 0"));
}

TEST(MessagesFile, AHugeRoleIsQuotedShortAndPrintable) {
  std::string role = std::string(100000, 'r') + "\\u0000";
  std::string e =
      error_of([&] { parse_messages_text(R"([{"role": ")" + role + R"(", "content": "x"}])", "m.json"); });
  EXPECT_THAT(e, HasSubstr("m.json: message 0: role 'rrrr"));
  EXPECT_THAT(e, HasSubstr("... (100001 bytes)"));
  EXPECT_LT(e.size(), 400u);
  EXPECT_TRUE(printable_line(e));
}

// --- tokenizer paths ---------------------------------------------------------------------------------

TEST(TokenizerFile, ATokenizerModelThatIsADirectoryIsNamed) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "tokenizer.model");
  std::string e = error_of([&] { Tokenizer::load(dir.path().string()); });
  EXPECT_THAT(e, HasSubstr((dir.path() / "tokenizer.model").string()));
  EXPECT_THAT(e, Not(HasSubstr("basic_filebuf")));
  e = error_of([&] { Tokenizer::load((dir.path() / "tokenizer.model").string()); });
  EXPECT_THAT(e, HasSubstr("tokenizer.model"));
  EXPECT_THAT(e, Not(HasSubstr("basic_filebuf")));
}

}  // namespace
}  // namespace ridgeline
