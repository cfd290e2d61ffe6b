// The model contract: one InternLM2 forward step as an ordered list of ops, each with the tensors
// it reads and writes (name, storage type, shape), as the CUDA engine's kernels move them. Written
// once, here: the CPU and CUDA backends take their op names from it and run its ops in its order
// (tests check both), the cost model (analysis/cost_model.h) derives every op's bytes from its
// tensors, and the loaders' weight bytes are checked against weight_tensors().
//
//   embed
//   for each layer: attention_norm -> wqkv -> rope_kv_write -> attention -> wo
//                   -> ffn_norm -> w13 -> swiglu -> w2
//   norm -> output -> sample
//
// Fusions (StepShape::fusions) change that list where the CUDA backend folds small ops into its
// GEMVs (decode steps of <= 2 rows with fp16 weights, 1 row with w4a16; swiglu_in_w13 up to 16 fp16
// rows: cuda_fusions() says when). With
// swiglu_in_w13 the w13 GEMV writes act = silu(gate) * up itself: `w13` reads x and W13 and writes act, and
// there is no gate_up tensor and no `swiglu` op. With norm_in_gemv wo and w2 read and write the residual (no
// `proj`), wqkv and w13 read the residual and their norm weight instead of x, and the final `norm`
// only reads the residual: no attention_norm or ffn_norm (6 ops a layer with swiglu_in_w13 and
// norm_in_gemv). With rope_in_wqkv too (fp16 KV: fp16 weights, or w4a16 at one row) wqkv writes q and the K/V
// cache itself: no qkv tensor and no `rope_kv_write` op (5 ops a layer). Every other CUDA decode step has
// rope_in_attention: decode attention reads qkv, rotates q itself and writes the new K/V rows: no q
// tensor and no `rope_kv_write` op either. The CPU backend runs the unfused list (Fusions{}).
//
// Storage as the kernels keep it: the residual stream is float32, every other activation fp16,
// logits float32, token ids and indices int32; weights in the weight format (norms and embeddings
// always fp16), the output head in its own (Formats::head: fp16 unless the checkpoint holds it 4-bit);
// K and V in the KV format. A sublayer's output (`proj`) is
// added into the residual by the next norm, so every norm after the first reads and writes the
// residual; the final `norm` writes it back too. Each tensor is counted once per op even where a
// kernel re-reads it from L2 (prefill attention re-reads K/V per query tile; decode attention's
// split-K partials stay in L2 and are not listed). Decode batches are not padded here (the CUDA
// backend rounds a batch up to a power of two for its graphs).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/formats.h"

namespace ridgeline {

enum class OpType {
  embed,
  attention_norm,
  wqkv,
  rope_kv_write,
  attention,
  wo,
  ffn_norm,
  w13,
  swiglu,
  w2,
  norm,
  output,
  sample
};
enum class OpKind { gemm, attention, norm, elementwise, embed, sample };

const char* to_string(OpKind k);  // "gemm" | "attention" | "norm" | "elementwise" | "embed" | "sample"
OpKind kind_of(OpType t);
// The report / NVTX name: "embed", "layers.3.wqkv", ..., "norm", "output", "sample".
std::string op_name(OpType t, int layer = -1);
// The per-layer ops, in forward order (attention_norm .. w2).
const std::vector<OpType>& layer_op_types();

// Every op name of a model, formatted once: backends pass them to NVTX and hooks on every step.
class OpNames {
 public:
  explicit OpNames(int n_layers);
  const std::string& operator()(OpType t, int layer = -1) const;
  const std::string& layer(int l) const { return layers_.at(l); }  // "layers.3", for the layer's NVTX range

