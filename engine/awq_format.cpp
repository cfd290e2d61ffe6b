#include "engine/awq_format.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "engine/host_weights.h"
#include "engine/parallel_for.h"

namespace ridgeline {

// Tensor bytes are read as little-endian words.
static_assert(std::endian::native == std::endian::little,
              "ridgeline reads safetensors on little-endian hosts");

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument(what);
}

[[noreturn]] void fail(const TensorView& t, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: tensor '{}' {}", t.file, t.name, what));
}

void check_geometry(int64_t out, int64_t in, int group_size, const char* what) {
  if (out <= 0 || in <= 0 || out % 8 != 0)
    invalid(
        fmt::format("{}: a [{}, {}] linear cannot be AWQ-packed (outputs must be a positive multiple of 8)",
                    what, out, in));
  if (group_size <= 0 || in % group_size != 0)
    invalid(fmt::format("{}: group size {} does not divide the {} inputs", what, group_size, in));
}

void check_size(size_t got, int64_t want, const char* what, const char* field) {
  if (static_cast<int64_t>(got) != want)
    invalid(fmt::format("{}: '{}' holds {} values, expected {}", what, field, got, want));
}

// Packs v(col) for the eight columns 8*j..8*j+7 of one row into a word.
template <typename V>
int32_t pack_word(V v, int64_t j) {
  uint32_t word = 0;
  for (int n = 0; n < 8; ++n) word |= static_cast<uint32_t>(v(8 * j + kAwqPackOrder[n])) << (4 * n);
  return static_cast<int32_t>(word);
}

int nibble(int32_t word, int64_t column) {
  return static_cast<int>((static_cast<uint32_t>(word) >> (4 * kAwqNibbleOf[column % 8])) & 0xfu);
}

void expect_rank(const TensorView& t, DType dtype, size_t rank, const char* what) {
  if (t.dtype != dtype || t.shape.size() != rank)
    fail(t, fmt::format("is {} {}, expected a rank-{} {} tensor ({})", to_string(t.dtype),
                        shape_string(t.shape), rank, to_string(dtype), what));
}

void expect_shape(const TensorView& t, const std::vector<int64_t>& shape, const TensorView& qweight) {
  if (t.shape != shape)
    fail(t, fmt::format("has shape {}, expected {} to match '{}'", shape_string(t.shape), shape_string(shape),
                        qweight.name));
}

template <typename T>
std::vector<T> copy_of(const TensorView& t) {
  std::vector<T> v(static_cast<size_t>(t.numel()));
  if (!v.empty()) std::memcpy(v.data(), t.data, v.size() * sizeof(T));  // views promise no alignment
  return v;
}

}  // namespace

AwqLinear awq_pack(const Int4Linear& q) {
  check_geometry(q.out, q.in, q.group_size, "awq_pack");
  const int64_t groups = q.groups(), words = q.out / 8;
  check_size(q.codes.size(), q.out * q.in, "awq_pack", "codes");
  check_size(q.zeros.size(), q.out * groups, "awq_pack", "zeros");
  check_size(q.scales.size(), q.out * groups, "awq_pack", "scales");
  auto over = [](uint8_t v) { return v > 15; };
  if (std::any_of(q.codes.begin(), q.codes.end(), over) || std::any_of(q.zeros.begin(), q.zeros.end(), over))
    invalid("awq_pack: a code or zero point is above 15 (4-bit values are 0..15)");

  AwqLinear p;
  p.out = q.out;
  p.in = q.in;
  p.group_size = q.group_size;
  p.qweight.resize(static_cast<size_t>(q.in * words));
  p.qzeros.resize(static_cast<size_t>(groups * words));
  p.scales.resize(static_cast<size_t>(groups * q.out));
  parallel_for(q.in, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < words; ++j)
        p.qweight[i * words + j] = pack_word([&](int64_t o) { return q.codes[o * q.in + i]; }, j);
  });
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t j = 0; j < words; ++j)
      p.qzeros[g * words + j] = pack_word([&](int64_t o) { return q.zeros[o * groups + g]; }, j);
    for (int64_t o = 0; o < q.out; ++o) p.scales[g * q.out + o] = q.scales[o * groups + g];
  }
  return p;
}

