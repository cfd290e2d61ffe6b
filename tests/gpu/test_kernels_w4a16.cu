// W4A16 (kernels/w4a16.cuh): the device layout against AutoAWQ's packing (hand-packed words, the
// engine's AWQ dequantization bit for bit), the device RTN quantizer against its CPU reference
// (codes and scales bit for bit), and the GEMV / GEMM kernels against a float64 reference on the
// dequantized weights with NaN-poisoned outputs, odd batch sizes, forced split-K clusters and GEMV
// layouts (warps, strips per block, ring depth), fp16 and fp32 outputs, at the internlm2 1.8b and
// 7b shapes and a vocabulary-sized 4-bit output head.
//
// Suites named Kernel* are small enough for compute-sanitizer memcheck (scripts/gpu-check.sh's
// default filter); W4A16ModelShapes.* (every linear of both models at n up to 1001) is not, and
// checks a sample of output channels at large n so the CPU reference stays within a few seconds.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/host_weights.h"
#include "engine/safetensors.h"
#include "kernels/cpu/reference.h"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_device.cuh"
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

// ---- AWQ tensors ---------------------------------------------------------------------------------

struct AwqTensors {
  int in = 0, out = 0;
  std::vector<int32_t> qweight, qzeros;  // [in, out/8], [in/128, out/8]
  std::vector<uint16_t> scales;          // [in/128, out] fp16 bits
};

AwqTensors random_awq(int in, int out, std::mt19937& rng) {
  AwqTensors a{in, out, {}, {}, {}};
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  a.qweight.resize(size_t(in) * out / 8);
  a.qzeros.resize(size_t(in / 128) * out / 8);
  a.scales.resize(size_t(in / 128) * out);
  for (auto& v : a.qweight) v = static_cast<int32_t>(bits(rng));
  for (auto& v : a.qzeros) v = static_cast<int32_t>(bits(rng));
  for (auto& v : a.scales) v = fp16_bits(scale(rng));
  return a;
}

TensorView view_of(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                   size_t nbytes) {
  TensorView t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = static_cast<const uint8_t*>(data);
  t.nbytes = nbytes;
  t.file = "test";
  return t;
}

// The engine's AWQ dequantization (engine/host_weights.h), [out, in].
std::vector<float> engine_awq_dequantize(const AwqTensors& a) {
  const int64_t words = a.out / 8, groups = a.in / 128;
  auto qw = view_of("w.qweight", DType::i32, {a.in, words}, a.qweight.data(), a.qweight.size() * 4);
  auto qz = view_of("w.qzeros", DType::i32, {groups, words}, a.qzeros.data(), a.qzeros.size() * 4);
  auto sc = view_of("w.scales", DType::f16, {groups, a.out}, a.scales.data(), a.scales.size() * 2);
  return dequantize_awq(qw, qz, sc, 128).data;
}

cuda::W4A16Host repack(const AwqTensors& a) {
  return cuda::w4a16_repack_awq(a.qweight.data(), a.qzeros.data(), a.scales.data(), a.in, a.out, 128);
}

// Index and values of the first difference, or "" when equal.
std::string first_difference(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    return "sizes " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0)
      return "element " + std::to_string(i) + ": " + std::to_string(got[i]) + " vs " +
             std::to_string(want[i]);
  return "";
}

// ---- device weights, reference -----------------------------------------------------------------

enum class Path {
  linear,
  gemv,
  gemm,
  gemm_tiled,
  gemm_tiled_32,
  gemm_wide,
  gemm_wide_64,
  gemm_wgmma,
  gemm_wgmma_32
};

// The GEMM paths that force one kernel (kernels/w4a16_gemm_paths.cuh) instead of the automatic choice.
struct ForcedGemm {
  Path path;
  cuda::W4A16GemmKernel kernel;
  const char* name;
};
constexpr ForcedGemm kForcedGemms[] = {
    {Path::gemm_tiled, cuda::W4A16GemmKernel::tiled, "w4a16_gemm_tiled"},
    {Path::gemm_tiled_32, cuda::W4A16GemmKernel::tiled_32, "w4a16_gemm_tiled_32"},
    {Path::gemm_wide, cuda::W4A16GemmKernel::wide, "w4a16_gemm_wide"},
    {Path::gemm_wide_64, cuda::W4A16GemmKernel::wide_64, "w4a16_gemm_wide_64"},
    {Path::gemm_wgmma, cuda::W4A16GemmKernel::wgmma, "w4a16_gemm_wgmma"},
    {Path::gemm_wgmma_32, cuda::W4A16GemmKernel::wgmma_32, "w4a16_gemm_wgmma_32"},
};
const ForcedGemm& forced_gemm(Path p) {
  for (const ForcedGemm& f : kForcedGemms)
    if (f.path == p) return f;
  throw std::logic_error("not a forced GEMM path");
}

const char* path_name(Path p) {
  switch (p) {
    case Path::linear:
      return "w4a16_linear";
    case Path::gemv:
      return "w4a16_gemv";
    case Path::gemm:
      return "w4a16_gemm";
    default:
      return forced_gemm(p).name;
  }
}

