// The W4A16 dequant + cuBLASLt path (kernels/w4a16_dequant.cu, Gemm::run_w4a16_dequant in
// engine/cuda/gemm.h): the dequantized fp16 slab equals the CPU reference dequantization
// (w4a16_dequantize_rows, rounded once to fp16) bit for bit, and writes nothing outside its rows;
// the slab-by-slab linear matches the float64 reference on the dequantized weights
// (NMSE, poisoned outputs, fp16 and fp32 out) at prefill sizes on 1.8b and 7b shapes, including a
// last slab of one 16-row strip; Gemm::run on a DeviceLinear takes the path exactly where
// w4a16_use_dequant_gemm says (bit-identical to the forced path there, to w4a16_linear below it and without a
// scratch).
//
// Suite KernelW4A16Dequant is small enough for compute-sanitizer memcheck (scripts/gpu-check.sh's
// Kernel* filter); W4A16DequantGemm runs full model shapes at n up to 2048 and checks a sample of
// output channels (every output for finiteness) so the CPU reference stays within seconds.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/cuda/device_weights.h"
#include "engine/cuda/gemm.h"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_gemm_paths.cuh"
#include "kernels/w4a16_repack.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"
#include "tests/gpu/w4a16_test_weights.h"

namespace ridgeline::test {
namespace {

uint16_t fp16_bits(float f) {
  return half_bits(__float2half_rn(f));
}

// Scales at the edges of fp16 in group 0 of the first strip: subnormal, large enough that
// (q - z) * s overflows to inf, negative, zero.
void set_edge_scales(cuda::W4A16Host& w) {
  const float edge[] = {3.0e-7f, 1.0e-5f, 5000.0f, 65504.0f, -0.0137f, 0.0f};
  for (int r = 0; r < 16 && r < w.out; ++r)
    w.scale_zero[size_t(cuda::w4a16_scale_index(w.in, r, 0))] = fp16_bits(edge[r % 6]);
}

// The CPU reference's rows [row0, row0 + rows), rounded once to fp16, as bit patterns.
std::vector<uint16_t> reference_slab(const cuda::W4A16Host& w, int row0, int rows) {
  std::vector<float> f(size_t(rows) * w.in);
  cuda::w4a16_dequantize_rows(w, row0, rows, f.data());
  std::vector<uint16_t> bits(f.size());
  for (size_t i = 0; i < f.size(); ++i) bits[i] = fp16_bits(f[i]);
  return bits;
}

// ---- the slab kernel ------------------------------------------------------------------------------

// Shapes: the smallest (one strip, one group), odd strip and group counts (the tiny model's 1408
// inputs), and the 1.8b and 7b input sizes (2048, 4096, 8192, 14336) over 17 strips. Slabs: the
// whole weight, and odd numbers of strips at odd strip offsets, the last strip alone.
TEST(KernelW4A16Dequant, SlabEqualsTheCpuReferenceBitForBit) {
  RL_REQUIRE_GPU();
  struct Shape {
    int in, out;
  };
  for (Shape s : {Shape{128, 16}, Shape{384, 48}, Shape{1408, 144}, Shape{2048, 272}, Shape{4096, 272},
                  Shape{8192, 272}, Shape{14336, 272}}) {
    std::mt19937 rng(s.in + 31 * s.out);
    cuda::W4A16Host hw = random_w4a16(s.in, s.out, rng);
    set_edge_scales(hw);
    DeviceW4A16 dw(hw);
    const int strips = s.out / 16;
    std::vector<std::pair<int, int>> slabs = {{0, strips}, {strips - 1, 1}};  // (first strip, strips)
    if (strips >= 9) slabs.insert(slabs.end(), {{1, 3}, {3, 5}, {5, strips - 5}});
    for (auto [first, count] : slabs) {
      const int row0 = 16 * first, rows = 16 * count;
      SCOPED_TRACE("in=" + std::to_string(s.in) + " out=" + std::to_string(s.out) + " rows " +
                   std::to_string(row0) + ".." + std::to_string(row0 + rows));
      // One strip more than the slab, poisoned: the kernel must leave it alone.
      TestBuffer<uint16_t> dst(size_t(rows + 16) * s.in);
      dst.poison();
      cuda::w4a16_dequantize_fp16(dw.view(), row0, rows, reinterpret_cast<half*>(dst.get()), nullptr);
      const auto got = dst.download();
      const auto want = reference_slab(hw, row0, rows);
      const auto diff = std::mismatch(want.begin(), want.end(), got.begin());
      EXPECT_EQ(diff.first - want.begin(), int64_t(want.size()))
          << "first differing weight (row, input) = (" << (diff.first - want.begin()) / s.in << ", "
          << (diff.first - want.begin()) % s.in << "): 0x" << std::hex
          << (diff.first == want.end() ? 0 : *diff.second) << " vs reference 0x"
          << (diff.first == want.end() ? 0 : *diff.first);
      EXPECT_TRUE(std::all_of(got.begin() + int64_t(want.size()), got.end(), [](uint16_t v) {
        return v == 0xFFFFu;
      })) << "the kernel wrote past its slab";
    }
  }
}

TEST(KernelW4A16Dequant, RejectsSlabsThatAreNotWholeStripsOfTheWeight) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(3);
  DeviceW4A16 dw(random_w4a16(256, 64, rng));
  TestBuffer<half> dst(size_t(80) * 256 + 8);
  for (auto [row0, rows] : std::initializer_list<std::pair<int, int>>{{8, 16}, {0, 24}, {48, 32}, {-16, 16}})
    EXPECT_THROW(cuda::w4a16_dequantize_fp16(dw.view(), row0, rows, dst.get(), nullptr),
                 std::invalid_argument)
        << "rows " << row0 << " +" << rows;
  EXPECT_THROW(cuda::w4a16_dequantize_fp16(dw.view(), 0, 16, dst.get() + 1, nullptr), std::invalid_argument)
      << "unaligned destination";
  cuda::W4A16Weights bad = dw.view();
  bad.in = 192;
  EXPECT_THROW(cuda::w4a16_dequantize_fp16(bad, 0, 16, dst.get(), nullptr), std::invalid_argument);
  cuda::Gemm no_scratch;
  TestBuffer<half> x(size_t(4) * 256), y(size_t(4) * 64);
  try {
    no_scratch.run_w4a16_dequant(x.get(), dw.view(), 4, y.get(), nullptr, "layers.0.w2");
    ADD_FAILURE() << "a Gemm without a scratch ran the dequant path";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.w2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("scratch"), std::string::npos) << e.what();
  }
}

