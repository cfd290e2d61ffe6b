// The CUDA backend (class in cuda_backend_impl.h): construction and memory planning, sequences,
// forward (decode graphs and prefill chunks), sampling, and make_cuda_backend / cuda_available.
#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "engine/cuda/cuda_backend_impl.h"
#include "engine/inject_delay.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kMinContextBucket = 256;

int next_pow2(int64_t n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

// The fp16 slab scratch of Gemm::run_w4a16_dequant (engine/cuda/gemm.h): the largest slab of the
// model's 4-bit linears (the head's when it is 4-bit), where a batch of max_rows reaches that path
// (the predicate is monotone in n); 0 otherwise. 16 MiB for the 1.8b and 7b presets.
int64_t w4a16_dequant_scratch(const ModelConfig& c, const Formats& f, int max_rows) {
  if (!w4a16_use_dequant_gemm(max_rows)) return 0;
  int64_t bytes = 0;
  if (f.weights == WeightFormat::w4a16)
    for (const LinearDims d : layer_linear_dims(c))
      bytes = std::max(bytes, w4a16_dequant_scratch_bytes(d.in, d.out));
  if (f.head == WeightFormat::w4a16) bytes = std::max(bytes, w4a16_dequant_scratch_bytes(c.hidden, c.vocab));
  return bytes;
}

int64_t activation_bytes(const ModelConfig& c, int64_t rows, int64_t logit_rows) {
  const int64_t h = c.hidden;
  return rows * (4 * h + 2 * (h + c.qkv_dim() + 2 * c.q_dim() + h + 3 * int64_t{c.intermediate})) +
         logit_rows * 2 * h;
}

}  // namespace

int CudaBackendImpl::bucket_rows(int n) const {
  return std::max(1, next_pow2(n));
}

// Decode graphs are keyed by a power-of-two bound on the context too: decode attention sizes its
// split-K grid by the bound, and a bound at most twice the real context keeps the idle part small.
int CudaBackendImpl::context_bucket(int max_ctx) const {
  return std::min(next_pow2(std::max(max_ctx, kMinContextBucket)), max_context_);
}

float CudaBackendImpl::rope_base(int64_t length) const {
  return static_cast<float>(rope_base_for_length(c_, static_cast<int>(length)));
}