// How a kernel is launched: `splits` for the GEMMs' cluster split-K, `gemv` for the GEMV; zeros
// let the kernel choose.
struct Variant {
  int splits = 0;
  cuda::W4A16GemvConfig gemv;
  std::string label() const {
    const bool regs = gemv.kernel == cuda::W4A16GemvKernel::registers;
    return "splits=" + std::to_string(splits) + (regs ? " registers" : "") +
           " warps=" + std::to_string(gemv.warps) + " tiles=" + std::to_string(gemv.tiles) +
           " stages=" + std::to_string(gemv.stages) + " slices=" + std::to_string(gemv.slices);
  }
};

template <typename OutT>
void run_path(Path p, const half* x, const cuda::W4A16Weights& w, int n, OutT* y, const Variant& v) {
  switch (p) {
    case Path::linear:
      return cuda::w4a16_linear(x, w, n, y, nullptr);
    case Path::gemv:
      return cuda::w4a16_gemv(x, w, n, y, nullptr, v.gemv);
    case Path::gemm:
      return cuda::w4a16_gemm(x, w, n, y, nullptr, v.splits);
    default:
      return cuda::w4a16_gemm_with(x, w, n, y, nullptr, forced_gemm(p).kernel, v.splits);
  }
}

// One weight, several batch sizes: both output types through `path`, NMSE against the reference.
void check_weight(const std::string& name, const cuda::W4A16Host& hw, const std::vector<int>& batches,
                  Path path, const std::vector<Variant>& variants, uint32_t seed) {
  std::mt19937 rng(seed);
  DeviceW4A16 dw(hw);
  const int max_n = *std::max_element(batches.begin(), batches.end());
  const auto x = random_fp16_values(size_t(max_n) * hw.in, rng);
  TestBuffer<half> d_x(to_half(x));
  for (int n : batches) {
    const auto channels = channels_to_check(n, hw.in, hw.out, rng);
    const auto ref = reference(hw, x, n, channels);
    for (const Variant& v : variants) {
      TestBuffer<half> d_y(size_t(n) * hw.out);
      TestBuffer<float> d_yf(size_t(n) * hw.out);
      d_y.poison();
      d_yf.poison();
      run_path(path, d_x.get(), dw.view(), n, d_y.get(), v);
      run_path(path, d_x.get(), dw.view(), n, d_yf.get(), v);
      const std::string shape = name + " in=" + std::to_string(hw.in) + " out=" + std::to_string(hw.out) +
                                " n=" + std::to_string(n) + " " + v.label();
      const double e16 = checked_nmse(d_y.download(), n, hw.out, channels, ref);
      const double e32 = checked_nmse(d_yf.download(), n, hw.out, channels, ref);
      report_nmse(std::string(path_name(path)) + ".fp16", shape, e16);
      report_nmse(std::string(path_name(path)) + ".fp32", shape, e32);
      EXPECT_LE(e16, kW4A16Nmse) << shape;
      EXPECT_LE(e32, path == Path::gemv ? kW4A16GemvFp32Nmse : kW4A16Nmse) << shape;
    }
  }
}

struct LinearShape {
  const char* name;
  int in, out;
};
// Per-layer linears of internlm2-chat-1_8b (hidden 2048, 16+2*8 heads of 128, inter 8192) and
// internlm2-chat-7b (hidden 4096, 32+2*8 heads, inter 14336); w13 is w1 and w3 stacked.
const LinearShape k1_8b[] = {
    {"1_8b.wqkv", 2048, 4096}, {"1_8b.wo", 2048, 2048}, {"1_8b.w13", 2048, 16384}, {"1_8b.w2", 8192, 2048}};
const LinearShape k7b[] = {
    {"7b.wqkv", 4096, 6144}, {"7b.wo", 4096, 4096}, {"7b.w13", 4096, 28672}, {"7b.w2", 14336, 4096}};
// Small shapes that still reach every case: one strip, partial 128-row strips (out % 128 != 0),
// one to eleven groups (the tiny model's intermediate 1408), uneven splits.
const LinearShape kSmall[] = {
    {"small", 128, 16}, {"small", 384, 48}, {"small", 1408, 144}, {"small", 1024, 272}};

// ---- layout and import (CPU only) ----------------------------------------------------------------

TEST(KernelW4A16Layout, HandPackedAwqWordPinsTheNibbleOrder) {
  // Every qweight word 0x76543210 (nibble p holds p): column 8j + c holds [0,4,1,5,2,6,3,7][c].
  // Every qzeros word 0x01010101 (even nibbles 1): zeros [1,1,0,0,1,1,0,0][c]. Scales 0.5 + o/16.
  const int in = 128, out = 16;
  AwqTensors a{in,
               out,
               std::vector<int32_t>(size_t(in) * out / 8, 0x76543210),
               std::vector<int32_t>(out / 8, 0x01010101),
               {}};
  for (int o = 0; o < out; ++o) a.scales.push_back(fp16_bits(0.5f + o / 16.0f));
  const float q_minus_z[8] = {-1, 3, 1, 5, 1, 5, 3, 7};
  std::vector<float> expect(size_t(out) * in);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) expect[size_t(o) * in + i] = q_minus_z[o % 8] * (0.5f + o / 16.0f);
  EXPECT_EQ(first_difference(engine_awq_dequantize(a), expect), "") << "engine AWQ reference";
  EXPECT_EQ(first_difference(cuda::w4a16_dequantize(repack(a)), expect), "") << "w4a16 layout";
}

