// The conventions every `ridgeline` subcommand follows (cli/main.cpp, cli/flags.h): --help with the
// defaults, --version with the commit, usage errors in one line with exit code 2 (stray words,
// repeated flags, bad values), -h that never runs anything, and a README whose usage block is the
// --help synopses word for word.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace ridgeline;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCommands = {"generate", "chat",   "tokenize", "probe",
                                            "sweep",    "report", "compare",  "quantize"};

size_t lines(const std::string& s) {
  return size_t(std::count(s.begin(), s.end(), '\n'));
}

std::string collapse_spaces(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The synopsis `CMD --help` shows: from "usage: ridgeline CMD" to the first blank line.
std::string help_synopsis(const std::string& help) {
  size_t at = help.find("usage: ");
  if (at == std::string::npos) return "";
  size_t end = help.find("\n\n", at);
  return collapse_spaces(help.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7));
}

// The flag lines of a help text: each entry is the names of one flag ("-o", "--out").
std::vector<std::vector<std::string>> help_flags(const std::string& help) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(help);
  std::regex flag_line(R"(^\s+(-[-\w]+(?:,-[-\w]+)*)\b)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, flag_line)) continue;
    std::vector<std::string> names;
    std::stringstream names_in(m[1].str());
    for (std::string n; std::getline(names_in, n, ',');) names.push_back(n);
    if (std::find(names.begin(), names.end(), "--help") != names.end()) continue;
    if (std::find(names.begin(), names.end(), "--version") != names.end()) continue;
    out.push_back(names);
  }
  return out;
}

std::set<std::string> synopsis_flags(const std::string& synopsis) {
  std::set<std::string> out;
  std::regex flag(R"((^|[\s\[(|])(--?[a-z][-a-z0-9]*))");
  for (auto it = std::sregex_iterator(synopsis.begin(), synopsis.end(), flag); it != std::sregex_iterator();
       ++it)
    out.insert((*it)[2].str());
  return out;
}

// The README's usage block: the first ```sh block under "## Using it", one entry per command (a line
// starting "ridgeline CMD" and the indented lines after it).
std::map<std::string, std::string> readme_usage() {
  std::ifstream f(test::data_path("../../README.md"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t section = text.find("## Using it");
  EXPECT_NE(section, std::string::npos);
  size_t start = text.find("```sh\n", section);
  size_t end = text.find("```", start + 6);
  std::istringstream in(text.substr(start + 6, end - start - 6));
  std::map<std::string, std::string> out;
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ridgeline ", 0) == 0) {
      std::string rest = line.substr(10);
      current = rest.substr(0, rest.find(' '));
      EXPECT_EQ(out.count(current), 0u) << "README lists " << current << " twice";
      out[current] = line.substr(10);
    } else if (!current.empty()) {
      out[current] += "\n" + line;
    }
  }
  for (auto& [name, usage] : out) usage = collapse_spaces(usage);
  return out;
}

}  // namespace

TEST(CliConventions, EveryCommandHasHelpWithItsSynopsisAndFlags) {
  for (const auto& cmd : kCommands) {
    SCOPED_TRACE(cmd);
    auto r = test::run_cli(cmd + " --help");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_THAT(r.out, StartsWith("ridgeline " + cmd + ": "));
    EXPECT_THAT(r.out, HasSubstr("usage: ridgeline " + cmd + " "));
    EXPECT_THAT(r.out, HasSubstr("--version"));
    EXPECT_FALSE(help_flags(r.out).empty());
    // `help CMD` and `-h` say the same.
    EXPECT_EQ(test::run_cli("help " + cmd).out, r.out);
    EXPECT_EQ(test::run_cli(cmd + " -h").out, r.out);
  }
  auto top = test::run_cli("--help");
  ASSERT_EQ(top.exit_code, 0);
  for (const auto& cmd : kCommands) EXPECT_THAT(top.out, HasSubstr("  " + cmd + " ")) << top.out;
}

TEST(CliConventions, HelpShowsTheDefaultsForBothTheGpuAndTheCpu) {
  auto sweep = test::run_cli("sweep --help");
  EXPECT_THAT(sweep.out, HasSubstr("(default: 1,4,16,64,256 on a GPU, 1,4,16 on the CPU)"));
  EXPECT_THAT(sweep.out, HasSubstr("(default: 1024,4096 on a GPU, 256,1024 on the CPU)"));
  EXPECT_THAT(sweep.out, HasSubstr("(default: 50 on a GPU, 5 on the CPU)"));
  EXPECT_THAT(sweep.out,
              HasSubstr("(default: internlm2-chat-1_8b on a GPU, the bundled tiny model on the CPU)"));
  EXPECT_THAT(sweep.out, HasSubstr("(default: run.json)"));
  EXPECT_THAT(sweep.out, HasSubstr("(default: cuda where a GPU answers, else cpu)"));
  auto generate = test::run_cli("generate --help");
  EXPECT_THAT(generate.out, HasSubstr("(default: 256)"));
  EXPECT_THAT(generate.out, HasSubstr("--top-p P"));
  auto chat = test::run_cli("chat --help");
  EXPECT_THAT(chat.out, HasSubstr("(default: 512)"));
  EXPECT_THAT(chat.out, Not(HasSubstr("token-delay")));  // the test-only flag stays hidden
  auto compare = test::run_cli("compare --help");
  EXPECT_THAT(compare.out, HasSubstr("(default: 0.05)"));
}

