// Division by a paged KV cache's block size without a divide instruction: t / d as the high 32 bits
// of t * ceil(2^32 / d). One definition for the device (decode_attention's block lookup, once per
// tile of an issue-bound loop, where the integer division it replaced was ~30 instructions) and the
// host (tests/test_block_div.cpp pins its exactness).
#pragma once

#include <cstdint>

#include "kernels/synthetic.h"  // RL_HD

namespace ridgeline {

// Exact for 2 <= d <= kBlockDivMaxDivisor and t < kBlockDivMaxDividend. With m = ceil(2^32 / d) and
// e = m * d - 2^32 (0 <= e < d): t * m / 2^32 = t / d + t * e / (d * 2^32), and t * e < 2^24 * 2^8 =
// 2^32 keeps the error term below 1 / d, inside the gap between t / d and the next integer. For a
// power of two e = 0 and the result is exact for every t.
inline constexpr uint32_t kBlockDivMaxDivisor = 256;
inline constexpr uint32_t kBlockDivMaxDividend = 1u << 24;

RL_HD inline uint32_t block_div_magic(uint32_t d) {
  return 0xffffffffu / d + 1u;
}

RL_HD inline uint32_t block_div(uint32_t t, uint32_t magic) {
#if defined(__CUDA_ARCH__)
  return __umulhi(t, magic);
#else
  return static_cast<uint32_t>((uint64_t{t} * magic) >> 32);
#endif
}

}  // namespace ridgeline
