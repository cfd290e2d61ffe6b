// AwqGpuSearch (engine/cuda/awq_gpu.h): the CPU quantizer's run_calibration_layer and search_scales
// (engine/quantize_awq.cpp) with the activations, statistics and error GEMMs on the device.
//
// Per layer (N calibration rows, S search rows, K alphas; 7b: N 4096, S 512, K 20):
//   forward  xn = rmsnorm(resid)      stats, S rows of xn          (wqkv's input)
//            qkv = xn Wqkv^T; per sequence: q, k, v with RoPE, scores = q k^T / sqrt(hd) (batched over
//            KV heads, the g query heads of a group stacked), causal softmax, o = p v, merged to rows
//                                     stats, S rows of attn        (wo's input)
//            resid += attn Wo^T; xn = rmsnorm(resid)
//                                     stats, S rows of xn          (w1/w3's input)
//            act = silu(xn W1^T) * (xn W3^T)
//                                     stats, S rows of act         (w2's input)
//            resid += act W2^T
//   search   per group: the host turns the statistics into the K candidate scalings (awq_candidates);
//            per candidate and linear: diff = W - Q(W diag(s)) diag(1/s), y = xs diff^T [S, out], its
//            sum of squares (per-block partials, added on the host in a fixed order); awq_pick.
// The GEMMs are cuBLAS SGEMMs in float32 (CUBLAS_DEFAULT_MATH: no TF32), so the activations differ
// from the CPU's only by summation order.
#include "engine/cuda/awq_gpu.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <fmt/format.h>

#include "engine/cuda/cuda_entry.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/nvtx.h"
#include "kernels/awq.cuh"
#include "kernels/cuda_check.h"

