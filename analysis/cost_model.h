// The cost model: FLOPs and DRAM bytes of every op of one forward step, by the op names of the op
// table (engine/ops.h: the same strings as NVTX ranges and the report), so that measured op times
// can be joined with it by name.
//
// Bytes come from the op table's tensors: every tensor an op's kernel reads or writes, once, in the
// format it is stored in (float32 residual, fp16 activations, float32 logits, int32 indices, weights
// and KV cache in their formats with scales and zeros). See engine/ops.h for what each op touches.
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
#include "engine/formats.h"
#include "engine/ops.h"

namespace ridgeline {

struct OpCost {
  std::string name;  // "embed", "layers.3.wqkv", ...
  int layer = -1;    // -1 for global ops (embed, norm, output, sample)
  std::string kind;  // gemm | attention | norm | elementwise | embed | sample
  double flops = 0;
  double bytes = 0;
  double intensity() const { return bytes > 0 ? flops / bytes : 0.0; }  // FLOP/B
};

// FLOPs of one op of the op table, for the step it belongs to.
double op_flops(const ModelConfig& c, const StepShape& s, const Op& op);

// How a prefill of `batch` empty sequences of `new_tokens` each runs in chunks of `chunk` rows, packed
// in sequence order as the CUDA backend packs them (run_prefill): a sequence may continue into the
// next chunk, whose piece then attends to (re-reads) its earlier K/V rows; the head runs only in
// chunks where a sequence ends. chunk <= 0: one pass.
struct PrefillChunks {
  int chunks = 1;                // passes, each reading every layer weight and the final norm's
  int head_chunks = 1;           // passes that run the output head (a sequence ends there)
  int64_t kv_reread_tokens = 0;  // K/V rows read again, over the sequences: the earlier pieces' ends
};
PrefillChunks prefill_chunks(int batch, int new_tokens, int chunk);

// Every op of one forward step in forward order. Throws on an inconsistent shape. A prefill run in
// chunks (s.prefill_chunk_tokens) keeps the step's ops, each with what the chunks read again: its
// weights once more per extra chunk (the head per extra chunk that runs it) and, for attention, the
// K/V rows the continued sequences re-read; FLOPs are the step's.
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

// The decode batch (continuous; fractional) at which the step's total intensity reaches
// `ceilings.ridge()`, every sequence holding `context` tokens. When `kind` is not empty only ops of
// that kind count (e.g. "gemm": the batch at which the weight GEMMs turn compute-bound).
// Every cost is affine in the batch at fixed context (weights read once, the rest per sequence),
// so the crossing is solved exactly from the costs at batch 1 and 2. nullopt when the intensity
// never reaches the ridge: its limit for large batches, per-sequence FLOPs over per-sequence bytes,
// stays below it (decode attention over a long context keeps the whole step memory-bound).
// `cuda`: the op table of the CUDA backend's steps (cuda_fusions), which changes with the batch up to
// kCudaTcSwigluRows rows; the crossing is solved from two batches above that (exact for a crossing
// there, as every ridge the H200 reports show; below it, the affine fit of the larger batches).
std::optional<double> predicted_ridge_batch(const ModelConfig& c, const Formats& formats, int context,
                                            const Ceilings& ceilings, const std::string& kind = "",
                                            bool cuda = false);

}  // namespace ridgeline
