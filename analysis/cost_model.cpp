#include "analysis/cost_model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {
namespace {

constexpr double kAct = 2.0;        // fp16 activation element
constexpr double kFp16 = 2.0;       // fp16 weight element (embeddings, norms, output head, fp16 layers)
constexpr double kTokenId = 4.0;    // int32 token id
constexpr double kScaleZero = 4.0;  // fp16 scale + fp16 zero (w4a16 group, int8/int4 KV head-token)

// Elementwise FLOP counts (see the header).
constexpr double kNormFlops = 4.0;
constexpr double kResidualAddFlops = 1.0;
constexpr double kRopeFlops = 6.0;
constexpr double kSwigluFlops = 5.0;
constexpr double kSoftmaxFlops = 5.0;
constexpr double kSampleFlops = 3.0;

double kv_element_bytes(KvFmt f) {
  switch (f) {
    case KvFmt::fp16:
      return 2.0;
    case KvFmt::int8:
      return 1.0;
    case KvFmt::int4:
      return 0.5;
  }
  return 0.0;
}

double kv_meta_bytes(KvFmt f) {
  return f == KvFmt::fp16 ? 0.0 : kScaleZero;
}

// K and V of one token in one layer.
double kv_bytes_per_token_layer(const ModelConfig& c, KvFmt f) {
  return 2.0 * c.n_kv_heads * (c.head_dim * kv_element_bytes(f) + kv_meta_bytes(f));
}

void check_shape(const ModelConfig& c, const StepShape& s) {
  if (c.hidden <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.intermediate <= 0 || c.vocab <= 0)
    throw std::runtime_error(
        fmt::format("cost model: model config '{}' has a non-positive dimension", c.name));
  if (s.batch <= 0) throw std::runtime_error(fmt::format("cost model: batch must be > 0, got {}", s.batch));
  if (s.new_tokens_per_seq <= 0)
    throw std::runtime_error(
        fmt::format("cost model: new_tokens_per_seq must be > 0, got {}", s.new_tokens_per_seq));
  if (s.context.size() != 1 && s.context.size() != static_cast<size_t>(s.batch))
    throw std::runtime_error(fmt::format("cost model: {} context lengths for a batch of {} (give 1 or {})",
                                         s.context.size(), s.batch, s.batch));
  for (int ctx : s.context)
    if (ctx < s.new_tokens_per_seq)
      throw std::runtime_error(
          fmt::format("cost model: context {} is shorter than the {} new tokens it must include", ctx,
                      s.new_tokens_per_seq));
  if (s.weights == WeightFmt::w4a16 && s.group_size <= 0)
    throw std::runtime_error(fmt::format("cost model: w4a16 group_size must be > 0, got {}", s.group_size));
}

}  // namespace

const char* to_string(WeightFmt f) {
  return f == WeightFmt::fp16 ? "fp16" : "w4a16";
}

const char* to_string(KvFmt f) {
  switch (f) {
    case KvFmt::fp16:
      return "fp16";
    case KvFmt::int8:
      return "int8";
    case KvFmt::int4:
      return "int4";
  }
  return "?";
}

WeightFmt parse_weight_fmt(const std::string& s) {
  if (s == "fp16") return WeightFmt::fp16;
  if (s == "w4a16") return WeightFmt::w4a16;
  throw std::runtime_error(fmt::format("weight format '{}' is not one of fp16, w4a16", s));
}

KvFmt parse_kv_fmt(const std::string& s) {
  if (s == "fp16") return KvFmt::fp16;
  if (s == "int8") return KvFmt::int8;
  if (s == "int4") return KvFmt::int4;
  throw std::runtime_error(fmt::format("KV format '{}' is not one of fp16, int8, int4", s));
}

double linear_weight_bytes(int64_t in, int64_t out, WeightFmt f, int group_size) {
  if (f == WeightFmt::fp16) return kFp16 * double(in) * double(out);
  if (group_size <= 0)
    throw std::runtime_error(fmt::format("w4a16 group_size must be > 0, got {}", group_size));
  double groups = std::ceil(double(in) / group_size);  // per output column
  return 0.5 * double(in) * double(out) + groups * double(out) * kScaleZero;
}

double layer_weight_bytes(const ModelConfig& c, WeightFmt f, int g) {
  int64_t h = c.hidden;
  return linear_weight_bytes(h, c.qkv_dim(), f, g) + linear_weight_bytes(c.q_dim(), h, f, g) +
         linear_weight_bytes(h, 2 * int64_t(c.intermediate), f, g) +
         linear_weight_bytes(c.intermediate, h, f, g) + 2.0 * kFp16 * h;
}

double weight_bytes(const ModelConfig& c, WeightFmt f, int group_size) {
  double table = kFp16 * double(c.vocab) * c.hidden;
  return table + c.n_layers * layer_weight_bytes(c, f, group_size) + kFp16 * c.hidden +
         (c.tie_word_embeddings ? 0.0 : table);
}

