// Launchers of every CUDA op of the engine, one per concern, each implemented in its own
// kernels/<op>.cu next to a header comment giving what it computes, its FLOPs and bytes, and the
// bound it aims at. The bytes there are the op table's tensors (engine/ops.h), which the cost model,
// the sweep and the microbenchmarks count. Every launcher checks its shape contract (throwing
// std::invalid_argument with the op name), enqueues on `stream`, never synchronizes, and checks the launch
// (RL_CUDA_CHECK).
//
// Conventions: activations row-major [tokens, dim]; a Linear's weight is [out, in] (y = x W^T);
// the residual stream is float32 (fp16 would lose the small updates of late layers), GEMM inputs
// and outputs fp16, logits float32.
//
// Paged KV cache (one per layer): K and V pools of `num_blocks` blocks of block_bytes() each. A
// sequence owns the blocks listed in its row of the block table ([max_seqs, max_blocks_per_seq]
// int32); token position p of sequence s lives in block block_table[s][p / block_size], slot
// p % block_size. Inside a block, per KV head h, the slots' rows are one contiguous run that a warp
// streams, cut into 16-byte units: unit (h, slot group j, chunk c) holds dims [8c, 8c+8) of the
// tokens_per_unit() consecutive slots j*T .. j*T+T-1 (T = 16 / bits), so one 16-byte load gives a
// lane the same 8 dims of T tokens:
//   fp16 (bits 16, T 1): [n_kv_heads][block_size][head_dim] fp16, plain rows (unit = 8 halves).
//   int8 (bits 8,  T 2): codes [n_kv_heads][block_size/2][head_dim/8][2 tokens][8 codes, 1 byte each]
//   int4 (bits 4,  T 4): codes [n_kv_heads][block_size/4][head_dim/8][4 tokens][8 codes, 4 bytes:
//                        dim 8c+e at byte e/2, low nibble for even e]
//   then, for int8/int4, [n_kv_heads][block_size] half2 (scale, zero) after the codes: element x of
//   (token, head) reads back as code*scale + zero (ref::quantize_kv: LMDeploy's quant_policy 8 / 4).
// block_bytes() is therefore n_kv*block_size*(head_dim*bits/8 + (bits < 16 ? 4 : 0)): the op
// table's K (or V) bytes per token (engine/ops.h) times block_size.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace ridgeline::cuda {

struct KvCacheView {
  void* k = nullptr;                 // K pool: num_blocks blocks of block_bytes()
  void* v = nullptr;                 // V pool: same
  const int* block_table = nullptr;  // [max_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int block_size = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int bits = 16;  // 16: fp16 values; 8 / 4: codes with an fp16 (scale, zero) per (token, KV head)

  __host__ __device__ int tokens_per_unit() const { return 16 / bits; }
  // Bytes of the codes (or fp16 values) of one block, all heads; the scales follow them.
  __host__ __device__ int64_t codes_bytes() const {
    return int64_t{n_kv_heads} * block_size * head_dim * bits / 8;
  }
  __host__ __device__ int64_t block_bytes() const {
    return codes_bytes() + (bits < 16 ? int64_t{n_kv_heads} * block_size * 4 : 0);
  }
  // Byte offset, inside a block, of the 16-byte unit holding dims [8*chunk, 8*chunk+8) of `slot`
  // (and of the other slots of its group) for KV head `head`; token slot % T's part of it starts
  // (slot % T) * bits bytes further (8 codes of bits/8 bytes).
  __host__ __device__ int64_t unit_offset(int head, int slot, int chunk) const {
    const int t = tokens_per_unit();
    return ((int64_t{head} * (block_size / t) + slot / t) * (head_dim / 8) + chunk) * 16;
  }
  // Byte offset, inside a block, of the half2 (scale, zero) of (head, slot); int8/int4 only.
  __host__ __device__ int64_t scale_offset(int head, int slot) const {
    return codes_bytes() + (int64_t{head} * block_size + slot) * 4;
  }
};

// fill_kv_synthetic: random, valid contents for blocks [first_block, first_block + n_blocks) of
// one pool (`pool` is cache.k or cache.v), for benchmarks that need a long context without
// prefilling it: fp16 values in [-1, 1); int8/int4 codes of random bytes with per-row scales and
// zeros that read back in about [-1, 1.25] (never a zero scale). Deterministic in (seed, stream_id,
// word of the pool).
void fill_kv_synthetic(const KvCacheView& cache, void* pool, int64_t first_block, int64_t n_blocks,
                       uint64_t seed, uint64_t stream_id, cudaStream_t stream);

