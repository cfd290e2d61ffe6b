#include "analysis/timeline.h"

#include <algorithm>
#include <map>

namespace ridgeline {

TimelineSummary summarize_timeline(const std::vector<TimelineSpan>& spans) {
  TimelineSummary s;
  if (spans.empty()) return s;
  std::map<std::string, size_t> index;
  const double t0 = spans.front().start_us;
  double covered_to = t0;  // the latest end so far
  for (size_t i = 0; i < spans.size(); ++i) {
    const TimelineSpan& k = spans[i];
    auto [it, fresh] = index.try_emplace(k.name, s.kernels.size());
    if (fresh) s.kernels.push_back({.name = k.name});
    TimelineKernel& row = s.kernels[it->second];
    row.launches += 1;
    row.us += k.end_us - k.start_us;
    if (i > 0) row.lead_us += k.start_us - spans[i - 1].end_us;
    row.advance_us += std::max(0.0, k.end_us - covered_to);
    s.busy_us += std::max(0.0, k.end_us - std::max(k.start_us, covered_to));
    covered_to = std::max(covered_to, k.end_us);
  }
  s.span_us = covered_to - t0;
  return s;
}

double TimelineSummary::summed_us() const {
  double sum = 0.0;
  for (const TimelineKernel& k : kernels) sum += k.us;
  return sum;
}

int TimelineSummary::kernel_count() const {
  int n = 0;
  for (const TimelineKernel& k : kernels) n += k.launches;
  return n;
}

}  // namespace ridgeline
