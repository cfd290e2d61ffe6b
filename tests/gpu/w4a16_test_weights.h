// W4A16 weights for the GPU tests: a random weight in the device layout (kernels/w4a16.cuh) on the
// host, and its upload. Every code word random (all 16 codes in every position), scales in
// [0.002, 0.02] with full fp16 mantissas, zeros 0..15: outputs of a size where fp16 and float32
// rounding both show, and a layout mix-up gives an NMSE near 1.
#pragma once

#include <cstdint>
#include <random>

#include <cuda_fp16.h>

#include "kernels/w4a16.cuh"
#include "kernels/w4a16_repack.h"
#include "tests/gpu/gpu_test_util.h"

namespace ridgeline::test {

inline cuda::W4A16Host random_w4a16(int in, int out, std::mt19937& rng) {
  cuda::W4A16Host w;
  w.in = in, w.out = out;
  w.qweight.resize(size_t(cuda::w4a16_qweight_words(in, out)));
  w.scale_zero.resize(size_t(cuda::w4a16_scale_zero_halves(in, out)));
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<int> zero(0, 15);
  std::uniform_real_distribution<float> scale(0.002f, 0.02f);
  for (auto& v : w.qweight) v = bits(rng);
  for (size_t i = 0; i < w.scale_zero.size(); i += 2) {
    w.scale_zero[i] = __half_raw(__float2half_rn(scale(rng))).x;
    w.scale_zero[i + 1] = __half_raw(__float2half_rn(float(zero(rng)))).x;
  }
  return w;
}

// A host weight uploaded as it is; view() is what the kernels take.
struct DeviceW4A16 {
  TestBuffer<uint32_t> q;
  TestBuffer<uint16_t> sz;
  int in = 0, out = 0;
  explicit DeviceW4A16(const cuda::W4A16Host& h) : q(h.qweight), sz(h.scale_zero), in(h.in), out(h.out) {}
  cuda::W4A16Weights view() const {
    cuda::W4A16Weights w;
    w.qweight = q.get();
    w.scale_zero = reinterpret_cast<const half*>(sz.get());
    w.in = in;
    w.out = out;
    return w;
  }
};

}  // namespace ridgeline::test
