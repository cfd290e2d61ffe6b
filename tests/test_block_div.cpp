// kernels/block_div.h: the multiply-high that replaces decode_attention's division by the KV block
// size is exact over the range it is used in (every divisor up to 256, dividends below 2^24), the
// host form being the device form's arithmetic (__umulhi is the same high word).
#include <cstdint>
#include <random>

#include <gtest/gtest.h>

#include "kernels/block_div.h"

namespace ridgeline::test {
namespace {

TEST(BlockDiv, EqualsIntegerDivisionForEveryDivisorUpTo256BelowTwoTo24) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any(0, kBlockDivMaxDividend - 1);
  for (uint32_t d = 2; d <= kBlockDivMaxDivisor; ++d) {
    const uint32_t m = block_div_magic(d);
    int wrong = 0;
    auto check = [&](uint32_t t) { wrong += block_div(t, m) != t / d; };
    for (uint32_t t = 0; t < 4096; ++t) check(t);
    // The worst cases: the error term grows with t, and t = q*d - 1 sits closest below a multiple.
    for (uint32_t q = (kBlockDivMaxDividend - 1) / d - 64; q <= (kBlockDivMaxDividend - 1) / d; ++q)
      for (uint32_t t : {q * d - 1, q * d, q * d + d - 1})
        if (t < kBlockDivMaxDividend) check(t);
    for (int k = 0; k < 2000; ++k) check(any(rng));
    EXPECT_EQ(wrong, 0) << "divisor " << d;
  }
}

TEST(BlockDiv, TheBoundIsTightToAFactorOfTwo) {
  // For a divisor d with e = m * d - 2^32 > 0 the error term t * e / (d * 2^32) first pushes a
  // dividend over the next multiple of d at the residue closest below it: the first wrong t is the
  // first t = q * d + d - 1 with t * e >= 2^32. Over every divisor, the smallest such t is the
  // bound's real edge: at or above kBlockDivMaxDividend (the exactness the kernels rely on), and
  // under twice it (a bound far below the edge would let a weaker magic pass the test above).
  uint64_t first = UINT64_MAX;
  uint32_t at = 0;
  for (uint32_t d = 3; d <= kBlockDivMaxDivisor; ++d) {
    const uint32_t m = block_div_magic(d);
    const uint64_t e = uint64_t{m} * d - (uint64_t{1} << 32);
    if (e == 0) continue;  // a power of two: exact everywhere
    const uint64_t t0 = ((uint64_t{1} << 32) + e - 1) / e;
    const uint64_t t = t0 + (d - 1 + d - t0 % d) % d;
    if (t > 0xffffffffu) continue;
    EXPECT_NE(block_div(static_cast<uint32_t>(t), m), t / d) << "divisor " << d << " at " << t;
    EXPECT_EQ(block_div(static_cast<uint32_t>(t - d), m), (t - d) / d) << "divisor " << d << " at " << t - d;
    if (t < first) first = t, at = d;
  }
  EXPECT_GE(first, kBlockDivMaxDividend) << "divisor " << at;
  EXPECT_LT(first, 2 * uint64_t{kBlockDivMaxDividend}) << "divisor " << at;
}

}  // namespace
}  // namespace ridgeline::test
