// The cost model: FLOPs and minimum DRAM bytes of every op of one forward step, by the op names of
// DESIGN.md (the same strings as NVTX ranges and the report), so that measured op times can be
// joined with it by name.
//
// Byte accounting (minimum traffic as implemented, each tensor touched once):
//  - weights: fp16 = 2 B per weight. w4a16 = 0.5 B per weight plus, for every group of `group_size`
//    consecutive input elements of every output column, an fp16 scale and an fp16 zero (2 + 2 B).
//    Embeddings, norm weights and the output head are always fp16 (DESIGN.md).
//  - activations: fp16, 2 B per element, read once by the op that consumes them and written once by
//    the op that produces them. Token ids and sampled tokens are int32 (4 B).
//  - norms are fused with the residual add: read x and the residual, write the residual and the
//    normed output, read the weight. Two exceptions: layers.0.attention_norm has no sublayer output to
//    add yet (reads the embedding, writes the normed output) and the final `norm` does not write the
//    residual back (nothing reads it again).
//  - KV cache per token, per layer, for K and for V, per KV head: fp16 2 B per element; int8 1 B per
//    element + an fp16 scale and zero (4 B); int4 0.5 B per element + 4 B.
//  - rope_kv_write reads q, k, v (the wqkv output), writes the rotated q and writes k, v into the cache.
//  - attention reads q, the whole KV context of every sequence (K and V, each KV head once: GQA query
//    heads of a group share it) and writes its output.
//  - norm, output and sample work on one row per sequence (the last new position): only those
//    logits are produced. The same holds for decode, where every sequence has one new token.
//
// FLOP accounting: 2 per multiply-add. GEMMs 2*rows*in*out; attention per query head per visible
// (query, key) pair 4*head_dim (QK^T and PV) + 5 for softmax; prefill counts only the causal
// triangle. Elementwise counts (small): norm 4 per element (+1 for the fused residual add), rope 6
// per rotated element (q and k), swiglu 5 per output element, sample 3 per vocabulary entry.
// Quantizing k, v into an int8/int4 cache and dequantizing weights are not counted as FLOPs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/roofline.h"
#include "engine/config.h"

namespace ridgeline {

enum class WeightFmt { fp16, w4a16 };
enum class KvFmt { fp16, int8, int4 };

const char* to_string(WeightFmt f);                // "fp16" | "w4a16"
const char* to_string(KvFmt f);                    // "fp16" | "int8" | "int4"
WeightFmt parse_weight_fmt(const std::string& s);  // throws naming the accepted values
KvFmt parse_kv_fmt(const std::string& s);

struct OpCost {
  std::string name;  // "embed", "layers.3.wqkv", ...
  int layer = -1;    // -1 for global ops (embed, norm, output, sample)
  std::string kind;  // gemm | attention | norm | elementwise | embed | sample
  double flops = 0;
  double bytes = 0;
  double intensity() const { return bytes > 0 ? flops / bytes : 0.0; }  // FLOP/B
};

struct StepShape {
  int batch = 1;
  // Per-sequence context length: tokens in the KV cache after this step, the new ones included.
  // One entry per sequence, or a single entry that every sequence shares.
  std::vector<int> context;
  int new_tokens_per_seq = 1;  // 1 = decode; > 1 = prefill (causal)
  WeightFmt weights = WeightFmt::fp16;
  int group_size = 128;  // w4a16 quantization group along the input dimension
  KvFmt kv = KvFmt::fp16;
};

// Every op of one forward step in forward order. Throws on an inconsistent shape.
std::vector<OpCost> step_costs(const ModelConfig& c, const StepShape& s);

struct CostTotals {
  double flops = 0;
  double bytes = 0;
  int count = 0;  // ops summed
  double intensity() const { return bytes > 0 ? flops / bytes : 0.0; }
  void add(const OpCost& op) {
    flops += op.flops;
    bytes += op.bytes;
    ++count;
  }
};

CostTotals total(const std::vector<OpCost>& ops);
// Per layer; key -1 holds the global ops.
std::map<int, CostTotals> totals_by_layer(const std::vector<OpCost>& ops);
// Per kind, in order of first appearance.
std::vector<std::pair<std::string, CostTotals>> totals_by_kind(const std::vector<OpCost>& ops);

// Bytes of the weights of one linear layer [in -> out] in the given format.
double linear_weight_bytes(int64_t in, int64_t out, WeightFmt f, int group_size);
// Bytes of one decoder layer's weights (wqkv, wo, w1, w3, w2 in `f`, the two norms fp16).
double layer_weight_bytes(const ModelConfig& c, WeightFmt f, int group_size);
// Bytes of all weights as stored: embeddings + layers + final norm + output head (not counted again
// when tied to the embeddings).
double weight_bytes(const ModelConfig& c, WeightFmt f, int group_size);
// KV-cache bytes one token occupies over all layers (K and V, scales and zeros included).
double kv_bytes_per_token(const ModelConfig& c, KvFmt f);

// The decode batch (continuous; fractional) at which the step's total intensity reaches
// `ceilings.ridge()`, every sequence holding `context` tokens. When `kind` is not empty only ops of
// that kind count (e.g. "gemm": the batch at which the weight GEMMs turn compute-bound).
// Every cost is affine in the batch at fixed context (weights read once, the rest per sequence),
// so the crossing is solved exactly from the costs at batch 1 and 2. nullopt when the intensity
// never reaches the ridge: its limit for large batches, per-sequence FLOPs over per-sequence bytes,
// stays below it (decode attention over a long context keeps the whole step memory-bound).
std::optional<double> predicted_ridge_batch(const ModelConfig& c, WeightFmt weights, int group_size, KvFmt kv,
                                            int context, const Ceilings& ceilings,
                                            const std::string& kind = "");

}  // namespace ridgeline
