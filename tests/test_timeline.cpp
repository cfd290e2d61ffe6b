// summarize_timeline against hand-computed steps: a serial chain (gaps between kernels), an
// overlapped chain (each kernel starts before the previous one ends), a kernel that ends inside
// another (no advance), and repeated kernels summed per name in order of first launch.
#include <gtest/gtest.h>

#include "analysis/timeline.h"

namespace ridgeline {
namespace {

const TimelineKernel& row(const TimelineSummary& s, const std::string& name) {
  for (const TimelineKernel& k : s.kernels)
    if (k.name == name) return k;
  throw std::runtime_error("no row " + name);
}

double advances(const TimelineSummary& s) {
  double sum = 0.0;
  for (const TimelineKernel& k : s.kernels) sum += k.advance_us;
  return sum;
}

TEST(Timeline, SerialChainAdvancesByDurationPlusGap) {
  // a [0, 2], gap 0.5, b [2.5, 6], gap 1, a [7, 8]
  const TimelineSummary s = summarize_timeline({{"a", 0.0, 2.0}, {"b", 2.5, 6.0}, {"a", 7.0, 8.0}});
  EXPECT_DOUBLE_EQ(s.span_us, 8.0);
  EXPECT_DOUBLE_EQ(s.busy_us, 6.5);
  EXPECT_DOUBLE_EQ(s.idle_us(), 1.5);
  EXPECT_DOUBLE_EQ(s.summed_us(), 6.5);
  EXPECT_EQ(s.kernel_count(), 3);
  ASSERT_EQ(s.kernels.size(), 2u);
  EXPECT_EQ(s.kernels[0].name, "a");  // order of first launch
  EXPECT_EQ(row(s, "a").launches, 2);
  EXPECT_DOUBLE_EQ(row(s, "a").us, 3.0);
  EXPECT_DOUBLE_EQ(row(s, "a").lead_us, 1.0);     // the first kernel has no lead; the second a gets +1
  EXPECT_DOUBLE_EQ(row(s, "a").advance_us, 4.0);  // 2, then 8 - 6
  EXPECT_DOUBLE_EQ(row(s, "b").lead_us, 0.5);
  EXPECT_DOUBLE_EQ(row(s, "b").advance_us, 4.0);  // 6 - 2
  EXPECT_DOUBLE_EQ(advances(s), s.span_us);
}

TEST(Timeline, OverlappedChainChargesEachKernelOnlyWhatItAddsToTheEnd) {
  // b starts 3 us before a ends and waits; c starts 1 us before b ends.
  const TimelineSummary s = summarize_timeline({{"a", 0.0, 5.0}, {"b", 2.0, 9.0}, {"c", 8.0, 10.0}});
  EXPECT_DOUBLE_EQ(s.span_us, 10.0);
  EXPECT_DOUBLE_EQ(s.busy_us, 10.0);
  EXPECT_DOUBLE_EQ(s.idle_us(), 0.0);
  EXPECT_DOUBLE_EQ(s.summed_us(), 14.0);
  EXPECT_DOUBLE_EQ(row(s, "b").lead_us, -3.0);
  EXPECT_DOUBLE_EQ(row(s, "b").us, 7.0);          // its wait included
  EXPECT_DOUBLE_EQ(row(s, "b").advance_us, 4.0);  // 9 - 5
  EXPECT_DOUBLE_EQ(row(s, "c").lead_us, -1.0);
  EXPECT_DOUBLE_EQ(row(s, "c").advance_us, 1.0);
  EXPECT_DOUBLE_EQ(advances(s), s.span_us);
}

TEST(Timeline, AKernelEndingInsideAnotherAdvancesNothing) {
  // b runs inside a (another stream, or no wait): it moves the step's end by nothing, not by a
  // negative amount, and c's advance counts from a's end.
  const TimelineSummary s = summarize_timeline({{"a", 0.0, 6.0}, {"b", 1.0, 3.0}, {"c", 7.0, 9.0}});
  EXPECT_DOUBLE_EQ(row(s, "b").advance_us, 0.0);
  EXPECT_DOUBLE_EQ(row(s, "b").lead_us, -5.0);
  EXPECT_DOUBLE_EQ(row(s, "c").advance_us, 3.0);  // 9 - 6: the gap after a included
  EXPECT_DOUBLE_EQ(row(s, "c").lead_us, 4.0);     // its start minus b's end
  EXPECT_DOUBLE_EQ(s.busy_us, 8.0);
  EXPECT_DOUBLE_EQ(s.span_us, 9.0);
  EXPECT_DOUBLE_EQ(advances(s), s.span_us);
}

TEST(Timeline, TimesNeedNotStartAtZeroAndAnEmptyStepIsEmpty) {
  const TimelineSummary s = summarize_timeline({{"a", 100.0, 102.0}, {"b", 101.0, 105.0}});
  EXPECT_DOUBLE_EQ(s.span_us, 5.0);
  EXPECT_DOUBLE_EQ(row(s, "a").advance_us, 2.0);
  EXPECT_DOUBLE_EQ(row(s, "b").advance_us, 3.0);
  const TimelineSummary none = summarize_timeline({});
  EXPECT_TRUE(none.kernels.empty());
  EXPECT_DOUBLE_EQ(none.span_us, 0.0);
}

}  // namespace
}  // namespace ridgeline
