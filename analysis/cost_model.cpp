#include "analysis/cost_model.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {
namespace {

// Elementwise FLOP counts (see the header).
constexpr double kNormFlops = 4.0;
constexpr double kResidualAddFlops = 1.0;
constexpr double kRopeFlops = 6.0;
constexpr double kSwigluFlops = 5.0;
constexpr double kSoftmaxFlops = 5.0;
constexpr double kSampleFlops = 3.0;

// Visible (query, key) pairs per head over all sequences: query j (0-based) of a sequence with
// context ctx sees ctx - n + 1 + j keys.
double attention_pairs(const StepShape& s) {
  const double n = s.new_tokens_per_seq;
  double pairs = 0;
  for (int b = 0; b < s.batch; ++b) {
    const double ctx = s.context.size() == 1 ? s.context[0] : s.context[b];
    pairs += n * (ctx - n) + n * (n + 1) / 2;
  }
  return pairs;
}

}  // namespace

double op_flops(const ModelConfig& c, const StepShape& s, const Op& op) {
  const double H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), QKV = c.qkv_dim(), I = c.intermediate,
               V = c.vocab;
  const double T = double(s.batch) * s.new_tokens_per_seq;  // new tokens in the step
  const double R = s.batch;  // rows that reach the head: the last new position of each sequence
  // With the norms fused (Fusions::norm_in_gemv) the GEMV after a norm does its FLOPs and wo / w2
  // the residual adds, so a step's total is the same fused or not.
  const bool fused_norm = s.fusions.norm_in_gemv;
  const double norm_prologue = fused_norm ? T * H * kNormFlops : 0.0;
  const double residual_epilogue = fused_norm ? T * H * kResidualAddFlops : 0.0;
  const double rope = T * (Q + KV) * kRopeFlops;  // rope_kv_write's, or its fused op's
  switch (op.type) {
    case OpType::embed:
      return 0.0;
    case OpType::attention_norm:
      return T * H * (kNormFlops + (op.layer > 0 ? kResidualAddFlops : 0.0));
    case OpType::ffn_norm:
      return T * H * (kNormFlops + kResidualAddFlops);
    case OpType::norm:  // fused, the last w2 did the add
      return T * H * (kNormFlops + (fused_norm ? 0.0 : kResidualAddFlops));
    case OpType::wqkv:  // with RoPE in its epilogue it does rope_kv_write's FLOPs too
      return 2.0 * T * H * QKV + norm_prologue + (s.fusions.rope_in_wqkv ? rope : 0.0);
    case OpType::rope_kv_write:
      return rope;
    case OpType::attention:  // with RoPE in its prologue it does rope_kv_write's FLOPs too
      return c.n_heads * attention_pairs(s) * (4.0 * c.head_dim + kSoftmaxFlops) +
             (s.fusions.rope_in_attention ? rope : 0.0);
    case OpType::wo:
      return 2.0 * T * Q * H + residual_epilogue;
    case OpType::w13:  // with SwiGLU in its epilogue it does swiglu's FLOPs too
      return 2.0 * T * H * 2 * I + norm_prologue + (s.fusions.swiglu_in_w13 ? T * I * kSwigluFlops : 0.0);
    case OpType::swiglu:
      return T * I * kSwigluFlops;
    case OpType::w2:
      return 2.0 * T * I * H + residual_epilogue;
    case OpType::output:
      return 2.0 * R * H * V;
    case OpType::sample:
      return R * V * kSampleFlops;
  }
  throw std::logic_error("op_flops: unknown op");
}

PrefillChunks prefill_chunks(int batch, int new_tokens, int chunk) {
  PrefillChunks p;
  const int64_t total_tokens = int64_t{batch} * new_tokens;
  if (chunk <= 0 || total_tokens <= chunk) return p;
  p.chunks = static_cast<int>((total_tokens + chunk - 1) / chunk);
  int last_head_chunk = -1;
  p.head_chunks = 0;
  for (int i = 0; i < batch; ++i) {
    const int64_t first = int64_t{i} * new_tokens, end = first + new_tokens;
    // Every chunk boundary inside the sequence ends a piece that a later piece attends past.
    for (int64_t b = (first / chunk + 1) * chunk; b < end; b += chunk) p.kv_reread_tokens += b - first;
    const int head_chunk = static_cast<int>((end - 1) / chunk);
    if (head_chunk != last_head_chunk) ++p.head_chunks, last_head_chunk = head_chunk;
  }
  return p;
}

