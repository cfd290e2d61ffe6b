// Regression tests for what a first-time user found wrong in the CLI on the CPU (an audit of every
// command with edge-case input, 2026-12-05): errors that blamed the wrong flag, work done before an
// output path was checked, flags accepted and then ignored, and text that contradicted itself. Each
// test is named for the behaviour it pins down.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

namespace fs = std::filesystem;

// `n` copies of "hello " (one token each in the InternLM2 tokenizer, 6 bytes).
std::string hellos(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "hello ";
  return s;
}

std::string tiny(const std::string& command, const std::string& more) {
  return command + " --model " + test::tiny_model_arg() + " --device cpu " + more;
}

std::string temp(const std::string& name) {
  return ::testing::TempDir() + "/rl_audit_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

// --- the system prompt is named when it is what does not fit ---------------------------------------

TEST(CliSystemPrompt, GenerateNamesTheSystemPromptWhenChatAndSystemCannotFit) {
  auto r = test::run_cli(tiny("generate", "--chat hi --system " + test::shell_quote(hellos(20'000))));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--chat with --system is too long: its 120002 bytes"));
  // Without --system the message alone is named, as before.
  auto alone = test::run_cli(tiny("generate", "--chat " + test::shell_quote(hellos(20'000))));
  EXPECT_THAT(alone.err, HasSubstr("--chat is too long: its 120000 bytes"));
}

TEST(CliSystemPrompt, ChatRefusesASystemPromptThatLeavesNoRoomBeforeTheFirstMessage) {
  // 1700 "hello "s are ~1700 tokens: with the default --max-new-tokens 512 nothing fits a context of
  // 2048. Every message would be refused; the start is refused instead, naming --system.
  auto r =
      test::run_cli(tiny("chat", "--system " + test::shell_quote(hellos(1700))), "hi\nWhat is 40 + 20?\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--system is too long: its 10200 bytes are"));
  EXPECT_THAT(
      r.err,
      HasSubstr("with --max-new-tokens 512 for a reply the context of 2048 has no room for a message"));
  EXPECT_EQ(r.out, "");
  // The same prompt with room for a short reply is accepted.
  auto fits =
      test::run_cli(tiny("chat", "--max-new-tokens 16 --system " + test::shell_quote(hellos(1700))), "hi\n");
  EXPECT_EQ(fits.exit_code, 0) << fits.err;
}

TEST(CliSystemPrompt, SlashSystemThatWouldNotFitLeavesTheConversationAsItWas) {
  auto r = test::run_cli(tiny("chat", ""), "/system " + hellos(1700) + "\nWhat is 40 + 20?\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/system: that system prompt is too long"));
  EXPECT_THAT(r.err, HasSubstr("the conversation and its system prompt are unchanged"));
  EXPECT_THAT(r.out, HasSubstr("40 + 20 = 60."));
}

TEST(CliSystemPrompt, ATurnThatCannotFitNamesTheSystemPromptAmongWhatToShorten) {
  // A message of 100 KB cannot fit whatever the system prompt; with one set, the refusal says both.
  auto r =
      test::run_cli(tiny("chat", "--system " + test::shell_quote("Answer briefly.")), hellos(17'000) + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("bytes of text with the system prompt"));
  EXPECT_THAT(r.err, HasSubstr("shorten the message or the system prompt (--system, /system)"));
}

// --- outputs are checked before the work ------------------------------------------------------------

TEST(CliOutputsFirst, GenerateRefusesAnUnwritableLogitsOutBeforeGenerating) {
  auto r = test::run_cli(tiny("generate", "--chat hi --logits-out /nonexistent-rl-audit/lg.npy"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent-rl-audit/lg.npy: cannot write there"));
  EXPECT_EQ(r.out, "") << "nothing generated before the refusal";
  // A writable one still gets the logits.
  const std::string path = temp("lg.npy");
  auto ok =
      test::run_cli(tiny("generate", "--chat hi --max-new-tokens 2 --logits-out " + test::shell_quote(path)));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_GT(fs::file_size(path), 128u);
  fs::remove(path);
}

TEST(CliOutputsFirst, CompareChecksItsOutputFilesBeforeComparing) {
  const std::string report = test::shell_quote(test::data_path("reports/cpu-tiny-run.json"));
  auto r = test::run_cli("compare " + report + " " + report + " --md /nonexistent-rl-audit/c.md");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent-rl-audit/c.md: cannot write there"));
  EXPECT_EQ(r.out, "") << "no comparison printed before the refusal";
}

TEST(CliOutputsFirst, AnEmptyOutputPathNamesItsFlag) {
  for (const std::string& args : {std::string("sweep --out ''"), std::string("probe --device cpu --out ''"),
                                  tiny("generate", "--chat hi --logits-out ''")}) {
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_THAT(r.err, HasSubstr("out: expects a file name, got ''")) << args;
  }
}

TEST(CliOutputsFirst, QuantizeMakesItsFolderButNotTheFoldersAboveIt) {
  const std::string parent = temp("missing");
  fs::remove_all(parent);
  auto r = test::run_cli(tiny("quantize", "--out " + test::shell_quote(parent + "/q")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no folder '" + parent + "' to make it in"));
  EXPECT_FALSE(fs::exists(parent));
  // A folder named with a trailing slash is still the folder itself, made in an existing parent.
  fs::create_directories(parent);
  auto slash = test::run_cli(tiny("quantize", "--out " + test::shell_quote(parent + "/q/")));
  EXPECT_EQ(slash.exit_code, 0) << slash.err;
  EXPECT_TRUE(fs::exists(parent + "/q/config.json"));
  fs::remove_all(parent);
}

// --- flags that would be ignored are refused; values are checked where they are given ------------

TEST(CliIgnoredFlags, SweepRefusesPhaseFlagsItsPhasesWouldIgnore) {
  auto prompt = test::run_cli(tiny("sweep", "--batch 1 --context 16 --prompt-len 8 --out /dev/null"));
  EXPECT_EQ(prompt.exit_code, 2);
  EXPECT_THAT(prompt.err,
              HasSubstr("--prompt-len sets the prefill phase's prompts, and this sweep runs decode only"));
  auto context =
      test::run_cli(tiny("sweep", "--batch 1 --context 16 --phase prefill --prompt-len 8 --out /dev/null"));
  EXPECT_EQ(context.exit_code, 2);
  EXPECT_THAT(context.err,
              HasSubstr("--context sets the decode phase's contexts, and this sweep runs prefill only"));
}

TEST(CliIgnoredFlags, QuantizeGroupSizeThatIsNotAMultipleOfEightIsAUsageError) {
  const std::string out = temp("q12");
  auto r = test::run_cli(tiny("quantize", "--group-size 12 --out " + test::shell_quote(out)));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--group-size: expects a multiple of 8"));
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliIgnoredFlags, ASeedTooLargeForSixtyFourBitsStatesTheWholeRange) {
  auto r = test::run_cli(tiny("generate", "--chat hi --seed 18446744073709551615"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(
      r.err, HasSubstr("--seed: expects an integer in [0, 9223372036854775807], got '18446744073709551615'"));
}

TEST(CliIgnoredFlags, SweepOnAnAskedForCpuDoesNotSayThereIsNoGpu) {
  const std::string out = temp("cpu.json");
  auto r = test::run_cli("sweep --device cpu --batch 1 --context 16 --iters 1 --warmup 0 --out " +
                         test::shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.err,
      HasSubstr("sweep: on --device cpu, the CPU reference backend runs the bundled tiny model (batch 1, "
                "context 16); pass --model to choose"));
  EXPECT_THAT(r.err, Not(HasSubstr("no GPU")));
  fs::remove(out);
}

TEST(CliIgnoredFlags, TokenizeWithAnUnknownNameListsTheBundledTokenizers) {
  auto r = test::run_cli("tokenize --tokenizer internlm3 --text a");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tokenizer 'internlm3' is neither a file or folder nor a bundled tokenizer "
                               "(bundled: "));
  EXPECT_THAT(r.err, HasSubstr("internlm2"));  // the one the project ships
}

// --- what is printed says what happened -------------------------------------------------------------

TEST(CliPrintedText, OneNewTokenPrintsNoDecodeRate) {
  auto r = test::run_cli(tiny("generate", "--chat hi --max-new-tokens 1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("+ 1 new tokens on cpu, no decode step, stop:"));
  EXPECT_THAT(r.err, Not(HasSubstr("tok/s")));
  auto j = test::run_cli(tiny("generate", "--chat hi --max-new-tokens 1 --json"));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto stats = nlohmann::json::parse(j.out)["stats"];
  EXPECT_TRUE(stats["decode_tokens_per_s"].is_null());
  EXPECT_TRUE(stats["ms_per_token"].is_null());
  // Two new tokens are one decode step: a rate.
  auto two = test::run_cli(tiny("generate", "--chat hi --max-new-tokens 2 --json"));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_GT(nlohmann::json::parse(two.out)["stats"]["decode_tokens_per_s"].get<double>(), 0.0);
}

TEST(CliPrintedText, EveryHelpEndsWithOneBlankLine) {
  for (const std::string cmd :
       {"", "generate", "chat", "tokenize", "probe", "sweep", "report", "compare", "quantize"}) {
    auto r = test::run_cli(cmd + " --help");
    ASSERT_EQ(r.exit_code, 0) << cmd;
    ASSERT_GE(r.out.size(), 3u) << cmd;
    EXPECT_EQ(r.out.substr(r.out.size() - 2), "\n\n") << cmd;
    EXPECT_NE(r.out.substr(r.out.size() - 3), "\n\n\n") << cmd;
  }
}

TEST(CliPrintedText, AOneBatchReportSaysItCannotMeasureARidge) {
  const std::string out = temp("one.json");
  auto s = test::run_cli(
      tiny("sweep", "--batch 1 --context 16 --iters 1 --warmup 0 --out " + test::shell_quote(out)));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = test::run_cli("report " + test::shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("one batch measured (B=1), and a measured ridge needs two or more"));
  EXPECT_THAT(r.out, HasSubstr("needs 2+ batches"));
  EXPECT_THAT(r.out, Not(HasSubstr("no compute roof was reached")));
  fs::remove(out);
}

// Baselines are committed gzipped (reports/baselines/*.json.gz): a sweep writes one where --out ends
// in .gz, and report and compare read it as they read the plain JSON.
TEST(CliPrintedText, ASweepWritesGzipWhereItsOutEndsInGzAndReportAndCompareReadIt) {
  const std::string gz = temp("r.json.gz"), plain = temp("r.json");
  auto s = test::run_cli(
      tiny("sweep", "--batch 1,2 --context 16 --iters 2 --warmup 0 --out " + test::shell_quote(gz)));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::ifstream f(gz, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes.substr(0, 2), "\x1f\x8b");  // gzip's magic: compressed, not JSON under a .gz name
  const nlohmann::json j = test::load_json(gz);
  EXPECT_EQ(j["runs"].size(), 2u);
  { std::ofstream(plain) << j.dump(1); }
  auto from_gz = test::run_cli("report " + test::shell_quote(gz));
  auto from_plain = test::run_cli("report " + test::shell_quote(plain));
  ASSERT_EQ(from_gz.exit_code, 0) << from_gz.err;
  ASSERT_EQ(from_plain.exit_code, 0) << from_plain.err;
  EXPECT_THAT(from_gz.out, HasSubstr("B=2"));
  // The same report either way, but for the file names it quotes (the sweep's command names the .gz).
  auto unnamed = [&](std::string text) {
    for (const std::string& path : {gz, plain})
      for (size_t at; (at = text.find(path)) != std::string::npos;) text.replace(at, path.size(), "REPORT");
    return text;
  };
  EXPECT_EQ(unnamed(from_gz.out), unnamed(from_plain.out));
  auto c = test::run_cli("compare " + test::shell_quote(plain) + " " + test::shell_quote(gz));
  EXPECT_EQ(c.exit_code, 0) << c.err;  // a report against itself: nothing slower
  EXPECT_THAT(c.out, HasSubstr("0 regressions"));
  fs::remove(gz);
  fs::remove(plain);
}

TEST(CliPrintedText, PrefillRunsMethodIsLabelledAsThePrefills) {
  const std::string out = temp("phases.json");
  auto s = test::run_cli(tiny("sweep",
                              "--batch 1 --context 16 --phase decode,prefill --prompt-len 8 --iters 1 "
                              "--warmup 0 --out " +
                                  test::shell_quote(out)));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = test::run_cli("report " + test::shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Method (prefill runs of 8 tokens)"));
  EXPECT_THAT(r.out, Not(HasSubstr("Per-op method")));
  fs::remove(out);
}

TEST(CliPrintedText, AReportWhoseConfigurationsWereAllSkippedSaysSoInsteadOfEmptyPieces) {
  const std::string out = temp("skipped.json");
  auto s = test::run_cli(
      tiny("sweep", "--batch 1 --context 100000 --iters 1 --warmup 0 --out " + test::shell_quote(out)));
  ASSERT_EQ(s.exit_code, 1) << s.err;                // nothing measured
  const std::string dir = temp("skipped_rendered");  // a Markdown report writes its charts beside it
  fs::create_directories(dir);
  for (const std::string ext : {".md", ".html"}) {
    const std::string rendered = dir + "/report" + ext;
    auto r = test::run_cli("report " + test::shell_quote(out) + " -o " + test::shell_quote(rendered));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ifstream f(rendered);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_THAT(text, HasSubstr("none: no configuration was measured")) << ext;
    EXPECT_THAT(text, HasSubstr("No configuration was measured")) << ext;
    EXPECT_THAT(text, HasSubstr("context 100000 exceeds the model")) << ext;
  }
  fs::remove_all(dir);
  fs::remove(out);
}