TEST(CliConventions, VersionNamesTheGitCommit) {
  for (const std::string& args :
       {std::string("--version"), std::string("sweep --version"), std::string("chat --model x --version")}) {
    SCOPED_TRACE(args);
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(std::regex_match(r.out, std::regex("ridgeline \\S+ \\(git [0-9a-f]{7,}(-dirty)?\\)\n")))
        << r.out;
  }
}

TEST(CliConventions, HelpNeverRunsAnythingWhereverItStands) {
  fs::path dir = fs::path(::testing::TempDir()) / ("rl_conv_help_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string out = test::shell_quote((dir / "run.json").string());
  for (const std::string& args : std::vector<std::string>{
           "sweep --device cpu --batch 1 --context 8 --out " + out + " -h",
           "sweep --device cpu --batch 1 --context 8 --out -h", "sweep -h --out " + out}) {
    SCOPED_TRACE(args);
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_THAT(r.out, HasSubstr("usage: ridgeline sweep"));
    EXPECT_THAT(r.err, Not(HasSubstr("sweep:")));  // no measuring began
  }
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_FALSE(fs::exists("-h"));
  fs::remove_all(dir);
}

TEST(CliConventions, StrayWordsAreRefusedInOneLineWithExitCode2) {
  const std::string tok = " --tokenizer internlm2";
  for (const std::string& args : std::vector<std::string>{
           "tokenize" + tok + " --text hi stray", "sweep stray", "probe stray",
           "chat --model " + test::tiny_model_arg() + " stray", "generate --model x --chat hi stray",
           "quantize --model x --out y stray", "tokenize" + tok + " --text hi -x"}) {
    SCOPED_TRACE(args);
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, ::testing::AnyOf(HasSubstr("stray"), HasSubstr("-x")));
  }
}

TEST(CliConventions, RepeatedFlagsAreRefusedNamingTheFlag) {
  const std::string tok = "tokenize --tokenizer internlm2";
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {tok + " --text a --text b", "--text"},
           {tok + " --text a --json --json", "--json"},
           {"sweep --device cpu --out a.json --out=b.json", "--out"},
           {"report a.json -o x.md --out y.md", "--out"}}) {
    SCOPED_TRACE(args);
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, HasSubstr(flag + " given 2 times"));
  }
}

TEST(CliConventions, UnknownCommandsAndFlagsAndBadValuesExitWith2) {
  auto none = test::run_cli("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("usage: ridgeline COMMAND"));
  auto unknown = test::run_cli("frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'frobnicate'"));
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"sweep --bogus", "--bogus"},
           {"sweep --batch 1,,4", "--batch: expects comma-separated positive integers"},
           {"sweep --batch 0", "--batch: expects comma-separated positive integers"},
           {"sweep --iters 0", "--iters: expects an integer in [1, 1000000], got '0'"},
           {"compare a.json b.json --threshold x", "--threshold: expects a finite number"},
           {"quantize --model x", "--out is required"},
           {"tokenize --text hi", "--tokenizer is required"}}) {
    SCOPED_TRACE(args);
    auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, HasSubstr(says));
  }
}

// The README's usage block cannot drift from the program: each command's entry is its --help
// synopsis word for word, and the synopsis names every flag --help lists (and no other).
TEST(CliConventions, ReadmeUsageBlockIsTheHelpSynopsisOfEveryCommand) {
  const auto readme = readme_usage();
  std::set<std::string> listed;
  for (const auto& [name, usage] : readme) listed.insert(name);
  EXPECT_EQ(listed, std::set<std::string>(kCommands.begin(), kCommands.end()));
  for (const auto& cmd : kCommands) {
    SCOPED_TRACE(cmd);
    auto help = test::run_cli(cmd + " --help").out;
    const std::string synopsis = help_synopsis(help);
    ASSERT_THAT(synopsis, StartsWith("ridgeline " + cmd));
    ASSERT_TRUE(readme.count(cmd));
    EXPECT_EQ("ridgeline " + readme.at(cmd), synopsis);
    std::set<std::string> in_synopsis = synopsis_flags(synopsis), covered;
    for (const auto& names : help_flags(help)) {
      bool named = false;
      for (const auto& n : names)
        if (in_synopsis.count(n)) named = true, covered.insert(n);
      EXPECT_TRUE(named) << names.front() << " is in --help but not in the synopsis";
    }
    for (const auto& f : in_synopsis)
      EXPECT_TRUE(covered.count(f)) << f << " is in the synopsis but not in --help";
  }
}
