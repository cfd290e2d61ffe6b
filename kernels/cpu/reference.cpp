#include "kernels/cpu/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kernels/sampling_uniform.h"

namespace ridgeline::ref {

void embed(const float* table, int vocab, int dim, std::span<const int> ids, float* out) {
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= vocab)
      throw std::out_of_range("embed: token id " + std::to_string(ids[t]) + " is outside the vocabulary");
    std::memcpy(out + t * dim, table + int64_t(ids[t]) * dim, sizeof(float) * dim);
  }
}

void rmsnorm(const float* x, const float* w, int n, int dim, float eps, float* out) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + int64_t(r) * dim;
    float ss = 0.0f;
    for (int i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    float inv = 1.0f / std::sqrt(ss / dim + eps);
    for (int i = 0; i < dim; ++i) out[int64_t(r) * dim + i] = xr[i] * inv * w[i];
  }
}

void add_rmsnorm(float* residual, const float* x, const float* w, int n, int dim, float eps, float* out) {
  if (x)
    for (int64_t i = 0; i < int64_t(n) * dim; ++i) residual[i] += x[i];
  rmsnorm(residual, w, n, dim, eps, out);
}

void linear(const float* x, const float* W, int n, int in, int out, float* y) {
  // Four independent partial sums per dot product: the same float32 arithmetic on every run (fixed
  // order), and fast enough that the 1.8b preset decodes on a CPU in seconds rather than minutes.
  for (int r = 0; r < n; ++r) {
    const float* xr = x + int64_t(r) * in;
    for (int o = 0; o < out; ++o) {
      const float* wr = W + int64_t(o) * in;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int i = 0;
      for (; i + 4 <= in; i += 4) {
        s0 += xr[i] * wr[i];
        s1 += xr[i + 1] * wr[i + 1];
        s2 += xr[i + 2] * wr[i + 2];
        s3 += xr[i + 3] * wr[i + 3];
      }
      for (; i < in; ++i) s0 += xr[i] * wr[i];
      y[int64_t(r) * out + o] = (s0 + s1) + (s2 + s3);
    }
  }
}

void rope(float* x, int head_dim, int pos, double base, double pos_scale) {
  int half = head_dim / 2;
  double p = pos / pos_scale;
  for (int j = 0; j < half; ++j) {
    // Angles in double then rounded, as the float32 reference computes inv_freq and t*inv_freq.
    float inv_freq = static_cast<float>(1.0 / std::pow(base, (2.0 * j) / head_dim));
    float angle = static_cast<float>(p) * inv_freq;
    float c = std::cos(angle), s = std::sin(angle);
    float a = x[j], b = x[j + half];
    x[j] = a * c - b * s;
    x[j + half] = b * c + a * s;
  }
}

void split_qkv(const float* qkv, int n_heads, int n_kv_heads, int head_dim, float* q, float* k, float* v) {
  int g = n_heads / n_kv_heads;
  for (int h = 0; h < n_kv_heads; ++h) {
    const float* block = qkv + int64_t(h) * (g + 2) * head_dim;
    for (int j = 0; j < g; ++j)
      std::memcpy(q + int64_t(h * g + j) * head_dim, block + int64_t(j) * head_dim, sizeof(float) * head_dim);
    std::memcpy(k + int64_t(h) * head_dim, block + int64_t(g) * head_dim, sizeof(float) * head_dim);
    std::memcpy(v + int64_t(h) * head_dim, block + int64_t(g + 1) * head_dim, sizeof(float) * head_dim);
  }
}

