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

TEST(BlockDiv, TheBoundIsWhereItFailsForSomeDivisor) {
  // The bound is real: above it the error term t * e / 2^32 (e = m * d - 2^32) reaches 1 for some
  // divisor, and a dividend just below a multiple of d comes out one too high.
  bool found = false;
  for (uint32_t d = 3; d <= kBlockDivMaxDivisor && !found; ++d) {
    const uint32_t m = block_div_magic(d);
    const uint64_t e = uint64_t{m} * d - (uint64_t{1} << 32);
    if (e == 0) continue;  // a power of two: exact everywhere
    // The first multiple of d from which t * e reaches 2^32: t = q*d + d - 1 there is off by one.
    const uint64_t q = ((uint64_t{1} << 32) / e) / d + 1;
    const uint64_t t = q * d + d - 1;
    if (t <= 0xffffffffu) found = block_div(static_cast<uint32_t>(t), m) != t / d;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace ridgeline::test
