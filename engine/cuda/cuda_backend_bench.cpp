// The CUDA backend's benchmark hooks (engine/backend.h): fill_context() and benchmark_decode().
// The step is timed as the sweep reports it: the decode graph plus greedy sampling, replayed back
// to back with an event between replays and no host sync inside (docs/DESIGN.md, "Measuring honestly").
// Ops are timed in a second graph of the same step with an event record node around each op, so
// that launch gaps, which a graph removes, do not inflate them either.
#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/cuda/cuda_backend_impl.h"
#include "engine/cuda/cupti_op_timer.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {

void CudaBackendImpl::fill_context(int seq, int length, uint64_t seed) {
  Sequence& s = find(seq);
  if (s.length != 0) throw std::logic_error("fill_context() needs an empty sequence");
  if (length < 0) throw std::invalid_argument("fill_context(): length must be >= 0");
  if (length == 0) return;
  if (length > max_sequence_length())
    throw std::runtime_error(fmt::format("sequence would hold {} tokens, more than the context limit of {}",
                                         length, max_sequence_length()));
  const int need = kv_->blocks_needed(s.slot, length);
  if (need > kv_->free_blocks())
    throw std::runtime_error(
        fmt::format("KV cache full: {} tokens need {} {}-token blocks, {} free ({} tokens)", length, need,
                    kv_->block_size(), kv_->free_blocks(), capacity_tokens()));
  kv_->grow(s.slot, length);
  kv_->upload_changes(stream_.get());

  // Random valid blocks in the cache's format (fp16 values in [-1, 1), or codes with real scales and
  // zeros: fill_kv_synthetic); runs of consecutive physical blocks (the usual case on a fresh cache)
  // are one launch.
  const std::vector<int>& blocks = kv_->blocks(s.slot);
  for (int l = 0; l < c_.n_layers; ++l) {
    const KvCacheView view = kv_->view(l);
    void* pools[2] = {view.k, view.v};
    for (int kv = 0; kv < 2; ++kv) {
      for (size_t i = 0; i < blocks.size();) {
        size_t j = i + 1;
        while (j < blocks.size() && blocks[j] == blocks[j - 1] + 1) ++j;
        fill_kv_synthetic(view, pools[kv], blocks[i], int64_t(j - i), seed, (uint64_t(l) << 1) | uint64_t(kv),
                          stream_.get());
        i = j;
      }
    }
  }
  s.length = length;
}

// Ops of one decode step as the hook sees them: the op table's.
int CudaBackendImpl::op_count() const {
  return static_cast<int>(step_ops(c_, StepShape{}).size());
}

void CudaBackendImpl::run_argmax(int rows, const OpHook* hook) {
  op(names_(OpType::sample), hook,
     [&] { argmax(logits_.get(), rows, c_.vocab, sampled_dev_.get(), stream_.get()); });
}

DecodeTiming CudaBackendImpl::benchmark_decode(std::span<const int> seqs, int warmup, int iters) {
  if (iters < 1 || warmup < 0)
    throw std::invalid_argument("benchmark_decode: needs iters >= 1 and warmup >= 0");
  const std::vector<std::vector<int>> one(seqs.size(), std::vector<int>{c_.bos_id});
  validate(seqs, one);
  park_logits(seqs);  // the timed steps overwrite these sequences' logits: they end with none
  reserve_blocks(seqs, one);
  const std::vector<int> ids(seqs.size(), c_.bos_id);
  const StepArgs a = stage_decode(seqs, ids);
  cudaStream_t st = stream_.get();
  auto step = [&] {
    run_decode(a, nullptr);
    run_argmax(a.real_rows, nullptr);
  };
  // At least two untimed steps: the first step of a new bucket runs eagerly and captures its graph.
  for (int i = 0; i < std::max(warmup, 2); ++i) step();

  std::vector<Event> marks;
  for (int i = 0; i <= iters; ++i) marks.emplace_back(true);
  RL_CUDA_CHECK("benchmark_decode", cudaEventRecord(marks[0].get(), st));
  for (int i = 0; i < iters; ++i) {
    step();
    RL_CUDA_CHECK("benchmark_decode", cudaEventRecord(marks[i + 1].get(), st));
  }
  RL_CUDA_CHECK("benchmark_decode", cudaStreamSynchronize(st));
  DecodeTiming t;
  for (int i = 0; i < iters; ++i) {
    float ms = 0.0f;
    RL_CUDA_CHECK("benchmark_decode", cudaEventElapsedTime(&ms, marks[i].get(), marks[i + 1].get()));
    t.step_us.push_back(1000.0 * ms);
  }

  const bool graphed = copt_.use_graphs && a.graphable;
  const std::string step_method = graphed ? "cuda: step = one CUDA graph replay of the decode step plus the "
                                            "greedy argmax, replays back to back, "
                                            "CUDA events between them, no host sync inside"
                                          : "cuda: step = the decode step run eagerly (not graph-captured: "
                                            "past the trained context or graphs "
                                            "off) plus the greedy argmax, CUDA events between steps";
  // Per-op times: CUPTI kernel records first (kernel durations alone, no nodes added between ops);
  // where CUPTI is unavailable, events around each op (which add a few us per op: coverage > 1).
  try {
    t.ops = profile_ops_cupti(a, iters);
    t.method = step_method +
               "; ops = CUPTI kernel activity records of an eager pass, each op's kernels (cuBLASLt's "
               "included) summed by external correlation id: GPU time without launch gaps";
    return t;
  } catch (const std::exception& e) {
    t.method = step_method + "; (CUPTI unavailable: " + e.what() + ")";
  }
  if (graphed) {
    try {
      t.ops = profile_ops_in_graph(a, iters);
      t.method +=
          "; ops = a second graph of the same step with an event record node before and after each op, "
          "replayed once per sample";
      return t;
    } catch (const std::exception& e) {
      t.method += std::string("; graph event nodes failed: ") + e.what();
    }
  }
  t.method += "; ops = eager pass with CUDA events around each op";
  t.ops = profile_ops_eagerly(a, iters);
  return t;
}

