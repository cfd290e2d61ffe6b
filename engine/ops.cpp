#include "engine/ops.h"

#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {
namespace {

constexpr int64_t kScaleZeroBytes = 4;  // an fp16 scale and an fp16 zero

Tensor plain(std::string name, Dtype dtype, std::vector<int64_t> shape) {
  return Tensor{std::move(name), dtype, std::move(shape), 0};
}

Tensor weight_as(std::string name, int64_t out, int64_t in, WeightFormat format, int group) {
  if (format == WeightFormat::fp16) return plain(std::move(name), Dtype::f16, {out, in});
  return Tensor{std::move(name), Dtype::q4, {out, in}, group};
}

Tensor weight(std::string name, int64_t out, int64_t in, const Formats& f) {
  return weight_as(std::move(name), out, in, f.weights, f.group_size);
}

// The output head [vocab, hidden]: the embeddings when tied, else output.weight in the head's format
// (a 4-bit head is a tensor of its own even where the source model tied it: the quantizer unties it).
Tensor head_weight(const ModelConfig& c, const Formats& f) {
  if (c.tie_word_embeddings && f.head == WeightFormat::fp16)
    return plain("tok_embeddings", Dtype::f16, {c.vocab, c.hidden});
  return weight_as("output.weight", c.vocab, c.hidden, f.head, f.group_size);
}

bool head_stored(const ModelConfig& c, const Formats& f) {
  return !c.tie_word_embeddings || f.head != WeightFormat::fp16;
}

Tensor kv_tensor(std::string name, KvFormat f, int64_t tokens, const ModelConfig& c) {
  std::vector<int64_t> shape{tokens, c.n_kv_heads, c.head_dim};
  switch (f) {
    case KvFormat::fp16:
      return plain(std::move(name), Dtype::f16, std::move(shape));
    case KvFormat::int8:
      return Tensor{std::move(name), Dtype::q8, std::move(shape), c.head_dim};
    case KvFormat::int4:
      return Tensor{std::move(name), Dtype::q4, std::move(shape), c.head_dim};
  }
  throw std::logic_error("kv_tensor: unknown KV format");
}

void check_shape(const ModelConfig& c, const StepShape& s) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("step shape: " + what); };
  if (c.hidden <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.intermediate <= 0 || c.vocab <= 0)
    fail(fmt::format("model config '{}' has a non-positive dimension", c.name));
  if (s.batch <= 0) fail(fmt::format("batch must be > 0, got {}", s.batch));
  if (s.new_tokens_per_seq <= 0)
    fail(fmt::format("new_tokens_per_seq must be > 0, got {}", s.new_tokens_per_seq));
  if (s.context.size() != 1 && s.context.size() != static_cast<size_t>(s.batch))
    fail(fmt::format("{} context lengths for a batch of {} (give 1 or {})", s.context.size(), s.batch,
                     s.batch));
  for (int ctx : s.context)
    if (ctx < s.new_tokens_per_seq)
      fail(fmt::format("context {} is shorter than the {} new tokens it must include", ctx,
                       s.new_tokens_per_seq));
  if ((s.formats.weights == WeightFormat::w4a16 || s.formats.head == WeightFormat::w4a16) &&
      s.formats.group_size <= 0)
    fail(fmt::format("w4a16 group_size must be > 0, got {}", s.formats.group_size));
  if (s.kv_block_size <= 0) fail(fmt::format("kv_block_size must be > 0, got {}", s.kv_block_size));
}

}  // namespace

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::gemm:
      return "gemm";
    case OpKind::attention:
      return "attention";
    case OpKind::norm:
      return "norm";
    case OpKind::elementwise:
      return "elementwise";
    case OpKind::embed:
      return "embed";
    case OpKind::sample:
      return "sample";
  }
  return "?";
}

OpKind kind_of(OpType t) {
  switch (t) {
    case OpType::embed:
      return OpKind::embed;
    case OpType::attention_norm:
    case OpType::ffn_norm:
    case OpType::norm:
      return OpKind::norm;
    case OpType::wqkv:
    case OpType::wo:
    case OpType::w13:
    case OpType::w2:
    case OpType::output:
      return OpKind::gemm;
    case OpType::rope_kv_write:
    case OpType::swiglu:
      return OpKind::elementwise;
    case OpType::attention:
      return OpKind::attention;
    case OpType::sample:
      return OpKind::sample;
  }
  throw std::logic_error("kind_of: unknown op");
}

