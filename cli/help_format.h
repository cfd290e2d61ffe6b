// How `ridgeline --help` and `ridgeline CMD --help` read: the command's summary, its usage synopsis
// (the same text as the README's usage block; tests/test_cli_conventions.cpp keeps them equal), then
// one line per flag with its default, "(default: X)", where CLI11 would print "=X" after the type.
#pragma once

#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace ridgeline::cli {

class HelpFormatter : public CLI::Formatter {
 public:
  // The synopsis of subcommand `name` (lines after "ridgeline NAME "), shown as its usage.
  void set_synopsis(const std::string& name, const std::string& synopsis) { synopses_[name] = synopsis; }

  std::string make_description(const CLI::App* app) const override;
  std::string make_usage(const CLI::App* app, std::string name) const override;
  std::string make_option_opts(const CLI::Option* opt) const override;
  std::string make_option_desc(const CLI::Option* opt) const override;
  // CLI11's help, ending in one blank line: its make_groups() puts a blank line after every group
  // but the last, and counts a hidden group (a test-only flag) as the last, which left two.
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override;

 private:
  std::map<std::string, std::string> synopses_;
};

}  // namespace ridgeline::cli