double kv_bytes_per_token(const ModelConfig& c, KvFmt f) {
  return c.n_layers * kv_bytes_per_token_layer(c, f);
}

std::vector<OpCost> step_costs(const ModelConfig& c, const StepShape& s) {
  check_shape(c, s);
  const double H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), QKV = c.qkv_dim(), I = c.intermediate,
               V = c.vocab;
  const double n = s.new_tokens_per_seq;
  const double T = double(s.batch) * n;  // new tokens in the step
  const double R = s.batch;              // rows that reach the head: the last new position of each sequence
  const int g = s.group_size;

  // Visible (query, key) pairs per head and KV tokens read, over all sequences: query j (0-based)
  // of a sequence with context ctx sees ctx - n + 1 + j keys.
  double pairs = 0, kv_tokens = 0;
  for (int b = 0; b < s.batch; ++b) {
    double ctx = s.context.size() == 1 ? s.context[0] : s.context[b];
    pairs += n * (ctx - n) + n * (n + 1) / 2;
    kv_tokens += ctx;
  }

  std::vector<OpCost> ops;
  ops.reserve(4 + 9 * size_t(c.n_layers));
  auto gemm = [&](std::string name, int layer, double rows, double in, double out, WeightFmt f) {
    double bytes = linear_weight_bytes(int64_t(in), int64_t(out), f, g) + kAct * rows * (in + out);
    ops.push_back({std::move(name), layer, "gemm", 2.0 * rows * in * out, bytes});
  };
  auto norm = [&](std::string name, int layer, double rows, double activation_transfers, bool fused_add) {
    double flops = rows * H * (kNormFlops + (fused_add ? kResidualAddFlops : 0.0));
    ops.push_back(
        {std::move(name), layer, "norm", flops, kAct * rows * H * activation_transfers + kFp16 * H});
  };

  ops.push_back({"embed", -1, "embed", 0.0, T * kTokenId + T * H * kFp16 + T * H * kAct});
  for (int l = 0; l < c.n_layers; ++l) {
    auto name = [&](const char* op) { return fmt::format("layers.{}.{}", l, op); };
    if (l == 0) {
      norm(name("attention_norm"), l, T, 2.0, false);  // read embedding, write normed
    } else {
      norm(name("attention_norm"), l, T, 4.0, true);  // read x + residual, write residual + normed
    }
    gemm(name("wqkv"), l, T, H, QKV, s.weights);
    ops.push_back({name("rope_kv_write"), l, "elementwise", T * (Q + KV) * kRopeFlops,
                   kAct * T * QKV + kAct * T * Q + T * kv_bytes_per_token_layer(c, s.kv)});
    ops.push_back({name("attention"), l, "attention", c.n_heads * pairs * (4.0 * c.head_dim + kSoftmaxFlops),
                   kAct * T * Q + kv_tokens * kv_bytes_per_token_layer(c, s.kv) + kAct * T * Q});
    gemm(name("wo"), l, T, Q, H, s.weights);
    norm(name("ffn_norm"), l, T, 4.0, true);
    gemm(name("w13"), l, T, H, 2 * I, s.weights);
    ops.push_back({name("swiglu"), l, "elementwise", T * I * kSwigluFlops, kAct * T * 2 * I + kAct * T * I});
    gemm(name("w2"), l, T, I, H, s.weights);
  }
  norm("norm", -1, R, 3.0, true);  // read x + residual, write normed only
  gemm("output", -1, R, H, V, WeightFmt::fp16);
  ops.push_back({"sample", -1, "sample", R * V * kSampleFlops, kAct * R * V + kTokenId * R});
  return ops;
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

std::optional<double> predicted_ridge_batch(const ModelConfig& c, WeightFmt weights, int group_size, KvFmt kv,
                                            int context, const Ceilings& ceilings, const std::string& kind) {
  if (!(ceilings.peak_GBps > 0) || !(ceilings.peak_tflops > 0))
    throw std::runtime_error("predicted_ridge_batch: ceilings must be positive");
  auto totals = [&](int batch) {
    StepShape s{batch, {context}, 1, weights, group_size, kv};
    CostTotals t;
    for (const auto& op : step_costs(c, s))
      if (kind.empty() || op.kind == kind) t.add(op);
    if (t.count == 0)
      throw std::runtime_error(fmt::format("predicted_ridge_batch: no op of kind '{}'", kind));
    return t;
  };
  // flops(B) = f0 + B*f1, bytes(B) = w + B*b1 (f0 is 0: no op does work independent of the batch).
  CostTotals one = totals(1), two = totals(2);
  double f1 = two.flops - one.flops, b1 = two.bytes - one.bytes;
  double f0 = one.flops - f1, w = one.bytes - b1;
  double r = ceilings.ridge();
  // (f0 + B f1) / (w + B b1) = r  <=>  B = (r w - f0) / (f1 - r b1), a crossing only if f1 > r b1.
  if (!(f1 > r * b1)) return std::nullopt;
  return (r * w - f0) / (f1 - r * b1);
}

}  // namespace ridgeline
