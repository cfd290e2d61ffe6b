// The sweep's progress lines on stderr, each "[i/N] ..." line followed by the time spent and an
// estimate of the time left: the mean time per configuration so far times the configurations to go.
// Configurations grow with batch and context, so the estimate runs low early in a sweep; it is a
// guide for whether to wait, not a promise.
#pragma once

#include <chrono>
#include <string>

namespace ridgeline::cli {

class SweepProgress {
 public:
  SweepProgress() : start_(std::chrono::steady_clock::now()) {}
  // `line` with " (elapsed E, about R left)" appended when it is an "[i/N]" line with i < N.
  std::string annotate(const std::string& line) const;
  // The same with the elapsed time given (for tests).
  static std::string annotate(const std::string& line, double elapsed_s);

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ridgeline::cli
