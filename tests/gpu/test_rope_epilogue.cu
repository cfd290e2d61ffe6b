// The rope_kv_write epilogue of the decode step's wqkv GEMVs (gemv_fused and w4a16_gemv_fused with a
// RopeKvEpilogue, kernels/rope.cuh) against the sequence it replaces: the normed GEMV storing qkv
// (for W4A16 weights add_rmsnorm and w4a16_gemv at the fused kernel's input split), then rope_kv_write, one
// launch per row (the rows' RoPE bases differ, as the engine's RoPE groups do under dynamic NTK). q and both
// pools of the paged cache, which start poisoned, must agree bit for bit; rope_kv_write's own tests check
// what it writes and that it writes nothing else. At the 1.8b (16 query and 8 KV heads of 128) and 7b (32 and
// 8) head layouts and a small one (4 and 2 heads of 64), for fp16 and W4A16 weights, n = 1 and 2 rows at
// different sequences, positions (one on a block boundary) and bases, on a cache of shuffled blocks.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.cuh"
#include "kernels/w4a16.cuh"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"
#include "tests/gpu/w4a16_test_weights.h"

namespace ridgeline::test {
namespace {

struct RopeLayout {
  int hidden, n_heads, n_kv, head_dim;
  int qkv() const { return (n_heads + 2 * n_kv) * head_dim; }
};
constexpr RopeLayout kLayouts[] = {{2048, 16, 8, 128}, {4096, 32, 8, 128}, {256, 4, 2, 64}};
constexpr float kEps = 1e-5f;
constexpr int kBlockSize = 16;
const std::vector<int> kCapacity{100, 1000};  // tokens sequences 0 and 1 may hold
// Row 0: sequence 1 at position 777; row 1: sequence 0 at 64 (the first slot of its fifth block).
const std::vector<int> kSlots{1, 0}, kPositions{777, 64};
constexpr float kBases[] = {1e6f, 2.75e6f};

// One weight format's normed GEMV: y = x W^T (qkv) or, with `rope`, the epilogue.
using NormedGemv = void (*)(const void* w, int n, const RopeLayout& l, const float* residual,
                            const half* norm_w, half* y, const cuda::RopeKvEpilogue* rope);

void fp16_gemv(const void* w, int n, const RopeLayout& l, const float* residual, const half* norm_w, half* y,
               const cuda::RopeKvEpilogue* rope) {
  cuda::gemv_fused({.w = static_cast<const half*>(w),
                    .n = n,
                    .in = l.hidden,
                    .out = l.qkv(),
                    .norm_residual = residual,
                    .norm_w = norm_w,
                    .eps = kEps,
                    .y16 = y,
                    .rope = rope},
                   nullptr);
}

// Unfused, add_rmsnorm and w4a16_gemv split into the input slices the fused kernel takes with the RoPE
// epilogue (finer than w4a16_gemv's default at 7b's width, kernels/w4a16_gemv.cu): its sums in its order.
void w4a16_gemv(const void* w, int n, const RopeLayout& l, const float* residual, const half* norm_w, half* y,
                const cuda::RopeKvEpilogue* rope) {
  cuda::W4A16GemvFusedParams p{.w = static_cast<const DeviceW4A16*>(w)->view(),
                               .n = n,
                               .norm_residual = residual,
                               .norm_w = norm_w,
                               .eps = kEps};
  if (rope) {
    p.rope = rope;
    return cuda::w4a16_gemv_fused(p, nullptr);
  }
  const cuda::RopeKvEpilogue layout_only{};
  p.rope = &layout_only;
  const cuda::W4A16GemvConfig split = fused_split(p);
  TestBuffer<float> r(size_t(n) * l.hidden);
  RL_CUDA_CHECK("test", cudaMemcpy(r.get(), residual, r.size() * sizeof(float), cudaMemcpyDeviceToDevice));
  TestBuffer<half> x(size_t(n) * l.hidden);
  cuda::add_rmsnorm(r.get(), nullptr, norm_w, n, l.hidden, kEps, x.get(), nullptr);
  cuda::w4a16_gemv(x.get(), p.w, n, y, nullptr, split);
}

// Runs both ways for one layout, weight and row count.
// pos_scale: linear RoPE scaling (positions divided by it), as a checkpoint's rope_scaling gives it.
void expect_fused_equals_unfused(const RopeLayout& l, int n, const void* w, NormedGemv gemv,
                                 const std::string& what, float pos_scale = 1.0f) {
  SCOPED_TRACE(what + " hidden=" + std::to_string(l.hidden) + " heads=" + std::to_string(l.n_heads) + "/" +
               std::to_string(l.n_kv) + "x" + std::to_string(l.head_dim) + " rows=" + std::to_string(n) +
               " pos_scale=" + std::to_string(pos_scale));
  std::mt19937 rng(unsigned(l.hidden + n));
  TestBuffer<float> residual(random_floats(size_t(n) * l.hidden, rng, -3.0f, 3.0f));
  TestBuffer<half> norm_w(to_half(random_fp16_values(l.hidden, rng, 0.5f, 1.5f)));
  TestBuffer<int> slots(kSlots), positions(kPositions);
  const int q_dim = l.n_heads * l.head_dim;
  std::unique_ptr<PagedCache> cache[2];
  TestBuffer<half> q[2] = {TestBuffer<half>(size_t(n) * q_dim), TestBuffer<half>(size_t(n) * q_dim)};
  for (int i = 0; i < 2; ++i) {
    std::mt19937 table_rng(7);  // both caches share their block table
    cache[i] = std::make_unique<PagedCache>(kCapacity, l.n_kv, l.head_dim, kBlockSize, table_rng);
    cache[i]->upload();
    q[i].poison();
  }

  // Unfused: qkv stored, then rope_kv_write row by row.
  TestBuffer<half> qkv(size_t(n) * l.qkv());
  qkv.poison();
  gemv(w, n, l, residual.get(), norm_w.get(), qkv.get(), nullptr);
  for (int t = 0; t < n; ++t)
    cuda::rope_kv_write({.qkv = qkv.get() + size_t(t) * l.qkv(),
                         .slots = slots.get() + t,
                         .positions = positions.get() + t,
                         .n_tokens = 1,
                         .n_heads = l.n_heads,
                         .cache = cache[0]->view(),
                         .rope_base = kBases[t],
                         .pos_scale = pos_scale,
                         .q_out = q[0].get() + size_t(t) * q_dim},
                        nullptr);

  // Fused.
  cuda::RopeKvEpilogue e{.slots = slots.get(),
                         .positions = positions.get(),
                         .n_heads = l.n_heads,
                         .cache = cache[1]->view(),
                         .rope_base = {kBases[0], kBases[1]},
                         .pos_scale = pos_scale,
                         .q_out = q[1].get()};
  gemv(w, n, l, residual.get(), norm_w.get(), nullptr, &e);
  RL_CUDA_CHECK("test", cudaDeviceSynchronize());

  const auto q_unfused = q[0].download(), q_fused = q[1].download();
  EXPECT_EQ(std::count_if(q_unfused.begin(), q_unfused.end(), is_poison), 0) << "every q element written";
  EXPECT_EQ(differing_bits(q_fused, q_unfused), 0u) << "q";
  cache[0]->download();
  cache[1]->download();
  EXPECT_TRUE(cache[1]->k == cache[0]->k) << "K pool";
  EXPECT_TRUE(cache[1]->v == cache[0]->v) << "V pool";
  // Not vacuous: each token's K row holds finite values where the pool was poison.
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < l.n_kv; ++h)
      for (int d : {0, l.head_dim / 2, l.head_dim - 1})
        EXPECT_TRUE(std::isfinite(cache[1]->value(cache[1]->k, kSlots[t], kPositions[t], h, d)))
            << "K of row " << t << " head " << h << " dim " << d;
}

TEST(KernelRopeEpilogue, Fp16GemvFusedWritesQAndTheCacheAsGemvThenRopeKvWrite) {
  RL_REQUIRE_GPU();
  for (const RopeLayout& l : kLayouts) {
    std::mt19937 rng(unsigned(l.qkv()));
    TestBuffer<half> w(to_half(random_fp16_values(size_t(l.qkv()) * l.hidden, rng, -0.05f, 0.05f)));
    for (int n : {1, 2})
      for (float pos_scale : {1.0f, 2.0f})
        expect_fused_equals_unfused(l, n, w.get(), fp16_gemv, "fp16", pos_scale);
  }
}

TEST(KernelRopeEpilogue, W4A16GemvFusedWritesQAndTheCacheAsW4A16GemvThenRopeKvWrite) {
  RL_REQUIRE_GPU();
  for (const RopeLayout& l : kLayouts) {
    std::mt19937 rng(unsigned(l.qkv()));
    const DeviceW4A16 w(random_w4a16(l.hidden, l.qkv(), rng));
    for (int n : {1, 2})
      for (float pos_scale : {1.0f, 2.0f})
        expect_fused_equals_unfused(l, n, &w, w4a16_gemv, "w4a16", pos_scale);
  }
}

TEST(KernelRopeEpilogue, RejectsWhatItDoesNotRun) {
  RL_REQUIRE_GPU();
  const RopeLayout l{256, 4, 2, 64};
  std::mt19937 rng(3);
  constexpr int kRows = 2;
  TestBuffer<half> w(to_half(random_fp16_values(size_t(l.qkv()) * l.hidden, rng))),
      x(size_t(kRows) * l.hidden), norm_w(l.hidden), q(size_t(kRows) * l.n_heads * l.head_dim);
  TestBuffer<float> residual(size_t(kRows) * l.hidden);
  TestBuffer<int> slots(kSlots), positions(kPositions);
  std::mt19937 table_rng(7);
  PagedCache cache(kCapacity, l.n_kv, l.head_dim, kBlockSize, table_rng),
      cache8(kCapacity, l.n_kv, l.head_dim, kBlockSize, table_rng, 8);
  const cuda::RopeKvEpilogue ok{.slots = slots.get(),
                                .positions = positions.get(),
                                .n_heads = l.n_heads,
                                .cache = cache.view(),
                                .rope_base = {1e6f, 1e6f},
                                .q_out = q.get()};
  auto run = [&](cuda::RopeKvEpilogue e, int out, bool norm, int n = 1) {
    cuda::GemvFusedParams p{.w = w.get(), .n = n, .in = l.hidden, .out = out, .rope = &e};
    if (norm)
      p.norm_residual = residual.get(), p.norm_w = norm_w.get(), p.eps = kEps;
    else
      p.x = x.get();
    cuda::gemv_fused(p, nullptr);
  };
  // Refused with std::invalid_argument whose message names the op and contains `says`.
  auto refused = [](auto&& call, const std::string& says) {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      return what.find("gemv_fused") != std::string::npos && what.find(says) != std::string::npos;
    }
    return false;
  };
  EXPECT_NO_THROW(run(ok, l.qkv(), true));
  EXPECT_NO_THROW(run(ok, l.qkv(), true, 2));
  EXPECT_TRUE(refused([&] { run(ok, l.qkv(), false); }, "norm prologue")) << "without the norm prologue";
  EXPECT_TRUE(refused([&] { run(ok, l.qkv() - 64, true); }, "not qkv")) << "outputs that are not qkv";
  cuda::RopeKvEpilogue int8 = ok;
  int8.cache = cache8.view();
  EXPECT_TRUE(refused([&] { run(int8, l.qkv(), true); }, "run rope_kv_write")) << "an int8 cache";
  cuda::RopeKvEpilogue no_base = ok;
  no_base.rope_base[1] = 0.0f;
  EXPECT_NO_THROW(run(no_base, l.qkv(), true)) << "one row reads one base";
  EXPECT_TRUE(refused([&] { run(no_base, l.qkv(), true, 2); }, "row 1 has no RoPE base"))
      << "row 1 without a base";
  // head_dim 48: a multiple of 16 (rope_kv_write runs it) but not of a W4A16 strip pair.
  PagedCache cache48(kCapacity, l.n_kv, 48, kBlockSize, table_rng);
  cuda::RopeKvEpilogue hd48 = ok;
  hd48.cache = cache48.view();
  EXPECT_TRUE(refused([&] { run(hd48, (l.n_heads + 2 * l.n_kv) * 48, true); }, "multiple of 32"))
      << "head_dim 48";
  const DeviceW4A16 w4(random_w4a16(l.hidden, l.qkv(), rng));
  cuda::W4A16GemvFusedParams p4{.w = w4.view(), .n = 1, .x = x.get()};
  p4.rope = &ok;
  EXPECT_THROW(cuda::w4a16_gemv_fused(p4, nullptr), std::invalid_argument)
      << "w4a16 without the norm prologue";
  RL_CUDA_CHECK("test", cudaDeviceSynchronize());
}

}  // namespace
}  // namespace ridgeline::test
