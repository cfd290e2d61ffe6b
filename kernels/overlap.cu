// The process-wide switch of kernels/overlap.h; RIDGELINE_OVERLAP_LAUNCHES=0 in the environment
// starts a process with it off (to measure what overlapping buys: the same run both ways).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/overlap.h"

namespace ridgeline::cuda {
namespace {
std::atomic<bool> g_overlapped{[] {
  const char* v = std::getenv("RIDGELINE_OVERLAP_LAUNCHES");
  return v == nullptr || std::strcmp(v, "0") != 0;
}()};
}  // namespace

bool overlapped_launches() {
  return g_overlapped.load(std::memory_order_relaxed);
}
void set_overlapped_launches(bool on) {
  g_overlapped.store(on, std::memory_order_relaxed);
}

}  // namespace ridgeline::cuda
