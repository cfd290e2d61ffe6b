// The GPU regression workflow (.github/workflows/gpu-regression.yml) is valid YAML, runs on a
// self-hosted `gpu` runner, calls scripts/gpu-ci.sh and nothing else, and keeps the HTML report; the
// script itself parses (bash -n). With PyYAML (python3 -c 'import yaml') the YAML is parsed for real;
// without it, a structural check of the text stands in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

using nlohmann::json;
using namespace ridgeline;
using ::testing::HasSubstr;

namespace {

std::string repo_path(const std::string& rel) {
  return std::string(RIDGELINE_TEST_DATA) + "/../../" + rel;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs a shell command; its stdout and stderr come back.
test::CliResult run_command(const std::string& cmd) {
  const std::string base = ::testing::TempDir() + "/rl_workflow_" + std::to_string(::getpid());
  const int status = std::system((cmd + " > " + base + ".out 2> " + base + ".err").c_str());
  test::CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

const std::string kWorkflow = ".github/workflows/gpu-regression.yml";
const std::string kScriptCall = "scripts/gpu-ci.sh gpu-ci-out";

}  // namespace

TEST(GpuWorkflow, IsValidYamlThatCallsOnlyTheCiScriptOnAGpuRunnerAndKeepsTheReport) {
  const std::string path = repo_path(kWorkflow);
  ASSERT_FALSE(slurp(path).empty()) << path;
  if (std::system("python3 -c 'import yaml' > /dev/null 2>&1") != 0) {
    // No PyYAML: the text's structure. One `run:` line, and it is the script.
    const std::string text = slurp(path);
    std::regex run_line(R"(^\s*(- )?run:\s*(.*)$)", std::regex::multiline);
    int runs = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), run_line); it != std::sregex_iterator();
         ++it) {
      ++runs;
      EXPECT_EQ((*it)[2].str(), kScriptCall);
    }
    EXPECT_EQ(runs, 1);
    EXPECT_THAT(text, HasSubstr("runs-on: [self-hosted, gpu]"));
    EXPECT_THAT(text, HasSubstr("uses: actions/upload-artifact@"));
    EXPECT_THAT(text, HasSubstr("gpu-ci-out/report.html"));
    GTEST_SKIP() << "PyYAML not installed: checked the workflow's text only";
  }
  auto r = run_command(
      "python3 -c 'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' " +
      test::shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json w = json::parse(r.out);
  // YAML 1.1 reads the key `on` as true.
  const json& on = w.contains("on") ? w["on"] : w["true"];
  EXPECT_TRUE(on.contains("push") && on.contains("pull_request")) << on.dump();
  ASSERT_EQ(w["jobs"].size(), 1u);
  const json job = w["jobs"].begin().value();  // a copy: g++ 13 warns of a dangling reference here
  EXPECT_EQ(job["runs-on"], json::array({"self-hosted", "gpu"}));
  int runs = 0;
  bool uploads_report = false;
  for (const json& step : job["steps"]) {
    if (step.contains("run")) {
      ++runs;
      EXPECT_EQ(step["run"], kScriptCall);  // the job is the script: the same run as by hand
    } else {
      const std::string uses = step.value("uses", "");
      EXPECT_TRUE(uses.rfind("actions/checkout@", 0) == 0 || uses.rfind("actions/upload-artifact@", 0) == 0)
          << "a step that is neither the checkout, the script nor the upload: " << step.dump();
      if (uses.rfind("actions/upload-artifact@", 0) == 0) {
        uploads_report =
            step["with"]["path"].get<std::string>().find("gpu-ci-out/report.html") != std::string::npos;
        EXPECT_EQ(step.value("if", ""), "always()");  // the report of a failing gate is the one to read
      }
    }
  }
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(uploads_report);
}

TEST(GpuWorkflow, TheCiScriptParses) {
  auto r = run_command("bash -n " + test::shell_quote(repo_path("scripts/gpu-ci.sh")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}
