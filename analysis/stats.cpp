// Timing statistics and the Mann-Whitney U test (see stats.h for the formulas).
#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {
namespace {

void check_samples(const std::vector<double>& x, const char* what) {
  if (x.empty()) throw std::runtime_error(fmt::format("{}: no samples", what));
  for (double v : x)
    if (!std::isfinite(v)) throw std::runtime_error(fmt::format("{}: non-finite sample {}", what, v));
}

// Counts of each U value under the null hypothesis for samples of m and n values without ties: the
// coefficients of the Gaussian binomial [m + n choose m]_q = prod_{k=1..m} (1 - q^(n+k)) / (1 - q^k).
// After each k the polynomial is [n + k choose k]_q, whose coefficients are non-negative integers;
// for the sizes used here (m <= 8, n a few hundred) they stay below 2^53, so they are exact.
std::vector<double> u_counts(size_t m, size_t n) {
  std::vector<double> f(m * n + m + 1, 0.0);  // room for the product before each division
  f[0] = 1;
  size_t degree = 0;
  for (size_t k = 1; k <= m; ++k) {
    // times (1 - q^(n+k)), from the top so that f[u - n - k] is still the old coefficient
    size_t shift = n + k;
    for (size_t u = degree + shift + 1; u-- > shift;) f[u] -= f[u - shift];
    // divided by (1 - q^k): a running sum along the residues modulo k. The quotient has degree
    // degree + n; what the running sum leaves above it is zero in exact arithmetic, and cleared.
    for (size_t u = k; u <= degree + shift; ++u) f[u] += f[u - k];
    degree += n;
    std::fill(f.begin() + std::ptrdiff_t(degree + 1), f.end(), 0.0);
  }
  f.resize(m * n + 1);
  return f;
}

double normal_sf(double z) {
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

}  // namespace

double sample_mean(const std::vector<double>& x) {
  check_samples(x, "mean");
  double s = 0;
  for (double v : x) s += v;
  return s / double(x.size());
}

double sample_stddev(const std::vector<double>& x) {
  double mean = sample_mean(x);
  if (x.size() < 2) return 0;
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / double(x.size() - 1));
}

std::vector<double> thin_evenly(const std::vector<double>& samples, size_t cap) {
  if (cap == 0) throw std::runtime_error("thin_evenly: the cap must be at least 1");
  if (samples.size() <= cap) return samples;
  if (cap == 1) return {samples.front()};
  std::vector<double> out;
  out.reserve(cap);
  double step = double(samples.size() - 1) / double(cap - 1);
  for (size_t i = 0; i < cap; ++i) out.push_back(samples[size_t(std::llround(double(i) * step))]);
  return out;
}

double mann_whitney_min_p(size_t n1, size_t n2) {
  if (n1 == 0 || n2 == 0) return 1;
  // 2 / C(n1 + n2, n1), in logs so that large samples do not overflow.
  double log_c = std::lgamma(double(n1 + n2 + 1)) - std::lgamma(double(n1 + 1)) - std::lgamma(double(n2 + 1));
  return std::min(1.0, 2 * std::exp(-log_c));
}

MannWhitney mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b, UTestMethod method) {
  check_samples(a, "Mann-Whitney U, first sample");
  check_samples(b, "Mann-Whitney U, second sample");
  const size_t n1 = a.size(), n2 = b.size(), n = n1 + n2;

  // Ranks of the pooled sample (ties get their average rank), and the tie groups' sizes.
  struct Value {
    double v;
    bool first;
  };
  std::vector<Value> pooled;
  pooled.reserve(n);
  for (double v : a) pooled.push_back({v, true});
  for (double v : b) pooled.push_back({v, false});
  std::sort(pooled.begin(), pooled.end(), [](const Value& x, const Value& y) { return x.v < y.v; });
  double rank_sum_a = 0, tie_term = 0;
  bool ties = false;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && pooled[j].v == pooled[i].v) ++j;
    double t = double(j - i), rank = (double(i + 1) + double(j)) / 2;  // average of ranks i+1 .. j
    for (size_t k = i; k < j; ++k)
      if (pooled[k].first) rank_sum_a += rank;
    if (j - i > 1) {
      ties = true;
      tie_term += t * t * t - t;
    }
    i = j;
  }

  MannWhitney r;
  r.u = rank_sum_a - double(n1) * double(n1 + 1) / 2;
  const double u_other = double(n1) * double(n2) - r.u;
  if (method == UTestMethod::automatic && !ties && std::min(n1, n2) <= 8) {
    std::vector<double> counts = u_counts(std::min(n1, n2), std::max(n1, n2));
    double total = 0, tail = 0;
    // No ties: U is an integer; the lower tail at min(U1, U2) is, by symmetry, the upper one too.
    auto u_min = static_cast<size_t>(std::llround(std::min(r.u, u_other)));
    for (size_t u = 0; u < counts.size(); ++u) {
      total += counts[u];
      if (u <= u_min) tail += counts[u];
    }
    r.exact = true;
    r.p = std::min(1.0, 2 * tail / total);
    return r;
  }
  const double mu = double(n1) * double(n2) / 2;
  const double var =
      double(n1) * double(n2) / 12 * ((double(n) + 1) - tie_term / (double(n) * (double(n) - 1)));
  if (!(var > 0)) {
    r.p = 1;  // every value tied: nothing tells the samples apart
    return r;
  }
  r.z = (std::max(r.u, u_other) - mu - 0.5) / std::sqrt(var);
  r.p = std::min(1.0, 2 * normal_sf(r.z));
  return r;
}

}  // namespace ridgeline