CudaBackendImpl::CudaBackendImpl(const ModelSource& source, const BackendOptions& options,
                                 const CudaOptions& copt)
    : c_(source.config),
      device_name_(describe_cuda_device().name),
      opt_(options),
      copt_(copt),
      names_(c_.n_layers) {
  if (opt_.max_sequences < 1) throw std::invalid_argument("BackendOptions::max_sequences must be at least 1");
  if (copt_.block_size < 16 || copt_.block_size > 256 || (copt_.block_size & (copt_.block_size - 1)) != 0)
    throw std::invalid_argument(
        fmt::format("CUDA block_size must be a power of two in 16..256, got {}", copt_.block_size));
  if (copt_.max_prefill_tokens < 1) throw std::invalid_argument("CUDA max_prefill_tokens must be at least 1");
  check_injected_delay(c_);  // a typo in RIDGELINE_INJECT_DELAY_US fails here, not silently
  const int64_t vocab = c_.vocab;
  max_bucket_ = bucket_rows(opt_.max_sequences);
  max_rows_ = std::max(copt_.max_prefill_tokens, max_bucket_);
  const int64_t block_bytes = kv_block_bytes(c_, copt_.block_size, opt_.formats.kv);
  // Decode attention's split-K partials are sized for the longest context a row could map; they are
  // allocated before the KV cache takes what is left.
  const int64_t max_blocks_row = (max_sequence_length() + copt_.block_size - 1) / copt_.block_size;
  int64_t context_bound = max_blocks_row * copt_.block_size;
  if (opt_.max_kv_tokens > 0) context_bound = std::min(context_bound, opt_.max_kv_tokens);
  const size_t attention_ws_bytes =
      decode_attention_workspace_bytes(max_bucket_, c_.n_heads, c_.head_dim, static_cast<int>(context_bound));
  const int64_t w4a16_scratch = w4a16_dequant_scratch(c_, opt_.formats, max_rows_);
  // What is allocated below besides the KV cache (the small buffers within the 64 MiB), so that a
  // model that cannot fit is refused before its weights are uploaded (the sampling workspace alone
  // is ~0.57 GB at B=256, 92k vocab).
  const int64_t workspace_estimate = activation_bytes(c_, max_rows_, max_bucket_) +
                                     (2 * int64_t{max_bucket_} + opt_.max_sequences) * vocab * 4 +
                                     int64_t(attention_ws_bytes) + (64ll << 20) + 2 * block_bytes +
                                     w4a16_scratch + int64_t(sample_workspace_bytes(max_bucket_, c_.vocab)) +
                                     int64_t(Gemm::kDefaultWorkspaceBytes);
  w_ = load_device_weights(source, opt_.formats, workspace_estimate, stream_.get());
  gemm_ = std::make_unique<Gemm>(Gemm::kDefaultWorkspaceBytes, size_t(w4a16_scratch));

  const int64_t rows = max_rows_, h = c_.hidden;
  act_.residual = DeviceBuffer<float>(rows * h, "residual");
  act_.x = DeviceBuffer<half>(rows * h, "x");
  act_.qkv = DeviceBuffer<half>(rows * c_.qkv_dim(), "qkv");
  act_.q = DeviceBuffer<half>(rows * c_.q_dim(), "q");
  act_.attn = DeviceBuffer<half>(rows * c_.q_dim(), "attn");
  act_.proj = DeviceBuffer<half>(rows * h, "proj");
  act_.gate_up = DeviceBuffer<half>(rows * 2 * c_.intermediate, "gate_up");
  act_.act = DeviceBuffer<half>(rows * c_.intermediate, "act");
  act_.head_in = DeviceBuffer<half>(int64_t{max_bucket_} * h, "head_in");
  logits_ = DeviceBuffer<float>(max_bucket_ * vocab, "logits");
  parked_logits_ = DeviceBuffer<float>(opt_.max_sequences * vocab, "parked logits");
  sample_rows_ = DeviceBuffer<float>(max_bucket_ * vocab, "sample rows");
  sample_ws_ = DeviceBuffer<uint8_t>(sample_workspace_bytes(max_bucket_, c_.vocab), "sample workspace");
  inputs_dev_ = DeviceBuffer<int>(4 * rows, "step inputs");
  inputs_host_ = PinnedBuffer<int>(4 * rows, "step inputs (host)");
  rope_freq_dev_ = DeviceBuffer<float>(int64_t{max_bucket_} * (c_.head_dim / 2), "step RoPE tables");
  rope_freq_host_ = PinnedBuffer<float>(int64_t{max_bucket_} * (c_.head_dim / 2), "step RoPE tables (host)");
  // Seeds (8 bytes) first so every array stays aligned: seeds, temperatures, top_ps, top_ks, positions.
  sample_params_dev_ = DeviceBuffer<uint8_t>(24 * max_bucket_, "sample params");
  sample_params_host_ = PinnedBuffer<uint8_t>(24 * max_bucket_, "sample params (host)");
  sampled_dev_ = DeviceBuffer<int>(max_bucket_, "sampled tokens");
  sampled_host_ = PinnedBuffer<int>(max_bucket_, "sampled tokens (host)");
  attention_ws_ = DeviceBuffer<uint8_t>(attention_ws_bytes, "decode attention workspace");

  // The KV cache takes what is left, minus a margin for graphs, cuBLASLt and the CUDA context.
  size_t free_bytes = 0, total_bytes = 0;
  RL_CUDA_CHECK("kv_cache", cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t margin = (512ll << 20) + static_cast<int64_t>(total_bytes) / 50;
  int64_t kv_bytes = static_cast<int64_t>(free_bytes) - margin;
  if (opt_.memory_cap_bytes > 0) kv_bytes = std::min(kv_bytes, opt_.memory_cap_bytes);
  int64_t blocks = std::max<int64_t>(0, kv_bytes / block_bytes) - 1;  // minus the padding block
  if (opt_.max_kv_tokens > 0) blocks = std::min(blocks, opt_.max_kv_tokens / copt_.block_size);
  blocks = std::min(blocks, max_blocks_row * opt_.max_sequences);      // more could never be used
  blocks = std::min<int64_t>(blocks, (1ll << 30) / copt_.block_size);  // block ids and token counts stay int
  if (blocks < 1)
    throw std::runtime_error(fmt::format(
        "no room for a KV cache of even one {}-token block ({} bytes): {:.2f} GiB free after the weights, "
        "memory cap {} bytes, max_kv_tokens {}",
        copt_.block_size, block_bytes, free_bytes / double(1 << 30), opt_.memory_cap_bytes,
        opt_.max_kv_tokens));
  const int num_blocks = static_cast<int>(blocks) + 1;
  const int row_blocks =
      static_cast<int>(std::min<int64_t>({max_blocks_row, num_blocks - 1, context_bound / copt_.block_size}));
  max_context_ = row_blocks * copt_.block_size;
  kv_ = std::make_unique<PagedKvCache>(c_, opt_.formats.kv, copt_.block_size, num_blocks, opt_.max_sequences,
                                       row_blocks, stream_.get());

  for (int s = opt_.max_sequences - 1; s >= 0; --s) free_slots_.push_back(s);
  scratch_owner_.assign(max_bucket_, -1);
  RL_CUDA_CHECK("cuda backend", cudaStreamSynchronize(stream_.get()));
}

const Sequence& CudaBackendImpl::find(int seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw std::invalid_argument(fmt::format("unknown sequence {}", seq));
  return it->second;
}

int CudaBackendImpl::create_sequence() {
  if (free_slots_.empty())
    throw std::runtime_error(fmt::format("all {} sequence slots are in use", opt_.max_sequences));
  Sequence s;
  s.slot = free_slots_.back();
  free_slots_.pop_back();
  const int id = next_id_++;
  seqs_.emplace(id, s);
  return id;
}

void CudaBackendImpl::release_sequence(int seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  kv_->release(it->second.slot);
  free_slots_.push_back(it->second.slot);
  for (int& owner : scratch_owner_)
    if (owner == seq) owner = -1;
  seqs_.erase(it);
}

void CudaBackendImpl::validate(std::span<const int> seqs, std::span<const std::vector<int>> tokens) const {
  const int64_t new_tokens = validate_forward(c_, seqs, tokens, [this](int seq) { return find(seq).length; });
  int64_t blocks = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Sequence& s = find(seqs[i]);
    blocks += kv_->blocks_needed(s.slot, s.length + int64_t(tokens[i].size()));
  }
  if (blocks > kv_->free_blocks())
    throw std::runtime_error(
        fmt::format("KV cache full: {} new tokens need {} more {}-token blocks, {} free ({} tokens); release "
                    "sequences or "
                    "raise the KV-cache memory cap",
                    new_tokens, blocks, kv_->block_size(), kv_->free_blocks(), capacity_tokens()));
}