std::string op_name(OpType t, int layer) {
  const char* base = "?";
  switch (t) {
    case OpType::embed:
      return "embed";
    case OpType::norm:
      return "norm";
    case OpType::output:
      return "output";
    case OpType::sample:
      return "sample";
    case OpType::attention_norm:
      base = "attention_norm";
      break;
    case OpType::wqkv:
      base = "wqkv";
      break;
    case OpType::rope_kv_write:
      base = "rope_kv_write";
      break;
    case OpType::attention:
      base = "attention";
      break;
    case OpType::wo:
      base = "wo";
      break;
    case OpType::ffn_norm:
      base = "ffn_norm";
      break;
    case OpType::w13:
      base = "w13";
      break;
    case OpType::swiglu:
      base = "swiglu";
      break;
    case OpType::w2:
      base = "w2";
      break;
  }
  if (layer < 0) throw std::invalid_argument(fmt::format("op_name: {} needs a layer", base));
  return fmt::format("layers.{}.{}", layer, base);
}

const std::vector<OpType>& layer_op_types() {
  static const std::vector<OpType> types{
      OpType::attention_norm, OpType::wqkv, OpType::rope_kv_write, OpType::attention, OpType::wo,
      OpType::ffn_norm,       OpType::w13,  OpType::swiglu,        OpType::w2};
  return types;
}

namespace {
constexpr int kOpTypes = int(OpType::sample) + 1;
}  // namespace

OpNames::OpNames(int n_layers) : names_(size_t(n_layers + 1) * kOpTypes) {
  for (OpType t : {OpType::embed, OpType::norm, OpType::output, OpType::sample}) names_[int(t)] = op_name(t);
  for (int l = 0; l < n_layers; ++l) {
    layers_.push_back(fmt::format("layers.{}", l));
    for (OpType t : layer_op_types()) names_[size_t(l + 1) * kOpTypes + int(t)] = op_name(t, l);
  }
}

const std::string& OpNames::operator()(OpType t, int layer) const {
  const size_t i = size_t(layer + 1) * kOpTypes + int(t);
  if (layer < -1 || i >= names_.size() || names_[i].empty())
    throw std::out_of_range(fmt::format("no op {} in layer {}", int(t), layer));
  return names_[i];
}

