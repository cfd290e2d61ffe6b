// The decode step's fused GEMVs (kernels/gemv.cu) against the unfused kernel sequences they replace,
// bit for bit, and against the CPU reference (kernels/cpu/reference.h), at the 1.8b and 7b shapes
// and an odd small one, n = 1 and 2, outputs poisoned (NaN) before every launch.
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/reference.h"
#include "kernels/kernels.cuh"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"

namespace ridgeline::test {
namespace {

struct FfnShape {
  int hidden, inter;
};
// 1.8b, 7b, and a small shape whose rows are not a multiple of 256 elements nor of the block's 8 warps.
constexpr FfnShape kFfnShapes[] = {{2048, 8192}, {4096, 14336}, {520, 36}};

// Number of fp16 elements whose bits differ.
size_t differing_bits(const std::vector<half>& a, const std::vector<half>& b) {
  if (a.size() != b.size()) return a.size() + b.size();
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(half)) != 0;
  return n;
}

TEST(KernelGemvSwiglu, BitIdenticalToGemvThenSwigluAndMatchesReference) {
  RL_REQUIRE_GPU();
  for (FfnShape sh : kFfnShapes) {
    for (int n : {1, 2}) {
      const int H = sh.hidden, I = sh.inter;
      std::mt19937 rng(H * 7 + I + n);
      auto x = random_fp16_values(size_t(n) * H, rng);
      // Weights scaled so gate and up span silu's curved region (|g| up to a few units).
      auto w13 = random_fp16_values(size_t(2) * I * H, rng, -0.08f, 0.08f);
      TestBuffer<half> d_x(to_half(x)), d_w(to_half(w13)), d_gate_up(size_t(n) * 2 * I);
      TestBuffer<half> d_unfused(size_t(n) * I), d_fused(size_t(n) * I);
      d_gate_up.poison();
      d_unfused.poison();
      d_fused.poison();
      cuda::gemv(d_x.get(), d_w.get(), n, H, 2 * I, d_gate_up.get(), nullptr);
      cuda::swiglu(d_gate_up.get(), n, I, d_unfused.get(), nullptr);
      cuda::gemv_swiglu(d_x.get(), d_w.get(), n, H, I, d_fused.get(), nullptr);
      const auto unfused = d_unfused.download(), fused = d_fused.download();
      const std::string shape =
          "hidden=" + std::to_string(H) + " inter=" + std::to_string(I) + " tokens=" + std::to_string(n);
      EXPECT_EQ(differing_bits(fused, unfused), 0u) << shape;

      // The CPU reference: fp32 linear, gate and up rounded to fp16 as the engine stores them, SwiGLU.
      std::vector<float> gate_up(size_t(n) * 2 * I), expect(size_t(n) * I);
      ref::linear(x.data(), w13.data(), n, H, 2 * I, gate_up.data());
      gate_up = to_float(to_half(gate_up));
      for (int t = 0; t < n; ++t)
        ref::swiglu(gate_up.data() + size_t(t) * 2 * I, gate_up.data() + size_t(t) * 2 * I + I, I,
                    expect.data() + size_t(t) * I);
      const double e = nmse(to_float(fused), expect);
      report_nmse("gemv_swiglu", shape, e);
      EXPECT_LE(e, 5e-4) << shape;
    }
  }
}

TEST(KernelGemvSwiglu, RejectsShapesItDoesNotRun) {
  RL_REQUIRE_GPU();
  TestBuffer<half> d_x(size_t(4) * 64), d_w(size_t(2) * 64 * 64), d_y(size_t(4) * 64);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 3, 64, 64, d_y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 0, 64, 64, d_y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 1, 60, 64, d_y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get() + 1, d_w.get(), 1, 64, 64, d_y.get(), nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace ridgeline::test
