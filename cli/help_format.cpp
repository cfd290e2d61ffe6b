#include "cli/help_format.h"

#include <fmt/format.h>

namespace ridgeline::cli {

std::string HelpFormatter::make_description(const CLI::App* app) const {
  if (app->get_parent() == nullptr) return app->get_description() + "\n";
  return fmt::format("ridgeline {}: {}\n", app->get_name(), app->get_description());
}

std::string HelpFormatter::make_usage(const CLI::App* app, std::string) const {
  if (app->get_parent() == nullptr)
    return "usage: ridgeline COMMAND [flags]   (ridgeline COMMAND --help: its flags and their defaults)\n";
  auto it = synopses_.find(app->get_name());
  if (it == synopses_.end()) return fmt::format("usage: ridgeline {} [flags]\n", app->get_name());
  // Continuation lines of the synopsis line up under its first flag.
  const std::string indent(std::string("usage: ridgeline ").size() + app->get_name().size() + 1, ' ');
  std::string out = "usage: ridgeline ";
  for (char c : it->second) {
    out += c;
    if (c == '\n') out += indent;
  }
  return out + "\n";
}

std::string HelpFormatter::make_option_opts(const CLI::Option* opt) const {
  if (opt->get_type_size() == 0 || opt->get_type_name().empty()) return "";
  return " " + opt->get_type_name();
}

std::string HelpFormatter::make_option_desc(const CLI::Option* opt) const {
  std::string desc = opt->get_required() ? "required: " + opt->get_description() : opt->get_description();
  if (!opt->get_default_str().empty()) desc += fmt::format(" (default: {})", opt->get_default_str());
  return desc;
}

std::string HelpFormatter::make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const {
  std::string text = CLI::Formatter::make_help(app, std::move(name), mode);
  while (text.size() >= 3 && text.compare(text.size() - 3, 3, "\n\n\n") == 0) text.pop_back();
  return text;
}

}  // namespace ridgeline::cli
