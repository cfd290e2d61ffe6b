// The CPU reference ops against facts worked out by hand: these are what every GPU kernel is
// compared to, so they get checked on their own first.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "kernels/cpu/reference.h"

using namespace ridgeline;

TEST(RefOps, RmsnormScalesToUnitRmsTimesWeight) {
  std::vector<float> x = {3, 4, 0, 0}, w = {1, 2, 1, 1}, out(4);
  ref::rmsnorm(x.data(), w.data(), 1, 4, 0.0f, out.data());
  // rms = sqrt((9 + 16) / 4) = 2.5
  EXPECT_FLOAT_EQ(out[0], 3 / 2.5f);
  EXPECT_FLOAT_EQ(out[1], 2 * 4 / 2.5f);
  std::vector<float> res = {1, 1, 1, 1}, add = {2, 3, -1, -1};
  ref::add_rmsnorm(res.data(), add.data(), w.data(), 1, 4, 0.0f, out.data());
  EXPECT_EQ(res, (std::vector<float>{3, 4, 0, 0}));
  EXPECT_FLOAT_EQ(out[0], 3 / 2.5f);
}

TEST(RefOps, LinearComputesXTimesWTransposed) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};  // [2, 3]
  std::vector<float> W = {1, 0, 0, 0, 1, 1};  // [2, 3]
  std::vector<float> y(4);
  ref::linear(x.data(), W.data(), 2, 3, 2, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 5, 4, 11}));
}

TEST(RefOps, RopeRotatesPairsHalfADimensionApart) {
  // head_dim 4: pairs (0,2) at inv_freq 1 and (1,3) at base^-0.5.
  std::vector<float> x = {1, 1, 0, 0};
  ref::rope(x.data(), 4, 3, 100.0);
  EXPECT_NEAR(x[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(x[2], std::sin(3.0), 1e-6);
  EXPECT_NEAR(x[1], std::cos(0.3), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.3), 1e-6);
  std::vector<float> y = {0.3f, -0.2f, 0.9f, 0.5f}, y0 = y;
  ref::rope(y.data(), 4, 0, 1e4);
  EXPECT_EQ(y, y0);  // position 0 is the identity
  ref::rope(y.data(), 4, 1000, 1e4);
  double n0 = 0, n1 = 0;
  for (int i = 0; i < 4; ++i) n0 += y0[i] * y0[i], n1 += y[i] * y[i];
  EXPECT_NEAR(n0, n1, 1e-6);  // a rotation keeps the norm
}

TEST(RefOps, SplitQkvFollowsTheGroupedLayout) {
  // 4 query heads, 2 KV heads, head_dim 1: rows [q0 q1 k0 v0 q2 q3 k1 v1].
  std::vector<float> qkv = {10, 11, 20, 30, 12, 13, 21, 31}, q(4), k(2), v(2);
  ref::split_qkv(qkv.data(), 4, 2, 1, q.data(), k.data(), v.data());
  EXPECT_EQ(q, (std::vector<float>{10, 11, 12, 13}));
  EXPECT_EQ(k, (std::vector<float>{20, 21}));
  EXPECT_EQ(v, (std::vector<float>{30, 31}));
}

TEST(RefOps, AttentionOverOnePositionReturnsItsValueAndSharesKvHeads) {
  // 2 query heads on 1 KV head, head_dim 2.
  std::vector<float> q = {1, 0, 0, 1}, K = {5, 5}, V = {0.25f, -2}, out(4);
  ref::attention(q.data(), K.data(), V.data(), 2, 1, 2, 1, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{0.25f, -2, 0.25f, -2}));
  // Two positions with scores 0 and s: weights 1/(1+e^s), e^s/(1+e^s).
  std::vector<float> K2 = {0, 0, 2, 0}, V2 = {1, 0, 0, 1}, q1 = {1, 0}, o1(2);
  ref::attention(q1.data(), K2.data(), V2.data(), 2, 2, 1, 1, 2, o1.data());
  double s = 2 / std::sqrt(2.0), p1 = std::exp(s) / (1 + std::exp(s));
  EXPECT_NEAR(o1[0], 1 - p1, 1e-6);
  EXPECT_NEAR(o1[1], p1, 1e-6);
}