// Logits live in logits_ rows until the next step overwrites them. Those of sequences that are not
// in the coming step (`keep`) are moved aside by slot first, so sample() still reads what each
// sequence's last forward() left even when other sequences ran in between. In the usual loop
// (forward then sample, the same sequences every step) nothing is copied.
void CudaBackendImpl::park_logits(std::span<const int> next) {
  const int64_t vocab = c_.vocab;
  for (int row = 0; row < max_bucket_; ++row) {
    const int owner = scratch_owner_[row];
    if (owner < 0) continue;
    scratch_owner_[row] = -1;
    Sequence& s = find(owner);
    if (std::find(next.begin(), next.end(), owner) != next.end()) continue;  // about to be replaced
    RL_CUDA_CHECK("park logits",
                  cudaMemcpyAsync(parked_logits_.get() + s.slot * vocab, logits_.get() + row * vocab,
                                  vocab * sizeof(float), cudaMemcpyDeviceToDevice, stream_.get()));
    s.logits = Sequence::Logits::parked;
  }
  // The coming step's sequences have no logits until it has run: a step that throws must not leave
  // an earlier parked row to be sampled as its own.
  for (int id : next) find(id).logits = Sequence::Logits::none;
}

void CudaBackendImpl::reserve_blocks(std::span<const int> seqs, std::span<const std::vector<int>> tokens) {
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Sequence& s = find(seqs[i]);
    kv_->grow(s.slot, s.length + int64_t(tokens[i].size()));
  }
  kv_->upload_changes(stream_.get());
}

// The pinned input staging buffer, once the previous upload from it is done.
int* CudaBackendImpl::stage_inputs(int rows) {
  if (rows > max_rows_) throw std::logic_error("step rows exceed the activation buffers");
  RL_CUDA_CHECK("step inputs", cudaEventSynchronize(inputs_copied_.get()));
  return inputs_host_.get();
}

void CudaBackendImpl::forward_impl(std::span<const int> seqs, std::span<const std::vector<int>> tokens,
                                   float* logits, const OpHook* hook) {
  validate(seqs, tokens);  // nothing is allocated or written before this passes
  const bool decode = std::all_of(tokens.begin(), tokens.end(), [](const auto& t) { return t.size() == 1; });
  park_logits(seqs);
  reserve_blocks(seqs, tokens);
  if (decode) {
    std::vector<int> ids(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) ids[i] = tokens[i][0];
    run_decode(stage_decode(seqs, ids), hook);
  } else {
    run_prefill(seqs, tokens, hook);
  }

  for (size_t i = 0; i < seqs.size(); ++i) {
    Sequence& s = find(seqs[i]);
    s.length += int(tokens[i].size());
    s.logits = Sequence::Logits::scratch;
    s.logits_row = int(i);
    scratch_owner_[i] = seqs[i];
  }
  if (logits) {
    RL_CUDA_CHECK("output", cudaMemcpyAsync(logits, logits_.get(), seqs.size() * c_.vocab * sizeof(float),
                                            cudaMemcpyDeviceToHost, stream_.get()));
    RL_CUDA_CHECK("output", cudaStreamSynchronize(stream_.get()));
  }
}

