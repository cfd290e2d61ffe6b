#include "engine/quantize_awq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/host_weights.h"
#include "engine/parallel_for.h"
#include "engine/quantize_rtn.h"
#include "kernels/cpu/reference.h"

namespace ridgeline {
namespace {

// y[n, out] = x[n, in] W^T for W [out, in]. Four rows of x share each pass over a row of W (W is read
// n/4 times rather than n times); eight partial sums per dot product let the compiler use vector
// registers. Each value depends only on its row and column, so the split over threads does not
// change the result.
void matmul_nt(const float* x, int64_t n, int64_t in, const float* W, int64_t out, float* y) {
  constexpr int64_t kRows = 4, kLanes = 8;
  const int64_t blocks = (n + kRows - 1) / kRows;
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRows, nr = std::min(kRows, n - r0);
      for (int64_t o = 0; o < out; ++o) {
        const float* w = W + o * in;
        float acc[kRows][kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= in; i += kLanes)
          for (int64_t r = 0; r < nr; ++r) {
            const float* xr = x + (r0 + r) * in + i;
            for (int64_t k = 0; k < kLanes; ++k) acc[r][k] += xr[k] * w[i + k];
          }
        for (int64_t r = 0; r < nr; ++r) {
          float s = 0;
          for (int64_t k = 0; k < kLanes; ++k) s += acc[r][k];
          for (int64_t t = i; t < in; ++t) s += x[(r0 + r) * in + t] * w[t];
          y[(r0 + r) * out + o] = s;
        }
      }
    }
  });
}

std::vector<float> matmul_nt(const std::vector<float>& x, int64_t n, const HostTensor& W) {
  std::vector<float> y(static_cast<size_t>(n * W.shape[0]));
  matmul_nt(x.data(), n, W.shape[1], W.data.data(), W.shape[0], y.data());
  return y;
}

std::vector<float> rmsnorm_rows(const std::vector<float>& x, int64_t rows, const HostTensor& w, float eps) {
  const int dim = static_cast<int>(w.numel());
  std::vector<float> y(x.size());
  parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    ref::rmsnorm(x.data() + r0 * dim, w.data.data(), static_cast<int>(r1 - r0), dim, eps,
                 y.data() + r0 * dim);
  });
  return y;
}

std::vector<double> mean_abs(const std::vector<float>& x, int64_t rows, int64_t in) {
  return awq_mean_abs(x.data(), rows, in);
}

// The search rows of x [rows, in] (awq_search_rows).
std::vector<float> sample_rows(const std::vector<float>& x, int64_t rows, int64_t in, int64_t most,
                               int64_t* taken) {
  const std::vector<int64_t> at = awq_search_rows(rows, most);
  const int64_t n = static_cast<int64_t>(at.size());
  std::vector<float> out(static_cast<size_t>(n * in));
  for (int64_t k = 0; k < n; ++k) std::memcpy(&out[k * in], &x[at[k] * in], sizeof(float) * in);
  *taken = n;
  return out;
}

// sum over rows and outputs of (x (W - Q(W diag(s)) diag(1/s))^T)^2: the output error the group's
// linear makes on the search rows once scaled by s and rounded.
double scaled_rtn_error(const HostTensor& W, const std::vector<float>& s, const std::vector<float>& xs,
                        int64_t rows, int group_size) {
  const int64_t out = W.shape[0], in = W.shape[1];
  std::vector<float> diff(W.data.size());
  parallel_for(out, 16, [&](int64_t o0, int64_t o1) {
    std::vector<float> scaled(in), q(in);
    for (int64_t o = o0; o < o1; ++o) {
      const float* w = W.data.data() + o * in;
      for (int64_t i = 0; i < in; ++i) scaled[i] = w[i] * s[i];
      rtn_fake_quantize_row(scaled.data(), in, group_size, q.data());
      for (int64_t i = 0; i < in; ++i) diff[o * in + i] = w[i] - q[i] / s[i];
    }
  });
  std::vector<float> y(static_cast<size_t>(rows * out));
  matmul_nt(xs.data(), rows, in, diff.data(), out, y.data());
  double err = 0;  // in row order: the same sum on every machine
  for (float v : y) err += double(v) * v;
  return err;
}