// embed: out[t, :] = table[ids[t], :] (fp16 gather), then widened to the float32 residual.
void embed(const half* table, const int* ids, int n_tokens, int dim, float* residual_out,
           cudaStream_t stream);

// add_rmsnorm: if x != nullptr, residual += x; out = rmsnorm(residual) * w (fp32 maths, fp16 out).
void add_rmsnorm(float* residual, const half* x, const half* w, int n_tokens, int dim, float eps, half* out,
                 cudaStream_t stream);

// rope_kv_write: qkv [n_tokens, (n_heads + 2*n_kv)*head_dim] in InternLM2's grouped layout
// ([q(h*g..h*g+g-1), k(h), v(h)] per KV head h). Rotates q and k (rotate-half RoPE at each token's
// position with inv_freq = base^(-2j/head_dim), positions divided by pos_scale), writes q to
// q_out and k, v into the paged cache at (slots[t], positions[t]). slots, positions and the cache's
// block table must not be written by the kernel launched just before (the kernel reads them before
// it waits for that one: kernels/overlap.cuh); the engine fills them by host copies.
struct RopeKvWriteParams {
  const half* qkv = nullptr;       // [n_tokens, (n_heads + 2*n_kv_heads) * head_dim]
  const int* slots = nullptr;      // [n_tokens] block-table row (sequence slot) of each token
  const int* positions = nullptr;  // [n_tokens] position of each token in its sequence
  int n_tokens = 0;
  int n_heads = 0;  // query heads, a multiple of cache.n_kv_heads
  KvCacheView cache;
  float rope_base = 0.0f;  // theta (dynamic NTK: already scaled for the sequence's length)
  float pos_scale = 1.0f;  // linear RoPE scaling divides positions by this
  half* q_out = nullptr;   // [n_tokens, n_heads * head_dim] rotated queries
};
void rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream);

// rope_inv_freq: the RoPE table rope_kv_write rotates with, inv_freq[j] = float(1 / base^(2j /
// head_dim)) for j < head_dim / 2, into out[0 .. head_dim/2) (what DecodeAttentionRope::inv_freq
// holds per sequence).
void rope_inv_freq(float base, int head_dim, float* out);

// decode_attention with rope_kv_write's work folded in (Fusions::rope_in_attention): q is read from
// the wqkv output and rotated in the kernel, and the kernel writes each sequence's new K/V row
// (position context_lens[i] - 1) into the cache first, bit for bit as rope_kv_write would have.
// inv_freq must not be written by the kernel launched just before (it is read before the kernel
// waits for that one, as slots, context_lens and the block table are); qkv is.
struct DecodeAttentionRope {
  const half* qkv = nullptr;        // [n_seqs, (n_heads + 2*n_kv_heads) * head_dim], not rotated
  const float* inv_freq = nullptr;  // [n_seqs, head_dim/2]: rope_inv_freq of each sequence's base
  float pos_scale = 1.0f;           // linear RoPE scaling divides positions by this
};

// decode_attention: one query token per sequence attends to its whole paged KV cache. Splits long
// contexts across CTAs (split-K) and merges with an fp32 log-sum-exp. Each row is a different
// sequence whose only new cache row is its last one (context_lens - 1): the kernel reads the older
// rows before its programmatic-launch wait, so they must be written before the previous kernel.
// Either q is given (rotated queries; the new rows already in the cache) or rope.qkv (and q is
// null): then the kernel rotates q itself and writes the new rows (DecodeAttentionRope).
struct DecodeAttentionParams {
  const half* q = nullptr;            // [n_seqs, n_heads * head_dim] rotated queries, or null
  const int* slots = nullptr;         // [n_seqs] block-table row of each sequence
  const int* context_lens = nullptr;  // [n_seqs] cached tokens of each sequence, its new one included
  int n_seqs = 0;
  int n_heads = 0;      // query heads: n_heads / cache.n_kv_heads in 1..8 (GQA group)
  int max_context = 0;  // bound on context_lens: sizes the split grid (fixed per graph)
  KvCacheView cache;
  void* workspace = nullptr;   // decode_attention_workspace_bytes(): split-K partials
  half* out = nullptr;         // [n_seqs, n_heads * head_dim]
  DecodeAttentionRope rope{};  // with rope.qkv: RoPE and the new rows' write folded in
};
size_t decode_attention_workspace_bytes(int max_seqs, int n_heads, int head_dim, int max_context);
void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream);
// How decode_attention launches a batch on the current device: its context splits, the warps of a
// CTA and the dynamic shared memory each CTA asks for, which also caps the CTAs an SM
// (kernels/decode_attention.cu).
struct DecodeAttentionLaunch {
  int splits = 1;
  int warps = 4;  // a CTA's: 4, or one wide CTA a (sequence, KV head) alone on its SM (no merge)
  size_t smem_bytes = 0;
};
DecodeAttentionLaunch decode_attention_launch(int n_seqs, int n_kv_heads, int head_dim, int bits,
                                              int max_context);