int64_t numel(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

int64_t bytes(const Tensor& t) {
  const int64_t n = numel(t);
  switch (t.dtype) {
    case Dtype::f32:
    case Dtype::i32:
      return 4 * n;
    case Dtype::f16:
      return 2 * n;
    case Dtype::q8:
    case Dtype::q4: {
      if (t.group <= 0 || t.shape.empty())
        throw std::invalid_argument(t.name + ": a quantized tensor needs a group");
      const int64_t last = t.shape.back();
      const int64_t rows = last > 0 ? n / last : 0;
      const int64_t groups = rows * ((last + t.group - 1) / t.group);
      const int64_t codes = t.dtype == Dtype::q8 ? n : (n + 1) / 2;
      return codes + groups * kScaleZeroBytes;
    }
  }
  throw std::logic_error("bytes: unknown dtype");
}

int64_t Op::bytes() const {
  int64_t b = 0;
  for (const Tensor& t : reads) b += ridgeline::bytes(t);
  for (const Tensor& t : writes) b += ridgeline::bytes(t);
  return b;
}

std::vector<Op> step_ops(const ModelConfig& c, const StepShape& s) {
  check_shape(c, s);
  const int64_t H = c.hidden, Q = c.q_dim(), QKV = c.qkv_dim(), I = c.intermediate, V = c.vocab;
  const int64_t B = s.batch, n = s.new_tokens_per_seq, T = B * n;
  const bool decode = n == 1;
  const Formats& f = s.formats;
  const bool fuse_norm = s.fusions.norm_in_gemv;
  if (s.fusions.rope_in_attention && (!decode || s.fusions.rope_in_wqkv))
    throw std::invalid_argument(
        "step shape: rope_in_attention is a decode step's fusion and excludes rope_in_wqkv (one op writes "
        "the new K/V rows)");
  const bool rope_in_attention = s.fusions.rope_in_attention;

  int64_t kv_tokens = 0, table_entries = 0;  // over all sequences: tokens attended, block-table entries
  for (int64_t b = 0; b < B; ++b) {
    const int64_t ctx = s.context.size() == 1 ? s.context[0] : s.context[b];
    kv_tokens += ctx;
    table_entries += (ctx + s.kv_block_size - 1) / s.kv_block_size;
  }

  const Tensor residual = plain("residual", Dtype::f32, {T, H});
  const Tensor x = plain("x", Dtype::f16, {T, H});
  const Tensor proj = plain("proj", Dtype::f16, {T, H});
  const Tensor ids = plain("ids", Dtype::i32, {T});
  const Tensor slots = plain("slots", Dtype::i32, {T});
  const Tensor positions = plain("positions", Dtype::i32, {T});

  std::vector<Op> ops;
  ops.reserve(4 + layer_op_types().size() * size_t(c.n_layers));
  auto add = [&](OpType t, int layer, std::vector<Tensor> reads, std::vector<Tensor> writes) {
    ops.push_back(Op{t, layer, op_name(t, layer), kind_of(t), std::move(reads), std::move(writes)});
  };

  add(OpType::embed, -1, {ids, plain("tok_embeddings", Dtype::f16, {T, H})}, {residual});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    const Tensor k_new = kv_tensor(p + "k_cache", f.kv, T, c), v_new = kv_tensor(p + "v_cache", f.kv, T, c);
    const Tensor k_ctx = kv_tensor(p + "k_cache", f.kv, kv_tokens, c);
    const Tensor v_ctx = kv_tensor(p + "v_cache", f.kv, kv_tokens, c);
    const Tensor table = plain("block_table", Dtype::i32, {table_entries});
    const Tensor q = plain("q", Dtype::f16, {T, Q}), attn = plain("attn", Dtype::f16, {T, Q});
    const Tensor gate_up = plain("gate_up", Dtype::f16, {T, 2 * I});
    const Tensor attention_norm_w = plain(p + "attention_norm.weight", Dtype::f16, {H});
    const Tensor ffn_norm_w = plain(p + "ffn_norm.weight", Dtype::f16, {H});
    const Tensor act = plain("act", Dtype::f16, {T, I});
    // A GEMV that normalizes its input reads the residual and the norm weight instead of x.
    auto input = [&](const Tensor& norm_weight) {
      return fuse_norm ? std::vector<Tensor>{residual, norm_weight} : std::vector<Tensor>{x};
    };
    auto with = [](std::vector<Tensor> ts, const Tensor& t) {
      ts.push_back(t);
      return ts;
    };

    if (!fuse_norm) {
      if (l == 0)  // nothing to add yet: reads the embedding, leaves the residual as it is
        add(OpType::attention_norm, l, {residual, attention_norm_w}, {x});
      else
        add(OpType::attention_norm, l, {residual, proj, attention_norm_w}, {residual, x});
    }
    const Tensor wqkv = weight(p + "wqkv.weight", QKV, H, f);
    const Tensor qkv = plain("qkv", Dtype::f16, {T, QKV});
    const std::vector<Tensor> rope_inputs{slots, positions, plain("block_table", Dtype::i32, {T})};
    if (s.fusions.rope_in_wqkv) {  // wqkv rotates q and k and writes them (and v) where they go
      std::vector<Tensor> reads = with(input(attention_norm_w), wqkv);
      reads.insert(reads.end(), rope_inputs.begin(), rope_inputs.end());
      add(OpType::wqkv, l, std::move(reads), {q, k_new, v_new});
    } else {
      add(OpType::wqkv, l, with(input(attention_norm_w), wqkv), {qkv});
      if (!rope_in_attention) {
        std::vector<Tensor> reads{qkv};
        reads.insert(reads.end(), rope_inputs.begin(), rope_inputs.end());
        add(OpType::rope_kv_write, l, std::move(reads), {q, k_new, v_new});
      }
    }
    const Tensor seq_slots = plain("slots", Dtype::i32, {B}),
                 context_lens = plain("context_lens", Dtype::i32, {B});
    if (rope_in_attention)  // the new token's position is context_lens - 1 and its block-table entry
                            // one of `table`'s: what attention reads anyway; plus a RoPE table per row
      add(OpType::attention, l,
          {qkv, seq_slots, context_lens, table, k_ctx, v_ctx,
           plain("rope_inv_freq", Dtype::f32, {B, c.head_dim / 2})},
          {attn, k_new, v_new});
    else if (decode)
      add(OpType::attention, l, {q, seq_slots, context_lens, table, k_ctx, v_ctx}, {attn});
    else
      add(OpType::attention, l, {q, slots, positions, table, k_ctx, v_ctx}, {attn});
    if (fuse_norm) {  // the sublayer's output goes straight into the residual
      add(OpType::wo, l, {attn, weight(p + "wo.weight", H, Q, f), residual}, {residual});
    } else {
      add(OpType::wo, l, {attn, weight(p + "wo.weight", H, Q, f)}, {proj});
      add(OpType::ffn_norm, l, {residual, proj, ffn_norm_w}, {residual, x});
    }
    const Tensor w13 = weight(p + "w13.weight", 2 * I, H, f);
    if (s.fusions.swiglu_in_w13) {
      add(OpType::w13, l, with(input(ffn_norm_w), w13), {act});
    } else {
      add(OpType::w13, l, with(input(ffn_norm_w), w13), {gate_up});
      add(OpType::swiglu, l, {gate_up}, {act});
    }
    if (fuse_norm)
      add(OpType::w2, l, {act, weight(p + "w2.weight", H, I, f), residual}, {residual});
    else
      add(OpType::w2, l, {act, weight(p + "w2.weight", H, I, f)}, {proj});
  }
  const Tensor final_norm_w = plain("norm.weight", Dtype::f16, {H});
  if (fuse_norm)  // the last w2 added into the residual already; the head stays a plain GEMV
    add(OpType::norm, -1, {residual, final_norm_w}, {x});
  else
    add(OpType::norm, -1, {residual, proj, final_norm_w}, {residual, x});

  // Only the last new row of each sequence reaches the head. In a prefill of several sequences
  // those rows are first gathered into a contiguous buffer.
  const Tensor head_rows = plain("x", Dtype::f16, {B, H});
  const Tensor head = head_weight(c, f);
  const Tensor logits = plain("logits", Dtype::f32, {B, V});
  if (!decode && B > 1) {
    const Tensor head_in = plain("head_in", Dtype::f16, {B, H});
    add(OpType::output, -1, {head_rows, head_in, head}, {head_in, logits});
  } else {
    add(OpType::output, -1, {head_rows, head}, {logits});
  }
  add(OpType::sample, -1, {logits}, {plain("tokens", Dtype::i32, {B})});
  return ops;
}

