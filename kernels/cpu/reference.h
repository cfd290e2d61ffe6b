// CPU reference ops: plain float32 loops, one function per op, written to be obviously correct.
// The CPU backend's forward is built from these, and every CUDA kernel is tested against them.
// Layouts: activations row-major [n_tokens, dim]; a Linear's weight is [out, in] (y = x W^T).
#pragma once

#include <cstdint>
#include <span>

namespace ridgeline::ref {

// embed: out[t] = table[ids[t]]                                   table [vocab, dim]
void embed(const float* table, int vocab, int dim, std::span<const int> ids, float* out);

// rmsnorm: out = x * rsqrt(mean(x^2) + eps) * w, per row of n rows of `dim`.
void rmsnorm(const float* x, const float* w, int n, int dim, float eps, float* out);

// Fused residual add + RMSNorm: residual += x (if x is not null); out = rmsnorm(residual).
void add_rmsnorm(float* residual, const float* x, const float* w, int n, int dim, float eps, float* out);

// linear: y[n, out] = x[n, in] W^T, W [out, in]; accumulates in double-free float32, in index order.
void linear(const float* x, const float* W, int n, int in, int out, float* y);

// Rotate-half RoPE of one head vector `x` (head_dim) at position `pos` with base `base`:
// x*cos + rotate_half(x)*sin, inv_freq[j] = base^(-2j/head_dim), j < head_dim/2.
// `pos_scale` divides the position (linear rope scaling; 1 otherwise).
void rope(float* x, int head_dim, int pos, double base, double pos_scale = 1.0);

// Splits wqkv's output row (grouped per KV head: [q(h*g..h*g+g-1), k(h), v(h)]) into q [n_heads*hd],
// k [n_kv*hd], v [n_kv*hd].
void split_qkv(const float* qkv, int n_heads, int n_kv_heads, int head_dim, float* q, float* k, float* v);

// Attention of one query position over `ctx` cached positions (causal masking is the caller's
// choice of ctx). q [n_heads*hd]; K, V [ctx, n_kv*hd] with row stride kv_stride floats; out [n_heads*hd].
// Softmax in float32 with the max subtracted; scale 1/sqrt(head_dim).
void attention(const float* q, const float* K, const float* V, int64_t kv_stride, int ctx, int n_heads,
               int n_kv_heads, int head_dim, float* out);

// swiglu: out = silu(gate) * up, elementwise over n values.
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// KV quantization of one (token, KV head) row, asymmetric, LMDeploy's quant_policy semantics
// (tests/data/tiny-internlm2-chat/README.md): scale = fp16((max-min)/(2^bits-1)), zero = fp16(min),
// code = clamp(round_half_even((x-zero)/scale), 0, 2^bits-1) (0 where scale is 0), all in float32
// with IEEE division; read back as code*scale + zero. The CUDA KV write (kernels/rope_kv_write.cu)
// computes the same codes and scales bit for bit from the same inputs.
struct KvScale {
  float scale = 0.0f;  // fp16-representable, as stored
  float zero = 0.0f;   // fp16-representable, as stored
};
// Quantizes x[n] (bits 8 or 4) into codes[n] (one code per byte, unpacked) and returns the row's scale.
KvScale quantize_kv(const float* x, int n, int bits, uint8_t* codes);
inline float dequantize_kv(uint8_t code, KvScale s) {
  return static_cast<float>(code) * s.scale + s.zero;
}
// quantize_kv then dequantize_kv in place: x [n] becomes what a reader of the cache sees.
void fake_quantize_kv(float* x, int n, int bits);

// Index of the largest logit, lowest index on ties; NaN never wins.
int argmax(const float* logits, int vocab);

// Sampling from logits with temperature, top-k, top-p, given a uniform draw u in [0, 1).
// Candidates are ordered by (logit desc, index asc); top-k keeps the first k; top-p keeps the
// shortest prefix whose probability reaches top_p; u picks by inverse CDF over the kept ones.
int sample(const float* logits, int vocab, float temperature, int top_k, float top_p, double u);

// The uniform draw for a sampling step: a counter-based hash of (seed, position) so that CPU and
// GPU draw the same number, and a fixed seed gives the same text every time.
double sampling_uniform(uint64_t seed, uint64_t position);

// float -> nearest fp16 -> float (round to nearest even), for modelling what fp16 storage keeps.
float round_to_fp16(float x);

}  // namespace ridgeline::ref
