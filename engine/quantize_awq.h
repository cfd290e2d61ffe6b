// Activation-aware weight quantization (AWQ, Lin et al. 2023) of InternLM2 layers, on the CPU.
//
// A few input channels of each linear carry much larger activations than the rest, and their
// weights matter most. AWQ multiplies those weight columns by s > 1 before 4-bit rounding (so they
// lose less to it) and divides the op that produces the linear's input by s, which leaves the float
// model unchanged: W x = (W diag(s)) (x / s). Per layer, with the float32 layer run over calibration
// text:
//   1. capture each linear's input on the calibration tokens (run_calibration_layer);
//   2. per group of linears sharing an input, s = mean|x|^alpha per input channel, normalised so that
//      max(s) * min(s) = 1, with alpha on a grid over [0, 1] chosen to minimise the group's output
//      error sum ||x W^T - (x/s) Q(W diag(s))^T||^2 on the calibration tokens (alpha = 0 is plain RTN,
//      so the choice is never worse than RTN there);
//   3. fold 1/s into the preceding op:
//        wqkv    <- attention_norm weight
//        wo      <- the V rows of wqkv. Under GQA one V channel feeds the same channel of every query
//                   head of its group, so wo's scales are tied across those heads (their statistics
//                   averaged) and each V row of wqkv's grouped layout [q(g heads), k, v] per KV head
//                   is divided once.
//        w1, w3  <- ffn_norm weight
//        w2      <- the rows of w3 (up): silu(gate) * up is linear in up
//        output  <- final norm weight (only with --quantize-head)
//   4. round to nearest (engine/quantize_rtn.h) afterwards, by the caller.
// The next layer's calibration input is this layer's float output (before scaling), as AutoAWQ does.
// Weight clipping search (AutoAWQ's auto_clip) is not done.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/formats.h"
#include "engine/weights.h"

namespace ridgeline {

struct AwqOptions {
  int group_size = kDefaultGroupSize;
  int grid = 20;                // alphas i/(grid-1), i = 0..grid-1
  int max_search_tokens = 512;  // calibration rows the error is measured on (evenly spaced)
  double fixed_alpha = -1;      // >= 0: every group takes this alpha, searched or not (tests of the folding)
};

// The residual stream of every calibration sequence as it enters the next layer.
struct Calibration {
  std::vector<int> lengths;     // tokens per sequence
  std::vector<float> residual;  // [rows, hidden], sequences one after another
  int64_t rows() const;
};

// Starts the stream: the embeddings of `sequences` (each a list of token ids, <s> included).
// Throws naming the token when an id lies outside the embedding table.
Calibration start_calibration(const HostTensor& tok_embeddings,
                              const std::vector<std::vector<int>>& sequences);

// What each linear of a layer sees on the calibration rows, row-major [rows, in].
struct LayerInputs {
  int64_t rows = 0;
  std::vector<float> wqkv;  // attention_norm output [rows, hidden]
  std::vector<float> wo;    // attention output [rows, q_dim]
  std::vector<float> w13;   // ffn_norm output [rows, hidden]
  std::vector<float> w2;    // silu(gate) * up [rows, intermediate]
};

// Runs `L` (float32) over the calibration rows, causal within each sequence from position 0, and
// returns its linears' inputs; `calib.residual` becomes the layer's output.
LayerInputs run_calibration_layer(const ModelConfig& c, const LayerWeights& L, Calibration& calib);

// The final norm of the stream: what the output head sees [rows, hidden].
std::vector<float> final_norm_rows(const ModelConfig& c, const HostTensor& norm, const Calibration& calib);

// One group's search result, for the report.
struct AwqChoice {
  std::string group;     // "wqkv", "wo", "w13", "w2", "output"
  double alpha = 0;      // chosen exponent
  double error_rtn = 0;  // output error of plain RTN (alpha = 0), summed squares per search row
  double error_awq = 0;  // output error at the chosen alpha
};

// Steps 2 and 3 for one layer: searches the four groups' scales on `x` and folds them into `L`'s
// weights in place (the float model it computes is unchanged, up to fp16 rounding of the norms,
// which the column scaling absorbs: see fold_into_norm in the .cpp). Returns the four choices.
std::vector<AwqChoice> awq_scale_layer(const ModelConfig& c, LayerWeights& L, const LayerInputs& x,
                                       const AwqOptions& o);

// The same for the output head: scales its columns, folding 1/s into the final norm. `x` is
// final_norm_rows() of the stream after the last layer.
AwqChoice awq_scale_head(const ModelConfig& c, HostTensor& norm, HostTensor& output,
                         const std::vector<float>& x, int64_t rows, const AwqOptions& o);

// --- the pieces the CPU search above and the GPU search (engine/cuda/awq_gpu.h) share -------------
// Both take the statistics, build the same candidate scales, pick the same way and fold with the
// same code; only where the activations and the error GEMMs run differs.

// The search rows: at most `most` of `rows`, evenly spaced (row k * rows / n of n).
std::vector<int64_t> awq_search_rows(int64_t rows, int64_t most);

// Mean |x| per column of x [rows, in], summed in double in row order.
std::vector<double> awq_mean_abs(const float* x, int64_t rows, int64_t in);

// wo's statistics tied across the query heads that read the same V channel (GQA), in place.
void awq_tie_wo_stats(const ModelConfig& c, std::vector<double>& stats);

// One point of a group's grid: alpha and its per-input-channel scales
// s = max(stats^alpha, 1e-4), normalised so that max(s) * min(s) = 1.
struct AwqCandidate {
  double alpha = 0;
  std::vector<float> scales;
};
// Every point of the grid for these statistics, alpha = 0 (plain RTN, the baseline) first.
std::vector<AwqCandidate> awq_candidates(const std::vector<double>& stats, const AwqOptions& o);

// A group's result: the chosen candidate, and the errors of RTN and of the choice.
struct AwqSearch {
  double alpha = 0;
  std::vector<float> scales;
  double error_rtn = 0, error_best = 0;  // summed over the search rows (not yet per row)
};
// The least-error candidate (the first wins ties; with fixed_alpha the last, the fixed one).
// `errors[k]` is candidate k's output error sum ||x W^T - (x/s) Q(W diag(s))^T||^2 over the group.
AwqSearch awq_pick(std::vector<AwqCandidate> candidates, const std::vector<double>& errors,
                   const AwqOptions& o);

// The four groups of a layer, searched on `rows` search rows.
struct AwqLayerSearch {
  AwqSearch wqkv, wo, w13, w2;
  int64_t rows = 0;
};
// Step 3 of the header comment: folds the four groups' scales into `L` in place; the choices for
// the report.
std::vector<AwqChoice> awq_fold_layer(const ModelConfig& c, LayerWeights& L, const AwqLayerSearch& s);
// The head's fold: output's columns take s, the final norm 1/s.
AwqChoice awq_fold_head(HostTensor& norm, HostTensor& output, const AwqSearch& s, int64_t rows);

}  // namespace ridgeline