namespace ridgeline {

using cuda::DeviceBuffer;

namespace {

constexpr const char* kOp = "quantize.awq";

void upload(DeviceBuffer<float>& d, const HostTensor& t, const char* what, cudaStream_t stream) {
  if (d.size() < t.data.size())
    throw std::logic_error(
        fmt::format("awq gpu: {} has {} values, its buffer {}", what, t.data.size(), d.size()));
  RL_CUDA_CHECK(what, cudaMemcpyAsync(d.get(), t.data.data(), t.data.size() * sizeof(float),
                                      cudaMemcpyHostToDevice, stream));
}

template <typename T>
DeviceBuffer<T> upload_vector(const std::vector<T>& v, const char* what, cudaStream_t stream) {
  DeviceBuffer<T> d(v.size(), what);
  if (!v.empty())
    RL_CUDA_CHECK(what,
                  cudaMemcpyAsync(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  return d;
}

// Refuses, before allocating, work that does not fit in the GPU's free memory.
void check_device_memory(int64_t floats, const char* what) {
  size_t free_bytes = 0, total_bytes = 0;
  RL_CUDA_CHECK(kOp, cudaMemGetInfo(&free_bytes, &total_bytes));
  const double need = static_cast<double>(floats) * 4;
  if (need > static_cast<double>(free_bytes))
    throw std::runtime_error(
        fmt::format("quantize --device cuda: {} needs {:.1f} GB of GPU memory, {:.1f} GB are free", what,
                    need / 1e9, static_cast<double>(free_bytes) / 1e9));
}

class Blas {
 public:
  explicit Blas(cudaStream_t stream) {
    RL_CUDA_CHECK(kOp, cublasCreate(&h_));
    RL_CUDA_CHECK(kOp, cublasSetStream(h_, stream));
    RL_CUDA_CHECK(kOp, cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH));  // float32, no TF32
  }
  ~Blas() {
    if (h_) cublasDestroy(h_);
  }
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // y[n, out] = x[n, in] W^T, all row-major (W [out, in]): in cuBLAS's column-major terms
  // Y^T[out, n] = (W^T[in, out])^T X^T[in, n].
  void nt(const float* x, int64_t n, int64_t in, const float* W, int64_t out, float* y,
          const char* op) const {
    const float one = 1.0f, zero = 0.0f;
    RL_CUDA_CHECK(op, cublasSgemm(h_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(n),
                                  static_cast<int>(in), &one, W, static_cast<int>(in), x,
                                  static_cast<int>(in), &zero, y, static_cast<int>(out)));
  }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

}  // namespace

struct AwqGpuSearch::Impl {
  ModelConfig c;
  AwqOptions o;
  std::vector<int> lengths;
  int64_t rows = 0;  // N
  int max_len = 0;
  std::vector<int64_t> search_at;  // the S search rows
  cuda::Stream stream;
  Blas blas{stream.get()};
  cuda::Event begin{true}, uploaded{true}, forwarded{true}, end{true};
  AwqGpuTime last;
  double total_seconds = 0;
  int layer = 0;  // the next search_layer's, for the NVTX range's name

  DeviceBuffer<int64_t> d_search_at;
  DeviceBuffer<float> cos, sin;  // [N, head_dim/2]: each row's RoPE angles, at its position in its sequence
  DeviceBuffer<float> resid, xn, qkv, attn, tmp, gate, up, act;
  DeviceBuffer<float> q, k, v, scores, heads;  // one sequence's attention
  DeviceBuffer<float> xs_qkv, xs_wo, xs_w13, xs_w2;
  DeviceBuffer<double> st_qkv, st_wo, st_w13, st_w2;
  DeviceBuffer<float> attention_norm, ffn_norm, wqkv, wo, w1, w3, w2;
  DeviceBuffer<float> diff, y, candidates;
  DeviceBuffer<double> partial;

  Impl(const ModelConfig& config, const Calibration& start, const AwqOptions& options);
  void upload_layer(const LayerWeights& L);
  void forward();
  std::vector<double> stats(const DeviceBuffer<double>& d, int64_t in);
  AwqSearch search(const std::vector<double>& stats, const std::vector<const float*>& linears,
                   const std::vector<int64_t>& outs, int64_t in, const float* xs, float* diff_buf,
                   float* y_buf);
  void record(const cuda::Event& e) { RL_CUDA_CHECK(kOp, cudaEventRecord(e.get(), stream.get())); }
  void time_from_begin();
};

AwqGpuSearch::Impl::Impl(const ModelConfig& config, const Calibration& start, const AwqOptions& options)
    : c(config), o(options), lengths(start.lengths), rows(start.rows()) {
  const int64_t d = c.hidden, qd = c.q_dim(), inter = c.intermediate, hd = c.head_dim, half = hd / 2;
  if (static_cast<int64_t>(start.residual.size()) != rows * d)
    throw std::logic_error("awq gpu: the calibration stream's residual does not match its lengths");
  for (int len : lengths) max_len = std::max(max_len, len);
  search_at = awq_search_rows(rows, o.max_search_tokens);
  const int64_t S = static_cast<int64_t>(search_at.size());
  const cudaStream_t s = stream.get();
  const int64_t qkvd = c.qkv_dim(), kvd = c.kv_dim(), most_in = std::max({d, qd, inter}),
                most_out = std::max({qkvd, d, inter}), most_weights = std::max({qkvd * d, d * qd, inter * d});
  const int64_t layer_weights = qkvd * d + d * qd + 3 * inter * d + 2 * d;
  check_device_memory(
      rows * (3 * d + qkvd + qd + 3 * inter + 2 * half) + int64_t{max_len} * (2 * qd + 2 * kvd) +
          int64_t{c.n_heads} * max_len * max_len + S * (2 * d + qd + inter + most_out) + layer_weights +
          most_weights + int64_t{o.grid + 2} * most_in,
      fmt::format("AWQ's search of one {} layer over {} calibration rows", c.name, rows).c_str());

  // RoPE's cos and sin per row, computed as ref::rope computes them (angles in double, rounded to
  // float, then float cos/sin), so the device rotates by exactly the CPU's values.
  std::vector<float> c_host(static_cast<size_t>(rows * half)), s_host(c_host.size());
  const double pos_scale = c.rope_scaling == RopeScaling::linear ? c.rope_factor : 1.0;
  int64_t row = 0;
  for (int len : lengths) {
    const double base = rope_base_for_length(c, len);
    for (int t = 0; t < len; ++t, ++row) {
      const double p = t / pos_scale;
      for (int64_t j = 0; j < half; ++j) {
        const float inv_freq = static_cast<float>(1.0 / std::pow(base, (2.0 * j) / hd));
        const float angle = static_cast<float>(p) * inv_freq;
        c_host[row * half + j] = std::cos(angle);
        s_host[row * half + j] = std::sin(angle);
      }
    }
  }
  cos = upload_vector(c_host, "awq rope cos", s);
  sin = upload_vector(s_host, "awq rope sin", s);
  d_search_at = upload_vector(search_at, "awq search rows", s);
  resid = upload_vector(start.residual, "awq calibration residual", s);

  xn = DeviceBuffer<float>(rows * d, "awq normed rows");
  qkv = DeviceBuffer<float>(rows * c.qkv_dim(), "awq qkv rows");
  attn = DeviceBuffer<float>(rows * qd, "awq attention rows");
  tmp = DeviceBuffer<float>(rows * d, "awq linear output rows");
  gate = DeviceBuffer<float>(rows * inter, "awq gate rows");
  up = DeviceBuffer<float>(rows * inter, "awq up rows");
  act = DeviceBuffer<float>(rows * inter, "awq swiglu rows");
  q = DeviceBuffer<float>(int64_t{max_len} * qd, "awq attention q");
  k = DeviceBuffer<float>(int64_t{max_len} * c.kv_dim(), "awq attention k");
  v = DeviceBuffer<float>(int64_t{max_len} * c.kv_dim(), "awq attention v");
  heads = DeviceBuffer<float>(int64_t{max_len} * qd, "awq attention out");
  scores = DeviceBuffer<float>(int64_t{c.n_heads} * max_len * max_len, "awq attention scores");
  xs_qkv = DeviceBuffer<float>(S * d, "awq search rows");
  xs_wo = DeviceBuffer<float>(S * qd, "awq search rows");
  xs_w13 = DeviceBuffer<float>(S * d, "awq search rows");
  xs_w2 = DeviceBuffer<float>(S * inter, "awq search rows");
  st_qkv = DeviceBuffer<double>(d, "awq statistics");
  st_wo = DeviceBuffer<double>(qd, "awq statistics");
  st_w13 = DeviceBuffer<double>(d, "awq statistics");
  st_w2 = DeviceBuffer<double>(inter, "awq statistics");
  attention_norm = DeviceBuffer<float>(d, "awq attention_norm");
  ffn_norm = DeviceBuffer<float>(d, "awq ffn_norm");
  wqkv = DeviceBuffer<float>(int64_t{c.qkv_dim()} * d, "awq wqkv");
  wo = DeviceBuffer<float>(d * qd, "awq wo");
  w1 = DeviceBuffer<float>(inter * d, "awq w1");
  w3 = DeviceBuffer<float>(inter * d, "awq w3");
  w2 = DeviceBuffer<float>(d * inter, "awq w2");
  diff = DeviceBuffer<float>(most_weights, "awq weight error");
  y = DeviceBuffer<float>(S * most_out, "awq output error");
  RL_CUDA_CHECK(kOp, cudaStreamSynchronize(s));
}

void AwqGpuSearch::Impl::upload_layer(const LayerWeights& L) {
  const cudaStream_t s = stream.get();
  upload(attention_norm, L.attention_norm, "awq attention_norm", s);
  upload(ffn_norm, L.ffn_norm, "awq ffn_norm", s);
  upload(wqkv, L.wqkv, "awq wqkv", s);
  upload(wo, L.wo, "awq wo", s);
  upload(w1, L.w1, "awq w1", s);
  upload(w3, L.w3, "awq w3", s);
  upload(w2, L.w2, "awq w2", s);
}

void AwqGpuSearch::Impl::forward() {
  const cudaStream_t s = stream.get();
  const int64_t d = c.hidden, qd = c.q_dim(), inter = c.intermediate, N = rows;
  const int hd = c.head_dim, g = c.group(), S = static_cast<int>(search_at.size());

  auto observe = [&](const float* x, int64_t in, DeviceBuffer<double>& st, DeviceBuffer<float>& xs) {
    cuda::awq_mean_abs(x, N, static_cast<int>(in), st.get(), s);
    cuda::awq_gather_rows(x, static_cast<int>(in), d_search_at.get(), S, xs.get(), s);
  };

  cuda::awq_rmsnorm_f32(resid.get(), attention_norm.get(), N, static_cast<int>(d), c.norm_eps, xn.get(), s);
  observe(xn.get(), d, st_qkv, xs_qkv);
  blas.nt(xn.get(), N, d, wqkv.get(), c.qkv_dim(), qkv.get(), "quantize.awq.wqkv");

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));  // ref::attention's
  const float one = 1.0f, zero = 0.0f;
  int64_t first = 0;
  for (int len : lengths) {  // attention is causal within each sequence, from position 0
    cuda::AwqSplitRopeParams p;
    p.qkv = qkv.get();
    p.first = first;
    p.len = len;
    p.n_heads = c.n_heads;
    p.n_kv_heads = c.n_kv_heads;
    p.head_dim = hd;
    p.cos = cos.get() + first * (hd / 2);
    p.sin = sin.get() + first * (hd / 2);
    p.q = q.get();
    p.k = k.get();
    p.v = v.get();
    cuda::awq_split_rope(p, s);
    // Per KV head (the g query heads of its group stacked): scores [g*len, len] = q [g*len, hd] k^T /
    // sqrt(hd).
    const long long n = len;
    RL_CUDA_CHECK("quantize.awq.attention",
                  cublasSgemmStridedBatched(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, len, g * len, hd, &scale,
                                            k.get(), hd, n * hd, q.get(), hd, g * n * hd, &zero, scores.get(),
                                            len, g * n * n, c.n_kv_heads));
    cuda::awq_causal_softmax(scores.get(), int64_t{c.n_heads} * len, len, s);
    // Per KV head: out [g*len, hd] = p [g*len, len] v [len, hd].
    RL_CUDA_CHECK("quantize.awq.attention",
                  cublasSgemmStridedBatched(blas.get(), CUBLAS_OP_N, CUBLAS_OP_N, hd, g * len, len, &one,
                                            v.get(), hd, n * hd, scores.get(), len, g * n * n, &zero,
                                            heads.get(), hd, g * n * hd, c.n_kv_heads));
    cuda::awq_merge_heads(heads.get(), c.n_kv_heads, g, len, hd, first, attn.get(), s);
    first += len;
  }
  observe(attn.get(), qd, st_wo, xs_wo);
  blas.nt(attn.get(), N, qd, wo.get(), d, tmp.get(), "quantize.awq.wo");
  cuda::awq_add_f32(resid.get(), tmp.get(), N * d, s);

