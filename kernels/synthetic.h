// Deterministic synthetic weights, computed identically on the host and the device so that a
// preset's CPU and GPU weights are the same numbers: value = k * 2^-(9+shift) for a hashed
// k in [-512, 511]. Every value is exact in fp16 (11-bit significand, multiples of 2^-24), so the
// fp16 GPU weights and the float32 CPU weights agree bit for bit.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define RL_HD __host__ __device__
#else
#define RL_HD
#endif

namespace ridgeline {

RL_HD inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Tensor ids: 0 embeddings, 1 final norm, 2 output head, 16 + 8*layer + slot for layer tensors
// (slot: 0 attention_norm, 1 wqkv, 2 wo, 3 ffn_norm, 4 w1, 5 w3, 6 w2).
RL_HD inline uint64_t synthetic_tensor_id(int layer, int slot) {
  return 16ull + 8ull * layer + slot;
}

// Uniform in [-2^-shift, 2^-shift): std = 2^-shift / sqrt(3).
RL_HD inline float synthetic_value(uint64_t seed, uint64_t tensor_id, uint64_t index, int shift) {
  uint64_t h = splitmix64(seed ^ splitmix64(tensor_id * 0x100000001B3ull + index));
  int k = static_cast<int>(h >> 54) - 512;  // 10 bits -> [-512, 511]
  float scale = 1.0f / static_cast<float>(1u << (9 + shift));
  return static_cast<float>(k) * scale;
}

// Norm weights: 1 + a small hashed offset (multiples of 2^-6, exact in fp16), so a wrong row is visible.
RL_HD inline float synthetic_norm_value(uint64_t seed, uint64_t tensor_id, uint64_t index) {
  uint64_t h = splitmix64(seed ^ splitmix64(tensor_id * 0x100000001B3ull + index));
  return 1.0f + static_cast<float>(static_cast<int>(h >> 60) - 8) / 64.0f;
}

}  // namespace ridgeline