// Decode inputs in the fixed layout a captured graph reads: `rows` (the batch bucket) entries each of
// ids, slots, positions and context lengths; rows past the batch point at the dummy slot, whose
// block 0 absorbs their KV writes, with a one-token context.
StepArgs CudaBackendImpl::stage_decode(std::span<const int> seqs, std::span<const int> tokens) {
  const int n = int(seqs.size()), rows = bucket_rows(n);
  int* h = stage_inputs(rows);
  int *ids = h, *slots = h + rows, *pos = h + 2 * rows, *ctx = h + 3 * rows;
  StepArgs a;
  a.rows = rows;
  a.real_rows = n;
  a.decode = true;
  int max_ctx = 1;
  bool trained_context = true;
  for (int i = 0; i < rows; ++i) {
    if (i < n) {
      const Sequence& s = find(seqs[i]);
      ids[i] = tokens[i];
      slots[i] = s.slot;
      pos[i] = s.length;
      ctx[i] = s.length + 1;
      max_ctx = std::max(max_ctx, ctx[i]);
      const float base = rope_base(ctx[i]);
      trained_context = trained_context && rope_base_for_length(c_, ctx[i]) == c_.rope_theta;
      if (a.rope.empty() || a.rope.back().base != base) a.rope.push_back({i, 0, base});
      a.rope.back().count++;
    } else {
      ids[i] = 0;
      slots[i] = kv_->dummy_slot();
      pos[i] = 0;
      ctx[i] = 1;
      a.rope.back().count++;  // padding rotates with the last group's base: harmless, it is discarded
    }
  }
  RL_CUDA_CHECK("step inputs", cudaMemcpyAsync(inputs_dev_.get(), h, 4 * rows * sizeof(int),
                                               cudaMemcpyHostToDevice, stream_.get()));
  const bool rope_in_attention = step_fusions(a).rope_in_attention;
  if (rope_in_attention && a.rope != rope_freq_uploaded_) {
    // Each row's RoPE table as rope_kv_write would compute it from its group's base (padding rows
    // take the last group's): decode attention reads a row's before it waits for wqkv.
    const int half_dim = c_.head_dim / 2;
    float* t = rope_freq_host_.get();
    for (const RopeGroup& g : a.rope) {  // one table a group, copied to its other rows
      float* first = t + int64_t{g.first} * half_dim;
      rope_inv_freq(g.base, c_.head_dim, first);
      for (int r = g.first + 1; r < g.first + g.count; ++r)
        std::copy(first, first + half_dim, t + int64_t{r} * half_dim);
    }
    RL_CUDA_CHECK("step inputs",
                  cudaMemcpyAsync(rope_freq_dev_.get(), t, size_t(rows) * half_dim * sizeof(float),
                                  cudaMemcpyHostToDevice, stream_.get()));
    rope_freq_uploaded_ = a.rope;
  }
  if (rope_in_attention) a.rope_inv_freq = rope_freq_dev_.get();
  RL_CUDA_CHECK("step inputs", cudaEventRecord(inputs_copied_.get(), stream_.get()));
  const int* d = inputs_dev_.get();
  a.ids = d;
  a.slots = d + rows;
  a.positions = d + 2 * rows;
  a.context_lens = d + 3 * rows;
  a.max_context = context_bucket(max_ctx);
  a.logits_row0 = 0;
  // A graph bakes the RoPE base in: past the trained context (dynamic NTK) it changes every step.
  a.graphable = trained_context && a.rope.size() == 1;
  return a;
}

void CudaBackendImpl::run_decode(const StepArgs& a, const OpHook* hook) {
  if (!copt_.use_graphs || !a.graphable || hook) {
    run_step(a, hook);
    return;
  }
  NvtxRange range("decode_step");
  const std::pair<int, int> key{a.rows, a.max_context};
  auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    it->second.launch(stream_.get(), "decode graph");
    ++graph_replays_;
    return;
  }
  // First step of this bucket: run it eagerly (loading every kernel and choosing every GEMM
  // algorithm outside the capture), then capture the same step for the following ones.
  run_step(a, nullptr);
  graphs_.emplace(key,
                  GraphExec::capture(stream_.get(), "decode graph capture", [&] { run_step(a, nullptr); }));
}

void CudaBackendImpl::run_prefill(std::span<const int> seqs, std::span<const std::vector<int>> tokens,
                                  const OpHook* hook) {
  const int chunk = copt_.max_prefill_tokens;
  size_t seq_i = 0, tok_i = 0;  // the next token to place
  while (seq_i < seqs.size()) {
    // Fill one chunk with the next tokens in order; a sequence may continue in the next chunk,
    // whose tokens then attend to what this one wrote into the cache.
    int* h = stage_inputs(chunk);
    std::vector<int> ids, slots, pos;
    StepArgs a;
    a.logits_row0 = -1;
    while (seq_i < seqs.size() && int(ids.size()) < chunk) {
      const Sequence& s = find(seqs[seq_i]);
      const auto& list = tokens[seq_i];
      const int take = int(std::min(list.size() - tok_i, size_t(chunk) - ids.size()));
      const float base = rope_base(s.length + int64_t(list.size()));
      if (a.rope.empty() || a.rope.back().base != base) a.rope.push_back({int(ids.size()), 0, base});
      a.rope.back().count += take;
      for (int k = 0; k < take; ++k) {
        ids.push_back(list[tok_i + k]);
        slots.push_back(s.slot);
        pos.push_back(s.length + int(tok_i) + k);
      }
      tok_i += take;
      if (tok_i == list.size()) {
        a.head_rows.push_back(int(ids.size()) - 1);
        if (a.logits_row0 < 0) a.logits_row0 = int(seq_i);
        ++seq_i;
        tok_i = 0;
      }
    }
    const int rows = int(ids.size());
    std::copy(ids.begin(), ids.end(), h);
    std::copy(slots.begin(), slots.end(), h + rows);
    std::copy(pos.begin(), pos.end(), h + 2 * rows);
    RL_CUDA_CHECK("step inputs", cudaMemcpyAsync(inputs_dev_.get(), h, 3 * rows * sizeof(int),
                                                 cudaMemcpyHostToDevice, stream_.get()));
    RL_CUDA_CHECK("step inputs", cudaEventRecord(inputs_copied_.get(), stream_.get()));
    a.rows = rows;
    a.decode = false;
    a.ids = inputs_dev_.get();
    a.slots = inputs_dev_.get() + rows;
    a.positions = inputs_dev_.get() + 2 * rows;
    run_step(a, hook);
  }
}

