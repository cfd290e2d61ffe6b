#include "kernels/w4a16_repack.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include <cuda_fp16.h>

namespace ridgeline::cuda {
namespace {

void check_shape(const char* fn, int in, int out) {
  if (!w4a16_shape_ok(in, out))
    throw std::invalid_argument(std::string(fn) +
                                ": in must be a positive multiple of 128 and out of 16, got in=" +
                                std::to_string(in) + " out=" + std::to_string(out));
}

float fp16_bits_to_float(uint16_t bits) {
  __half_raw r;
  r.x = bits;
  return __half2float(half(r));
}
uint16_t half_bits(half h) {
  return __half_raw(h).x;
}

template <typename T>
T load(const void* base, int64_t index) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(base) + index * int64_t{sizeof(T)}, sizeof(T));
  return v;
}

// Runs body(mt0, mt1) over the 16-row strips [0, strips) on all cores. Strips own disjoint words of
// the layout, so the pieces never write the same memory.
template <typename Body>
void for_strips(int strips, Body&& body) {
  const int threads =
      std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, std::max(1, strips));
  if (threads == 1) return body(0, strips);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back(
        [&, t] { body(int(int64_t{strips} * t / threads), int(int64_t{strips} * (t + 1) / threads)); });
  for (auto& th : pool) th.join();
}

W4A16Host empty_layout(int in, int out) {
  W4A16Host w;
  w.in = in;
  w.out = out;
  w.qweight.assign(size_t(w4a16_qweight_words(in, out)), 0u);
  w.scale_zero.assign(size_t(w4a16_scale_zero_halves(in, out)), 0u);
  return w;
}

struct RtnParams {
  float s;  // the fp16 scale, widened
  float z;  // zero code 0..15
  uint16_t s_bits, z_bits;
};

// The device quantizer's operations (kernels/w4a16_quantize.cu), in the same order.
RtnParams rtn_params(float mn, float mx) {
  RtnParams p;
  const half s_h = __float2half_rn(std::fmax(mx - mn, 1e-5f) / 15.0f);
  p.s = __half2float(s_h);
  p.z = std::fmin(std::fmax(std::rint(-mn / p.s), 0.0f), 15.0f);
  p.s_bits = half_bits(s_h);
  p.z_bits = half_bits(__float2half_rn(p.z));
  return p;
}

uint32_t rtn_code(float v, const RtnParams& p) {
  return static_cast<uint32_t>(std::fmin(std::fmax(std::rint(v / p.s) + p.z, 0.0f), 15.0f));
}

}  // namespace

W4A16Host w4a16_repack_awq(const void* qweight, const void* qzeros, const void* scales, int in, int out,
                           int group) {
  const char* fn = "w4a16_repack_awq";
  if (group != kW4A16Group)
    throw std::invalid_argument(std::string(fn) + ": group size must be 128, got " + std::to_string(group));
  check_shape(fn, in, out);
  if (qweight == nullptr || qzeros == nullptr || scales == nullptr)
    throw std::invalid_argument(std::string(fn) + ": null tensor data");
  constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // nibble of output column 8j + c
  const int words = out / 8, groups = in / kW4A16Group;
  W4A16Host w = empty_layout(in, out);
  for_strips(out / 16, [&](int mt0, int mt1) {
    for (int mt = mt0; mt < mt1; ++mt) {
      for (int i = 0; i < in; ++i)
        for (int j = 2 * mt; j < 2 * mt + 2; ++j) {
          const uint32_t packed = load<uint32_t>(qweight, int64_t{i} * words + j);
          for (int c = 0; c < 8; ++c) {
            const W4A16CodeSlot slot = w4a16_code_slot(in, 8 * j + c, i);
            w.qweight[size_t(slot.word)] |= ((packed >> (4 * kAwqNibble[c])) & 0xfu) << slot.shift;
          }
        }
      for (int g = 0; g < groups; ++g)
        for (int j = 2 * mt; j < 2 * mt + 2; ++j) {
          const uint32_t packed = load<uint32_t>(qzeros, int64_t{g} * words + j);
          for (int c = 0; c < 8; ++c) {
            const int o = 8 * j + c;
            const int64_t at = w4a16_scale_index(in, o, g);
            w.scale_zero[size_t(at)] = load<uint16_t>(scales, int64_t{g} * out + o);
            w.scale_zero[size_t(at + 1)] =
                half_bits(__float2half_rn(static_cast<float>((packed >> (4 * kAwqNibble[c])) & 0xfu)));
          }
        }
    }
  });
  return w;
}

