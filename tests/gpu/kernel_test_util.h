// Helpers of the kernel tests: seeded random data (never zeros), fp16 round trips, the NMSE gate,
// and a paged KV cache (fp16, int8 or int4) with a shuffled block table whose unused slots hold NaN,
// so a kernel that reads past a sequence's context or into another sequence's blocks produces NaN
// and fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cuda_fp16.h>

#include "kernels/cpu/reference.h"
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

// The largest NMSE over consecutive rows of `row` elements (an attention output per (token, head)),
// or INFINITY as nmse() gives it: one NMSE over a whole batch is dominated by its largest rows, and
// a row that is all wrong (a long sequence's split path, say) can hide under a 5e-4 gate there.
inline double worst_row_nmse(const std::vector<float>& a, const std::vector<float>& b, size_t row) {
  if (a.size() != b.size() || a.empty() || row == 0 || a.size() % row != 0) return INFINITY;
  double worst = 0.0;
  for (size_t r = 0; r < a.size(); r += row) {
    const std::vector<float> x(a.begin() + r, a.begin() + r + row), y(b.begin() + r, b.begin() + r + row);
    worst = std::max(worst, nmse(x, y));
  }
  return worst;
}

// One line per measured comparison, greppable from the GPU log ("[nmse] op shape value").
inline void report_nmse(const std::string& op, const std::string& shape, double value) {
  std::printf("[nmse] %-18s %-52s %.3e\n", op.c_str(), shape.c_str(), value);
}

// Number of elements whose bits differ (all of both when the sizes differ).
template <typename T>
size_t differing_bits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return a.size() + b.size();
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return n;
}

inline uint16_t half_bits(half h) {
  return __half_raw(h).x;
}

// The 0xFFFF pattern TestBuffer::poison() leaves (an fp16 NaN).
inline bool is_poison(half h) {
  return half_bits(h) == 0xFFFFu;
}

// A paged KV cache on host and device, in any KV format (bits 16: fp16, 8 / 4: codes with an fp16
// (scale, zero) per token and head, the layout of kernels/kernels.cuh): slot s holds up to
// capacity[s] tokens in blocks drawn in shuffled order from a pool with spare blocks nobody owns;
// table entries past a slot's capacity are -1, so a kernel that follows them faults under
// compute-sanitizer. Host pools mirror the device ones byte for byte and hold 0xFF wherever
// nothing was written (fp16 NaN values and NaN scales; codes that still decode, so the tests also
// check which bytes were written).
struct PagedCache {
  int slots = 0, n_kv = 0, head_dim = 0, block_size = 0, max_blocks_per_seq = 0, num_blocks = 0, bits = 16;
  std::vector<int> table;     // [slots, max_blocks_per_seq]
  std::vector<uint8_t> k, v;  // num_blocks blocks of layout().block_bytes()
  TestBuffer<uint8_t> dk, dv;
  TestBuffer<int> dtable;

  PagedCache(const std::vector<int>& capacity, int n_kv_, int head_dim_, int block_size_, std::mt19937& rng,
             int bits_ = 16)
      : slots(int(capacity.size())), n_kv(n_kv_), head_dim(head_dim_), block_size(block_size_), bits(bits_) {
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
    const size_t n = size_t(num_blocks) * layout().block_bytes();
    k.assign(n, 0xFF);
    v.assign(n, 0xFF);
    dk = TestBuffer<uint8_t>(n);
    dv = TestBuffer<uint8_t>(n);
    dtable = TestBuffer<int>(table);
  }

  static half half_from_bits(uint16_t bits) {
    __half_raw r;
    r.x = bits;
    return half(r);
  }

  // The view without pointers: the layout arithmetic of kernels/kernels.cuh, on the host.
  cuda::KvCacheView layout() const {
    cuda::KvCacheView c;
    c.max_blocks_per_seq = max_blocks_per_seq;
    c.block_size = block_size;
    c.n_kv_heads = n_kv;
    c.head_dim = head_dim;
    c.bits = bits;
    return c;
  }