Fusions cuda_fusions(const ModelConfig& c, const StepShape& s) {
  Fusions f;
  const bool decode = s.new_tokens_per_seq == 1;
  // The backend pads a decode batch to the next power of two: 1 -> 1, 2 -> 2, 3 -> 4.
  const bool gemv_rows = s.batch >= 1 && s.batch <= kCudaFusedRows;
  // Every fused GEMV's input (hidden, q_dim for wo, intermediate for w2) a whole number of 16-byte vectors.
  const bool shapes = c.hidden > 0 && c.hidden % 8 == 0 && c.intermediate > 0 && c.intermediate % 8 == 0 &&
                      c.q_dim() % 8 == 0;
  const bool norm_fits = c.hidden <= kCudaFusedMaxNormDim;
  // fp16: gemv_fused and gemv_swiglu (kernels/gemv.cu). w4a16: w4a16_gemv_fused, whose SwiGLU runs only
  // behind its norm prologue and pairs 16-row strips of gate and up, at one row only: at two its
  // prologue normalizes both rows in turn and the fused wqkv and w13 lost to add_rmsnorm + GEMV
  // (+ swiglu) on both presets (BM_W4A16Fusions, H200, perf/NOTES.md), while at one row the fused step
  // is 7% (1.8b) and 5% (7b) faster.
  const bool fp16 = s.formats.weights == WeightFormat::fp16;
  const bool w4a16 =
      s.formats.weights == WeightFormat::w4a16 && s.batch == 1 && norm_fits && c.intermediate % 16 == 0;
  // Above kCudaFusedRows, up to kCudaTcSwigluRows, fp16 weights only: the tensor-core GEMV's SwiGLU
  // epilogue (gemv_tc_swiglu, inputs a multiple of 32); the norms and RoPE stay their own launches.
  const bool tc_rows = fp16 && s.batch > kCudaFusedRows && s.batch <= kCudaTcSwigluRows && c.hidden % 32 == 0;
  f.swiglu_in_w13 = decode && shapes && ((gemv_rows && (fp16 || w4a16)) || tc_rows);
  f.norm_in_gemv = decode && gemv_rows && shapes && (fp16 || w4a16) && norm_fits;
  // The RoPE epilogue (kernels/rope.cuh): a gemv_fused warp holds dims d and d + head_dim/2 of a
  // head, so no rotation crosses warps; fp16 KV only (fp16 7b B=1 4.323 -> 4.228 ms). w4a16 weights:
  // w4a16_gemv_fused's register kernel pairs the two 16-row strips in one warp, its warps taking at
  // most 4 groups of the pair (H200, w4a16 B=1 ctx 1024: 1.8b 0.765 -> 0.727 ms, 7b 1.930 -> 1.889).
  f.rope_in_wqkv = f.norm_in_gemv && s.formats.kv == KvFormat::fp16 &&
                   c.head_dim % kCudaFusedRopeHeadDimMultiple == 0 && c.head_dim <= kCudaFusedMaxRopeHeadDim;
  // Every other decode step rotates and writes in decode attention (kernels/decode_attention.cu), for
  // the head_dims it runs (64, 128: a lane holds both halves of its RoPE pairs and a quantized row's
  // lanes are a power-of-two group). With an int8/int4 cache rope_kv_write took 5.7-6.7 us a layer
  // (H200; 137 us of a 1.8b B=1 step, 201 us of a 7b one), which made those steps slower than fp16-KV
  // ones although they read fewer bytes.
  f.rope_in_attention = decode && !f.rope_in_wqkv && (c.head_dim == 64 || c.head_dim == 128) &&
                        c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0 && c.n_heads / c.n_kv_heads <= 8;
  return f;
}