// prefill_attention: causal attention for n_tokens new tokens belonging to several sequences.
// Token t is at position positions[t] of the sequence in slot slots[t] and attends to cache
// positions [0, positions[t]] of that sequence (earlier turns included), flash style: tiles of K/V
// through shared memory with an online softmax, no T x T matrix in memory.
struct PrefillAttentionParams {
  const half* q = nullptr;         // [n_tokens, n_heads * head_dim] rotated queries
  const int* slots = nullptr;      // [n_tokens] block-table row of each token's sequence
  const int* positions = nullptr;  // [n_tokens] position of each token (its K/V already cached)
  int n_tokens = 0;
  int n_heads = 0;  // a multiple of cache.n_kv_heads
  KvCacheView cache;
  half* out = nullptr;  // [n_tokens, n_heads * head_dim]
};
void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream);

// swiglu: gate_up [n_tokens, 2*inter] (w1 rows then w3 rows, as the fused w13 GEMM writes them);
// out [n_tokens, inter] = silu(gate) * up, fp32 maths.
void swiglu(const half* gate_up, int n_tokens, int inter, half* out, cudaStream_t stream);

// gemv: y[n, out] = x[n, in] W^T for small decode batches (n <= kGemvMaxRows), W [out, in] fp16,
// fp32 accumulation, in % 8 == 0, x and W 16-byte aligned. `split` warps share each row's K range
// (1, 2 or 4; 0: gemv_split's choice); the bits depend on it, so only benchmarks and tests set it.
inline constexpr int kGemvMaxRows = 8;
void gemv(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream, int split = 0);
void gemv(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream, int split = 0);
// The warps per weight row gemv and gemv_fused run for a weight of `weight_rows` rows.
int gemv_split(int weight_rows);
// gemv_tc: the same GEMV on tensor cores (kernels/gemv_tc.cu) for n <= kGemvTcMaxRows rows, in % 32
// == 0, x and W 16-byte aligned. `split` warps share each 16-row tile's K range (4, 8 or 16; 0:
// gemv_tc_split's choice for the tiles); the bits depend on it, so only benchmarks and tests set it.
inline constexpr int kGemvTcMaxRows = 16;
void gemv_tc(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream,
             int split = 0);
void gemv_tc(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream,
             int split = 0);
// gemv_tc with SwiGLU in its epilogue: act[n, inter] = silu(x W1^T) * (x W3^T), W13 [2*inter, in].
// Bit-identical to gemv_tc into gate_up followed by swiglu.
void gemv_tc_swiglu(const half* x, const half* w13, int n, int in, int inter, half* act, cudaStream_t stream,
                    int split = 0);