void w4a16_dequantize_rows(const W4A16Host& w, int o0, int rows, float* dst) {
  const char* fn = "w4a16_dequantize_rows";
  check_shape(fn, w.in, w.out);
  if (o0 < 0 || rows < 0 || o0 + rows > w.out ||
      w.qweight.size() != size_t(w4a16_qweight_words(w.in, w.out)) ||
      w.scale_zero.size() != size_t(w4a16_scale_zero_halves(w.in, w.out)))
    throw std::invalid_argument(std::string(fn) + ": rows " + std::to_string(o0) + ".." +
                                std::to_string(o0 + rows) + " outside a consistent " + std::to_string(w.out) +
                                "x" + std::to_string(w.in) + " weight");
  for (int r = 0; r < rows; ++r) {
    const int o = o0 + r;
    for (int g = 0; g < w.in / kW4A16Group; ++g) {
      const int64_t at = w4a16_scale_index(w.in, o, g);
      const float s = fp16_bits_to_float(w.scale_zero[size_t(at)]);
      const float z = fp16_bits_to_float(w.scale_zero[size_t(at + 1)]);
      for (int i = g * kW4A16Group; i < (g + 1) * kW4A16Group; ++i) {
        const W4A16CodeSlot slot = w4a16_code_slot(w.in, o, i);
        const float q = static_cast<float>((w.qweight[size_t(slot.word)] >> slot.shift) & 0xfu);
        dst[int64_t{r} * w.in + i] = (q - z) * s;
      }
    }
  }
}

std::vector<float> w4a16_dequantize(const W4A16Host& w) {
  std::vector<float> dst(size_t(w.out) * w.in);
  check_shape("w4a16_dequantize", w.in, w.out);
  for_strips(w.out / 16, [&](int mt0, int mt1) {
    w4a16_dequantize_rows(w, 16 * mt0, 16 * (mt1 - mt0), dst.data() + int64_t{16} * mt0 * w.in);
  });
  return dst;
}

W4A16Host w4a16_quantize_rtn_reference(const uint16_t* wbits, int in, int out) {
  const char* fn = "w4a16_quantize_rtn_reference";
  check_shape(fn, in, out);
  if (wbits == nullptr) throw std::invalid_argument(std::string(fn) + ": null weight");
  W4A16Host w = empty_layout(in, out);
  for_strips(out / 16, [&](int mt0, int mt1) {
    std::vector<float> row(kW4A16Group);
    for (int o = 16 * mt0; o < 16 * mt1; ++o)
      for (int g = 0; g < in / kW4A16Group; ++g) {
        float mn = FLT_MAX, mx = -FLT_MAX;
        for (int k = 0; k < kW4A16Group; ++k) {
          row[k] = fp16_bits_to_float(wbits[int64_t{o} * in + g * kW4A16Group + k]);
          mn = std::fmin(mn, row[k]);
          mx = std::fmax(mx, row[k]);
        }
        const RtnParams p = rtn_params(mn, mx);
        const int64_t at = w4a16_scale_index(in, o, g);
        w.scale_zero[size_t(at)] = p.s_bits;
        w.scale_zero[size_t(at + 1)] = p.z_bits;
        for (int k = 0; k < kW4A16Group; ++k) {
          const W4A16CodeSlot slot = w4a16_code_slot(in, o, g * kW4A16Group + k);
          w.qweight[size_t(slot.word)] |= rtn_code(row[k], p) << slot.shift;
        }
      }
  });
  return w;
}

}  // namespace ridgeline::cuda
