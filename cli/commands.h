// Subcommands of the `ridgeline` executable. Each cli/cmd_*.cpp registers itself with
// RIDGELINE_COMMAND, so adding a subcommand is adding one file.
//
// A command declares its flags on the CLI11 subcommand it is given and returns the function that
// runs it once the command line has parsed; nothing runs when parsing fails or help was asked for.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ridgeline::cli {

// Runs the command; `args` are the words after the subcommand's name (for reports' "command").
using Runner = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string name;
  std::string summary;   // one line for `ridgeline --help`
  std::string synopsis;  // the usage after "ridgeline ", as `--help` and the README's usage block show it
  std::function<Runner(CLI::App& app)> define;  // adds the flags, returns the runner
};

bool register_command(Command c);
const std::vector<Command>& commands();

}  // namespace ridgeline::cli

#define RIDGELINE_CONCAT_INNER(a, b) a##b
#define RIDGELINE_CONCAT(a, b) RIDGELINE_CONCAT_INNER(a, b)
#define RIDGELINE_COMMAND(...)                                       \
  static const bool RIDGELINE_CONCAT(ridgeline_command_, __LINE__) = \
      ::ridgeline::cli::register_command(__VA_ARGS__)
