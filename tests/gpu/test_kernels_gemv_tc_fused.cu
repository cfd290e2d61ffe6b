// gemv_tc_fused (kernels/gemv_tc.cu): the tensor-core GEMV with the decode step's norms folded in, at
// 3..8 rows, against the unfused launches it replaces (gemv_tc -> add_rmsnorm -> gemv_tc /
// gemv_tc_swiglu) and the CPU reference. The residual add is the same arithmetic on the same sums,
// so it must agree bit for bit; the norm's 1/rms comes from per-16-dim sums of squares added in
// another order than add_rmsnorm's, so the normed outputs are compared by NMSE, and the sums
// themselves against double-precision ones. Outputs poisoned (NaN) first.
#include <cmath>
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

// 1.8b (wqkv out 4096, inter 8192), 7b (6144, 14336), and a small one: hidden a multiple of 64,
// wo's input and inter multiples of 32, as cuda_fusions asks.
constexpr ChainShape kTcChainShapes[] = {
    {2048, 2048, 4096, 8192}, {4096, 4096, 6144, 14336}, {576, 160, 1040, 96}};

// The sums of squares per 16 dims of float32 rows [n, dim], in double.
std::vector<double> sums_of_squares(const std::vector<float>& rows, int n, int dim) {
  std::vector<double> s(size_t(n) * (dim / 16), 0.0);
  for (int t = 0; t < n; ++t)
    for (int d = 0; d < dim; ++d)
      s[size_t(t) * (dim / 16) + d / 16] += double(rows[size_t(t) * dim + d]) * rows[size_t(t) * dim + d];
  return s;
}

// The largest relative difference between the kernel's sums and the double ones.
double worst_sum_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]) / std::max(want[i], 1e-30));
  return worst;
}

// gemv_tc_fused's normed form: x = rmsnorm(residual) * norm_w from the residual's sums, out y16.
cuda::GemvFusedParams normed_params(const half* w, int n, int in, int out, const float* residual,
                                    const half* norm_w, float eps, float* sums, half* y16) {
  cuda::GemvFusedParams p{
      .w = w, .n = n, .in = in, .out = out, .norm_residual = residual, .norm_w = norm_w, .eps = eps};
  p.y16 = y16;
  p.norm_sums = sums;
  return p;
}

TEST(KernelGemvTcFused, ResidualEpilogueAndNormPrologueMatchGemvTcAddRmsnormAndGemvTc) {
  RL_REQUIRE_GPU();
  constexpr float kEps = 1e-5f;
  for (const ChainShape& sh : kTcChainShapes)
    for (int n : {3, 4, 5, 8}) {
      ChainInputs in = chain_inputs(sh, n);
      const auto [H, K, O, I] = sh;
      const auto wo = random_fp16_values(size_t(H) * K, in.rng, -0.1f, 0.1f);
      const auto wn = random_fp16_values(size_t(O) * H, in.rng, -0.1f, 0.1f);
      const auto w13 = random_fp16_values(size_t(2) * I * H, in.rng, -0.08f, 0.08f);
      TestBuffer<half> d_attn(to_half(in.attn)), d_wo(to_half(wo)), d_wn(to_half(wn)), d_w13(to_half(w13)),
          d_norm_w(to_half(in.norm_w));

      // Unfused: what the engine launched before (gemv_tc is gemv_choice's kernel at 3..16 rows).
      TestBuffer<float> r_u(in.residual);
      TestBuffer<half> proj(size_t(n) * H), x(size_t(n) * H), y_u(size_t(n) * O), act_u(size_t(n) * I);
      for (auto* b : {&proj, &x, &y_u, &act_u}) b->poison();
      cuda::gemv_tc(d_attn.get(), d_wo.get(), n, K, H, proj.get(), nullptr);
      cuda::add_rmsnorm(r_u.get(), proj.get(), d_norm_w.get(), n, H, kEps, x.get(), nullptr);
      cuda::gemv_tc(x.get(), d_wn.get(), n, H, O, y_u.get(), nullptr);
      cuda::gemv_tc_swiglu(x.get(), d_w13.get(), n, H, I, act_u.get(), nullptr);

      // Fused.
      TestBuffer<float> r_f(in.residual), sums(size_t(n) * (H / 16));
      TestBuffer<half> y_f(size_t(n) * O), act_f(size_t(n) * I);
      sums.poison();
      y_f.poison();
      act_f.poison();
      cuda::gemv_tc_fused({.w = d_wo.get(),
                           .n = n,
                           .in = K,
                           .out = H,
                           .x = d_attn.get(),
                           .residual = r_f.get(),
                           .norm_sums = sums.get()},
                          nullptr);
      cuda::GemvFusedParams normed =
          normed_params(d_wn.get(), n, H, O, r_f.get(), d_norm_w.get(), kEps, sums.get(), y_f.get());
      cuda::gemv_tc_fused(normed, nullptr);
      cuda::GemvFusedParams normed13 = normed;
      normed13.w = d_w13.get();
      normed13.out = I;
      normed13.y16 = nullptr;
      normed13.act = act_f.get();
      cuda::gemv_tc_fused(normed13, nullptr);

      const auto residual = r_f.download();
      EXPECT_EQ(differing_bits(residual, r_u.download()), 0u) << "residual " << in.shape;
      EXPECT_NE(differing_bits(residual, in.residual), 0u) << "the add happened " << in.shape;
      const double sum_error = worst_sum_error(sums.download(), sums_of_squares(residual, n, H));
      EXPECT_LE(sum_error, 1e-5) << "sums of squares " << in.shape;  // fp32 sums of 16 squares

      const auto y = to_float(y_f.download()), act = to_float(act_f.download());
      const double e_y = nmse(y, to_float(y_u.download())), e_act = nmse(act, to_float(act_u.download()));
      report_nmse("gemv_tc_fused.norm", in.shape, e_y);
      report_nmse("gemv_tc_fused.swiglu", in.shape, e_act);
      // 1/rms from another summation order: a normed input rounds to the neighbouring fp16 value now
      // and then, which moves an output by about an fp16 ulp of one product.
      EXPECT_LE(e_y, 1e-8) << in.shape;
      EXPECT_LE(e_act, 1e-8) << in.shape;
      const std::vector<float> y_ref = chain_reference(n, in, wo, wn, kEps);
      const double e_ref = nmse(y, y_ref);
      report_nmse("gemv_tc_fused.ref", in.shape, e_ref);
      EXPECT_LE(e_ref, 5e-6) << in.shape;  // fp16 output rounding, as gemv_swiglu's gate
    }
}

