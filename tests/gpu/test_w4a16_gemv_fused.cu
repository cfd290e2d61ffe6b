// w4a16_gemv_fused (kernels/w4a16_gemv.cu): the decode step's norm, SwiGLU and residual add folded
// into the W4A16 GEMV. One decode layer's GEMV chain both ways from the same float32 residual:
// unfused, w4a16_gemv (wo, at the fused GEMV's input split) -> add_rmsnorm -> w4a16_gemv
// (wqkv-like) and w4a16_gemv (w13) -> swiglu; fused, w4a16_gemv_fused with the residual epilogue,
// then with the norm prologue (fp16 out, and SwiGLU). Every output and the residual must agree bit
// for bit (the prologue reproduces add_rmsnorm's reduction order whatever the block's warp count),
// and the wqkv-like output must match the CPU reference on the dequantized weights.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/reference.h"
#include "kernels/kernels.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_repack.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"
#include "tests/gpu/w4a16_test_weights.h"

namespace ridgeline::test {
namespace {

// 1.8b (wqkv out 4096), 7b (wqkv out 6144; its w13 runs 4-warp blocks, whose norm prologue plays
// add_rmsnorm's 256 threads two per thread), and a small shape: one group per input of wo, three
// strip pairs of w13, a wqkv-like weight of an odd number of strips.
constexpr ChainShape kChainShapes[] = {
    {2048, 2048, 4096, 8192}, {4096, 4096, 6144, 14336}, {384, 128, 272, 48}};

TEST(KernelW4A16GemvFused, NormPrologueSwigluAndResidualEpilogueBitIdenticalToTheUnfusedChain) {
  RL_REQUIRE_GPU();
  constexpr float kEps = 1e-5f;
  for_each_chain(kChainShapes, [&](int n, ChainInputs& in) {
    const auto [H, K, O, I] = in.sh;
    const cuda::W4A16Host hwo = random_w4a16(K, H, in.rng), hwn = random_w4a16(H, O, in.rng),
                          hw13 = random_w4a16(H, 2 * I, in.rng);
    DeviceW4A16 wo(hwo), wn(hwn), w13(hw13);
    TestBuffer<half> d_attn(to_half(in.attn)), d_norm_w(to_half(in.norm_w));

    // Unfused.
    TestBuffer<float> r_u(in.residual);
    TestBuffer<half> proj(size_t(n) * H), x(size_t(n) * H), y_u(size_t(n) * O), gate_up(size_t(n) * 2 * I),
        act_u(size_t(n) * I);
    for (auto* b : {&proj, &x, &y_u, &gate_up, &act_u}) b->poison();
    {  // at the input split the fused residual GEMV takes (fewer slices than the default at 1.8b's wo)
      TestBuffer<float> layout_only(1);
      const cuda::W4A16GemvConfig split =
          fused_split({.w = wo.view(), .n = n, .x = d_attn.get(), .residual = layout_only.get()});
      if (split.kernel == cuda::W4A16GemvKernel::registers)  // the residual rule: 2+ groups a warp
        EXPECT_TRUE(split.slices == 1 || K / cuda::kW4A16Group / split.slices >= 2)
            << split.slices << " slices " << in.shape;
      cuda::w4a16_gemv(d_attn.get(), wo.view(), n, proj.get(), nullptr, split);
    }
    cuda::add_rmsnorm(r_u.get(), proj.get(), d_norm_w.get(), n, H, kEps, x.get(), nullptr);
    {  // the normed GEMV's split (the plain GEMV's default layouts are its own)
      const cuda::W4A16GemvConfig split = fused_split(
          {.w = wn.view(), .n = n, .norm_residual = r_u.get(), .norm_w = d_norm_w.get(), .y = y_u.get()});
      cuda::w4a16_gemv(x.get(), wn.view(), n, y_u.get(), nullptr, split);
    }
    {  // at the input split the fused SwiGLU pair takes (fewer slices than the default at 7b's w13)
      TestBuffer<half> layout_only(1);
      const cuda::W4A16GemvConfig split = fused_split({.w = w13.view(),
                                                       .n = n,
                                                       .norm_residual = r_u.get(),
                                                       .norm_w = d_norm_w.get(),
                                                       .act = layout_only.get()});
      cuda::w4a16_gemv(x.get(), w13.view(), n, gate_up.get(), nullptr, split);
    }
    cuda::swiglu(gate_up.get(), n, I, act_u.get(), nullptr);

    // Fused.
    TestBuffer<float> r_f(in.residual);
    TestBuffer<half> y_f(size_t(n) * O), act_f(size_t(n) * I);
    y_f.poison();
    act_f.poison();
    cuda::w4a16_gemv_fused({.w = wo.view(), .n = n, .x = d_attn.get(), .residual = r_f.get()}, nullptr);
    cuda::W4A16GemvFusedParams normed{
        .w = wn.view(), .n = n, .norm_residual = r_f.get(), .norm_w = d_norm_w.get(), .eps = kEps};
    normed.y = y_f.get();
    cuda::w4a16_gemv_fused(normed, nullptr);
    cuda::W4A16GemvFusedParams swiglu = normed;
    swiglu.w = w13.view();
    swiglu.y = nullptr;
    swiglu.act = act_f.get();
    cuda::w4a16_gemv_fused(swiglu, nullptr);

    EXPECT_EQ(differing_bits(r_f.download(), r_u.download()), 0u) << "residual " << in.shape;
    const auto y = y_f.download();
    EXPECT_EQ(differing_bits(y, y_u.download()), 0u) << "wqkv-like out " << in.shape;
    EXPECT_EQ(differing_bits(act_f.download(), act_u.download()), 0u) << "act " << in.shape;

    // The CPU reference of the wqkv-like chain on the dequantized weights: residual += fp16(attn
    // Wo^T), rmsnorm (fp16), linear.
    const std::vector<float> y_ref =
        chain_reference(n, in, cuda::w4a16_dequantize(hwo), cuda::w4a16_dequantize(hwn), kEps);
    const double e = nmse(to_float(y), y_ref);
    report_nmse("w4a16_gemv_fused", in.shape, e);
    EXPECT_LE(e, 5e-6) << in.shape;  // measured at most 4.5e-8 (H200): fp16 output rounding
  });
}

TEST(KernelW4A16GemvFused, RejectsWhatItDoesNotRun) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(5);
  DeviceW4A16 w(random_w4a16(256, 48, rng));  // 48 outputs: SwiGLU halves of 24 rows, not whole strips
  TestBuffer<half> x(size_t(3) * 256), y(size_t(3) * 48), norm_w(256);
  TestBuffer<float> r(size_t(3) * 256), res(size_t(3) * 48);
  const cuda::W4A16Weights v = w.view();
  using P = cuda::W4A16GemvFusedParams;
  EXPECT_THROW(cuda::w4a16_gemv_fused(P{.w = v, .n = 3, .x = x.get(), .y = y.get()}, nullptr),
               std::invalid_argument);  // rows
  EXPECT_THROW(cuda::w4a16_gemv_fused(P{.w = v, .n = 1, .y = y.get()}, nullptr),
               std::invalid_argument);  // no input
  EXPECT_THROW(
      cuda::w4a16_gemv_fused(
          P{.w = v, .n = 1, .x = x.get(), .norm_residual = r.get(), .norm_w = norm_w.get(), .y = y.get()},
          nullptr),
      std::invalid_argument);  // two inputs
  EXPECT_THROW(
      cuda::w4a16_gemv_fused(P{.w = v, .n = 1, .x = x.get(), .y = y.get(), .residual = res.get()}, nullptr),
      std::invalid_argument);                   // two outputs
  DeviceW4A16 w64(random_w4a16(256, 64, rng));  // SwiGLU halves of two strips each
  EXPECT_THROW(cuda::w4a16_gemv_fused(P{.w = w64.view(), .n = 1, .x = x.get(), .act = y.get()}, nullptr),
               std::invalid_argument);  // SwiGLU without the norm prologue
  EXPECT_THROW(
      cuda::w4a16_gemv_fused(
          P{.w = v, .n = 1, .norm_residual = r.get(), .norm_w = norm_w.get(), .act = y.get()}, nullptr),
      std::invalid_argument);  // out/2 = 24: not whole strips
}

}  // namespace
}  // namespace ridgeline::test