TEST(KernelW4A16Layout, RepackDequantizesExactlyLikeTheEngineAwqReference) {
  for (LinearShape s : {LinearShape{"", 128, 16}, LinearShape{"", 384, 48}, LinearShape{"", 1408, 512},
                        LinearShape{"", 2048, 4096}}) {
    std::mt19937 rng(s.in * 7 + s.out);
    const AwqTensors a = random_awq(s.in, s.out, rng);
    EXPECT_EQ(first_difference(cuda::w4a16_dequantize(repack(a)), engine_awq_dequantize(a)), "")
        << "in=" << s.in << " out=" << s.out;
  }
}

TEST(KernelW4A16Layout, CodeSlotsCoverEveryNibbleExactlyOnce) {
  const int in = 256, out = 48;
  std::vector<int> hits(size_t(cuda::w4a16_qweight_words(in, out)) * 8, 0);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      const cuda::W4A16CodeSlot s = cuda::w4a16_code_slot(in, o, i);
      ASSERT_TRUE(s.word >= 0 && s.word * 8 < int64_t(hits.size()) && s.shift % 4 == 0 && s.shift < 32);
      ++hits[size_t(s.word) * 8 + s.shift / 4];
    }
  EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), int64_t(hits.size()));
  std::vector<int> sz_hits(size_t(cuda::w4a16_scale_zero_halves(in, out)), 0);
  for (int o = 0; o < out; ++o)
    for (int g = 0; g < in / 128; ++g) {
      const int64_t at = cuda::w4a16_scale_index(in, o, g);
      ++sz_hits[size_t(at)], ++sz_hits[size_t(at + 1)];
    }
  EXPECT_EQ(std::count(sz_hits.begin(), sz_hits.end(), 1), int64_t(sz_hits.size()));
}

TEST(KernelW4A16Layout, RepackRejectsShapesTheLayoutCannotHold) {
  std::vector<int32_t> q(4096, 0), z(64, 0);
  std::vector<uint16_t> s(1024, 0);
  EXPECT_THROW(cuda::w4a16_repack_awq(q.data(), z.data(), s.data(), 192, 16, 128), std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_repack_awq(q.data(), z.data(), s.data(), 128, 24, 128), std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_repack_awq(q.data(), z.data(), s.data(), 128, 16, 64), std::invalid_argument);
}

// ---- device RTN quantizer --------------------------------------------------------------------------

// Rows at scales from 1e-3 to 10, plus groups that stress the rules: constant (the 1e-5 floor),
// all positive (zero clamps to 0), one outlier, values on exact half steps.
std::vector<uint16_t> quantizer_input(int in, int out, std::mt19937& rng) {
  std::vector<uint16_t> w(size_t(out) * in);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-3.0f, 1.0f);
  for (int o = 0; o < out; ++o) {
    const float row_scale = std::pow(10.0f, e(rng));
    for (int i = 0; i < in; ++i) w[size_t(o) * in + i] = fp16_bits(u(rng) * row_scale);
  }
  if (out >= 4 && in >= 128) {
    for (int i = 0; i < 128; ++i) w[size_t(0) * in + i] = fp16_bits(0.375f);                // constant group
    for (int i = 0; i < 128; ++i) w[size_t(1) * in + i] = fp16_bits(2.0f + i / 64.0f);      // all positive
    w[size_t(2) * in + 5] = fp16_bits(60000.0f);                                            // one outlier
    for (int i = 0; i < 128; ++i) w[size_t(3) * in + i] = fp16_bits(float(i % 16) - 7.5f);  // half steps
  }
  return w;
}

TEST(KernelW4A16Quantize, DeviceRtnMatchesTheCpuReferenceBitForBit) {
  RL_REQUIRE_GPU();
  for (LinearShape s : {LinearShape{"", 128, 16}, LinearShape{"", 1408, 512}, LinearShape{"", 2048, 4096}}) {
    SCOPED_TRACE("in=" + std::to_string(s.in) + " out=" + std::to_string(s.out));
    std::mt19937 rng(s.in + s.out);
    const auto w = quantizer_input(s.in, s.out, rng);
    const cuda::W4A16Host expect = cuda::w4a16_quantize_rtn_reference(w.data(), s.in, s.out);
    TestBuffer<uint16_t> d_w(w);
    TestBuffer<uint32_t> d_q(expect.qweight.size());
    TestBuffer<uint16_t> d_sz(expect.scale_zero.size());
    d_q.poison();
    d_sz.poison();
    cuda::w4a16_quantize_rtn(reinterpret_cast<const half*>(d_w.get()), s.in, s.out, d_q.get(),
                             reinterpret_cast<half*>(d_sz.get()), nullptr);
    const auto q = d_q.download();
    const auto sz = d_sz.download();
    EXPECT_EQ(std::mismatch(q.begin(), q.end(), expect.qweight.begin()).first - q.begin(), int64_t(q.size()))
        << "first differing code word";
    EXPECT_EQ(std::mismatch(sz.begin(), sz.end(), expect.scale_zero.begin()).first - sz.begin(),
              int64_t(sz.size()))
        << "first differing scale/zero half";
  }
}

