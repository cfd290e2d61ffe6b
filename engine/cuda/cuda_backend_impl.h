// Inside the CUDA backend (internal to engine/cuda): the class behind make_cuda_backend(). A
// forward() is cut into steps: a decode step (one new token per sequence, the batch padded to a
// bucket and replayed from a CUDA graph) or prefill chunks (up to max_prefill_tokens new tokens of
// any sequences each). run_step() is the model, top to bottom, the same code whether it runs
// eagerly, is captured into a graph, or is profiled op by op. cuda_backend.cpp holds construction,
// sequences, forward and sampling; cuda_backend_bench.cpp the benchmark hooks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <cuda_fp16.h>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_weights.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/inject_delay.h"
#include "engine/cuda/kv_cache.h"
#include "engine/cuda/nvtx.h"

namespace ridgeline::cuda {

// Rows [first, first + count) of a step rotate with RoPE base `base` (one base per sequence:
// dynamic NTK scaling depends on the sequence's length).
struct RopeGroup {
  int first = 0, count = 0;
  float base = 0.0f;
  bool operator==(const RopeGroup&) const = default;
};

// What one step runs over: device pointers to its inputs and the host-side shape of the work.
struct StepArgs {
  int rows = 0;         // token rows (a decode step's rows include the padding)
  bool decode = false;  // one token per row: decode attention, else prefill attention
  const int* ids = nullptr;
  const int* slots = nullptr;
  const int* positions = nullptr;
  const int* context_lens = nullptr;  // decode only
  // Decode with Fusions::rope_in_attention: [rows, head_dim/2] each row's RoPE table (its group's base)
  const float* rope_inv_freq = nullptr;
  int max_context = 0;  // decode only: bound on context_lens, fixed per graph
  std::vector<RopeGroup> rope;
  std::vector<int> head_rows;  // prefill: rows whose logits are wanted, in output order
  int logits_row0 = 0;         // the first head row's row in the logits buffer
  int real_rows = 0;           // decode: rows before the padding
  bool graphable = false;      // decode: the step may be captured (one RoPE base, inside the trained context)
};

struct Sequence {
  int slot = 0;
  int length = 0;
  enum class Logits { none, scratch, parked } logits = Logits::none;
  int logits_row = 0;  // in logits_ when logits == scratch
};

struct Activations {
  DeviceBuffer<float> residual;  // [rows, hidden] fp32 residual stream
  DeviceBuffer<half> x;          // [rows, hidden] normed input of the next GEMM
  DeviceBuffer<half> qkv;        // [rows, qkv_dim]
  DeviceBuffer<half> q;          // [rows, q_dim] rotated queries
  DeviceBuffer<half> attn;       // [rows, q_dim]
  DeviceBuffer<half> proj;       // [rows, hidden] wo / w2 output, added into the residual by the next norm
  DeviceBuffer<half> gate_up;    // [rows, 2*inter]
  DeviceBuffer<half> act;        // [rows, inter]
  DeviceBuffer<half> head_in;    // [logit rows, hidden] gathered last-token rows of a prefill
};

class CudaBackendImpl final : public CudaBackend {
 public:
  CudaBackendImpl(const ModelSource& source, const BackendOptions& options, const CudaOptions& copt);

  const ModelConfig& config() const override { return c_; }
  DeviceKind device() const override { return DeviceKind::cuda; }
  std::string device_name() const override { return device_name_; }
  const Formats& formats() const override { return opt_.formats; }
  int create_sequence() override;
  void release_sequence(int seq) override;
  int sequence_length(int seq) const override { return find(seq).length; }
  int64_t capacity_tokens() const override { return int64_t{kv_->free_blocks()} * kv_->block_size(); }
  int prefill_chunk_tokens() const override { return copt_.max_prefill_tokens; }
  void forward(std::span<const int> seqs, std::span<const std::vector<int>> tokens, float* logits) override {
    forward_impl(seqs, tokens, logits, nullptr);
  }
  void sample(std::span<const int> seqs, std::span<const SamplingParams> params, int* out) override {
    sample_impl(seqs, params, out, nullptr);
  }
  void fill_context(int seq, int length, uint64_t seed) override;
  DecodeTiming benchmark_decode(std::span<const int> seqs, int warmup, int iters) override;
  DecodeTiming benchmark_prefill(std::span<const int> seqs, int tokens_per_seq, int warmup,
                                 int iters) override;

  void forward_with_hook(std::span<const int> seqs, std::span<const std::vector<int>> tokens, float* logits,
                         const OpHook& hook) override {
    forward_impl(seqs, tokens, logits, &hook);
  }
  void sample_with_hook(std::span<const int> seqs, std::span<const SamplingParams> params, int* out,
                        const OpHook& hook) override {
    sample_impl(seqs, params, out, &hook);
  }
  void set_use_graphs(bool on) override { copt_.use_graphs = on; }
  int64_t graph_replays() const override { return graph_replays_; }
  int graphs_captured() const override { return static_cast<int>(graphs_.size()); }
  cudaStream_t stream() const override { return stream_.get(); }
  int block_size() const override { return kv_->block_size(); }
  int64_t weight_bytes() const override { return allocated_bytes(w_); }
  int64_t kv_cache_bytes() const override { return kv_->pool_bytes(); }