TEST(RefOps, SwigluIsSiluOfGateTimesUp) {
  std::vector<float> g = {0, 1, -3}, u = {5, 2, 1}, o(3);
  ref::swiglu(g.data(), u.data(), 3, o.data());
  EXPECT_FLOAT_EQ(o[0], 0);
  EXPECT_NEAR(o[1], 2 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(o[2], -3 / (1 + std::exp(3.0)), 1e-6);
}

TEST(RefOps, ArgmaxTakesTheLowestIndexOnTiesAndSkipsNaN) {
  std::vector<float> l = {1, 3, NAN, 3, 2};
  EXPECT_EQ(ref::argmax(l.data(), 5), 1);
  // A NaN first: a plain `>` scan that starts from element 0 would keep it.
  std::vector<float> first = {NAN, 1, 3};
  EXPECT_EQ(ref::argmax(first.data(), 3), 2);
  std::vector<float> all = {NAN, NAN};
  EXPECT_EQ(ref::argmax(all.data(), 2), 0);                     // nothing to compare: the first index
  EXPECT_EQ(ref::sample(l.data(), 5, 0.0f, 0, 1.0f, 0.99), 1);  // temperature 0 is greedy
}

TEST(RefOps, SamplingFollowsTopKTopPAndTheSoftmax) {
  std::vector<float> l = {0.0f, 2.0f, 1.0f, -1.0f};
  EXPECT_EQ(ref::sample(l.data(), 4, 1.0f, 1, 1.0f, 0.999), 1);   // top-k 1 = argmax
  EXPECT_EQ(ref::sample(l.data(), 4, 1.0f, 0, 0.01f, 0.999), 1);  // tiny top-p = argmax
  // top-k 2 keeps {1, 2}: p(1) = e^2 / (e^2 + e^1)
  double p1 = std::exp(2.0) / (std::exp(2.0) + std::exp(1.0));
  EXPECT_EQ(ref::sample(l.data(), 4, 1.0f, 2, 1.0f, p1 - 1e-6), 1);
  EXPECT_EQ(ref::sample(l.data(), 4, 1.0f, 2, 1.0f, p1 + 1e-6), 2);
  // Frequencies over many draws match the softmax.
  std::vector<int> counts(4);
  const int n = 40000;
  for (int i = 0; i < n; ++i) counts[ref::sample(l.data(), 4, 1.0f, 0, 1.0f, ref::sampling_uniform(9, i))]++;
  double z = std::exp(0.0) + std::exp(2.0) + std::exp(1.0) + std::exp(-1.0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[i] / double(n), std::exp(l[i]) / z, 0.01) << i;
}

TEST(RefOps, SamplingUniformIsDeterministicAndInRange) {
  EXPECT_EQ(ref::sampling_uniform(1, 5), ref::sampling_uniform(1, 5));
  EXPECT_NE(ref::sampling_uniform(1, 5), ref::sampling_uniform(2, 5));
  EXPECT_NE(ref::sampling_uniform(1, 5), ref::sampling_uniform(1, 6));
  double mean = 0;
  for (int i = 0; i < 10000; ++i) {
    double u = ref::sampling_uniform(3, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    mean += u / 10000;
  }
  EXPECT_NEAR(mean, 0.5, 0.01);
}

TEST(RefOps, RoundToFp16KeepsElevenSignificantBits) {
  EXPECT_EQ(ref::round_to_fp16(1.0f + 0x1p-10f), 1.0f + 0x1p-10f);
  EXPECT_EQ(ref::round_to_fp16(1.0f + 0x1p-11f), 1.0f);  // ties to even
  EXPECT_EQ(ref::round_to_fp16(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);
  EXPECT_EQ(ref::round_to_fp16(65504.0f), 65504.0f);
  EXPECT_TRUE(std::isinf(ref::round_to_fp16(70000.0f)));
  EXPECT_EQ(ref::round_to_fp16(0x1p-24f), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(ref::round_to_fp16(0x1p-26f), 0.0f);
}

TEST(RefOps, FakeQuantizeKvKeepsTheRangeAndErrsByHalfAStep) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-3, 5);
  std::vector<float> x(128);
  for (auto& v : x) v = d(rng);
  const float mn = *std::min_element(x.begin(), x.end()), mx = *std::max_element(x.begin(), x.end());
  for (int bits : {8, 4}) {
    SCOPED_TRACE(bits);
    auto q = x;
    ref::fake_quantize_kv(q.data(), 128, bits);
    const float step = (mx - mn) / float((1 << bits) - 1);
    // Within half a step (plus the fp16 rounding of scale and zero) of the value...
    for (int i = 0; i < 128; ++i) EXPECT_LE(std::fabs(q[i] - x[i]), 0.5f * step + 0.01f) << i;
    // ...on the grid of 2^bits levels from the minimum: each value is zero + k * scale for an integer
    // k, with the fp16 scale and zero that are stored; at most 2^bits distinct values; and (continuous
    // inputs) nearly every value moved.
    const float scale = ref::round_to_fp16(step), zero = ref::round_to_fp16(mn);
    std::set<float> levels(q.begin(), q.end());
    EXPECT_LE(levels.size(), size_t{1} << bits);
    int moved = 0;
    for (int i = 0; i < 128; ++i) {
      const float k = (q[i] - zero) / scale;
      EXPECT_NEAR(k, std::round(k), 1e-3f) << i;
      moved += q[i] != x[i];
    }
    EXPECT_GT(moved, 120);
  }
}
