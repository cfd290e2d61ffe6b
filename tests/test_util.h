// Shared helpers for the CPU test suites: test-data paths, JSON references, error metrics, and
// running the `ridgeline` executable.
#pragma once

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "engine/text_file.h"

namespace ridgeline::test {

inline std::string data_path(const std::string& rel) {
  return std::string(RIDGELINE_TEST_DATA) + "/" + rel;
}

// gzipped or not (engine/text_file.h reads both).
inline nlohmann::json load_json(const std::string& path) {
  return nlohmann::json::parse(read_text_file(path, "a test's JSON file"));
}

// ||a - b|| / ||b||
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += double(a[i] - b[i]) * (a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return a.size() == b.size() ? std::sqrt(num / den) : INFINITY;
}

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the ridgeline executable with `args` (already shell-quoted), optional stdin text.
inline CliResult run_cli(const std::string& args, const std::string& stdin_text = "") {
  std::string base = ::testing::TempDir() + "/rl_cli_" + std::to_string(::getpid());
  std::string in_path = base + ".in", out_path = base + ".out", err_path = base + ".err";
  std::ofstream(in_path) << stdin_text;
  std::string cmd =
      std::string(RIDGELINE_CLI) + " " + args + " < " + in_path + " > " + out_path + " 2> " + err_path;
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::remove(in_path.c_str());
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return r;
}

// Single-quotes a string for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The bundled tiny model's folder, quoted for a command line.
inline std::string tiny_model_arg() {
  return shell_quote(data_path("tiny-internlm2-chat"));
}

}  // namespace ridgeline::test