  size_t block_base(int slot, int pos) const {
    const int block = table[size_t(slot) * max_blocks_per_seq + pos / block_size];
    return size_t(block) * layout().block_bytes();
  }
  // Byte of the fp16 value (bits 16) or of the byte holding the code (int8/int4) of dim d.
  size_t value_byte(int slot, int pos, int h, int d) const {
    const cuda::KvCacheView c = layout();
    const int sl = pos % block_size;
    size_t unit = block_base(slot, pos) + c.unit_offset(h, sl, d / 8) + (sl % c.tokens_per_unit()) * bits;
    return unit + size_t(d % 8) * bits / 8;
  }
  size_t scale_byte(int slot, int pos, int h) const {
    return block_base(slot, pos) + layout().scale_offset(h, pos % block_size);
  }

  // int8/int4: the stored code of dim d, and the stored (scale, zero).
  int code(const std::vector<uint8_t>& pool, int slot, int pos, int h, int d) const {
    const uint8_t b = pool[value_byte(slot, pos, h, d)];
    return bits == 8 ? b : (d % 2 == 0 ? b & 0xF : b >> 4);
  }
  std::pair<uint16_t, uint16_t> scale_bits(const std::vector<uint8_t>& pool, int slot, int pos, int h) const {
    uint16_t sz[2];
    std::memcpy(sz, pool.data() + scale_byte(slot, pos, h), 4);
    return {sz[0], sz[1]};
  }
  // What a reader sees: the fp16 value, or code * scale + zero.
  float value(const std::vector<uint8_t>& pool, int slot, int pos, int h, int d) const {
    if (bits == 16) {
      uint16_t raw;
      std::memcpy(&raw, pool.data() + value_byte(slot, pos, h, d), 2);
      return __half2float(half_from_bits(raw));
    }
    auto [s, z] = scale_bits(pool, slot, pos, h);
    return ref::dequantize_kv(uint8_t(code(pool, slot, pos, h, d)),
                              {__half2float(half_from_bits(s)), __half2float(half_from_bits(z))});
  }

  // Stores one (token, head) row of head_dim values as the cache's format holds it (fp16, or
  // ref::quantize_kv's codes and scale).
  void write_row(std::vector<uint8_t>& pool, int slot, int pos, int h, const float* x) const {
    if (bits == 16) {
      for (int d = 0; d < head_dim; ++d) {
        const uint16_t raw = half_bits(__float2half_rn(x[d]));
        std::memcpy(pool.data() + value_byte(slot, pos, h, d), &raw, 2);
      }
      return;
    }
    std::vector<uint8_t> codes(head_dim);
    const ref::KvScale s = ref::quantize_kv(x, head_dim, bits, codes.data());
    for (int d = 0; d < head_dim; ++d) {
      uint8_t& b = pool[value_byte(slot, pos, h, d)];
      if (bits == 8)
        b = codes[d];
      else if (d % 2 == 0)
        b = uint8_t((b & 0xF0) | codes[d]);
      else
        b = uint8_t((b & 0x0F) | (codes[d] << 4));
    }
    const uint16_t sz[2] = {half_bits(__float2half_rn(s.scale)), half_bits(__float2half_rn(s.zero))};
    std::memcpy(pool.data() + scale_byte(slot, pos, h), sz, 4);
  }

