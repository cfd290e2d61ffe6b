// The CPU's ceilings, measured on one thread (the CPU reference backend runs on one): bandwidth from
// a large memcpy (bytes read + written, 256 MB buffers, many times any last-level cache; median of 5
// after a warm-up) and compute from a blocked float32 512x512x512 matmul (median of 3), both on
// random data. About a second.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bench/probe/probe.h"

namespace ridgeline {
namespace {

uint64_t splitmix(uint64_t& state) {
  uint64_t x = (state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double measure_copy_GBps() {
  constexpr size_t kBytes = size_t{256} << 20;
  std::vector<uint64_t> src(kBytes / 8), dst(kBytes / 8);
  uint64_t state = 0xC0FFEE;
  for (auto& x : src) x = splitmix(state);  // random, and every page faulted in before timing
  std::memset(dst.data(), 1, kBytes);
  std::memcpy(dst.data(), src.data(), kBytes);  // warm-up
  std::vector<double> seconds;
  for (int rep = 0; rep < 5; ++rep) {
    src[rep] ^= dst[src.size() - 1 - rep];  // a data dependency between copies
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), kBytes);
    seconds.push_back(seconds_since(t0));
  }
  return 2.0 * kBytes / median_of(seconds) / 1e9;  // read + write
}

double measure_matmul_tflops() {
  constexpr int N = 512, kBlock = 64;
  std::vector<float> a(N * N), b(N * N), c(N * N);
  uint64_t state = 0xBEEF;
  auto uniform = [&] { return float(splitmix(state) >> 40) / float(1 << 24) - 0.5f; };
  for (auto& x : a) x = uniform();
  for (auto& x : b) x = uniform();
  std::vector<double> seconds;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::fill(c.begin(), c.end(), 0.0f);
    auto t0 = std::chrono::steady_clock::now();
    // Blocked i-k-j: the innermost loop streams contiguous rows of b and c, which the compiler
    // vectorizes; 64x64 blocks of b stay in L1/L2.
    for (int kk = 0; kk < N; kk += kBlock)
      for (int jj = 0; jj < N; jj += kBlock)
        for (int i = 0; i < N; ++i)
          for (int k = kk; k < kk + kBlock; ++k) {
            float aik = a[i * N + k];
            float* crow = &c[i * N + jj];
            const float* brow = &b[k * N + jj];
            for (int j = 0; j < kBlock; ++j) crow[j] += aik * brow[j];
          }
    seconds.push_back(seconds_since(t0));
    sink = sink + c[rep * 7];
  }
  return 2.0 * N * N * double(N) / median_of(seconds) / 1e12;
}

}  // namespace

Ceilings measure_cpu_ceilings() {
  double copy = measure_copy_GBps();
  double tflops = measure_matmul_tflops();
  return measured_ceilings(copy, 0.0, tflops);
}

}  // namespace ridgeline
