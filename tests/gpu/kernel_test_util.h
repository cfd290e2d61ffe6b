// Helpers of the kernel tests: seeded random data (never zeros), fp16 round trips, the NMSE gate,
// and a paged KV cache with a shuffled block table whose unused slots hold NaN, so a kernel that
// reads past a sequence's context or into another sequence's blocks produces NaN and fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <cuda_fp16.h>

#include "kernels/kernels.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace ridgeline::test {

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<half> to_half(const std::vector<float>& v) {
  std::vector<half> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = __float2half_rn(v[i]);
  return h;
}

inline std::vector<float> to_float(const std::vector<half>& h) {
  std::vector<float> v(h.size());
  for (size_t i = 0; i < h.size(); ++i) v[i] = __half2float(h[i]);
  return v;
}

// Random values already representable in fp16, so host reference and device see the same numbers.
inline std::vector<float> random_fp16_values(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  return to_float(to_half(random_floats(n, rng, lo, hi)));
}

// Σ(a-b)² / Σb²; +inf when the sizes differ or `a` holds a NaN/inf (an unwritten, poisoned element).
inline double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den > 0.0 ? num / den : num;
}

// One line per measured comparison, greppable from the GPU log ("[nmse] op shape value").
inline void report_nmse(const std::string& op, const std::string& shape, double value) {
  std::printf("[nmse] %-18s %-52s %.3e\n", op.c_str(), shape.c_str(), value);
}

inline uint16_t half_bits(half h) {
  return __half_raw(h).x;
}

// The 0xFFFF pattern TestBuffer::poison() leaves (an fp16 NaN).
inline bool is_poison(half h) {
  return half_bits(h) == 0xFFFFu;
}

// A paged KV cache on host and device: slot s holds up to capacity[s] tokens in blocks drawn in
// shuffled order from a pool with spare blocks nobody owns; table entries past a slot's capacity
// are -1, so a kernel that follows them faults under compute-sanitizer. Host pools mirror the
// device ones and hold NaN wherever nothing was written.
struct PagedCache {
  int slots = 0, n_kv = 0, head_dim = 0, block_size = 0, max_blocks_per_seq = 0, num_blocks = 0;
  std::vector<int> table;  // [slots, max_blocks_per_seq]
  std::vector<half> k, v;  // [num_blocks, n_kv, block_size, head_dim]
  TestBuffer<half> dk, dv;
  TestBuffer<int> dtable;

  PagedCache(const std::vector<int>& capacity, int n_kv_, int head_dim_, int block_size_, std::mt19937& rng)
      : slots(int(capacity.size())), n_kv(n_kv_), head_dim(head_dim_), block_size(block_size_) {
    std::vector<int> blocks(slots);
    for (int s = 0; s < slots; ++s) {
      blocks[s] = (capacity[s] + block_size - 1) / block_size;
      max_blocks_per_seq = std::max(max_blocks_per_seq, blocks[s]);
      num_blocks += blocks[s];
    }
    max_blocks_per_seq += 1;  // a spare column, never valid
    num_blocks += 3;
    std::vector<int> perm(num_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    table.assign(size_t(slots) * max_blocks_per_seq, -1);
    size_t next = 0;
    for (int s = 0; s < slots; ++s)
      for (int b = 0; b < blocks[s]; ++b) table[size_t(s) * max_blocks_per_seq + b] = perm[next++];
    size_t n = size_t(num_blocks) * n_kv * block_size * head_dim;
    half nan_h = half_from_bits(0xFFFFu);  // fp16 NaN
    k.assign(n, nan_h);
    v.assign(n, nan_h);
    dk = TestBuffer<half>(n);
    dv = TestBuffer<half>(n);
    dtable = TestBuffer<int>(table);
  }

  static half half_from_bits(uint16_t bits) {
    __half_raw r;
    r.x = bits;
    return half(r);
  }

  size_t index(int slot, int pos, int h, int d) const {
    int block = table[size_t(slot) * max_blocks_per_seq + pos / block_size];
    return ((size_t(block) * n_kv + h) * block_size + pos % block_size) * head_dim + d;
  }

  // Random K/V for positions [0, len) of `slot` (host side; call upload() after).
  void fill_random(int slot, int len, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int p = 0; p < len; ++p)
      for (int h = 0; h < n_kv; ++h)
        for (int d = 0; d < head_dim; ++d) {
          k[index(slot, p, h, d)] = __float2half_rn(dist(rng));
          v[index(slot, p, h, d)] = __float2half_rn(dist(rng));
        }
  }

  void upload() {
    dk.upload(k);
    dv.upload(v);
  }
  void download() {
    k = dk.download();
    v = dv.download();
  }

  // K and V of positions [0, len) of `slot` as float rows [len, n_kv*head_dim] (ref::attention's layout).
  void gather(int slot, int len, std::vector<float>& K, std::vector<float>& V) const {
    K.assign(size_t(len) * n_kv * head_dim, 0.0f);
    V.assign(K.size(), 0.0f);
    for (int p = 0; p < len; ++p)
      for (int h = 0; h < n_kv; ++h)
        for (int d = 0; d < head_dim; ++d) {
          size_t dst = (size_t(p) * n_kv + h) * head_dim + d;
          K[dst] = __half2float(k[index(slot, p, h, d)]);
          V[dst] = __half2float(v[index(slot, p, h, d)]);
        }
  }

  cuda::KvCacheView view() const {
    cuda::KvCacheView c;
    c.k = dk.get();
    c.v = dv.get();
    c.block_table = dtable.get();
    c.max_blocks_per_seq = max_blocks_per_seq;
    c.block_size = block_size;
    c.n_kv_heads = n_kv;
    c.head_dim = head_dim;
    return c;
  }
};

}  // namespace ridgeline::test
