// What one decode step's kernel timeline (CUPTI's record of a graph replay: the CUDA backend's
// DecodeTiming::timeline) says per kernel. The per-op table is taken with serial launches, where no
// kernel starts early, so only the timeline shows what each kernel costs in the overlapped step as
// it runs. A kernel's advance is how far its end moves the step's end past every kernel before it
// (zero when it ends inside them): the advances of a step add up to its span.
#pragma once

#include <string>
#include <vector>

namespace ridgeline {

// One kernel of the step, microseconds from any fixed origin (the step's first start, usually).
struct TimelineSpan {
  std::string name;
  double start_us = 0.0, end_us = 0.0;
};

// One kernel name's launches in the step, summed.
struct TimelineKernel {
  std::string name;
  int launches = 0;
  double us = 0.0;          // durations, start to end (an early start's wait included)
  double lead_us = 0.0;     // starts minus the previous kernel's end: negative where it started early
  double advance_us = 0.0;  // advances of the step's end
};

struct TimelineSummary {
  double span_us = 0.0;                 // first start to last end
  double busy_us = 0.0;                 // time with at least one kernel running
  std::vector<TimelineKernel> kernels;  // per name, in order of first launch
  double idle_us() const { return span_us - busy_us; }
  double summed_us() const;  // durations summed: above busy_us where kernels overlap
  int kernel_count() const;  // launches in the step
};

// `spans` in start order (as the backend records them).
TimelineSummary summarize_timeline(const std::vector<TimelineSpan>& spans);

}  // namespace ridgeline
