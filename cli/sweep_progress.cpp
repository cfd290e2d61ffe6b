#include "cli/sweep_progress.h"

#include <charconv>

#include <fmt/format.h>

#include "analysis/units.h"

namespace ridgeline::cli {

std::string SweepProgress::annotate(const std::string& line) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return annotate(line, elapsed);
}

std::string SweepProgress::annotate(const std::string& line, double elapsed_s) {
  // "[i/N] ...", as bench/sweep/sweep.cpp writes each configuration's line.
  if (line.empty() || line[0] != '[') return line;
  const char* p = line.data() + 1;
  const char* end = line.data() + line.size();
  long done = 0, total = 0;
  auto a = std::from_chars(p, end, done);
  if (a.ec != std::errc() || a.ptr == end || *a.ptr != '/') return line;
  auto b = std::from_chars(a.ptr + 1, end, total);
  if (b.ec != std::errc() || b.ptr == end || *b.ptr != ']' || done <= 0 || total <= 0 || done > total)
    return line;
  if (done == total) return fmt::format("{} (took {})", line, format_duration(elapsed_s));
  const double left = elapsed_s / double(done) * double(total - done);
  return fmt::format("{} ({} so far, about {} left)", line, format_duration(elapsed_s),
                     format_duration(left));
}

}  // namespace ridgeline::cli