namespace {

// Events around each op, filled in by a hook in forward order.
struct OpMarks {
  std::vector<std::string> names;
  std::vector<Event> begin, end;

  explicit OpMarks(int capacity) {
    for (int i = 0; i < capacity; ++i) {
      begin.emplace_back(true);
      end.emplace_back(true);
    }
  }
  CudaBackend::OpHook hook(cudaStream_t stream, bool in_graph) {
    return [this, stream, in_graph](const char* name, bool is_begin) {
      const unsigned flags = in_graph ? cudaEventRecordExternal : cudaEventRecordDefault;
      if (is_begin) {
        if (names.size() >= begin.size()) throw std::logic_error("profile: more ops than expected");
        names.emplace_back(name);
        RL_CUDA_CHECK("profile", cudaEventRecordWithFlags(begin[names.size() - 1].get(), stream, flags));
      } else {
        RL_CUDA_CHECK("profile", cudaEventRecordWithFlags(end[names.size() - 1].get(), stream, flags));
      }
    };
  }
  void read_into(std::vector<OpSamples>& ops) const {
    if (ops.empty())
      for (const auto& n : names) ops.push_back(OpSamples{n, {}});
    for (size_t k = 0; k < names.size(); ++k) {
      float ms = 0.0f;
      RL_CUDA_CHECK("profile", cudaEventElapsedTime(&ms, begin[k].get(), end[k].get()));
      ops[k].us.push_back(1000.0 * ms);
    }
  }
};

}  // namespace

std::vector<OpSamples> CudaBackendImpl::profile_ops_cupti(const StepArgs& a, int iters) {
  cudaStream_t st = stream_.get();
  CuptiOpTimer timer;
  std::vector<std::string> names;
  const OpHook hook = [&](const char* name, bool is_begin) {
    if (is_begin) {
      names.emplace_back(name);
      timer.begin_op(names.size() - 1);
    } else {
      timer.end_op();
    }
  };
  std::vector<OpSamples> ops;
  for (int i = 0; i < iters; ++i) {
    names.clear();
    run_step(a, &hook);
    run_argmax(a.real_rows, &hook);
    RL_CUDA_CHECK("profile", cudaStreamSynchronize(st));
    std::vector<double> us = timer.collect();
    if (ops.empty())
      for (const auto& n : names) ops.push_back(OpSamples{n, {}});
    if (us.size() > ops.size()) throw std::runtime_error("CUPTI saw more ops than the step has");
    us.resize(ops.size(), 0.0);
    double total = 0;
    for (size_t k = 0; k < ops.size(); ++k) {
      ops[k].us.push_back(us[k]);
      total += us[k];
    }
    if (total <= 0) throw std::runtime_error("CUPTI delivered no kernel records");
  }
  return ops;
}

std::vector<OpSamples> CudaBackendImpl::profile_ops_in_graph(const StepArgs& a, int iters) {
  cudaStream_t st = stream_.get();
  OpMarks marks(op_count());
  const OpHook hook = marks.hook(st, true);
  GraphExec graph = GraphExec::capture(st, "profile graph capture", [&] {
    run_step(a, &hook);
    run_argmax(a.real_rows, &hook);
  });
  std::vector<OpSamples> ops;
  for (int i = 0; i < iters; ++i) {
    graph.launch(st, "profile graph");
    RL_CUDA_CHECK("profile", cudaStreamSynchronize(st));
    marks.read_into(ops);
  }
  return ops;
}

std::vector<OpSamples> CudaBackendImpl::profile_ops_eagerly(const StepArgs& a, int iters) {
  cudaStream_t st = stream_.get();
  std::vector<OpSamples> ops;
  OpMarks marks(op_count());
  const OpHook hook = marks.hook(st, false);
  for (int i = 0; i < iters; ++i) {
    marks.names.clear();  // the events are reused: the last step's were read after its sync
    run_step(a, &hook);
    run_argmax(a.real_rows, &hook);
    RL_CUDA_CHECK("profile", cudaStreamSynchronize(st));
    marks.read_into(ops);
  }
  return ops;
}

}  // namespace ridgeline::cuda