// The first layer's wqkv normalizes the embedding, whose sums embed leaves.
TEST(KernelGemvTcFused, NormPrologueFromEmbedsSumsMatchesAddRmsnormWithoutAnAdd) {
  RL_REQUIRE_GPU();
  for (int H : {512, 2048}) {
    for (int n : {3, 7}) {
      const int V = 97, O = 1024;
      std::mt19937 rng(31 * H + n);
      const auto table = random_fp16_values(size_t(V) * H, rng, -2.0f, 2.0f);
      std::vector<int> ids(n);
      for (int t = 0; t < n; ++t) ids[t] = (17 * t + 5) % V;
      TestBuffer<half> d_table(to_half(table)),
          w(to_half(random_fp16_values(size_t(O) * H, rng, -0.1f, 0.1f))),
          norm_w(to_half(random_fp16_values(size_t(H), rng, 0.5f, 1.5f))), x(size_t(n) * H),
          y_u(size_t(n) * O), y_f(size_t(n) * O);
      TestBuffer<int> d_ids(ids);
      TestBuffer<float> r(size_t(n) * H), sums(size_t(n) * (H / 16));
      r.poison();
      sums.poison();
      y_u.poison();
      y_f.poison();
      cuda::embed(d_table.get(), d_ids.get(), n, H, r.get(), nullptr, sums.get());
      const auto residual = r.download();
      std::vector<float> want(size_t(n) * H);
      for (int t = 0; t < n; ++t)
        for (int d = 0; d < H; ++d) want[size_t(t) * H + d] = table[size_t(ids[t]) * H + d];
      ASSERT_EQ(differing_bits(residual, want), 0u) << "embed's rows";
      EXPECT_LE(worst_sum_error(sums.download(), sums_of_squares(residual, n, H)), 1e-5) << "embed's sums";

      const cuda::GemvFusedParams p =
          normed_params(w.get(), n, H, O, r.get(), norm_w.get(), 1e-6f, sums.get(), y_f.get());
      cuda::gemv_tc_fused(p, nullptr);
      cuda::add_rmsnorm(r.get(), nullptr, norm_w.get(), n, H, 1e-6f, x.get(), nullptr);
      cuda::gemv_tc(x.get(), w.get(), n, H, O, y_u.get(), nullptr);
      const double e = nmse(to_float(y_f.download()), to_float(y_u.download()));
      EXPECT_LE(e, 1e-8) << "hidden=" << H << " tokens=" << n;
      EXPECT_EQ(differing_bits(r.download(), residual), 0u) << "the residual is only read";
    }
  }
}

TEST(KernelGemvTcFused, RejectsWhatItDoesNotRun) {
  RL_REQUIRE_GPU();
  TestBuffer<half> h(size_t(16) * 128 * 128);
  TestBuffer<float> f(size_t(16) * 128), sums(size_t(16) * 8);
  const cuda::GemvFusedParams residual{.w = h.get(),
                                       .n = 4,
                                       .in = 128,
                                       .out = 128,
                                       .x = h.get(),
                                       .residual = f.get(),
                                       .norm_sums = sums.get()};
  const cuda::GemvFusedParams normed =
      normed_params(h.get(), 4, 128, 128, f.get(), h.get(), 1e-6f, sums.get(), h.get());
  EXPECT_NO_THROW(cuda::gemv_tc_fused(residual, nullptr));
  EXPECT_NO_THROW(cuda::gemv_tc_fused(normed, nullptr));
  auto bad = [](cuda::GemvFusedParams p, auto change) {
    change(p);
    return p;
  };
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [](auto& p) { p.n = 9; }), nullptr), std::invalid_argument)
      << "the norm prologue runs up to 8 rows";
  EXPECT_THROW(cuda::gemv_tc_fused(bad(residual, [](auto& p) { p.n = 17; }), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [](auto& p) { p.norm_sums = nullptr; }), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [](auto& p) { p.in = 96; }), nullptr), std::invalid_argument)
      << "the norm's sums are read four at a time: in % 64";
  EXPECT_THROW(cuda::gemv_tc_fused(bad(residual, [](auto& p) { p.out = 96; }), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [&](auto& p) { p.x = h.get(); }), nullptr),
               std::invalid_argument)
      << "x and a norm prologue together";
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [&](auto& p) { p.act = h.get(); }), nullptr),
               std::invalid_argument)
      << "two outputs";
  EXPECT_THROW(cuda::gemv_tc_fused(bad(residual, [&](auto& p) { p.y16 = h.get(); }), nullptr),
               std::invalid_argument);
  cuda::RopeKvEpilogue rope;
  EXPECT_THROW(cuda::gemv_tc_fused(bad(normed, [&](auto& p) { p.rope = &rope; }), nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace ridgeline::test