  cuda::awq_rmsnorm_f32(resid.get(), ffn_norm.get(), N, static_cast<int>(d), c.norm_eps, xn.get(), s);
  observe(xn.get(), d, st_w13, xs_w13);
  blas.nt(xn.get(), N, d, w1.get(), inter, gate.get(), "quantize.awq.w1");
  blas.nt(xn.get(), N, d, w3.get(), inter, up.get(), "quantize.awq.w3");
  cuda::awq_swiglu_f32(gate.get(), up.get(), N * inter, act.get(), s);
  observe(act.get(), inter, st_w2, xs_w2);
  blas.nt(act.get(), N, inter, w2.get(), d, tmp.get(), "quantize.awq.w2");
  cuda::awq_add_f32(resid.get(), tmp.get(), N * d, s);
}

std::vector<double> AwqGpuSearch::Impl::stats(const DeviceBuffer<double>& d, int64_t in) {
  std::vector<double> h(static_cast<size_t>(in));
  RL_CUDA_CHECK(
      kOp, cudaMemcpyAsync(h.data(), d.get(), in * sizeof(double), cudaMemcpyDeviceToHost, stream.get()));
  RL_CUDA_CHECK(kOp, cudaStreamSynchronize(stream.get()));
  return h;
}

// search_scales of engine/quantize_awq.cpp: every candidate's error over the group's linears
// (W [outs[l], in] on the device) on the search rows xs [S, in].
AwqSearch AwqGpuSearch::Impl::search(const std::vector<double>& st, const std::vector<const float*>& linears,
                                     const std::vector<int64_t>& outs, int64_t in, const float* xs,
                                     float* diff_buf, float* y_buf) {
  const cuda::NvtxRange range("scale_search");
  const cudaStream_t s = stream.get();
  const int64_t S = static_cast<int64_t>(search_at.size());
  std::vector<AwqCandidate> cands = awq_candidates(st, o);
  const int64_t K = static_cast<int64_t>(cands.size()), n_lin = static_cast<int64_t>(linears.size());
  std::vector<float> all(static_cast<size_t>(K * in));
  for (int64_t k = 0; k < K; ++k)
    std::copy(cands[k].scales.begin(), cands[k].scales.end(), all.begin() + k * in);
  if (candidates.size() < all.size()) candidates = DeviceBuffer<float>(all.size(), "awq candidate scales");
  RL_CUDA_CHECK(kOp, cudaMemcpyAsync(candidates.get(), all.data(), all.size() * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
  const size_t n_partial = static_cast<size_t>(K * n_lin * cuda::kAwqSumBlocks);
  if (partial.size() < n_partial) partial = DeviceBuffer<double>(n_partial, "awq error partial sums");
  for (int64_t k = 0; k < K; ++k)
    for (int64_t l = 0; l < n_lin; ++l) {
      cuda::awq_scaled_rtn_diff(linears[l], outs[l], static_cast<int>(in), candidates.get() + k * in,
                                o.group_size, diff_buf, s);
      blas.nt(xs, S, in, diff_buf, outs[l], y_buf, "quantize.awq.error");
      cuda::awq_sum_squares(y_buf, S * outs[l], partial.get() + (k * n_lin + l) * cuda::kAwqSumBlocks, s);
    }
  std::vector<double> part(n_partial);
  RL_CUDA_CHECK(kOp, cudaMemcpyAsync(part.data(), partial.get(), n_partial * sizeof(double),
                                     cudaMemcpyDeviceToHost, s));
  RL_CUDA_CHECK(kOp, cudaStreamSynchronize(s));
  std::vector<double> errors(static_cast<size_t>(K), 0.0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t l = 0; l < n_lin; ++l) {
      double e = 0;
      for (int b = 0; b < cuda::kAwqSumBlocks; ++b) e += part[(k * n_lin + l) * cuda::kAwqSumBlocks + b];
      errors[k] += e;
    }
  return awq_pick(std::move(cands), errors, o);
}

void AwqGpuSearch::Impl::time_from_begin() {
  record(end);
  RL_CUDA_CHECK(kOp, cudaEventSynchronize(end.get()));
  auto seconds = [](const cuda::Event& a, const cuda::Event& b) {
    float ms = 0;
    RL_CUDA_CHECK(kOp, cudaEventElapsedTime(&ms, a.get(), b.get()));
    return ms / 1e3;
  };
  last.upload = seconds(begin, uploaded);
  last.forward = seconds(uploaded, forwarded);
  last.search = seconds(forwarded, end);
  total_seconds += last.total();
}

AwqGpuSearch::AwqGpuSearch(const ModelConfig& c, const Calibration& start, const AwqOptions& o) {
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("quantize --device cuda: GPU not available: " + why);
  impl_ = std::make_unique<Impl>(c, start, o);
}

AwqGpuSearch::~AwqGpuSearch() = default;

AwqLayerSearch AwqGpuSearch::search_layer(const LayerWeights& L) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  const int64_t d = c.hidden, qd = c.q_dim(), inter = c.intermediate;
  // NVTX: quantize.layers.{i} around the layer, its forward and each group's search inside.
  const std::string name = fmt::format("quantize.layers.{}", m.layer++);
  const cuda::NvtxRange range(name.c_str());
  m.record(m.begin);
  m.upload_layer(L);
  m.record(m.uploaded);
  {
    const cuda::NvtxRange forward("calibration_forward");
    m.forward();
  }
  m.record(m.forwarded);
  AwqLayerSearch r;
  r.rows = static_cast<int64_t>(m.search_at.size());
  // All four searches on the layer as loaded (the caller folds afterwards), as on the CPU.
  r.wqkv = m.search(m.stats(m.st_qkv, d), {m.wqkv.get()}, {c.qkv_dim()}, d, m.xs_qkv.get(), m.diff.get(),
                    m.y.get());
  std::vector<double> wo_stats = m.stats(m.st_wo, qd);
  awq_tie_wo_stats(c, wo_stats);
  r.wo = m.search(wo_stats, {m.wo.get()}, {d}, qd, m.xs_wo.get(), m.diff.get(), m.y.get());
  r.w13 = m.search(m.stats(m.st_w13, d), {m.w1.get(), m.w3.get()}, {inter, inter}, d, m.xs_w13.get(),
                   m.diff.get(), m.y.get());
  r.w2 = m.search(m.stats(m.st_w2, inter), {m.w2.get()}, {d}, inter, m.xs_w2.get(), m.diff.get(), m.y.get());
  m.time_from_begin();
  return r;
}

AwqSearch AwqGpuSearch::search_head(const HostTensor& norm, const HostTensor& output, int64_t* rows) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  const cudaStream_t s = m.stream.get();
  const int64_t d = c.hidden, vocab = output.shape.at(0), S = static_cast<int64_t>(m.search_at.size());
  const cuda::NvtxRange range("quantize.output");
  // The head is the largest linear (7b: 92544 x 4096): its weight, error and output buffers live
  // only for this search.
  check_device_memory(2 * vocab * d + S * vocab, "AWQ's search of the output head");
  DeviceBuffer<float> w(vocab * d, "awq output head"), diff(vocab * d, "awq output head error"),
      y(S * vocab, "awq output head output error");
  m.record(m.begin);
  upload(m.attention_norm, norm, "awq final norm", s);
  upload(w, output, "awq output head", s);
  m.record(m.uploaded);
  cuda::awq_rmsnorm_f32(m.resid.get(), m.attention_norm.get(), m.rows, static_cast<int>(d), c.norm_eps,
                        m.xn.get(), s);
  cuda::awq_mean_abs(m.xn.get(), m.rows, static_cast<int>(d), m.st_qkv.get(), s);
  cuda::awq_gather_rows(m.xn.get(), static_cast<int>(d), m.d_search_at.get(), static_cast<int>(S),
                        m.xs_qkv.get(), s);
  m.record(m.forwarded);
  AwqSearch r = m.search(m.stats(m.st_qkv, d), {w.get()}, {vocab}, d, m.xs_qkv.get(), diff.get(), y.get());
  m.time_from_begin();
  *rows = S;
  return r;
}

std::vector<float> AwqGpuSearch::residual() const {
  const Impl& m = *impl_;
  std::vector<float> h(m.resid.size());
  RL_CUDA_CHECK(
      kOp, cudaMemcpyAsync(h.data(), m.resid.get(), m.resid.bytes(), cudaMemcpyDeviceToHost, m.stream.get()));
  RL_CUDA_CHECK(kOp, cudaStreamSynchronize(m.stream.get()));
  return h;
}

double AwqGpuSearch::device_seconds() const {
  return impl_->total_seconds;
}

AwqGpuTime AwqGpuSearch::last_time() const {
  return impl_->last;
}

}  // namespace ridgeline
