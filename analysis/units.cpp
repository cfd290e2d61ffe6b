#include "analysis/units.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace ridgeline {
namespace {

// `value` in units of 10^(3*top) (top: the index of the first of `prefixes`), stepped down a prefix
// at a time while under 1.
std::string format_rate(double value, const char* const* prefixes, int count, const char* unit) {
  int i = 0;
  while (i + 1 < count && value != 0 && std::fabs(value) < 1) {
    value *= 1000;
    ++i;
  }
  const double a = std::fabs(value);
  if (a >= 100 || a == 0) return fmt::format("{:.0f} {}{}", value, prefixes[i], unit);
  if (a >= 10) return fmt::format("{:.1f} {}{}", value, prefixes[i], unit);
  return fmt::format("{:.2f} {}{}", value, prefixes[i], unit);
}

}  // namespace

std::string format_bandwidth(double GBps) {
  static const char* const kPrefixes[] = {"G", "M", "k", ""};
  return format_rate(GBps, kPrefixes, 4, "B/s");
}

std::string format_flops(double tflops) {
  static const char* const kPrefixes[] = {"T", "G", "M", "k", ""};
  return format_rate(tflops, kPrefixes, 5, "FLOP/s");
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(seconds, 0.0));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

}  // namespace ridgeline