static_assert(kCudaFusedRows == kGemvFusedMaxRows && kCudaFusedMaxNormDim == kGemvFusedMaxNormDim &&
                  kCudaFusedRows == kW4A16GemvFusedMaxRows && kCudaFusedMaxRopeHeadDim == kMaxRopeHeadDim &&
                  kCudaFusedRopeHeadDimMultiple == kRopeEpilogueHeadDimMultiple &&
                  kCudaTcSwigluRows == kGemvTcMaxRows,
              "engine/ops.h's fusion rule and the fused GEMVs agree");

Fusions CudaBackendImpl::step_fusions(const StepArgs& a) const {
  if (!a.decode) return {};
  StepShape s;
  s.batch = a.rows;  // the padded bucket: the rows the GEMVs run
  s.formats = opt_.formats;
  return cuda_fusions(c_, s);
}

// The model over one step's rows, in the order the report lists the ops (step_ops with the same
// fusions, engine/ops.h).
void CudaBackendImpl::run_step(const StepArgs& a, const OpHook* hook) {
  const int n = a.rows, h = c_.hidden, qd = c_.q_dim(), qkvd = c_.qkv_dim(), inter = c_.intermediate;
  const float eps = c_.norm_eps;
  const float pos_scale = c_.rope_scaling == RopeScaling::linear ? float(c_.rope_factor) : 1.0f;
  cudaStream_t st = stream_.get();
  Gemm& gemm = *gemm_;
  Activations& x = act_;
  const Fusions fused = step_fusions(a);
  // The fused GEMVs (Fusions::norm_in_gemv): one whose input is the RMSNorm of the residual rows, and
  // one that adds its output into the residual.
  auto normed_gemv = [&](const half* w, int out, const half* norm_w) {
    return GemvFusedParams{
        .w = w, .n = n, .in = h, .out = out, .norm_residual = x.residual.get(), .norm_w = norm_w, .eps = eps};
  };
  auto residual_gemv = [&](const half* w, const half* in_x, int in) {
    return GemvFusedParams{.w = w, .n = n, .in = in, .out = h, .x = in_x, .residual = x.residual.get()};
  };
  // The same three fused GEMVs in the linear's format: gemv_fused for fp16 weights, w4a16_gemv_fused
  // for 4-bit ones.
  auto fused_normed = [&](const DeviceLinear& lin, const half* norm_w, half* y, half* act,
                          const RopeKvEpilogue* rope = nullptr) {
    if (lin.quantized()) {
      W4A16GemvFusedParams q{
          .w = lin.w4a16(), .n = n, .norm_residual = x.residual.get(), .norm_w = norm_w, .eps = eps};
      q.y = y, q.act = act, q.rope = rope;
      return w4a16_gemv_fused(q, st);
    }
    GemvFusedParams p = normed_gemv(lin.fp16.get(), act ? lin.out / 2 : lin.out, norm_w);
    p.y16 = y, p.act = act, p.rope = rope;
    gemv_fused(p, st);
  };
  // wqkv's RoPE epilogue (Fusions::rope_in_wqkv): rope_kv_write's arguments, each row's RoPE base
  // from its group.
  auto rope_epilogue = [&](const KvCacheView& cache) {
    RopeKvEpilogue e{.slots = a.slots,
                     .positions = a.positions,
                     .n_heads = c_.n_heads,
                     .cache = cache,
                     .pos_scale = pos_scale,
                     .q_out = x.q.get()};
    for (const RopeGroup& g : a.rope)
      for (int t = g.first; t < g.first + g.count && t < kCudaFusedRows; ++t) e.rope_base[t] = g.base;
    return e;
  };
  auto fused_residual = [&](const DeviceLinear& lin, const half* in_x) {
    if (lin.quantized())
      return w4a16_gemv_fused({.w = lin.w4a16(), .n = n, .x = in_x, .residual = x.residual.get()}, st);
    gemv_fused(residual_gemv(lin.fp16.get(), in_x, lin.in), st);
  };

  op(names_(OpType::embed), hook, [&] { embed(w_.tok_embeddings.get(), a.ids, n, h, x.residual.get(), st); });
  const half* pending = nullptr;  // the last sublayer's output; the next norm adds it into the residual
  for (int l = 0; l < c_.n_layers; ++l) {
    const DeviceLayerWeights& L = w_.layers[l];
    const KvCacheView cache = kv_->view(l);
    auto name = [&](OpType t) -> const std::string& { return names_(t, l); };
    NvtxRange layer_range(names_.layer(l).c_str());

    if (fused.rope_in_wqkv) {  // ... and writes q and the K/V cache: no rope_kv_write
      const RopeKvEpilogue rope = rope_epilogue(cache);
      op(name(OpType::wqkv), hook,
         [&] { fused_normed(L.wqkv, L.attention_norm.get(), nullptr, nullptr, &rope); });
    } else if (fused.norm_in_gemv) {  // wqkv normalizes the residual (the last w2 added into it) itself
      op(name(OpType::wqkv), hook,
         [&] { fused_normed(L.wqkv, L.attention_norm.get(), x.qkv.get(), nullptr); });
    } else {
      op(name(OpType::attention_norm), hook,
         [&] { add_rmsnorm(x.residual.get(), pending, L.attention_norm.get(), n, h, eps, x.x.get(), st); });
      op(name(OpType::wqkv), hook,
         [&] { gemm.run(x.x.get(), L.wqkv, n, x.qkv.get(), st, name(OpType::wqkv).c_str()); });
    }
    if (!fused.rope_in_wqkv && !fused.rope_in_attention)
      op(name(OpType::rope_kv_write), hook, [&] {
        for (const RopeGroup& g : a.rope)
          rope_kv_write({.qkv = x.qkv.get() + int64_t{g.first} * qkvd,
                         .slots = a.slots + g.first,
                         .positions = a.positions + g.first,
                         .n_tokens = g.count,
                         .n_heads = c_.n_heads,
                         .cache = cache,
                         .rope_base = g.base,
                         .pos_scale = pos_scale,
                         .q_out = x.q.get() + int64_t{g.first} * qd},
                        st);
      });
    op(name(OpType::attention), hook, [&] {
      if (a.decode) {
        DecodeAttentionParams p{.q = x.q.get(),
                                .slots = a.slots,
                                .context_lens = a.context_lens,
                                .n_seqs = n,
                                .n_heads = c_.n_heads,
                                .max_context = a.max_context,
                                .cache = cache,
                                .workspace = attention_ws_.get(),
                                .out = x.attn.get()};
        if (fused.rope_in_attention) {  // ... rotating q from qkv and writing the new K/V rows itself
          p.q = nullptr;
          p.rope = {.qkv = x.qkv.get(), .inv_freq = a.rope_inv_freq, .pos_scale = pos_scale};
        }
        decode_attention(p, st);
      } else {
        prefill_attention({.q = x.q.get(),
                           .slots = a.slots,
                           .positions = a.positions,
                           .n_tokens = n,
                           .n_heads = c_.n_heads,
                           .cache = cache,
                           .out = x.attn.get()},
                          st);
      }
    });
    if (fused.norm_in_gemv) {  // residual += wo's output; w13 normalizes it in its prologue
      op(name(OpType::wo), hook, [&] { fused_residual(L.wo, x.attn.get()); });
      op(name(OpType::w13), hook, [&] { fused_normed(L.w13, L.ffn_norm.get(), nullptr, x.act.get()); });
      op(name(OpType::w2), hook, [&] { fused_residual(L.w2, x.act.get()); });
      continue;
    }
    op(name(OpType::wo), hook,
       [&] { gemm.run(x.attn.get(), L.wo, n, x.proj.get(), st, name(OpType::wo).c_str()); });
    op(name(OpType::ffn_norm), hook,
       [&] { add_rmsnorm(x.residual.get(), x.proj.get(), L.ffn_norm.get(), n, h, eps, x.x.get(), st); });
    if (fused.swiglu_in_w13) {  // fp16 weights, n <= 16 rows: one GEMV writes act
      op(name(OpType::w13), hook,
         [&] { gemv_swiglu(x.x.get(), L.w13.fp16.get(), n, h, inter, x.act.get(), st); });
    } else {
      op(name(OpType::w13), hook,
         [&] { gemm.run(x.x.get(), L.w13, n, x.gate_up.get(), st, name(OpType::w13).c_str()); });
      op(name(OpType::swiglu), hook, [&] { swiglu(x.gate_up.get(), n, inter, x.act.get(), st); });
    }
    op(name(OpType::w2), hook,
       [&] { gemm.run(x.act.get(), L.w2, n, x.proj.get(), st, name(OpType::w2).c_str()); });
    pending = x.proj.get();
  }
  // Fused, the last w2 has added into the residual already (pending stays null): only the norm.
  op(names_(OpType::norm), hook,
     [&] { add_rmsnorm(x.residual.get(), pending, w_.norm.get(), n, h, eps, x.x.get(), st); });
  op(names_(OpType::output), hook, [&] {
    // A decode step wants every row's logits; a prefill only each sequence's last token's, so only
    // those rows go through the head (the vocabulary GEMM is the largest of the step).
    const half* head_in = x.x.get();
    int head_n = n;
    if (!a.decode) {
      head_n = int(a.head_rows.size());
      if (head_n == 0) return;  // a chunk in the middle of a long prompt
      if (head_n == 1) {
        head_in = x.x.get() + int64_t{a.head_rows[0]} * h;
      } else {
        for (int j = 0; j < head_n; ++j)
          RL_CUDA_CHECK("output", cudaMemcpyAsync(x.head_in.get() + int64_t{j} * h,
                                                  x.x.get() + int64_t{a.head_rows[j]} * h, h * sizeof(half),
                                                  cudaMemcpyDeviceToDevice, st));
        head_in = x.head_in.get();
      }
    }
    float* logits = logits_.get() + int64_t{a.logits_row0} * c_.vocab;
    if (w_.output.quantized())  // a 4-bit head: the W4A16 GEMV / GEMM, float32 out
      gemm.run(head_in, w_.output, head_n, logits, st, "output");
    else
      gemm.run(head_in, w_.output_weights(), head_n, h, c_.vocab, logits, st, "output");
  });
}