using Search = AwqSearch;

// Step 2 of the header comment for linears sharing an input with statistics `stats` (mean |x| per
// input channel) and search rows `xs`.
Search search_scales(const std::vector<double>& stats, const std::vector<const HostTensor*>& linears,
                     const std::vector<float>& xs, int64_t rows, const AwqOptions& o) {
  std::vector<AwqCandidate> candidates = awq_candidates(stats, o);
  std::vector<double> errors;
  for (const AwqCandidate& k : candidates) {
    double err = 0;
    for (const HostTensor* W : linears) err += scaled_rtn_error(*W, k.scales, xs, rows, o.group_size);
    errors.push_back(err);
  }
  return awq_pick(std::move(candidates), errors, o);
}

// norm /= s as stored (fp16); returns per channel the factor the following linears' columns take,
// norm / stored, so that W' diag(norm') equals W diag(norm) although norm' was rounded. A zero norm
// channel (dead) keeps its weights.
std::vector<float> fold_into_norm(HostTensor& norm, const std::vector<float>& s) {
  std::vector<float> f(s.size(), 1.0f);
  for (size_t i = 0; i < s.size(); ++i) {
    const float n = norm.data[i];
    const float stored = ref::round_to_fp16(n / s[i]);
    if (n == 0 || stored == 0 || !std::isfinite(stored)) continue;
    norm.data[i] = stored;
    f[i] = n / stored;
  }
  return f;
}

// Rows split over the cores: each element is one multiplication or division whatever the split.
void scale_columns(HostTensor& W, const std::vector<float>& f) {
  const int64_t in = W.shape[1];
  float* d = W.data.data();
  parallel_for(W.shape[0], 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t i = 0; i < in; ++i) d[o * in + i] *= f[i];
  });
}

void divide_row(HostTensor& W, int64_t row, float s) {
  const int64_t in = W.shape[1];
  for (int64_t i = 0; i < in; ++i) W.data[row * in + i] /= s;
}

AwqChoice choice(const char* group, const Search& s, int64_t rows) {
  const double n = static_cast<double>(std::max<int64_t>(rows, 1));
  return {group, s.alpha, s.error_rtn / n, s.error_best / n};
}

}  // namespace

int64_t Calibration::rows() const {
  int64_t n = 0;
  for (int l : lengths) n += l;
  return n;
}

Calibration start_calibration(const HostTensor& tok_embeddings,
                              const std::vector<std::vector<int>>& sequences) {
  Calibration c;
  const int vocab = static_cast<int>(tok_embeddings.shape[0]),
            dim = static_cast<int>(tok_embeddings.shape[1]);
  for (const auto& seq : sequences) {
    if (seq.empty()) continue;
    c.lengths.push_back(static_cast<int>(seq.size()));
    const size_t at = c.residual.size();
    c.residual.resize(at + seq.size() * dim);
    for (int id : seq)
      if (id < 0 || id >= vocab)
        throw std::runtime_error(fmt::format(
            "calibration token id {} is outside the model's vocabulary of {} (tokenizer and model "
            "do not match?)",
            id, vocab));
    ref::embed(tok_embeddings.data.data(), vocab, dim, seq, c.residual.data() + at);
  }
  if (c.lengths.empty()) throw std::runtime_error("the calibration text gives no tokens");
  return c;
}