 private:
  const Sequence& find(int seq) const;
  Sequence& find(int seq) { return const_cast<Sequence&>(std::as_const(*this).find(seq)); }
  // Throws, before anything is allocated or written, when the tokens do not fit.
  void validate(std::span<const int> seqs, std::span<const std::vector<int>> tokens) const;
  void forward_impl(std::span<const int> seqs, std::span<const std::vector<int>> tokens, float* logits,
                    const OpHook* hook);
  void sample_impl(std::span<const int> seqs, std::span<const SamplingParams> params, int* out,
                   const OpHook* hook);
  void park_logits(std::span<const int> next);
  void reserve_blocks(std::span<const int> seqs, std::span<const std::vector<int>> tokens);
  int* stage_inputs(int rows);
  StepArgs stage_decode(std::span<const int> seqs, std::span<const int> tokens);
  void run_decode(const StepArgs& a, const OpHook* hook);
  void run_prefill(std::span<const int> seqs, std::span<const std::vector<int>> tokens, const OpHook* hook);
  void run_step(const StepArgs& a, const OpHook* hook);
  // The small ops this step folds into its GEMVs: cuda_fusions (engine/ops.h) of the step's rows.
  Fusions step_fusions(const StepArgs& a) const;
  void run_argmax(int rows, const OpHook* hook);  // greedy tokens of logits_ rows into sampled_dev_
  int op_count() const;
  std::vector<OpSamples> profile_ops_cupti(const StepArgs& a, int iters);
  std::vector<OpSamples> profile_ops_in_graph(const StepArgs& a, int iters);
  std::vector<OpSamples> profile_ops_eagerly(const StepArgs& a, int iters);
  // Per-op times of a whole prefill (chunks summed per op), CUPTI or events; `method` says which.
  std::vector<OpSamples> profile_prefill_ops(std::span<const int> seqs,
                                             std::span<const std::vector<int>> tokens, int iters,
                                             std::string& method);
  int bucket_rows(int n) const;
  int context_bucket(int max_ctx) const;
  float rope_base(int64_t length) const;

  template <typename F>
  void op(const std::string& name, const OpHook* hook, F&& body) {
    NvtxRange range(name.c_str());
    if (hook && *hook) (*hook)(name.c_str(), true);
    body();
    inject_delay_after(name, stream_.get());  // RIDGELINE_INJECT_DELAY_US: usually nothing
    if (hook && *hook) (*hook)(name.c_str(), false);
  }

  ModelConfig c_;
  std::string device_name_;
  BackendOptions opt_;
  CudaOptions copt_;
  Stream stream_;
  DeviceWeights w_;
  std::unique_ptr<Gemm> gemm_;
  int max_rows_ = 0;     // rows of every activation buffer
  int max_bucket_ = 0;   // the largest decode batch bucket (and rows of the logits buffers)
  int max_context_ = 0;  // the longest context a block-table row can map
  Activations act_;
  DeviceBuffer<float> logits_;         // [max_bucket, vocab] logits of the last step's sequences
  DeviceBuffer<float> parked_logits_;  // [max_sequences, vocab] by slot: logits moved aside (park_logits)
  DeviceBuffer<float> sample_rows_;    // [max_bucket, vocab] logits gathered for sample()
  DeviceBuffer<uint8_t> attention_ws_, sample_ws_;
  DeviceBuffer<int> inputs_dev_;  // step inputs: [ids | slots | positions | context_lens], `rows` each
  PinnedBuffer<int> inputs_host_;
  // Decode steps whose attention rotates q (Fusions::rope_in_attention): a RoPE table per row,
  // [max_bucket, head_dim/2], uploaded before the step when its rows' bases differ from the last upload.
  DeviceBuffer<float> rope_freq_dev_;
  PinnedBuffer<float> rope_freq_host_;
  // The groups whose tables rope_freq_dev_ holds: inside the trained context every decode step has
  // the same ones (one base), so the tables are uploaded once, not every step.
  std::vector<RopeGroup> rope_freq_uploaded_;
  Event inputs_copied_;  // the last input upload has read inputs_host_ and rope_freq_host_
  DeviceBuffer<uint8_t> sample_params_dev_;
  PinnedBuffer<uint8_t> sample_params_host_;
  Event sample_params_copied_;  // the last upload of sampling parameters has read sample_params_host_
  DeviceBuffer<int> sampled_dev_;
  PinnedBuffer<int> sampled_host_;
  std::unique_ptr<PagedKvCache> kv_;
  OpNames names_;
  std::map<int, Sequence> seqs_;
  std::vector<int> free_slots_;
  std::vector<int> scratch_owner_;  // per logits_ row: the sequence whose logits it holds, or -1
  int next_id_ = 0;
  std::map<std::pair<int, int>, GraphExec> graphs_;  // decode steps by (rows, context bucket)
  int64_t graph_replays_ = 0;
};

}  // namespace ridgeline::cuda