Int4Linear awq_unpack(const AwqLinear& p) {
  check_geometry(p.out, p.in, p.group_size, "awq_unpack");
  const int64_t groups = p.groups(), words = p.out / 8;
  check_size(p.qweight.size(), p.in * words, "awq_unpack", "qweight");
  check_size(p.qzeros.size(), groups * words, "awq_unpack", "qzeros");
  check_size(p.scales.size(), groups * p.out, "awq_unpack", "scales");
  Int4Linear q;
  q.out = p.out;
  q.in = p.in;
  q.group_size = p.group_size;
  q.codes.resize(static_cast<size_t>(p.out * p.in));
  q.zeros.resize(static_cast<size_t>(p.out * groups));
  q.scales.resize(static_cast<size_t>(p.out * groups));
  parallel_for(p.out, 8, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t j = o / 8;
      for (int64_t i = 0; i < p.in; ++i) q.codes[o * p.in + i] = uint8_t(nibble(p.qweight[i * words + j], o));
      for (int64_t g = 0; g < groups; ++g) {
        q.zeros[o * groups + g] = uint8_t(nibble(p.qzeros[g * words + j], o));
        q.scales[o * groups + g] = p.scales[g * p.out + o];
      }
    }
  });
  return q;
}

AwqLinear awq_linear_from_tensors(const TensorView& qweight, const TensorView& qzeros,
                                  const TensorView& scales, int group_size) {
  expect_rank(qweight, DType::i32, 2, "AWQ qweight [in, out/8]");
  expect_rank(qzeros, DType::i32, 2, "AWQ qzeros [in/group, out/8]");
  expect_rank(scales, DType::f16, 2, "AWQ scales [in/group, out]");
  const int64_t in = qweight.shape[0], words = qweight.shape[1];
  if (group_size <= 0 || in % group_size != 0)
    throw std::runtime_error(fmt::format("{}: tensor '{}': group size {} does not divide its {} input rows",
                                         qweight.file, qweight.name, group_size, in));
  const int64_t groups = in / group_size;
  expect_shape(qzeros, {groups, words}, qweight);
  expect_shape(scales, {groups, words * 8}, qweight);
  AwqLinear p;
  p.out = words * 8;
  p.in = in;
  p.group_size = group_size;
  p.qweight = copy_of<int32_t>(qweight);
  p.qzeros = copy_of<int32_t>(qzeros);
  p.scales = copy_of<uint16_t>(scales);
  return p;
}

HostTensor awq_dequantize(const AwqLinear& p) {
  check_geometry(p.out, p.in, p.group_size, "awq_dequantize");
  const int64_t in = p.in, out = p.out, words = out / 8, g = p.group_size;
  HostTensor w;
  w.shape = {out, in};
  w.data.resize(static_cast<size_t>(out * in));
  float* W = w.data.data();
  // Blocks of input rows, so that the writes along a row of W are contiguous while the block's packed
  // words stay in cache; threads take disjoint word columns (eight rows of W each).
  constexpr int64_t kBlock = 64;
  parallel_for(words, std::max<int64_t>(1, (int64_t{1} << 20) / (8 * in)), [&](int64_t j0, int64_t j1) {
    for (int64_t i0 = 0; i0 < in; i0 += kBlock) {
      const int64_t i1 = std::min(in, i0 + kBlock);
      for (int64_t j = j0; j < j1; ++j) {
        for (int c = 0; c < 8; ++c) {
          const int64_t o = 8 * j + c;
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t grp = i / g;
            const int q = nibble(p.qweight[i * words + j], c);
            const int z = nibble(p.qzeros[grp * words + j], c);
            W[o * in + i] = static_cast<float>(q - z) * fp16_to_float(p.scales[grp * out + o]);
          }
        }
      }
    }
  });
  return w;
}

HostTensor awq_dequantize(const Int4Linear& q) {
  if (q.group_size <= 0 || q.in % q.group_size != 0)
    invalid(fmt::format("awq_dequantize: group size {} does not divide the {} inputs", q.group_size, q.in));
  const int64_t groups = q.groups();
  check_size(q.codes.size(), q.out * q.in, "awq_dequantize", "codes");
  check_size(q.zeros.size(), q.out * groups, "awq_dequantize", "zeros");
  check_size(q.scales.size(), q.out * groups, "awq_dequantize", "scales");
  HostTensor w;
  w.shape = {q.out, q.in};
  w.data.resize(static_cast<size_t>(q.out * q.in));
  parallel_for(q.out, 8, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t i = 0; i < q.in; ++i) {
        const int64_t k = o * groups + i / q.group_size;
        w.data[o * q.in + i] =
            static_cast<float>(int(q.codes[o * q.in + i]) - int(q.zeros[k])) * fp16_to_float(q.scales[k]);
      }
  });
  return w;
}

HostTensor dequantize_awq(const TensorView& qweight, const TensorView& qzeros, const TensorView& scales,
                          int group_size) {
  return awq_dequantize(awq_linear_from_tensors(qweight, qzeros, scales, group_size));
}

}  // namespace ridgeline