LayerInputs run_calibration_layer(const ModelConfig& c, const LayerWeights& L, Calibration& calib) {
  const int64_t n = calib.rows();
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim();
  const double pos_scale = c.rope_scaling == RopeScaling::linear ? c.rope_factor : 1.0;
  LayerInputs in;
  in.rows = n;
  in.wqkv = rmsnorm_rows(calib.residual, n, L.attention_norm, c.norm_eps);
  const std::vector<float> qkv = matmul_nt(in.wqkv, n, L.wqkv);

  in.wo.resize(static_cast<size_t>(n * qd));
  int64_t first = 0;
  for (int len : calib.lengths) {  // attention is causal within each sequence, from position 0
    const double base = rope_base_for_length(c, len);
    std::vector<float> q(static_cast<size_t>(len) * qd), k(static_cast<size_t>(len) * kvd), v(k.size());
    for (int t = 0; t < len; ++t) {
      float *qt = &q[int64_t(t) * qd], *kt = &k[int64_t(t) * kvd];
      ref::split_qkv(&qkv[(first + t) * c.qkv_dim()], c.n_heads, c.n_kv_heads, hd, qt, kt,
                     &v[int64_t(t) * kvd]);
      for (int h = 0; h < c.n_heads; ++h) ref::rope(qt + int64_t(h) * hd, hd, t, base, pos_scale);
      for (int h = 0; h < c.n_kv_heads; ++h) ref::rope(kt + int64_t(h) * hd, hd, t, base, pos_scale);
    }
    parallel_for(len, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        ref::attention(&q[t * qd], k.data(), v.data(), kvd, static_cast<int>(t) + 1, c.n_heads, c.n_kv_heads,
                       hd, &in.wo[(first + t) * qd]);
    });
    first += len;
  }
  const std::vector<float> attn_out = matmul_nt(in.wo, n, L.wo);
  for (size_t i = 0; i < attn_out.size(); ++i) calib.residual[i] += attn_out[i];

  in.w13 = rmsnorm_rows(calib.residual, n, L.ffn_norm, c.norm_eps);
  const std::vector<float> gate = matmul_nt(in.w13, n, L.w1), up = matmul_nt(in.w13, n, L.w3);
  in.w2.resize(gate.size());
  ref::swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), in.w2.data());
  const std::vector<float> down = matmul_nt(in.w2, n, L.w2);
  for (size_t i = 0; i < down.size(); ++i) calib.residual[i] += down[i];
  return in;
}

std::vector<float> final_norm_rows(const ModelConfig& c, const HostTensor& norm, const Calibration& calib) {
  return rmsnorm_rows(calib.residual, calib.rows(), norm, c.norm_eps);
}

std::vector<AwqChoice> awq_scale_layer(const ModelConfig& c, LayerWeights& L, const LayerInputs& x,
                                       const AwqOptions& o) {
  const int64_t d = c.hidden, qd = c.q_dim(), inter = c.intermediate;
  int64_t rows = 0;  // search rows: the same for the four groups
  const std::vector<float> xs_qkv = sample_rows(x.wqkv, x.rows, d, o.max_search_tokens, &rows);
  const std::vector<float> xs_wo = sample_rows(x.wo, x.rows, qd, o.max_search_tokens, &rows);
  const std::vector<float> xs_w13 = sample_rows(x.w13, x.rows, d, o.max_search_tokens, &rows);
  const std::vector<float> xs_w2 = sample_rows(x.w2, x.rows, inter, o.max_search_tokens, &rows);

  // All four searches on the layer as loaded, then the folds (AutoAWQ's order).
  AwqLayerSearch s;
  s.rows = rows;
  s.wqkv = search_scales(mean_abs(x.wqkv, x.rows, d), {&L.wqkv}, xs_qkv, rows, o);
  std::vector<double> wo_stats = mean_abs(x.wo, x.rows, qd);
  awq_tie_wo_stats(c, wo_stats);
  s.wo = search_scales(wo_stats, {&L.wo}, xs_wo, rows, o);
  s.w13 = search_scales(mean_abs(x.w13, x.rows, d), {&L.w1, &L.w3}, xs_w13, rows, o);
  s.w2 = search_scales(mean_abs(x.w2, x.rows, inter), {&L.w2}, xs_w2, rows, o);
  return awq_fold_layer(c, L, s);
}

std::vector<AwqChoice> awq_fold_layer(const ModelConfig& c, LayerWeights& L, const AwqLayerSearch& s) {
  const int64_t inter = c.intermediate, hd = c.head_dim, g = c.group();
  scale_columns(L.wqkv, fold_into_norm(L.attention_norm, s.wqkv.scales));
  scale_columns(L.wo, s.wo.scales);
  // V rows of KV head kv: block kv, after g query heads and k.
  parallel_for(int64_t{c.n_kv_heads} * hd, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t kv = r / hd, j = r % hd;
      divide_row(L.wqkv, (kv * (g + 2) + g + 1) * hd + j, s.wo.scales[kv * g * hd + j]);
    }
  });
  const std::vector<float> f13 = fold_into_norm(L.ffn_norm, s.w13.scales);
  scale_columns(L.w1, f13);
  scale_columns(L.w3, f13);
  scale_columns(L.w2, s.w2.scales);
  parallel_for(inter, 16, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) divide_row(L.w3, j, s.w2.scales[j]);
  });
  return {choice("wqkv", s.wqkv, s.rows), choice("wo", s.wo, s.rows), choice("w13", s.w13, s.rows),
          choice("w2", s.w2, s.rows)};
}