void CudaBackendImpl::sample_impl(std::span<const int> seqs, std::span<const SamplingParams> params, int* out,
                                  const OpHook* hook) {
  if (seqs.size() != params.size()) throw std::invalid_argument("sample: one SamplingParams per sequence");
  const int n = int(seqs.size());
  if (n == 0) return;
  if (n > max_bucket_)
    throw std::invalid_argument(fmt::format("sample: {} sequences, at most {}", n, max_bucket_));
  const int64_t vocab = c_.vocab;
  cudaStream_t st = stream_.get();
  // The rows to sample from: logits_ itself when it holds exactly these sequences in order (every
  // forward-then-sample loop), otherwise a gathered copy.
  bool in_place = true;
  for (int i = 0; i < n; ++i) {
    const Sequence& s = find(seqs[i]);
    if (s.logits == Sequence::Logits::none)
      throw std::logic_error(fmt::format("sample() before forward() on sequence {}", seqs[i]));
    in_place = in_place && s.logits == Sequence::Logits::scratch && s.logits_row == i;
  }
  const float* rows = logits_.get();
  if (!in_place) {
    for (int i = 0; i < n; ++i) {
      const Sequence& s = find(seqs[i]);
      const float* src = s.logits == Sequence::Logits::scratch ? logits_.get() + s.logits_row * vocab
                                                               : parked_logits_.get() + s.slot * vocab;
      RL_CUDA_CHECK("sample", cudaMemcpyAsync(sample_rows_.get() + i * vocab, src, vocab * sizeof(float),
                                              cudaMemcpyDeviceToDevice, st));
    }
    rows = sample_rows_.get();
  }
  const bool greedy =
      std::all_of(params.begin(), params.end(), [](const SamplingParams& p) { return p.greedy(); });
  if (!greedy) {
    // The previous upload from this pinned buffer has finished (sample() ends with a stream sync,
    // but a throw between the copy and that sync would skip it).
    RL_CUDA_CHECK("sample", cudaEventSynchronize(sample_params_copied_.get()));
    uint8_t* hb = sample_params_host_.get();
    const int cap = max_bucket_;
    auto* seeds = reinterpret_cast<uint64_t*>(hb);
    auto* temps = reinterpret_cast<float*>(hb + 8 * cap);
    auto* top_ps = reinterpret_cast<float*>(hb + 12 * cap);
    auto* top_ks = reinterpret_cast<int*>(hb + 16 * cap);
    auto* positions = reinterpret_cast<int*>(hb + 20 * cap);
    for (int i = 0; i < n; ++i) {
      seeds[i] = params[i].seed;
      temps[i] = params[i].temperature;
      top_ps[i] = params[i].top_p;
      top_ks[i] = params[i].top_k;
      positions[i] = find(seqs[i]).length;  // the draw depends on (seed, position) as on the CPU
    }
    RL_CUDA_CHECK("sample", cudaMemcpyAsync(sample_params_dev_.get(), hb, sample_params_host_.bytes(),
                                            cudaMemcpyHostToDevice, st));
    RL_CUDA_CHECK("sample", cudaEventRecord(sample_params_copied_.get(), st));
  }
  op(names_(OpType::sample), hook, [&] {
    if (greedy) {
      cuda::argmax(rows, n, c_.vocab, sampled_dev_.get(), st);
    } else {
      uint8_t* db = sample_params_dev_.get();
      const int cap = max_bucket_;
      cuda::sample(rows, n, c_.vocab, reinterpret_cast<const float*>(db + 8 * cap),
                   reinterpret_cast<const int*>(db + 16 * cap), reinterpret_cast<const float*>(db + 12 * cap),
                   reinterpret_cast<const uint64_t*>(db), reinterpret_cast<const int*>(db + 20 * cap),
                   sample_ws_.get(), sampled_dev_.get(), st);
    }
  });
  RL_CUDA_CHECK("sample", cudaMemcpyAsync(sampled_host_.get(), sampled_dev_.get(), n * sizeof(int),
                                          cudaMemcpyDeviceToHost, st));
  RL_CUDA_CHECK("sample", cudaStreamSynchronize(st));
  std::copy(sampled_host_.get(), sampled_host_.get() + n, out);
}

}  // namespace ridgeline::cuda

