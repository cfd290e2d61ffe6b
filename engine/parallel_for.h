// Splitting host-side loops over the cores (weight conversion, dequantization, the quantizer).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace ridgeline {

// Runs f(begin, end) over [0, n) split into contiguous chunks across the cores. Callers make each
// value depend only on its index, so that results do not depend on the split (nor on the machine).
// `min_per_thread` items keep a thread busy long enough to be worth starting.
template <typename F>
void parallel_for(int64_t n, int64_t min_per_thread, F f) {
  if (n <= 0) return;
  int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()),
                                      n / std::max<int64_t>(1, min_per_thread) + 1);
  if (threads <= 1) return f(int64_t{0}, n);
  std::vector<std::thread> pool;
  int64_t chunk = (n + threads - 1) / threads;
  for (int64_t b = 0; b < n; b += chunk) pool.emplace_back(f, b, std::min(n, b + chunk));
  for (auto& t : pool) t.join();
}

}  // namespace ridgeline