// RTN then the kernels, against the fp16 weights before quantization: the error is the 4-bit
// rounding (NMSE ~ 1/(12*15^2/range^2) ~ 4e-3 for uniform weights), not a layout mix-up (~1).
TEST(KernelW4A16Quantize, RtnQuantizedLinearApproximatesTheFp16Linear) {
  RL_REQUIRE_GPU();
  const int in = 2048, out = 2048;
  std::mt19937 rng(11);
  const auto w = random_fp16_values(size_t(out) * in, rng, -0.05f, 0.05f);
  std::vector<uint16_t> wbits(w.size());
  for (size_t i = 0; i < w.size(); ++i) wbits[i] = fp16_bits(w[i]);
  TestBuffer<uint16_t> d_w(wbits);
  TestBuffer<uint32_t> d_q(size_t(cuda::w4a16_qweight_words(in, out)));
  TestBuffer<uint16_t> d_sz(size_t(cuda::w4a16_scale_zero_halves(in, out)));
  cuda::w4a16_quantize_rtn(reinterpret_cast<const half*>(d_w.get()), in, out, d_q.get(),
                           reinterpret_cast<half*>(d_sz.get()), nullptr);
  cuda::W4A16Weights wv{d_q.get(), reinterpret_cast<const half*>(d_sz.get()), in, out, 128};
  for (int n : {3, 33}) {
    const auto x = random_fp16_values(size_t(n) * in, rng);
    std::vector<float> expect(size_t(n) * out);
    ref::linear(x.data(), w.data(), n, in, out, expect.data());
    TestBuffer<half> d_x(to_half(x)), d_y(expect.size());
    d_y.poison();
    cuda::w4a16_linear(d_x.get(), wv, n, d_y.get(), nullptr);
    const double e = nmse(to_float(d_y.download()), expect);
    report_nmse("w4a16_rtn_vs_fp16", "in=2048 out=2048 n=" + std::to_string(n), e);
    EXPECT_GT(e, 1e-4);  // 4-bit weights cannot be this close: the comparison really ran
    EXPECT_LT(e, 1e-2);
  }
}

// ---- kernels ------------------------------------------------------------------------------------

// Every small shape through one cluster kernel, with automatic, single, uneven and maximal splits.
void check_small_shapes(Path path, const std::vector<int>& batches, uint32_t seed) {
  for (LinearShape s : kSmall) {
    std::mt19937 rng(seed);
    const auto hw = random_w4a16(s.in, s.out, rng);
    const int max_splits = std::min(8, s.in / 128);
    std::vector<Variant> variants = {{0, {}}, {1, {}}, {max_splits, {}}};
    if (max_splits >= 3) variants.push_back({3, {}});
    if (max_splits >= 8) {  // what clusters of 8 step down to (auto_splits)
      variants.push_back({7, {}});
      variants.push_back({6, {}});
    }
    check_weight(s.name, hw, batches, path, variants, seed++);
  }
}

// The streamed GEMV's layouts (each fits in shared memory up to n = 8): the chosen one; one warp over
// the whole input range; more warps than groups (idle warps); uneven splits; two strips per block
// (the last block half past the end when out/16 is odd); both ring depths.
const std::vector<Variant> kGemvVariants = {{0, {}},        {0, {1, 1, 4}}, {0, {16, 1, 4}},
                                            {0, {6, 1, 8}}, {0, {3, 2, 8}}, {0, {5, 2, 4}}};
// The same cases where x takes two mma N tiles (9..16 rows) and fewer warps fit in shared memory.
const std::vector<Variant> kGemvVariantsTwoNTiles = {{0, {}},        {0, {1, 1, 4}}, {0, {8, 1, 4}},
                                                     {0, {3, 1, 8}}, {0, {3, 2, 8}}, {0, {5, 2, 4}},
                                                     {0, {8, 2, 2}}, {0, {3, 1, 2}}};
// And where x takes four (17..32 rows: 8.7 KB of x a stage, so at most 5 warps of 4 stages).
const std::vector<Variant> kGemvVariantsFourNTiles = {{0, {}},        {0, {1, 1, 4}}, {0, {4, 1, 4}},
                                                      {0, {2, 1, 8}}, {0, {2, 2, 8}}, {0, {5, 2, 4}},
                                                      {0, {8, 1, 2}}, {0, {5, 2, 2}}};

// The register kernel's layouts for a weight of `groups` groups: the chosen one; one warp a block over
// the whole input; 8 strips a block (blocks past the last strip when out/16 < 8) with 4-group batches;
// several strips a block each split over s warps (uneven ranges where s does not divide the groups);
// every warp a slice of one strip.
std::vector<Variant> register_variants(int groups) {
  using cuda::W4A16GemvKernel;
  const int s = std::min(groups, 3), all = std::min(groups, 16);
  return {{0, {.kernel = W4A16GemvKernel::registers}},
          {0, {.warps = 1, .stages = 2, .kernel = W4A16GemvKernel::registers, .slices = 1}},
          {0, {.warps = 8, .stages = 4, .kernel = W4A16GemvKernel::registers, .slices = 1}},
          {0, {.warps = 2 * s, .stages = 2, .kernel = W4A16GemvKernel::registers, .slices = s}},
          {0, {.warps = all, .stages = 4, .kernel = W4A16GemvKernel::registers, .slices = all}}};
}

