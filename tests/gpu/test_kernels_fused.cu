// The decode step's fused GEMVs (kernels/gemv.cu: gemv_swiglu, gemv_fused) against the unfused
// kernel sequences they replace (gemv, swiglu, add_rmsnorm), bit for bit, and against the CPU
// reference (kernels/cpu/reference.h), at the 1.8b and 7b shapes and an odd small one, n = 1 and 2,
// outputs poisoned (NaN) before every launch.
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
// 1.8b, 7b, and a small shape whose rows are not a multiple of 256 elements (inter stays a multiple
// of 8: the unfused swiglu it is compared with needs that; hidden a multiple of 32 for gemv_tc).
constexpr FfnShape kFfnShapes[] = {{2048, 8192}, {4096, 14336}, {544, 40}};

// n = 1, 2: gemv_fused's SwiGLU epilogue against gemv + swiglu; n = 3..16: gemv_tc_swiglu's against
// gemv_tc + swiglu (the GEMV gemv_choice runs at that n).
TEST(KernelGemvSwiglu, BitIdenticalToGemvThenSwigluAndMatchesReference) {
  RL_REQUIRE_GPU();
  for (FfnShape sh : kFfnShapes) {
    for (int n : {1, 2, 3, 8, 16}) {
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
      if (n <= cuda::kGemvFusedMaxRows)
        cuda::gemv(d_x.get(), d_w.get(), n, H, 2 * I, d_gate_up.get(), nullptr);
      else
        cuda::gemv_tc(d_x.get(), d_w.get(), n, H, 2 * I, d_gate_up.get(), nullptr);
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
      EXPECT_LE(e, 5e-6) << shape;  // measured at most 4.7e-8 (H200): fp16 output rounding
    }
  }
}

// One decode layer's GEMV chain both ways, from the same float32 residual: wo (residual add), then
// the GEMVs after a norm (wqkv-like fp16 out, head-like fp32 out, w13 with SwiGLU). Unfused: gemv ->
// add_rmsnorm -> gemv / gemv + swiglu. Fused: gemv_fused with the residual epilogue, then with the
// norm prologue. Every output and the residual itself must agree bit for bit; the head-like output
// is also checked against the CPU reference.
// 1.8b (wqkv out 4096), 7b (wqkv out 6144), and a small odd shape.
constexpr ChainShape kChainShapes[] = {
    {2048, 2048, 4096, 8192}, {4096, 4096, 6144, 14336}, {520, 136, 1000, 40}};

TEST(KernelGemvFused, NormPrologueAndResidualEpilogueBitIdenticalToAddRmsnormAndGemv) {
  RL_REQUIRE_GPU();
  constexpr float kEps = 1e-5f;
  for_each_chain(kChainShapes, [&](int n, ChainInputs& in) {
    const auto [H, K, O, I] = in.sh;
    const auto wo = random_fp16_values(size_t(H) * K, in.rng, -0.1f, 0.1f);
    const auto wn = random_fp16_values(size_t(O) * H, in.rng, -0.1f, 0.1f);
    const auto w13 = random_fp16_values(size_t(2) * I * H, in.rng, -0.08f, 0.08f);
    TestBuffer<half> d_attn(to_half(in.attn)), d_wo(to_half(wo)), d_wn(to_half(wn)), d_w13(to_half(w13)),
        d_norm_w(to_half(in.norm_w));

    // Unfused.
    TestBuffer<float> r_u(in.residual), y32_u(size_t(n) * O);
    TestBuffer<half> proj(size_t(n) * H), x(size_t(n) * H), y16_u(size_t(n) * O), gate_up(size_t(n) * 2 * I),
        act_u(size_t(n) * I);
    for (auto* b : {&proj, &x, &y16_u, &gate_up, &act_u}) b->poison();
    y32_u.poison();
    cuda::gemv(d_attn.get(), d_wo.get(), n, K, H, proj.get(), nullptr);
    cuda::add_rmsnorm(r_u.get(), proj.get(), d_norm_w.get(), n, H, kEps, x.get(), nullptr);
    cuda::gemv(x.get(), d_wn.get(), n, H, O, y16_u.get(), nullptr);
    cuda::gemv(x.get(), d_wn.get(), n, H, O, y32_u.get(), nullptr);
    cuda::gemv(x.get(), d_w13.get(), n, H, 2 * I, gate_up.get(), nullptr);
    cuda::swiglu(gate_up.get(), n, I, act_u.get(), nullptr);

    // Fused.
    TestBuffer<float> r_f(in.residual), y32_f(size_t(n) * O);
    TestBuffer<half> y16_f(size_t(n) * O), act_f(size_t(n) * I);
    y32_f.poison();
    y16_f.poison();
    act_f.poison();
    cuda::gemv_fused({.w = d_wo.get(), .n = n, .in = K, .out = H, .x = d_attn.get(), .residual = r_f.get()},
                     nullptr);
    const cuda::GemvFusedParams normed{.w = d_wn.get(),
                                       .n = n,
                                       .in = H,
                                       .out = O,
                                       .norm_residual = r_f.get(),
                                       .norm_w = d_norm_w.get(),
                                       .eps = kEps};
    cuda::GemvFusedParams p16 = normed, p32 = normed, p13 = normed;
    p16.y16 = y16_f.get();
    p32.y32 = y32_f.get();
    p13.w = d_w13.get();
    p13.out = I;
    p13.act = act_f.get();
    cuda::gemv_fused(p16, nullptr);
    cuda::gemv_fused(p32, nullptr);
    cuda::gemv_fused(p13, nullptr);

    EXPECT_EQ(differing_bits(r_f.download(), r_u.download()), 0u) << "residual " << in.shape;
    EXPECT_EQ(differing_bits(y16_f.download(), y16_u.download()), 0u) << "fp16 out " << in.shape;
    const auto y32 = y32_f.download();
    EXPECT_EQ(differing_bits(y32, y32_u.download()), 0u) << "fp32 out " << in.shape;
    EXPECT_EQ(differing_bits(act_f.download(), act_u.download()), 0u) << "act " << in.shape;

    // The CPU reference of the fp32-out chain: residual += fp16(attn Wo^T), rmsnorm (fp16), linear.
    const std::vector<float> y_ref = chain_reference(n, in, wo, wn, kEps);
    const double e = nmse(y32, y_ref);
    report_nmse("gemv_fused.norm", in.shape, e);
    EXPECT_LE(e, 1e-7) << in.shape;  // measured at most 8.7e-10 (H200), fp32 out
  });
}