  // Random K/V rows (fp16 values in [-1, 1), quantized for int8/int4) for positions [0, len) of
  // `slot` (host side; call upload() after). The same draws for every format, so caches of one
  // seed and capacity in two formats hold the same rows.
  void fill_random(int slot, int len, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> kr(head_dim), vr(head_dim);
    for (int p = 0; p < len; ++p)
      for (int h = 0; h < n_kv; ++h) {
        for (int d = 0; d < head_dim; ++d) {
          kr[d] = __half2float(__float2half_rn(dist(rng)));
          vr[d] = __half2float(__float2half_rn(dist(rng)));
        }
        write_row(k, slot, p, h, kr.data());
        write_row(v, slot, p, h, vr.data());
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

  // K and V of positions [0, len) of `slot` as float rows [len, n_kv*head_dim] (ref::attention's
  // layout), dequantized as the kernels read them.
  void gather(int slot, int len, std::vector<float>& K, std::vector<float>& V) const {
    K.assign(size_t(len) * n_kv * head_dim, 0.0f);
    V.assign(K.size(), 0.0f);
    for (int p = 0; p < len; ++p)
      for (int h = 0; h < n_kv; ++h)
        for (int d = 0; d < head_dim; ++d) {
          size_t dst = (size_t(p) * n_kv + h) * head_dim + d;
          K[dst] = value(k, slot, p, h, d);
          V[dst] = value(v, slot, p, h, d);
        }
  }

  cuda::KvCacheView view() const {
    cuda::KvCacheView c = layout();
    c.k = dk.get();
    c.v = dv.get();
    c.block_table = dtable.get();
    return c;
  }
};

// "fp16" / "int8" / "int4" for test names and log lines.
// One decode layer's shapes for the fused-GEMV chain tests (KernelGemvFused, KernelW4A16GemvFused):
// the residual width, wo's input, a normed GEMV's outputs (wqkv-like), the intermediate size.
struct ChainShape {
  int hidden, attn, out, inter;
};
// What both chains start from at n rows: the float32 residual (values fp16 cannot hold), the
// attention output and the norm weights (fp16 values), a label for messages, and the generator the
// test draws its weights from next.
struct ChainInputs {
  ChainShape sh;
  std::string shape;
  std::mt19937 rng;
  std::vector<float> residual, attn, norm_w;
};
inline ChainInputs chain_inputs(const ChainShape& sh, int n) {
  ChainInputs in;
  in.sh = sh;
  in.shape = "hidden=" + std::to_string(sh.hidden) + " out=" + std::to_string(sh.out) +
             " inter=" + std::to_string(sh.inter) + " tokens=" + std::to_string(n);
  in.rng.seed(unsigned(sh.hidden + 3 * sh.out + n));
  in.residual = random_floats(size_t(n) * sh.hidden, in.rng, -3.0f, 3.0f);
  in.attn = random_fp16_values(size_t(n) * sh.attn, in.rng);
  in.norm_w = random_fp16_values(size_t(sh.hidden), in.rng, 0.5f, 1.5f);
  return in;
}

// body(n, inputs) for every shape at n = 1 and 2 rows.
template <size_t N, class F>
void for_each_chain(const ChainShape (&shapes)[N], F&& body) {
  for (const ChainShape& sh : shapes)
    for (int n : {1, 2}) {
      ChainInputs in = chain_inputs(sh, n);
      body(n, in);
    }
}

// The CPU reference of a chain's normed output from its inputs and float weights Wo [hidden, attn]
// and Wn [out, hidden]: residual += fp16(attn Wo^T), x = fp16(rmsnorm(residual) * norm_w), x Wn^T.
inline std::vector<float> chain_reference(int n, const ChainInputs& in, const std::vector<float>& wo,
                                          const std::vector<float>& wn, float eps) {
  const auto [H, K, O, I] = in.sh;
  std::vector<float> proj(size_t(n) * H), r = in.residual, x(size_t(n) * H), y(size_t(n) * O);
  ref::linear(in.attn.data(), wo.data(), n, K, H, proj.data());
  proj = to_float(to_half(proj));
  ref::add_rmsnorm(r.data(), proj.data(), in.norm_w.data(), n, H, eps, x.data());
  x = to_float(to_half(x));
  ref::linear(x.data(), wn.data(), n, H, O, y.data());
  return y;
}

inline std::string kv_name(int bits) {
  return bits == 16 ? "fp16" : bits == 8 ? "int8" : "int4";
}

}  // namespace ridgeline::test