void attention(const float* q, const float* K, const float* V, int64_t kv_stride, int ctx, int n_heads,
               int n_kv_heads, int head_dim, float* out) {
  int g = n_heads / n_kv_heads;
  float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> scores(ctx);
  for (int h = 0; h < n_heads; ++h) {
    int kvh = h / g;
    const float* qh = q + int64_t(h) * head_dim;
    float mx = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < ctx; ++t) {
      const float* kt = K + t * kv_stride + int64_t(kvh) * head_dim;
      float s = 0.0f;
      for (int i = 0; i < head_dim; ++i) s += qh[i] * kt[i];
      scores[t] = s * scale;
      mx = std::max(mx, scores[t]);
    }
    float sum = 0.0f;
    for (int t = 0; t < ctx; ++t) {
      scores[t] = std::exp(scores[t] - mx);
      sum += scores[t];
    }
    float* oh = out + int64_t(h) * head_dim;
    std::fill(oh, oh + head_dim, 0.0f);
    for (int t = 0; t < ctx; ++t) {
      const float* vt = V + t * kv_stride + int64_t(kvh) * head_dim;
      float p = scores[t] / sum;
      for (int i = 0; i < head_dim; ++i) oh[i] += p * vt[i];
    }
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float gt = gate[i];
    out[i] = gt / (1.0f + std::exp(-gt)) * up[i];
  }
}

KvScale quantize_kv(const float* x, int n, int bits, uint8_t* codes) {
  if (bits != 8 && bits != 4) throw std::invalid_argument("quantize_kv: bits must be 8 or 4");
  if (n <= 0) return {};
  const float mn = *std::min_element(x, x + n), mx = *std::max_element(x, x + n);
  const float qmax = static_cast<float>((1 << bits) - 1);
  KvScale s{round_to_fp16((mx - mn) / qmax), round_to_fp16(mn)};
  for (int i = 0; i < n; ++i) {
    // Round half to even (nearbyint in the default rounding mode), as the GPU's rintf.
    float q = s.scale > 0.0f ? std::nearbyint((x[i] - s.zero) / s.scale) : 0.0f;
    codes[i] = static_cast<uint8_t>(std::clamp(q, 0.0f, qmax));
  }
  return s;
}

void fake_quantize_kv(float* x, int n, int bits) {
  std::vector<uint8_t> codes(std::max(n, 0));
  const KvScale s = quantize_kv(x, n, bits, codes.data());
  for (int i = 0; i < n; ++i) x[i] = dequantize_kv(codes[i], s);
}

int argmax(const float* logits, int vocab) {
  int best = -1;
  for (int i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best]) best = i;
  }
  return best < 0 ? 0 : best;
}

int sample(const float* logits, int vocab, float temperature, int top_k, float top_p, double u) {
  if (temperature <= 0.0f) return argmax(logits, vocab);
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  int keep = (top_k > 0 && top_k < vocab) ? top_k : vocab;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
  order.resize(keep);
  // Softmax of the kept logits at this temperature, in double so that the CDF is exact enough
  // that CPU and GPU agree except when u lands within ~1e-7 of a boundary.
  double mx = logits[order[0]];
  std::vector<double> p(keep);
  double sum = 0.0;
  for (int i = 0; i < keep; ++i) {
    p[i] = std::exp((logits[order[i]] - mx) / temperature);
    sum += p[i];
  }
  int cut = keep;
  if (top_p < 1.0f) {
    double acc = 0.0;
    for (int i = 0; i < keep; ++i) {
      acc += p[i] / sum;
      if (acc >= top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  double kept_sum = 0.0;
  for (int i = 0; i < cut; ++i) kept_sum += p[i];
  double target = u * kept_sum, acc = 0.0;
  for (int i = 0; i < cut; ++i) {
    acc += p[i];
    if (target < acc) return order[i];
  }
  return order[cut - 1];
}

double sampling_uniform(uint64_t seed, uint64_t position) {
  return ridgeline::sampling_uniform(seed, position);
}

float round_to_fp16(float x) {
  if (!std::isfinite(x)) return x;
  float ax = std::fabs(x);
  if (ax >= 65520.0f) return std::copysign(std::numeric_limits<float>::infinity(), x);
  // fp16 keeps 11 significant bits for normals (>= 2^-14) and a fixed 2^-24 step below.
  int e;
  std::frexp(ax, &e);  // ax = m * 2^e, m in [0.5, 1)
  int exp2 = std::max(e - 11, -24);
  float step = std::ldexp(1.0f, exp2);
  return std::copysign(std::nearbyint(ax / step) * step, x);
}

}  // namespace ridgeline::ref