// The first layer's wqkv normalizes the embedding with nothing added: add_rmsnorm with x = nullptr.
TEST(KernelGemvFused, NormPrologueMatchesAddRmsnormWithoutAnAdd) {
  RL_REQUIRE_GPU();
  for (int n : {1, 2}) {
    const int H = 2048, O = 4096;
    std::mt19937 rng(77 + n);
    const auto residual = random_floats(size_t(n) * H, rng, -3.0f, 3.0f);
    TestBuffer<half> w(to_half(random_fp16_values(size_t(O) * H, rng, -0.1f, 0.1f))),
        norm_w(to_half(random_fp16_values(size_t(H), rng, 0.5f, 1.5f))), x(size_t(n) * H), y_u(size_t(n) * O),
        y_f(size_t(n) * O);
    TestBuffer<float> r(residual);
    y_u.poison();
    y_f.poison();
    cuda::gemv_fused({.w = w.get(),
                      .n = n,
                      .in = H,
                      .out = O,
                      .norm_residual = r.get(),
                      .norm_w = norm_w.get(),
                      .eps = 1e-6f,
                      .y16 = y_f.get()},
                     nullptr);
    cuda::add_rmsnorm(r.get(), nullptr, norm_w.get(), n, H, 1e-6f, x.get(), nullptr);
    cuda::gemv(x.get(), w.get(), n, H, O, y_u.get(), nullptr);
    EXPECT_EQ(differing_bits(y_f.download(), y_u.download()), 0u) << "tokens=" << n;
    EXPECT_EQ(differing_bits(r.download(), residual), 0u) << "the residual is only read";
  }
}

TEST(KernelGemvFused, RejectsWhatItDoesNotRun) {
  RL_REQUIRE_GPU();
  TestBuffer<half> h(size_t(4) * 64 * 64);
  TestBuffer<float> f(size_t(4) * 64);
  const cuda::GemvFusedParams ok{.w = h.get(), .n = 1, .in = 64, .out = 64, .x = h.get(), .y16 = h.get()};
  EXPECT_NO_THROW(cuda::gemv_fused(ok, nullptr));
  auto bad = [&](auto change) {
    cuda::GemvFusedParams p = ok;
    change(p);
    return p;
  };
  EXPECT_THROW(cuda::gemv_fused(bad([](auto& p) { p.n = 3; }), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_fused(bad([&](auto& p) { p.y32 = f.get(); }), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_fused(bad([](auto& p) { p.y16 = nullptr; }), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_fused(bad([&](auto& p) { p.norm_residual = f.get(); }), nullptr),
               std::invalid_argument)
      << "x and a norm prologue together";
  EXPECT_THROW(cuda::gemv_fused(bad([&](auto& p) {
                                  p.x = nullptr;
                                  p.norm_residual = f.get();
                                  p.norm_w = h.get();
                                  p.in = 16384;
                                }),
                                nullptr),
               std::invalid_argument)
      << "normed rows past the shared memory";
}

TEST(KernelGemvSwiglu, RejectsShapesItDoesNotRun) {
  RL_REQUIRE_GPU();
  TestBuffer<half> d_x(size_t(17) * 64), d_w(size_t(2) * 64 * 64), d_y(size_t(17) * 64);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 17, 64, 64, d_y.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 3, 48, 64, d_y.get(), nullptr), std::invalid_argument)
      << "gemv_tc_swiglu takes inputs in steps of 32";
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 0, 64, 64, d_y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get(), d_w.get(), 1, 60, 64, d_y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_swiglu(d_x.get() + 1, d_w.get(), 1, 64, 64, d_y.get(), nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace ridgeline::test
