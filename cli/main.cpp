// ridgeline: one executable, subcommands registered by cli/cmd_*.cpp.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/args.h"
#include "cli/commands.h"

namespace ridgeline::cli {

static std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

bool register_command(Command c) {
  registry().push_back(std::move(c));
  return true;
}

const std::vector<Command>& commands() {
  return registry();
}

static void print_help(std::FILE* to) {
  fmt::print(to, "ridgeline: roofline analysis of LLM decoding on an InternLM2 engine\n\nusage:\n");
  for (const auto& c : commands()) fmt::print(to, "  ridgeline {}\n", c.usage);
}

}  // namespace ridgeline::cli

int main(int argc, char** argv) {
  using namespace ridgeline::cli;
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help" ||
      std::string(argv[1]) == "-h") {
    print_help(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (c.name != name) continue;
    try {
      return c.run(args);
    } catch (const UsageError& e) {
      fmt::print(stderr, "ridgeline {}: {}\nusage: ridgeline {}\n", name, e.what(), c.usage);
      return 2;
    } catch (const std::exception& e) {
      fmt::print(stderr, "ridgeline {}: error: {}\n", name, e.what());
      return 1;
    }
  }
  fmt::print(stderr, "ridgeline: unknown command '{}'\n", name);
  print_help(stderr);
  return 2;
}
