// The AWQ "gemm" packing (engine/awq_format.h): a hand-packed example pins the nibble order, and pack,
// unpack and dequantize agree with each other and with the formula bit for bit.
#include "engine/awq_format.h"

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/host_weights.h"

namespace ridgeline {
namespace {

using ::testing::HasSubstr;

// 8 outputs x 8 inputs, one group of 8: code[o][i] = i + o, zero[o] = 15 - o, scale[o] = 2^-o.
Int4Linear eight_by_eight() {
  Int4Linear q;
  q.out = 8;
  q.in = 8;
  q.group_size = 8;
  for (int o = 0; o < 8; ++o) {
    for (int i = 0; i < 8; ++i) q.codes.push_back(uint8_t(i + o));
    q.zeros.push_back(uint8_t(15 - o));
    q.scales.push_back(float_to_fp16(1.0f / float(1 << o)));
  }
  return q;
}

TEST(AwqFormat, PacksAHandPacked8x8ExampleInAutoAwqNibbleOrder) {
  // Written out by hand from the README: nibble n of a word (bits 4n..4n+3) holds output column
  // [0,2,4,6,1,3,5,7][n]. Input row i has codes i+0..i+7 along the outputs, so nibbles n0..n7 hold
  // i+0, i+2, i+4, i+6, i+1, i+3, i+5, i+7; printed high nibble first, row 0 is 0x75316420.
  const uint32_t rows[8] = {0x75316420u, 0x86427531u, 0x97538642u, 0xA8649753u,
                            0xB975A864u, 0xCA86B975u, 0xDB97CA86u, 0xECA8DB97u};
  // zeros 15..8 along the outputs: nibbles hold 15, 13, 11, 9, 14, 12, 10, 8.
  const uint32_t zeros = 0x8ACE9BDFu;

  const AwqLinear p = awq_pack(eight_by_eight());
  ASSERT_EQ(p.qweight.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(static_cast<uint32_t>(p.qweight[i]), rows[i]) << "input row " << i;
  ASSERT_EQ(p.qzeros.size(), 1u);
  EXPECT_EQ(static_cast<uint32_t>(p.qzeros[0]), zeros);
  // scales are stored [groups, out]: one row here, output o's scale at o.
  for (int o = 0; o < 8; ++o) EXPECT_EQ(fp16_to_float(p.scales[o]), 1.0f / float(1 << o));

  // Dequantized: W[o][i] = (i + o - (15 - o)) * 2^-o, exactly.
  const HostTensor W = awq_dequantize(p);
  ASSERT_EQ(W.shape, (std::vector<int64_t>{8, 8}));
  for (int o = 0; o < 8; ++o)
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(W.data[o * 8 + i], float(i + o - (15 - o)) / float(1 << o)) << "o=" << o << " i=" << i;
}

TEST(AwqFormat, UnpackInvertsPackAndDequantizationAgreesBitForBit) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> nibble(0, 15);
  std::uniform_real_distribution<float> scale(1e-3f, 2.0f);
  Int4Linear q;
  q.out = 24;
  q.in = 384;
  q.group_size = 128;
  for (int64_t k = 0; k < q.out * q.in; ++k) q.codes.push_back(uint8_t(nibble(rng)));
  for (int64_t k = 0; k < q.out * q.groups(); ++k) {
    q.zeros.push_back(uint8_t(nibble(rng)));
    q.scales.push_back(float_to_fp16(scale(rng)));
  }
  const AwqLinear p = awq_pack(q);
  EXPECT_EQ(p.qweight.size(), size_t(384 * 3));
  EXPECT_EQ(p.qzeros.size(), size_t(3 * 3));
  EXPECT_EQ(p.scales.size(), size_t(3 * 24));
  const Int4Linear u = awq_unpack(p);
  EXPECT_EQ(u.codes, q.codes);
  EXPECT_EQ(u.zeros, q.zeros);
  EXPECT_EQ(u.scales, q.scales);

  const HostTensor a = awq_dequantize(p), b = awq_dequantize(q);
  ASSERT_EQ(a.data.size(), size_t(q.out * q.in));
  for (int64_t o = 0; o < q.out; ++o)
    for (int64_t i = 0; i < q.in; ++i) {
      const int64_t k = o * q.groups() + i / 128;
      const float want = float(int(q.codes[o * q.in + i]) - int(q.zeros[k])) * fp16_to_float(q.scales[k]);
      ASSERT_EQ(a.data[o * q.in + i], want);
      ASSERT_EQ(b.data[o * q.in + i], want);
    }
}

TEST(AwqFormat, ReadsTheThreeTensorsOfACheckpointAndNamesAMismatch) {
  const AwqLinear p = awq_pack(eight_by_eight());
  auto view = [](const char* name, DType d, std::vector<int64_t> shape, const auto& v) {
    return TensorView{name,  d, shape, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0]),
                      "m.st"};
  };
  const AwqLinear r = awq_linear_from_tensors(view("x.qweight", DType::i32, {8, 1}, p.qweight),
                                              view("x.qzeros", DType::i32, {1, 1}, p.qzeros),
                                              view("x.scales", DType::f16, {1, 8}, p.scales), 8);
  EXPECT_EQ(r.qweight, p.qweight);
  EXPECT_EQ(r.qzeros, p.qzeros);
  EXPECT_EQ(r.scales, p.scales);
  try {
    awq_linear_from_tensors(view("x.qweight", DType::i32, {8, 1}, p.qweight),
                            view("x.qzeros", DType::i32, {1, 1}, p.qzeros),
                            view("x.scales", DType::f16, {1, 8}, p.scales), 3);
    FAIL() << "group 3 does not divide 8 inputs";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("m.st: tensor 'x.qweight': group size 3 does not divide its 8 input rows"));
  }
}

TEST(AwqFormat, RefusesValuesAbove15AndShapesThatCannotPack) {
  Int4Linear q = eight_by_eight();
  q.codes[5] = 16;
  EXPECT_THROW(awq_pack(q), std::invalid_argument);
  q = eight_by_eight();
  q.out = 7;
  EXPECT_THROW(awq_pack(q), std::invalid_argument);  // outputs pack eight to a word
  q = eight_by_eight();
  q.group_size = 3;
  EXPECT_THROW(awq_pack(q), std::invalid_argument);
  q = eight_by_eight();
  q.scales.pop_back();
  EXPECT_THROW(awq_pack(q), std::invalid_argument);
}

}  // namespace
}  // namespace ridgeline