TEST(KernelW4A16Gemv, MatchesReferenceForEveryLayoutAndBothOutputTypes) {
  RL_REQUIRE_GPU();
  uint32_t seed = 1;
  for (LinearShape s : kSmall) {
    std::mt19937 rng(seed);
    const auto hw = random_w4a16(s.in, s.out, rng);
    check_weight(s.name, hw, {1, 2, 3, 7, 8}, Path::gemv, kGemvVariants, seed);
    check_weight(s.name, hw, {1, 2, 3, 7, 8}, Path::gemv, register_variants(s.in / 128), seed);
    check_weight(s.name, hw, {9, 15, 16}, Path::gemv, kGemvVariantsTwoNTiles, seed);
    check_weight(s.name, hw, {17, 31, 32}, Path::gemv, kGemvVariantsFourNTiles, seed++);
  }
}

// The two GEMV kernels at the layouts `ring` and `registers` alone ask for (choose_config's, the
// fused GEMVs') give the same bits (the register kernel splits each strip into as many input slices
// as the ring kernel has warps, and both add in the same order), so
// the fused GEMVs can take either one and stay bit-identical to the unfused chain.
TEST(KernelW4A16Gemv, RegisterAndRingKernelsGiveTheSameBits) {
  RL_REQUIRE_GPU();
  using cuda::W4A16GemvKernel;
  std::mt19937 rng(21);
  std::vector<LinearShape> shapes(std::begin(kSmall), std::end(kSmall));
  shapes.insert(shapes.end(), std::begin(k1_8b), std::end(k1_8b));
  shapes.insert(shapes.end(), std::begin(k7b), std::end(k7b));
  for (const LinearShape& s : shapes) {
    DeviceW4A16 dw(random_w4a16(s.in, s.out, rng));
    TestBuffer<half> x(to_half(random_fp16_values(size_t(8) * s.in, rng)));
    for (int n : {1, 2, 3, 8}) {
      if (n == 8 && s.in > 8192)
        continue;  // 8 rows of x (229 KB at 7b's w2) do not fit a block's shared memory
      TestBuffer<half> ring(size_t(n) * s.out), regs(size_t(n) * s.out);
      TestBuffer<float> ring32(size_t(n) * s.out), regs32(size_t(n) * s.out);
      for (auto* b : {&ring, &regs}) b->poison();
      for (auto* b : {&ring32, &regs32}) b->poison();
      cuda::w4a16_gemv(x.get(), dw.view(), n, ring.get(), nullptr, {.kernel = W4A16GemvKernel::ring});
      cuda::w4a16_gemv(x.get(), dw.view(), n, regs.get(), nullptr, {.kernel = W4A16GemvKernel::registers});
      cuda::w4a16_gemv(x.get(), dw.view(), n, ring32.get(), nullptr, {.kernel = W4A16GemvKernel::ring});
      cuda::w4a16_gemv(x.get(), dw.view(), n, regs32.get(), nullptr, {.kernel = W4A16GemvKernel::registers});
      const auto y = regs.download();
      const std::string what = std::string(s.name) + " in=" + std::to_string(s.in) +
                               " out=" + std::to_string(s.out) + " n=" + std::to_string(n);
      EXPECT_EQ(std::count_if(y.begin(), y.end(), is_poison), 0) << what << ": every output written";
      EXPECT_EQ(differing_bits(y, ring.download()), 0u) << what << " fp16";
      const auto y32 = regs32.download();  // two unwritten (poisoned) buffers would compare equal too
      EXPECT_EQ(std::count_if(y32.begin(), y32.end(), [](float v) { return !std::isfinite(v); }), 0)
          << what << ": every fp32 output written";
      EXPECT_EQ(differing_bits(y32, ring32.download()), 0u) << what << " fp32";
    }
  }
}

TEST(KernelW4A16Gemm, MatchesReferenceForAnyBatchAndSplit) {
  RL_REQUIRE_GPU();
  // n-tile edges of 16/32/64 and several n-tiles; small n through the GEMM too.
  check_small_shapes(Path::gemm, {1, 7, 9, 16, 17, 31, 33, 64, 65, 100, 129}, 100);
  // The tiled kernel forced where the automatic choice runs the wgmma kernel on Hopper.
  check_small_shapes(Path::gemm_tiled, {33, 64, 65, 100}, 120);
  // n-tiles of 32 past 32 rows (what two_tiles_of_32 picks on some model shapes at 33..64 rows,
  // depending on the GPU's resident clusters): two tiles, the second partial or whole, and three.
  check_small_shapes(Path::gemm_tiled_32, {33, 47, 64, 65}, 150);
}

