// Sample statistics for timings: mean and standard deviation, even thinning of a long sample list,
// and the two-sided Mann-Whitney U test that `ridgeline compare` uses to tell a real change in step
// time from noise (the test Google Benchmark's compare.py runs, with the same choice between the
// exact distribution and the normal approximation as scipy.stats.mannwhitneyu's method="auto").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ridgeline {

// Arithmetic mean. Throws on an empty list.
double sample_mean(const std::vector<double>& x);
// Sample standard deviation (n - 1 in the denominator); 0 for a single sample. Throws on an empty list.
double sample_stddev(const std::vector<double>& x);

// At most `cap` of `samples`, evenly spaced in their original (time) order and always keeping the
// first and the last: index round(i * (n - 1) / (cap - 1)) for i in [0, cap). All of them when
// n <= cap. Time order is kept so that drift over a run stays visible in what is stored.
std::vector<double> thin_evenly(const std::vector<double>& samples, size_t cap);

struct MannWhitney {
  double u = 0;        // U statistic of the first sample: pairs (a, b) with a > b, ties counted 1/2
  double p = 1;        // two-sided p-value
  bool exact = false;  // p from the exact null distribution (no ties and a sample of 8 or fewer)
  double z = 0;        // normal approximation's z (with continuity correction); 0 when exact
};

// Two-sided Mann-Whitney U test of "a and b come from the same distribution".
// Exact null distribution when there are no ties and either sample has 8 or fewer values;
// otherwise the normal approximation with tie correction and continuity correction:
//   mu = n1 n2 / 2,  sigma^2 = n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1))),
//   z = (max(U1, U2) - mu - 1/2) / sigma,  p = 2 (1 - Phi(z)), at most 1.
// When every value is tied (sigma = 0) p is 1. Throws when either sample is empty or non-finite.
enum class UTestMethod { automatic, asymptotic };  // asymptotic: the normal approximation always
MannWhitney mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b,
                           UTestMethod method = UTestMethod::automatic);

// The smallest two-sided p-value the test can give for samples of n1 and n2 values (no ties):
// 2 / C(n1 + n2, n1). When it exceeds alpha no outcome can be significant: the samples are too few.
double mann_whitney_min_p(size_t n1, size_t n2);

}  // namespace ridgeline