 private:
  std::vector<std::string> names_;  // [layer + 1][type]; row 0 holds the global ops
  std::vector<std::string> layers_;
};

// How a tensor is stored. q8 / q4: integer codes (q4 two per byte) with an fp16 scale and an fp16
// zero for every `group` consecutive elements along the last dimension.
enum class Dtype { f32, f16, i32, q8, q4 };

struct Tensor {
  std::string name;  // "residual", "layers.3.wqkv.weight", "layers.3.k_cache", ...
  Dtype dtype = Dtype::f16;
  std::vector<int64_t> shape;  // row-major; a Linear's weight is [out, in]
  int64_t group = 0;           // q8 / q4: elements per (scale, zero) pair along the last dimension
};

int64_t numel(const Tensor& t);
int64_t bytes(const Tensor& t);  // codes + scales and zeros for q8 / q4

struct Op {
  OpType type = OpType::embed;
  int layer = -1;  // -1 for embed, norm, output, sample
  std::string name;
  OpKind kind = OpKind::embed;
  std::vector<Tensor> reads, writes;
  int64_t bytes() const;  // every tensor read and written, once
};

// Small ops a backend folds into a neighbouring op for a step; the op table lists the ops that run.
struct Fusions {
  bool swiglu_in_w13 = false;  // the w13 GEMV applies SwiGLU in its epilogue: no swiglu op
  // wo and w2 add their output into the residual in their epilogue, and the GEMV after each layer
  // norm (wqkv, w13) computes the RMSNorm of the residual rows in its prologue: no attention_norm or
  // ffn_norm op. The final norm stays a launch (without the add): the head's ~11k blocks would each
  // re-read the row from L2 (230 MB at 1.8b), more than the one launch it would save.
  bool norm_in_gemv = false;
  // wqkv (behind its norm prologue) does rope_kv_write's work in its epilogue: it reads the step's
  // slots, positions and block-table entries and writes q and the new K/V rows instead of qkv: no
  // rope_kv_write op. fp16 KV only (an int8/int4 row's scale needs a whole head, which no GEMV block
  // holds); fp16 weights, and w4a16 at one row, where the register kernel pairs the RoPE strips
  // (cuda_fusions).
  bool rope_in_wqkv = false;
  // Decode attention does rope_kv_write's work (kernels/decode_attention.cu, DecodeAttentionRope): it
  // reads qkv instead of q, rotates q in its prologue and writes each sequence's new K/V row (the
  // CTA whose context split holds it) before streaming the cache, reading a RoPE table per sequence
  // (dynamic NTK gives sequences of one step different bases): no q tensor and no rope_kv_write op.
  // Decode steps without rope_in_wqkv, any KV format and batch, head_dim 64 or 128 (decode
  // attention's): the launch cost 5.7-6.7 us a layer at B=1 with an int8/int4 cache (H200).
  bool rope_in_attention = false;
  bool operator==(const Fusions&) const = default;
};

// The KV-cache block of the CUDA backend (the block table costs one int32 per block read).
inline constexpr int kDefaultKvBlockSize = 64;

struct StepShape {
  int batch = 1;
  // Per-sequence context length: tokens in the KV cache after this step, the new ones included.
  // One entry per sequence, or a single entry that every sequence shares.
  std::vector<int> context{1};
  int new_tokens_per_seq = 1;  // 1 = decode; > 1 = prefill (causal)
  Formats formats;
  int kv_block_size = kDefaultKvBlockSize;
  Fusions fusions{};  // none by default (the CPU backend's list); cuda_fusions() for the CUDA backend
  // A prefill the backend runs in chunks of this many rows (Backend::prefill_chunk_tokens(); 0: one
  // pass). The op table stays the one step's; the cost model adds what the chunks read again.
  int prefill_chunk_tokens = 0;
};

// The fusions the CUDA backend applies to a step of this shape: a decode step whose batch the
// backend runs as at most kCudaFusedRows rows (its bucket: the next power of two), where every linear
// goes through a ridgeline GEMV (fp16 weights: kernels/gemv.cu, hidden a multiple of 8; w4a16:
// kernels/w4a16_gemv.cu, one row only, SwiGLU, the norms and, with an fp16 cache, RoPE); and
// fp16 decode batches of up to kCudaTcSwigluRows rows, whose w13 runs SwiGLU in its epilogue
// (kernels/gemv_tc.cu, hidden a multiple of 32); and every decode step whose wqkv does not take
// RoPE, whose attention does (rope_in_attention, head_dim 64 or 128). Both the
// backend's run_step and the reports ask this one function, so the op table a report prints for a CUDA run is
// the list of ops that ran.
inline constexpr int kCudaFusedRows = 2;
inline constexpr int kCudaTcSwigluRows = 16;  // fp16 w13 with SwiGLU on tensor cores (kernels/gemv_tc.cu)
inline constexpr int kCudaFusedMaxNormDim = 8192;     // the normed rows fit the GEMV's 48 KB of shared memory
inline constexpr int kCudaFusedMaxRopeHeadDim = 256;  // the RoPE epilogue's inverse-frequency table
inline constexpr int kCudaFusedRopeHeadDimMultiple = 32;  // a W4A16 block's strip pair: 2 x 16 dims
Fusions cuda_fusions(const ModelConfig& c, const StepShape& s);

// Every op of one forward step in forward order. Throws std::invalid_argument on an inconsistent
// shape (naming the field).
std::vector<Op> step_ops(const ModelConfig& c, const StepShape& s);

// The weights as the engine stores them: tok_embeddings, then per layer attention_norm, wqkv, wo,
// ffn_norm, w13 (gate and up stacked: one GEMM), w2, then norm and output (in Formats::head; absent
// when tied to the embeddings, which only an fp16 head is).
std::vector<Tensor> weight_tensors(const ModelConfig& c, const Formats& f);
int64_t weight_bytes(const ModelConfig& c, const Formats& f);
// Bytes of one linear's weight [out, in] in the given format.
int64_t linear_weight_bytes(int64_t in, int64_t out, const Formats& f);
// KV-cache bytes one token takes over all layers (K and V, scales and zeros included).
int64_t kv_bytes_per_token(const ModelConfig& c, KvFormat f);

}  // namespace ridgeline