int gemv_tc_split(int tiles);
// The one dispatch predicate between the ridgeline GEMVs and cuBLASLt (engine/cuda/gemm.cpp asks it):
// which kernel runs y = x W^T for n rows, or none where cuBLASLt is the faster or the shape does not fit.
enum class GemvKernel { none, fma, tensor_core };
GemvKernel gemv_choice(int n, int in, const void* x, const void* w);
// gemv_swiglu: act[n, inter] = silu(x W1^T) * (x W3^T), W13 [2*inter, in] fp16 (gate rows then up
// rows, as the w13 linear stacks them), x and W13 16-byte aligned; n <= kGemvFusedMaxRows (gemv_fused,
// in % 8 == 0) or up to kGemvTcMaxRows (gemv_tc_swiglu, in % 32 == 0). Bit-identical to the GEMV
// gemv_choice picks into gate_up followed by swiglu (the decode step's fused w13).
inline constexpr int kGemvFusedMaxRows = 2;
void gemv_swiglu(const half* x, const half* w13, int n, int in, int inter, half* act, cudaStream_t stream);
// gemv_fused: the decode GEMV with the step's small ops folded in, n <= kGemvFusedMaxRows, W [out, in]
// fp16 (W13 [2*out, in] for `act`), in % 8 == 0, pointers 16-byte aligned. Input: x [n, in], or, when
// norm_residual is given, x = fp16(rmsnorm(norm_residual[n, in]) * norm_w) computed in the prologue
// (in <= kGemvFusedMaxNormDim). Output, exactly one: y16 or y32 [n, out] = x W^T; act [n, out] =
// silu(x W1^T) * (x W3^T); residual [n, out] += fp16(x W^T); rope: q and the K/V cache from qkv =
// x W^T (RopeKvEpilogue). Bit-identical to the unfused kernel
// sequences (add_rmsnorm, gemv, swiglu, rope_kv_write) it replaces; kernels/gemv.cu says why.
inline constexpr int kGemvFusedMaxNormDim = 8192;  // n * in fp16 rows plus block_sum in 48 KB
// The epilogue of a decode step's wqkv GEMV (gemv_fused, w4a16_gemv_fused) that does rope_kv_write's
// work instead of storing qkv: the GEMV's rows are qkv in InternLM2's grouped layout (out = (n_heads
// + 2 * n_kv_heads) * head_dim); q and k are rotated at each row's position, q goes to q_out and k,
// v into the paged cache at (slots[t], positions[t]). fp16 caches only (an int8/int4 row's scale
// needs all of its head's rows, which no GEMV block holds); head_dim a multiple of 32. Bit-identical
// to the GEMV, then rope_kv_write (kernels/rope.cuh). The same contract on slots, positions and the
// block table as rope_kv_write: host-written, read before the kernel waits for the previous one.
inline constexpr int kMaxRopeHeadDim = 256;
inline constexpr int kRopeEpilogueHeadDimMultiple = 32;  // a W4A16 block's strip pair: 2 x 16 dims
struct RopeKvEpilogue {
  const int* slots = nullptr;      // [n] block-table row of each token
  const int* positions = nullptr;  // [n] position of each token in its sequence
  int n_heads = 0;                 // query heads, a multiple of cache.n_kv_heads
  KvCacheView cache;
  float rope_base[kGemvFusedMaxRows] = {};  // per row (dynamic NTK scales each sequence's own)
  float pos_scale = 1.0f;
  half* q_out = nullptr;  // [n, n_heads * head_dim]
};
struct GemvFusedParams {
  const half* w = nullptr;
  int n = 0, in = 0, out = 0;
  const half* x = nullptr;
  const float* norm_residual = nullptr;  // [n, in] float32: the residual stream to normalize
  const half* norm_w = nullptr;          // [in]
  float eps = 0.0f;
  half* y16 = nullptr;
  float* y32 = nullptr;
  half* act = nullptr;
  float* residual = nullptr;             // [n, out]
  const RopeKvEpilogue* rope = nullptr;  // the rope_kv_write epilogue (with the norm prologue: wqkv)
  int split = 0;                         // warps per weight row, as gemv's `split`
};
void gemv_fused(const GemvFusedParams& p, cudaStream_t stream);

// argmax over float32 logits [n_rows, vocab] -> out[n_rows]; lowest index on ties.
void argmax(const float* logits, int n_rows, int vocab, int* out, cudaStream_t stream);

// sample: temperature / top-k / top-p sampling per row, with the uniform draw of each row
// computed on the device as ref::sampling_uniform(seeds[r], positions[r]); rows with
// temperatures[r] <= 0 take the argmax. Same candidate order and rules as ref::sample.
// `workspace` sized by sample_workspace_bytes.
size_t sample_workspace_bytes(int n_rows, int vocab);
void sample(const float* logits, int n_rows, int vocab, const float* temperatures, const int* top_ks,
            const float* top_ps, const uint64_t* seeds, const int* positions, void* workspace, int* out,
            cudaStream_t stream);

// Device-side synthetic weights (kernels/synthetic.h), written straight into fp16 device memory.
void fill_synthetic(half* out, int64_t n, uint64_t seed, uint64_t tensor_id, int shift, bool norm,
                    cudaStream_t stream);
// Converts a host-uploaded bf16 / fp32 buffer on the device to fp16.
void convert_bf16_to_fp16(const uint16_t* in, int64_t n, half* out, cudaStream_t stream);
void convert_fp32_to_fp16(const float* in, int64_t n, half* out, cudaStream_t stream);

}  // namespace ridgeline::cuda
