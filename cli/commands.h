// Subcommands of the `ridgeline` executable. Each cli/cmd_*.cpp registers itself with
// RIDGELINE_COMMAND, so adding a subcommand is adding one file.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ridgeline::cli {

struct Command {
  std::string name;
  std::string usage;  // one or more lines shown by `ridgeline help` and on a usage error
  std::function<int(const std::vector<std::string>& args)> run;  // args after the subcommand name
};

bool register_command(Command c);
const std::vector<Command>& commands();

}  // namespace ridgeline::cli

#define RIDGELINE_CONCAT_INNER(a, b) a##b
#define RIDGELINE_CONCAT(a, b) RIDGELINE_CONCAT_INNER(a, b)
#define RIDGELINE_COMMAND(...)                                       \
  static const bool RIDGELINE_CONCAT(ridgeline_command_, __LINE__) = \
      ::ridgeline::cli::register_command(__VA_ARGS__)