namespace {

// The bytes of the weights `op` reads: its `.weight` tensors, and the embeddings where a tied head
// reads them as its weight.
double weight_read_bytes(const Op& op) {
  double b = 0;
  for (const Tensor& t : op.reads) {
    const bool weight = t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0;
    if (weight || (op.type == OpType::output && t.name == "tok_embeddings")) b += double(bytes(t));
  }
  return b;
}

}  // namespace

std::vector<OpCost> step_costs(const ModelConfig& c, const StepShape& s) {
  const PrefillChunks chunks = s.new_tokens_per_seq > 1
                                   ? prefill_chunks(s.batch, s.new_tokens_per_seq, s.prefill_chunk_tokens)
                                   : PrefillChunks{};
  const double kv_row_bytes = double(kv_bytes_per_token(c, s.formats.kv)) / std::max(c.n_layers, 1);
  std::vector<OpCost> costs;
  for (const Op& op : step_ops(c, s)) {
    double b = double(op.bytes());
    if (chunks.chunks > 1) {
      // The embedding gathers only its rows; the head runs where a sequence ends; the rest each chunk.
      const int passes = op.type == OpType::output ? chunks.head_chunks : chunks.chunks;
      if (op.type != OpType::embed) b += weight_read_bytes(op) * (passes - 1);
      if (op.type == OpType::attention) b += kv_row_bytes * double(chunks.kv_reread_tokens);
    }
    costs.push_back({op.name, op.layer, to_string(op.kind), op_flops(c, s, op), b});
  }
  return costs;
}

CostTotals total(const std::vector<OpCost>& ops) {
  CostTotals t;
  for (const auto& op : ops) t.add(op);
  return t;
}

std::map<int, CostTotals> totals_by_layer(const std::vector<OpCost>& ops) {
  std::map<int, CostTotals> m;
  for (const auto& op : ops) m[op.layer].add(op);
  return m;
}

std::vector<std::pair<std::string, CostTotals>> totals_by_kind(const std::vector<OpCost>& ops) {
  std::vector<std::pair<std::string, CostTotals>> v;
  for (const auto& op : ops) {
    auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.first == op.kind; });
    if (it == v.end()) {
      v.emplace_back(op.kind, CostTotals{});
      it = v.end() - 1;
    }
    it->second.add(op);
  }
  return v;
}

std::optional<double> predicted_ridge_batch(const ModelConfig& c, const Formats& formats, int context,
                                            const Ceilings& ceilings, const std::string& kind, bool cuda) {
  if (!(ceilings.peak_GBps > 0) || !(ceilings.peak_tflops > 0))
    throw std::runtime_error("predicted_ridge_batch: ceilings must be positive");
  auto totals = [&](int batch) {
    StepShape s;
    s.batch = batch;
    s.context = {context};
    s.formats = formats;
    if (cuda) s.fusions = cuda_fusions(c, s);
    CostTotals t;
    for (const auto& op : step_costs(c, s))
      if (kind.empty() || op.kind == kind) t.add(op);
    if (t.count == 0)
      throw std::runtime_error(fmt::format("predicted_ridge_batch: no op of kind '{}'", kind));
    return t;
  };
  // flops(B) = f0 + B*f1, bytes(B) = w + B*b1 (f0 is 0: no op does work independent of the batch).
  const int b0 = cuda ? 2 * kCudaTcSwigluRows : 1;  // one op table from b0 on
  const CostTotals one = totals(b0), two = totals(b0 + 1);
  const double f1 = two.flops - one.flops, b1 = two.bytes - one.bytes;
  const double f0 = one.flops - b0 * f1, w = one.bytes - b0 * b1;
  double r = ceilings.ridge();
  // (f0 + B f1) / (w + B b1) = r  <=>  B = (r w - f0) / (f1 - r b1), a crossing only if f1 > r b1.
  if (!(f1 > r * b1)) return std::nullopt;
  return (r * w - f0) / (f1 - r * b1);
}

}  // namespace ridgeline