// ---- the linear --------------------------------------------------------------------------------

// Linear through the dequant path (both output types, poisoned) against the float64 reference on
// the CPU reference's dequantized rows (w4a16_test_weights.h) of a sample of channels that holds
// every slab's first and last row; every output of y must be finite (written), the sampled ones
// within kW4A16Nmse.
void check_linear(const char* name, int in, int out, uint32_t seed) {
  std::mt19937 rng(seed);
  const cuda::W4A16Host hw = random_w4a16(in, out, rng);
  DeviceW4A16 dw(hw);
  const std::vector<int> batches = {512, 1001, 2048};
  const auto x = random_fp16_values(size_t(batches.back()) * in, rng);
  TestBuffer<half> d_x(to_half(x));
  cuda::Gemm gemm(cuda::Gemm::kDefaultWorkspaceBytes, size_t(cuda::w4a16_dequant_scratch_bytes(in, out)));
  const int slab = cuda::w4a16_dequant_slab_rows(in, out);
  std::vector<int> slab_edges;
  for (int r0 = 0; r0 < out; r0 += slab)
    slab_edges.insert(slab_edges.end(), {r0, std::min(out, r0 + slab) - 1});
  for (int n : batches) {
    const std::vector<int> ch = channels_to_check(n, in, out, rng, slab_edges);
    const std::vector<double> want = reference(hw, x, n, ch);
    TestBuffer<half> y16(size_t(n) * out);
    TestBuffer<float> y32(size_t(n) * out);
    y16.poison();
    y32.poison();
    gemm.run_w4a16_dequant(d_x.get(), dw.view(), n, y16.get(), nullptr, name);
    gemm.run_w4a16_dequant(d_x.get(), dw.view(), n, y32.get(), nullptr, name);
    const std::string shape = std::string(name) + " in=" + std::to_string(in) +
                              " out=" + std::to_string(out) + " n=" + std::to_string(n) + " slab " +
                              std::to_string(slab);
    const std::vector<float> all16 = to_float(y16.download()), all32 = y32.download();
    for (const auto* y : {&all16, &all32}) {
      const char* type = y == &all16 ? "fp16" : "fp32";
      const bool written = std::all_of(y->begin(), y->end(), [](float v) { return std::isfinite(v); });
      const double e = checked_nmse(*y, n, out, ch, want);
      report_nmse(std::string("w4a16_dequant.") + type, shape, e);
      EXPECT_TRUE(written) << shape << " " << type << ": an output is not finite (unwritten)";
      EXPECT_LE(e, kW4A16Nmse) << shape << " " << type;
    }
  }
}

