#include "cli/flags.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace ridgeline::cli {

bool given(const CLI::App& app, const std::string& flag) {
  return app.count(flag) > 0;
}

namespace {

bool parse_integer(const std::string& s, long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

std::string bound_text(long long min, long long max) {
  if (max == std::numeric_limits<long long>::max()) return fmt::format(">= {}", min);
  return fmt::format("in [{}, {}]", min, max);
}

}  // namespace

CLI::Validator integer_in(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        long long v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        const bool whole = !s.empty() && end == s.data() + s.size();
        if (whole && ec == std::errc() && v >= min && v <= max) return "";
        // A whole number too large for 64 bits is >= min yet out of range: say the whole range.
        const bool too_large = whole && ec == std::errc::result_out_of_range;
        return fmt::format("expects an integer {}, got '{}'",
                           too_large ? fmt::format("in [{}, {}]", min, max) : bound_text(min, max), s);
      },
      "");
}

CLI::Validator file_name() {
  return CLI::Validator(
      [](std::string& s) -> std::string { return s.empty() ? "expects a file name, got ''" : ""; }, "");
}

CLI::Validator number_in(double min, double max, bool min_open) {
  return CLI::Validator(
      [min, max, min_open](std::string& s) -> std::string {
        // from_chars accepts "nan" and "inf"; both are refused by the finiteness check.
        double v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        const bool parsed = !s.empty() && ec == std::errc() && p == s.data() + s.size();
        const bool in_range = parsed && std::isfinite(v) && (min_open ? v > min : v >= min) && v <= max;
        if (in_range) return "";
        std::string range = max >= std::numeric_limits<float>::max()
                                ? fmt::format("{} {}", min_open ? ">" : ">=", min)
                                : fmt::format("in {}{}, {}]", min_open ? "(" : "[", min, max);
        return fmt::format("expects a finite number {}, got '{}'", range, s);
      },
      "");
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

CLI::Validator word_list() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        for (const auto& item : split_list(s))
          if (item.empty()) return fmt::format("has an empty item in '{}'", s);
        return "";
      },
      "");
}

CLI::Validator positive_int_list() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        for (const auto& item : split_list(s)) {
          long long v = 0;
          if (!parse_integer(item, v) || v <= 0 || v > std::numeric_limits<int>::max())
            return fmt::format("expects comma-separated positive integers, got '{}' in '{}'", item, s);
        }
        return "";
      },
      "");
}

std::vector<int> parse_int_list(const std::string& text) {
  std::vector<int> out;
  for (const auto& item : split_list(text)) {
    long long v = 0;
    if (!parse_integer(item, v) || v <= 0 || v > std::numeric_limits<int>::max())
      throw UsageError(fmt::format("expected comma-separated positive integers, got '{}'", text));
    out.push_back(int(v));
  }
  return out;
}

void refuse_repeated_flags(const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional() || opt->get_expected_max() > 1) continue;
    if (opt->count() > 1)
      throw UsageError(fmt::format("{} given {} times; give it once", opt->get_name(), opt->count()));
  }
}

}  // namespace ridgeline::cli