// The tiled kernel's blocks on wgmma (Hopper only): every n-tile width, partial tiles, every split.
TEST(KernelW4A16Gemm, WgmmaKernelMatchesReferenceForAnyBatchAndSplit) {
  RL_REQUIRE_GPU();
  if (!cuda::w4a16_gemm_has_wgmma()) GTEST_SKIP() << "the wgmma kernel needs a compute capability 9.0 GPU";
  check_small_shapes(Path::gemm_wgmma, {1, 7, 9, 16, 17, 31, 33, 48, 64, 65, 100}, 300);
  check_small_shapes(Path::gemm_wgmma_32, {33, 47, 64, 65}, 310);
  std::mt19937 rng(301);
  for (LinearShape s : {k1_8b[0], k1_8b[1], k7b[1]})
    check_weight(s.name, random_w4a16(s.in, s.out, rng), {16, 48, 64}, Path::gemm_wgmma, {Variant{}}, 302);
}

// Which weights the wgmma kernel launches overlapped (no GPU needed): the measured rule, up to 20 MB
// of packed codes, takes every 1.8b weight and 7b's wqkv and wo, and leaves 7b's w13 and w2 (which made
// the B=48/64 steps slower overlapped) to plain launches.
TEST(KernelW4A16Gemm, OverlapsEvery1_8bWeightAnd7bAttentionWeights) {
  for (const LinearShape& s : k1_8b) EXPECT_TRUE(cuda::w4a16_gemm_wgmma_overlaps(s.in, s.out)) << s.name;
  for (int i = 0; i < 4; ++i)  // wqkv, wo, w13, w2
    EXPECT_EQ(cuda::w4a16_gemm_wgmma_overlaps(k7b[i].in, k7b[i].out), i < 2) << k7b[i].name;
}

// The wide kernels (256 x 128 and 256 x 64 blocks) forced, on every small shape (partial 256-row strips, 1 to
// 11 groups: fewer than the 4 pipeline stages too) and batches that end inside an n-tile, and on a
// last strip of one M tile (528 = 2 x 256 + 16), with automatic, single, uneven and maximal
// cluster splits; the automatic choice takes them only on large grids (W4A16ModelShapes).
TEST(KernelW4A16Gemm, WideKernelsMatchReferenceForAnyBatchAndSplit) {
  RL_REQUIRE_GPU();
  uint32_t seed = 200;
  for (LinearShape s : {kSmall[0], kSmall[1], kSmall[2], kSmall[3], LinearShape{"strips", 1024, 528}}) {
    std::mt19937 rng(seed);
    const auto hw = random_w4a16(s.in, s.out, rng);
    const int max_splits = std::min(8, s.in / 128);
    std::vector<Variant> variants = {{0, {}}, {1, {}}, {max_splits, {}}};
    if (max_splits >= 3) variants.push_back({3, {}});
    for (Path p : {Path::gemm_wide, Path::gemm_wide_64})
      check_weight(s.name, hw, {1, 9, 129, 257}, p, variants, seed++);
  }
}

TEST(KernelW4A16Linear, MatchesReferenceOnSanitizerSizedModelShapes) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(5);
  for (LinearShape s : {k1_8b[0], k1_8b[1]}) {
    const auto hw = random_w4a16(s.in, s.out, rng);
    // 47 and 64: on the H200, 1.8b wqkv runs them as two n-tiles of 32 (w4a16_gemm's
    // two_tiles_of_32), the second one partial at 47.
    check_weight(s.name, hw, {1, 7, 16, 47, 64}, Path::linear, {Variant{}}, 77);
  }
}

TEST(KernelW4A16Linear, SplitReductionIsDeterministic) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(9);
  const auto hw = random_w4a16(2048, 2048, rng);
  DeviceW4A16 dw(hw);
  const auto x = random_fp16_values(size_t(40) * 2048, rng);
  TestBuffer<half> d_x(to_half(x));
  for (int n : {5, 40}) {
    TestBuffer<float> a(size_t(n) * 2048), b(size_t(n) * 2048);
    a.poison();
    b.poison();
    cuda::w4a16_linear(d_x.get(), dw.view(), n, a.get(), nullptr);
    cuda::w4a16_linear(d_x.get(), dw.view(), n, b.get(), nullptr);
    const auto ha = a.download(), hb = b.download();
    EXPECT_EQ(std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(float)), 0) << "n=" << n;
  }
}