AwqChoice awq_scale_head(const ModelConfig& c, HostTensor& norm, HostTensor& output,
                         const std::vector<float>& x, int64_t rows, const AwqOptions& o) {
  int64_t taken = 0;
  const std::vector<float> xs = sample_rows(x, rows, c.hidden, o.max_search_tokens, &taken);
  const Search s = search_scales(mean_abs(x, rows, c.hidden), {&output}, xs, taken, o);
  return awq_fold_head(norm, output, s, taken);
}

AwqChoice awq_fold_head(HostTensor& norm, HostTensor& output, const AwqSearch& s, int64_t rows) {
  scale_columns(output, fold_into_norm(norm, s.scales));
  return choice("output", s, rows);
}

std::vector<int64_t> awq_search_rows(int64_t rows, int64_t most) {
  const int64_t n = std::min(rows, most);
  std::vector<int64_t> at(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t k = 0; k < n; ++k) at[k] = k * rows / n;
  return at;
}

std::vector<double> awq_mean_abs(const float* x, int64_t rows, int64_t in) {
  std::vector<double> m(static_cast<size_t>(in), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) m[i] += std::fabs(x[r * in + i]);
  for (double& v : m) v /= static_cast<double>(std::max<int64_t>(rows, 1));
  return m;
}

void awq_tie_wo_stats(const ModelConfig& c, std::vector<double>& stats) {
  const int64_t hd = c.head_dim, g = c.group();
  for (int64_t kv = 0; kv < c.n_kv_heads; ++kv)
    for (int64_t j = 0; j < hd; ++j) {
      double sum = 0;
      for (int64_t h = kv * g; h < (kv + 1) * g; ++h) sum += stats[h * hd + j];
      for (int64_t h = kv * g; h < (kv + 1) * g; ++h) stats[h * hd + j] = sum / g;
    }
}

std::vector<AwqCandidate> awq_candidates(const std::vector<double>& stats, const AwqOptions& o) {
  std::vector<double> alphas;  // 0 first: its error is plain RTN's, the baseline
  if (o.fixed_alpha >= 0) {
    alphas = {0.0, o.fixed_alpha};
  } else {
    for (int k = 0; k < o.grid; ++k) alphas.push_back(o.grid > 1 ? double(k) / (o.grid - 1) : 0.0);
  }
  std::vector<AwqCandidate> out;
  for (const double alpha : alphas) {
    std::vector<float> s(stats.size());
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < stats.size(); ++i) {
      double v = std::max(std::pow(stats[i], alpha), 1e-4);
      if (!std::isfinite(v)) v = 1;
      s[i] = static_cast<float>(v);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const float norm = static_cast<float>(1.0 / std::sqrt(lo * hi));  // max(s) * min(s) = 1
    for (float& v : s) v *= norm;
    out.push_back({alpha, std::move(s)});
  }
  return out;
}

AwqSearch awq_pick(std::vector<AwqCandidate> candidates, const std::vector<double>& errors,
                   const AwqOptions& o) {
  if (candidates.empty() || errors.size() != candidates.size())
    throw std::logic_error("awq_pick: one error per candidate, at least one candidate");
  AwqSearch best;
  for (size_t k = 0; k < candidates.size(); ++k) {
    const double err = errors[k];
    if (k == 0) best.error_rtn = err;
    if (k == 0 || err < best.error_best || o.fixed_alpha >= 0) {
      best.alpha = candidates[k].alpha;
      best.scales = std::move(candidates[k].scales);
      best.error_best = err;
    }
  }
  return best;
}

}  // namespace ridgeline