// 1.8b w2 (in 8192: two slabs of 1024 rows), 7b w13 (fourteen slabs of 2048), and a weight whose
// last slab is one 16-row strip (in 14336: slabs of 512, out 1040 = 2 x 512 + 16).
TEST(W4A16DequantGemm, Internlm2_1_8bW2MatchesReference) {
  RL_REQUIRE_GPU();
  check_linear("1_8b.w2", 8192, 2048, 41);
}

TEST(W4A16DequantGemm, Internlm2_7bW13MatchesReference) {
  RL_REQUIRE_GPU();
  check_linear("7b.w13", 4096, 28672, 42);
}

TEST(W4A16DequantGemm, LastSlabOfOneStripMatchesReference) {
  RL_REQUIRE_GPU();
  check_linear("7b.w2_rows", 14336, 1040, 43);
}

// ---- the dispatch ------------------------------------------------------------------------------

cuda::DeviceLinear device_linear(const cuda::W4A16Host& h) {
  cuda::DeviceLinear l;
  l.in = h.in, l.out = h.out;
  l.qweight = cuda::DeviceBuffer<uint32_t>(h.qweight.size(), "test qweight");
  l.scale_zero = cuda::DeviceBuffer<half>(h.scale_zero.size(), "test scale_zero");
  RL_CUDA_CHECK("test",
                cudaMemcpy(l.qweight.get(), h.qweight.data(), l.qweight.bytes(), cudaMemcpyHostToDevice));
  RL_CUDA_CHECK("test", cudaMemcpy(l.scale_zero.get(), h.scale_zero.data(), l.scale_zero.bytes(),
                                   cudaMemcpyHostToDevice));
  return l;
}

std::vector<float> run_to_host(const std::function<void(float*)>& run, size_t elems) {
  TestBuffer<float> y(elems);
  y.poison();
  run(y.get());
  return y.download();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// At n = kW4A16DequantGemmMinRows the engine's dispatch gives the forced dequant path's bits (and
// not w4a16_linear's: the two sum in different orders, so fp32 outputs differ, which the test
// checks first so that it can tell the paths apart); one row fewer, or a Gemm built without a
// scratch, gives w4a16_linear's bits.
TEST(KernelW4A16Dequant, RunLinearTakesThePathExactlyFromTheThreshold) {
  RL_REQUIRE_GPU();
  const int in = 2048, out = 256, hi = cuda::kW4A16DequantGemmMinRows, lo = hi - 1;
  ASSERT_TRUE(cuda::w4a16_use_dequant_gemm(hi));
  ASSERT_FALSE(cuda::w4a16_use_dequant_gemm(lo));
  std::mt19937 rng(7);
  const cuda::W4A16Host hw = random_w4a16(in, out, rng);
  const cuda::DeviceLinear lin = device_linear(hw);
  const cuda::W4A16Weights wv = lin.w4a16();
  TestBuffer<half> x(to_half(random_fp16_values(size_t(hi) * in, rng)));
  cuda::Gemm gemm(cuda::Gemm::kDefaultWorkspaceBytes, size_t(cuda::w4a16_dequant_scratch_bytes(in, out)));
  cuda::Gemm no_scratch;
  for (int n : {hi, lo}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const size_t elems = size_t(n) * out;
    const auto forced =
        run_to_host([&](float* y) { gemm.run_w4a16_dequant(x.get(), wv, n, y, nullptr, "forced"); }, elems);
    const auto kernels =
        run_to_host([&](float* y) { cuda::w4a16_linear(x.get(), wv, n, y, nullptr); }, elems);
    const auto engine =
        run_to_host([&](float* y) { gemm.run(x.get(), lin, n, y, nullptr, "engine"); }, elems);
    const auto engine_no_scratch =
        run_to_host([&](float* y) { no_scratch.run(x.get(), lin, n, y, nullptr, "engine"); }, elems);
    ASSERT_FALSE(same_bits(forced, kernels))
        << "the two paths agree bit for bit: this test cannot tell them apart";
    EXPECT_TRUE(same_bits(engine, n >= hi ? forced : kernels));
    EXPECT_TRUE(same_bits(engine_no_scratch, kernels));
  }
}

}  // namespace
}  // namespace ridgeline::test