TEST(KernelW4A16Linear, RejectsBrokenShapeContracts) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(3);
  DeviceW4A16 dw(random_w4a16(256, 32, rng));
  TestBuffer<half> x(size_t(16) * 256 + 8), y(size_t(16) * 32);
  const cuda::W4A16Weights ok = dw.view();
  auto with = [&](auto edit) {
    cuda::W4A16Weights w = ok;
    edit(w);
    return w;
  };
  EXPECT_THROW(cuda::w4a16_gemv(x.get(), ok, cuda::kW4A16GemvMaxRows + 1, y.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_gemm(x.get(), ok, 16, y.get(), nullptr, 3), std::invalid_argument);  // 2 groups
  for (cuda::W4A16GemvConfig bad : {cuda::W4A16GemvConfig{17, 1, 4}, cuda::W4A16GemvConfig{8, 3, 4},
                                    cuda::W4A16GemvConfig{8, 1, 6}, cuda::W4A16GemvConfig{16, 2, 8}})
    EXPECT_THROW(cuda::w4a16_gemv(x.get(), ok, 8, y.get(), nullptr, bad), std::invalid_argument)
        << "warps=" << bad.warps << " tiles=" << bad.tiles << " stages=" << bad.stages;  // the last: smem
  {  // the register kernel: 9 rows; batch 3; slices that do not divide the warps or exceed the groups
    using cuda::W4A16GemvKernel;
    const cuda::W4A16GemvConfig regs{.kernel = W4A16GemvKernel::registers};
    EXPECT_THROW(cuda::w4a16_gemv(x.get(), ok, 9, y.get(), nullptr, regs), std::invalid_argument);
    for (cuda::W4A16GemvConfig bad : {cuda::W4A16GemvConfig{8, 0, 3, W4A16GemvKernel::registers, 1},
                                      cuda::W4A16GemvConfig{8, 0, 2, W4A16GemvKernel::registers, 3},
                                      cuda::W4A16GemvConfig{4, 0, 2, W4A16GemvKernel::registers, 4},
                                      cuda::W4A16GemvConfig{17, 0, 2, W4A16GemvKernel::registers, 1}})
      EXPECT_THROW(cuda::w4a16_gemv(x.get(), ok, 1, y.get(), nullptr, bad), std::invalid_argument)
          << "registers warps=" << bad.warps << " stages=" << bad.stages << " slices=" << bad.slices;
  }
  EXPECT_THROW(cuda::w4a16_gemm(x.get(), ok, -1, y.get(), nullptr), std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_gemm(x.get(), ok, 16, y.get() + 1, nullptr),
               std::invalid_argument);  // unaligned y
  EXPECT_THROW(cuda::w4a16_linear(x.get() + 1, ok, 2, y.get(), nullptr), std::invalid_argument);  // unaligned
  EXPECT_THROW(cuda::w4a16_linear(x.get(), with([](auto& w) { w.in = 192; }), 2, y.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_linear(x.get(), with([](auto& w) { w.out = 24; }), 2, y.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_linear(x.get(), with([](auto& w) { w.group = 64; }), 2, y.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(cuda::w4a16_linear(x.get(), with([](auto& w) { w.qweight = nullptr; }), 2, y.get(), nullptr),
               std::invalid_argument);
}

// Which rows and weights the GEMV takes (w4a16_use_gemv), with and without the wgmma GEMM beside it.
// Host logic: no GPU.
TEST(KernelW4A16Linear, GemvTakesTheRowsAndWeightsItWasMeasuredFasterOn) {
  const int wide = cuda::kW4A16GemvTwoTileMaxOut;
  const int four_in = cuda::kW4A16GemvFourTileMaxIn, four_out = cuda::kW4A16GemvFourTileMaxOut;
  for (bool wgmma : {false, true}) {
    SCOPED_TRACE(wgmma ? "beside the wgmma GEMM" : "beside the tiled GEMM");
    EXPECT_TRUE(cuda::w4a16_use_gemv(1, 8192, wide, wgmma) && cuda::w4a16_use_gemv(16, 8192, wide, wgmma));
    EXPECT_TRUE(cuda::w4a16_use_gemv(8, 8192, wide + 16, wgmma) &&
                !cuda::w4a16_use_gemv(9, 8192, wide + 16, wgmma));
    EXPECT_TRUE(cuda::w4a16_use_gemv(16, 14336, 4096, wgmma) &&
                !cuda::w4a16_use_gemv(17, 14336, 4096, wgmma));  // 7b w2
    EXPECT_TRUE(cuda::w4a16_use_gemv(32, 2048, 4096, wgmma) && cuda::w4a16_use_gemv(32, 4096, 4096, wgmma));
    EXPECT_FALSE(cuda::w4a16_use_gemv(17, four_in + 128, four_out, wgmma) ||
                 cuda::w4a16_use_gemv(17, four_in, four_out + 16, wgmma));
    EXPECT_FALSE(cuda::w4a16_use_gemv(cuda::kW4A16GemvMaxRows + 1, 128, 16, wgmma));
  }
  // 1.8b w2 (8192 inputs) at 17..32 rows: the GEMV beside the tiled GEMM, the wgmma GEMM on Hopper.
  EXPECT_TRUE(cuda::w4a16_use_gemv(cuda::kW4A16GemvMaxRows, four_in, four_out, false));
  EXPECT_TRUE(cuda::w4a16_use_gemv(17, 8192, 2048, false) && !cuda::w4a16_use_gemv(17, 8192, 2048, true));
  EXPECT_TRUE(cuda::w4a16_use_gemv(16, 8192, 2048, true));
}

// The wgmma kernel's n-tiles of 32 in clusters of 2 (w4a16_gemm_wgmma_pairs_of_32): on a 132-SM Hopper
// only the two model weights it was measured faster on, and only at 33..64 rows. Host logic: no GPU.
TEST(KernelW4A16Gemm, PairsOf32TakeOnlyWeightsThatFillOneWaveWithShortBlocks) {
  for (int n : {33, 48, 64}) {
    EXPECT_TRUE(cuda::w4a16_gemm_wgmma_pairs_of_32(n, 2048, 4096, 132)) << "1.8b wqkv at " << n;
    EXPECT_TRUE(cuda::w4a16_gemm_wgmma_pairs_of_32(n, 4096, 4096, 132)) << "7b wo at " << n;
  }
  EXPECT_FALSE(cuda::w4a16_gemm_wgmma_pairs_of_32(32, 2048, 4096, 132));
  EXPECT_FALSE(cuda::w4a16_gemm_wgmma_pairs_of_32(65, 2048, 4096, 132));
  EXPECT_FALSE(cuda::w4a16_gemm_wgmma_pairs_of_32(64, 2048, 4096, 114));  // 128 blocks: two waves
  const int others[][2] = {{2048, 2048}, {8192, 2048},  {2048, 16384},
                           {4096, 6144}, {14336, 4096}, {4096, 28672}};
  for (const auto& [in, out] : others)
    EXPECT_FALSE(cuda::w4a16_gemm_wgmma_pairs_of_32(64, in, out, 132)) << in << " x " << out;
}

// The wgmma kernel's measured splits (w4a16_gemm_wgmma_tuned_splits): only on the GPU they were measured
// on (132 SMs, 5120-bit bus: the H100 SXM), only at 17..32 rows, only on the three weights in the table.
// Host logic: no GPU. The launches themselves are checked against the reference by the model-shape tests
// below (31 rows).
TEST(KernelW4A16Gemm, TunedSplitsOnlyWhereMeasured) {
  for (int n : {17, 24, 32}) {
    EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(n, 2048, 16384, 132, 5120), 1) << "1.8b w13 at " << n;
    EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(n, 14336, 4096, 132, 5120), 7) << "7b w2 at " << n;
    EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(n, 4096, 4096, 132, 5120), 8) << "7b wo at " << n;
  }
  for (int n : {16, 33, 64})
    EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(n, 14336, 4096, 132, 5120), 0) << n;
  EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(24, 14336, 4096, 132, 6144), 0);  // H200: the rule
  EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(24, 14336, 4096, 114, 5120), 0);  // H100 PCIe
  EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(24, 4096, 6144, 132, 5120), 0);   // 7b wqkv: the rule wins
  EXPECT_EQ(cuda::w4a16_gemm_wgmma_tuned_splits(24, 4096, 14336, 132, 5120), 0);  // in and out swapped
}