std::vector<Tensor> weight_tensors(const ModelConfig& c, const Formats& f) {
  const int64_t H = c.hidden, Q = c.q_dim(), QKV = c.qkv_dim(), I = c.intermediate, V = c.vocab;
  std::vector<Tensor> w;
  w.push_back(plain("tok_embeddings", Dtype::f16, {V, H}));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    w.push_back(plain(p + "attention_norm.weight", Dtype::f16, {H}));
    w.push_back(weight(p + "wqkv.weight", QKV, H, f));
    w.push_back(weight(p + "wo.weight", H, Q, f));
    w.push_back(plain(p + "ffn_norm.weight", Dtype::f16, {H}));
    w.push_back(weight(p + "w13.weight", 2 * I, H, f));
    w.push_back(weight(p + "w2.weight", H, I, f));
  }
  w.push_back(plain("norm.weight", Dtype::f16, {H}));
  if (head_stored(c, f)) w.push_back(head_weight(c, f));
  return w;
}

int64_t weight_bytes(const ModelConfig& c, const Formats& f) {
  int64_t b = 0;
  for (const Tensor& t : weight_tensors(c, f)) b += bytes(t);
  return b;
}

int64_t linear_weight_bytes(int64_t in, int64_t out, const Formats& f) {
  return bytes(weight("linear", out, in, f));
}

int64_t kv_bytes_per_token(const ModelConfig& c, KvFormat f) {
  return int64_t{c.n_layers} * 2 * bytes(kv_tensor("kv", f, 1, c));
}

}  // namespace ridgeline