namespace ridgeline {

namespace {

// The weight clause of cuda_supports: fp16 from unquantized checkpoints and presets; w4a16 (group
// 128) from AWQ checkpoints (repacked at load), and from unquantized checkpoints and presets
// (quantized on the GPU at load, RTN).
Support cuda_weight_support(const ModelSource& source, const Formats& formats) {
  using cuda::kW4A16Group, cuda::w4a16_shape_ok;
  const ModelConfig& c = source.config;
  const bool awq = c.quant_bits != 0;
  if (awq && formats.weights != WeightFormat::w4a16)
    return {false,
            fmt::format("cuda: --weights {}: {} is an AWQ 4-bit checkpoint, it runs as --weights w4a16",
                        to_string(formats.weights), source.checkpoint_dir)};
  if (formats.weights != WeightFormat::w4a16) return {};
  const int group = awq ? c.quant_group_size : formats.group_size;
  if (group != kW4A16Group || formats.group_size != group)
    return {false, fmt::format("cuda: --weights w4a16 runs group size {} only; this model asks for {}",
                               kW4A16Group, awq ? group : formats.group_size)};
  // Each linear as the kernels hold it (w1 and w3 each, then stacked): inputs a multiple of the
  // group, outputs of a 16-row strip.
  const int h = c.hidden, inter = c.intermediate;
  if (!w4a16_shape_ok(h, c.qkv_dim()) || !w4a16_shape_ok(c.q_dim(), h) || !w4a16_shape_ok(h, inter) ||
      !w4a16_shape_ok(inter, h))
    return {false,
            fmt::format("cuda: --weights w4a16 needs every linear's inputs to be a multiple of 128 and "
                        "its outputs of 16; {} has hidden {}, q_dim {}, qkv_dim {}, intermediate {}",
                        c.name, h, c.q_dim(), c.qkv_dim(), inter)};
  return {};
}

}  // namespace

Support cuda_supports(const ModelSource& source, const Formats& formats) {
  if (Support s = cuda_weight_support(source, formats); !s) return s;
  // int8/int4 KV: codes and an fp16 (scale, zero) per (token, KV head), written by rope_kv_write (or
  // decode attention's RoPE prologue) and read by the attention kernels, which run head_dim 64 and 128.
  const int hd = source.config.head_dim;
  if (formats.kv != KvFormat::fp16 && hd != 64 && hd != 128)
    return {false, fmt::format("cuda: --kv {} needs head_dim 64 or 128; {} has {} (use --kv fp16)",
                               to_string(formats.kv), source.config.name, hd)};
  return {};
}

DeviceFacts describe_cuda_device() {
  DeviceFacts f;
  int dev = 0;
  RL_CUDA_CHECK("describe device", cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  RL_CUDA_CHECK("describe device", cudaGetDeviceProperties(&prop, dev));
  f.name = prop.name;
  f.sm_count = prop.multiProcessorCount;
  f.memory_bytes = int64_t(prop.totalGlobalMem);
  f.l2_bytes = prop.l2CacheSize;
  int drv = 0, rt = 0;
  RL_CUDA_CHECK("describe device", cudaDriverGetVersion(&drv));
  RL_CUDA_CHECK("describe device", cudaRuntimeGetVersion(&rt));
  f.driver = fmt::format("{}.{}", drv / 1000, (drv % 1000) / 10);
  f.runtime = fmt::format("{}.{}", rt / 1000, (rt % 1000) / 10);
  // "GPU-" and the 16 UUID bytes as 8-4-4-4-12 hex digits, as nvidia-smi and NVML print them.
  std::string uuid = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) uuid += '-';
    uuid += fmt::format("{:02x}", static_cast<unsigned char>(prop.uuid.bytes[i]));
  }
  f.uuid = uuid;
  const size_t lt = cublasLtGetVersion();  // major * 10000 + minor * 100 + patch
  f.cublas = fmt::format("{}.{}.{}", lt / 10000, (lt / 100) % 100, lt % 100);
  return f;
}

bool cuda_available(std::string* why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaSuccess && count > 0) e = cudaSetDevice(0);
  if (e != cudaSuccess || count == 0) {
    if (why) *why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device found";
    cudaGetLastError();  // leave no sticky error behind for the next caller
    return false;
  }
  return true;
}

CudaBackend* as_cuda_backend(Backend& b) {
  return dynamic_cast<CudaBackend*>(&b);
}

std::unique_ptr<Backend> make_cuda_backend(const ModelSource& source, const BackendOptions& options) {
  return make_cuda_backend(source, options, CudaOptions{});
}

std::unique_ptr<Backend> make_cuda_backend(const ModelSource& source, const BackendOptions& options,
                                           const CudaOptions& cuda_options) {
  if (Support s = cuda_supports(source, options.formats); !s) throw std::runtime_error(s.reason);
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("CUDA backend: no GPU available (" + why + ")");
  return std::make_unique<cuda::CudaBackendImpl>(source, options, cuda_options);
}

}  // namespace ridgeline