// Spread launches (kernels/w4a16_device.cuh): held to k = ceil(blocks / SMs) blocks an SM only where the
// kernel would take more, and the shared memory asked (smem_holding_sm_to, kernels/device_common.cuh)
// keeps k + 1 out and lets k in. Host logic: no GPU.
TEST(KernelW4A16Gemm, SpreadLaunchesHoldTheFewestBlocksAnSmThatHoldTheGrid) {
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(96, 132, 2), 1);   // 1.8b w2 at 48 rows: 16 clusters of 6
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(128, 132, 3), 1);  // 1.8b w13 unsplit at 24 rows
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(256, 132, 3), 2);  // 1.8b w13 in clusters of 2 at 24 rows
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(256, 132, 2), 0);  // ... at 48 rows: two slots, two needed
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(133, 132, 2), 0);
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(600, 132, 8), 0);  // more than three an SM: left alone
  EXPECT_EQ(cuda::w4a16::spread_blocks_an_sm(0, 132, 2), 0);
  constexpr int kReserved = 1024, kH100 = 233472;  // an H100 block's reserve and SM's shared memory
  for (int k = 1; k <= 3; ++k) {
    const int smem = cuda::smem_holding_sm_to(k, kH100, kReserved);
    EXPECT_LE(k * (smem + kReserved), kH100) << k;
    EXPECT_GT((k + 1) * (smem + kReserved), kH100) << k;
  }
}

// Every linear of the two models at decode and prefill sizes, through the dispatching launcher.
void check_model(const LinearShape (&shapes)[4], uint32_t seed) {
  for (const LinearShape& s : shapes) {
    std::mt19937 rng(seed++);
    const auto hw = random_w4a16(s.in, s.out, rng);
    check_weight(s.name, hw, {1, 2, 7, 16, 31, 64, 256, 1001}, Path::linear, {Variant{}}, seed);
  }
}

TEST(W4A16ModelShapes, Internlm2_1_8bLinearsMatchReference) {
  RL_REQUIRE_GPU();
  check_model(k1_8b, 1000);
}

TEST(W4A16ModelShapes, Internlm2_7bLinearsMatchReference) {
  RL_REQUIRE_GPU();
  check_model(k7b, 2000);
}

// A 4-bit output head (`ridgeline quantize --quantize-head`): the 1.8b head (vocab 92544 outputs,
// hidden 2048 inputs) writing float32 logits (and fp16), at a decode row and a three-sequence
// prefill's last rows, through the engine's launcher (the GEMV at both) and through the GEMM.
TEST(W4A16ModelShapes, VocabularySizedOutputHeadMatchesReference) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(3000);
  const auto hw = random_w4a16(2048, 92544, rng);
  check_weight("1_8b.output", hw, {1, 3}, Path::linear, {Variant{}}, 3001);
  check_weight("1_8b.output", hw, {3, 16}, Path::gemm, {Variant{}}, 3002);
}

}  // namespace
}  // namespace ridgeline::test
