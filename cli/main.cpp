// ridgeline: one executable, subcommands registered by cli/cmd_*.cpp, flags parsed by CLI11.
// Exit codes: 0 success, 1 an error while running, 2 a usage error (an unknown command or flag, a
// stray word, a repeated flag, a bad value); a usage error is one line on stderr naming the flag.
// `-h`/`--help` and `--version` anywhere on the line print and exit 0 without running anything.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/build_info.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/help_format.h"

#ifndef RIDGELINE_VERSION
#define RIDGELINE_VERSION "0.1"
#endif

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

namespace {

// The commit stamped at build time (or $RIDGELINE_GIT_COMMIT), as the reports record it.
const std::string kVersion = [] {
  const std::string commit = build_git_commit();
  return fmt::format("ridgeline {} (git {})", RIDGELINE_VERSION, commit.empty() ? "unknown" : commit);
}();

// The order `ridgeline --help` lists the commands in (registration order is the link order).
const std::vector<std::string> kOrder = {"generate", "chat",   "tokenize", "probe",
                                         "sweep",    "report", "compare",  "quantize"};

std::vector<const Command*> ordered_commands() {
  std::vector<const Command*> out;
  for (const auto& c : commands()) out.push_back(&c);
  auto rank = [](const Command* c) {
    return std::find(kOrder.begin(), kOrder.end(), c->name) - kOrder.begin();
  };
  std::stable_sort(out.begin(), out.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
  return out;
}

// True when `word` appears among `words` as a word of its own before a `--` (after which every word
// is a positional). Checked before parsing, so that `--out -h` shows the help too instead of
// running with an output file named "-h".
bool asks_for(const std::vector<std::string>& words, std::initializer_list<const char*> names) {
  for (const auto& w : words) {
    if (w == "--") return false;
    for (const char* n : names)
      if (w == n) return true;
  }
  return false;
}

int run(std::vector<std::string> words) {
  // `ridgeline help [COMMAND]` is `ridgeline [COMMAND] --help`.
  if (!words.empty() && words[0] == "help") {
    words.erase(words.begin());
    words.push_back("--help");
  }

  CLI::App app("ridgeline: roofline analysis of LLM decoding on an InternLM2 engine", "ridgeline");
  auto formatter = std::make_shared<HelpFormatter>();
  formatter->column_width(30);
  formatter->label("Positionals", "arguments");
  app.formatter(formatter);
  // Repeats are refused by refuse_repeated_flags() with a clearer line than CLI11's own.
  app.option_defaults()->group("flags")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "print this help and exit")->group("flags");
  app.set_version_flag("--version", kVersion, "print the version and the git commit, and exit");

  std::map<std::string, CLI::App*> subs;
  std::map<std::string, Runner> runners;
  for (const Command* c : ordered_commands()) {
    CLI::App* sub = app.add_subcommand(c->name, c->summary);
    sub->group("commands");
    sub->get_help_ptr()->group("flags");  // CLI11 makes it before the inherited option defaults
    sub->set_version_flag("--version", kVersion, "print the version and the git commit, and exit");
    formatter->set_synopsis(c->name, c->synopsis);
    runners[c->name] = c->define(*sub);
    subs[c->name] = sub;
  }
  app.require_subcommand(0, 1);

  if (words.empty()) {
    fmt::print(stderr, "{}", app.help());
    return 2;
  }
  const std::string& name = words[0];
  CLI::App* sub = nullptr;
  if (auto it = subs.find(name); it != subs.end()) {
    sub = it->second;
  } else if (name.rfind("-", 0) != 0) {
    std::string names;
    for (const Command* c : ordered_commands()) names += (names.empty() ? "" : ", ") + c->name;
    fmt::print(stderr, "ridgeline: unknown command '{}' (commands: {}; ridgeline --help)\n", name, names);
    return 2;
  }

  const std::vector<std::string> rest(words.begin() + (sub ? 1 : 0), words.end());
  CLI::App& target = sub ? *sub : app;
  if (asks_for(rest, {"-h", "--help"})) {
    fmt::print("{}", target.help());
    return 0;
  }
  if (asks_for(rest, {"--version"})) {
    fmt::print("{}\n", kVersion);
    return 0;
  }
  const std::string who = sub ? "ridgeline " + name : std::string("ridgeline");
  try {
    std::vector<std::string> reversed(words.rbegin(), words.rend());  // CLI11 takes them reversed
    app.parse(reversed);
    if (!sub) {
      fmt::print(stderr, "{}", app.help());
      return 2;
    }
    refuse_repeated_flags(*sub);
    return runners[name](rest);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    fmt::print(stderr, "{}: {} ({} --help lists the flags)\n", who, e.what(), who);
    return 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "{}: {} ({} --help lists the flags)\n", who, e.what(), who);
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: error: {}\n", who, e.what());
    return 1;
  }
}

}  // namespace
}  // namespace ridgeline::cli

int main(int argc, char** argv) {
  // A write past `ulimit -f` then fails with EFBIG, which the output files report and clean up after,
  // instead of killing the process halfway through a file.
  std::signal(SIGXFSZ, SIG_IGN);
  int rc = ridgeline::cli::run(std::vector<std::string>(argv + 1, argv + argc));
  // Output sent to a full disk must not pass for success: what stdio could not write shows here.
  errno = 0;
  if ((std::fflush(stdout) != 0 || std::ferror(stdout)) && rc == 0) {
    std::fprintf(stderr, "ridgeline: error: writing standard output failed: %s\n",
                 errno ? std::strerror(errno) : "a write error");
    rc = 1;
  }
  return rc;
}
