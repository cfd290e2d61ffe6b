// The CUDA backend's benchmark hooks (engine/backend.h): fill_context(), benchmark_decode() and
// benchmark_prefill().
// The step is timed as the sweep reports it: the decode graph plus greedy sampling, replayed back
// to back with an event between replays and no host sync inside (docs/DESIGN.md, "Measuring honestly").
// Ops are timed in a second graph of the same step with an event record node around each op, so
// that launch gaps, which a graph removes, do not inflate them either. A prefill is timed whole (all
// its chunks and the first token's argmax, launched eagerly as forward() launches them), back to back
// with an event between prefills.
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/cuda/cuda_backend_impl.h"
#include "engine/cuda/cupti_op_timer.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"
#include "kernels/overlap.h"

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

namespace {

// `iters` runs of `step` back to back on `stream`, an event recorded between each two and no host
// sync inside (docs/DESIGN.md, "Measuring honestly"): the microseconds between consecutive events.
template <typename F>
std::vector<double> time_back_to_back(const char* what, cudaStream_t st, int iters, F&& step) {
  std::vector<Event> marks;
  for (int i = 0; i <= iters; ++i) marks.emplace_back(true);
  RL_CUDA_CHECK(what, cudaEventRecord(marks[0].get(), st));
  for (int i = 0; i < iters; ++i) {
    step();
    RL_CUDA_CHECK(what, cudaEventRecord(marks[i + 1].get(), st));
  }
  RL_CUDA_CHECK(what, cudaStreamSynchronize(st));
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    float ms = 0.0f;
    RL_CUDA_CHECK(what, cudaEventElapsedTime(&ms, marks[i].get(), marks[i + 1].get()));
    us.push_back(1000.0 * ms);
  }
  return us;
}

// A kernel's name as source code writes it, namespaces dropped: "gemv_fused_kernel<1, true,
// (Epilogue)3>", "decode_attention_kernel<128, 2, 16>"; non-C++ names (cuBLASLt's) as they come.
std::string short_kernel_name(const std::string& mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string full = status == 0 && d ? d : mangled;
  std::free(d);
  for (const std::string anon = "(anonymous namespace)::"; full.find(anon) != std::string::npos;)
    full.erase(full.find(anon), anon.size());
  int depth = 0;  // template argument depth: the parameter list is the first '(' outside them
  size_t end = 0;
  for (; end < full.size() && !(full[end] == '(' && depth == 0); ++end)
    depth += full[end] == '<' ? 1 : full[end] == '>' && depth > 0 ? -1 : 0;
  static const std::regex qualifier("[A-Za-z_0-9]+::");
  std::string name = std::regex_replace(full.substr(0, end), qualifier, "");
  if (name.rfind("void ", 0) == 0) name.erase(0, 5);
  return name;
}

bool timeline_requested() {
  const char* e = std::getenv("RIDGELINE_TIMELINE");
  return e != nullptr && *e != '\0' && std::string(e) != "0";
}

// The kernels of one `step` (launched as the timed steps are) from CUPTI's kernel records: what
// each kernel took inside the overlapped graph, where per-op times (serial launches) cannot see it.
// Empty where CUPTI is unavailable.
template <typename F>
std::vector<KernelSpan> step_timeline(cudaStream_t st, F&& step) {
  std::unique_ptr<CuptiOpTimer> timer;
  try {
    timer = std::make_unique<CuptiOpTimer>();
  } catch (const std::runtime_error&) {
    return {};  // no CUPTI: the report says nothing about the timeline
  }
  timer->keep_spans(true);
  step();
  RL_CUDA_CHECK("timeline", cudaStreamSynchronize(st));
  const std::vector<CuptiOpTimer::Span> spans = timer->collect_spans();
  std::vector<KernelSpan> out;
  for (const auto& k : spans)
    out.push_back({short_kernel_name(k.name), 1e-3 * double(k.start_ns - spans.front().start_ns),
                   1e-3 * double(k.end_ns - spans.front().start_ns)});
  return out;
}

}  // namespace

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

  DecodeTiming t;
  t.step_us = time_back_to_back("benchmark_decode", st, iters, step);
  if (timeline_requested()) t.timeline = step_timeline(st, step);

  const bool graphed = copt_.use_graphs && a.graphable;
  const std::string step_method =
      std::string(graphed ? "cuda: step = one CUDA graph replay of the decode step plus the "
                            "greedy argmax, replays back to back, "
                            "CUDA events between them, no host sync inside"
                          : "cuda: step = the decode step run eagerly (not graph-captured: "
                            "past the trained context or graphs "
                            "off) plus the greedy argmax, CUDA events between steps") +
      (overlapped_launches() ? ", kernels launched overlapped (programmatic dependent launch)"
                             : ", kernels launched serially (RIDGELINE_OVERLAP_LAUNCHES=0)");
  // Per-op times: CUPTI kernel records first (kernel durations alone, no nodes added between ops);
  // where CUPTI is unavailable, events around each op (which add a few us per op: coverage > 1).
  // Launched serially: a kernel that started early would be charged for its wait.
  const SerialLaunches serial;
  try {
    t.ops = profile_ops_cupti(a, iters);
    t.method =
        step_method +
        "; ops = CUPTI kernel activity records of an eager pass with serial launches, each op's "
        "kernels (cuBLASLt's included) summed by external correlation id: GPU time without launch gaps";
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
  // One sample per distinct name, summed over its occurrences (a prefill's chunks repeat every op).
  void read_summed_into(std::vector<OpSamples>& ops) const {
    std::map<std::string, double> sums;
    for (size_t k = 0; k < names.size(); ++k) {
      float ms = 0.0f;
      RL_CUDA_CHECK("profile", cudaEventElapsedTime(&ms, begin[k].get(), end[k].get()));
      if (!sums.count(names[k])) {
        sums[names[k]] = 0;
        if (std::none_of(ops.begin(), ops.end(), [&](const OpSamples& o) { return o.name == names[k]; }))
          ops.push_back(OpSamples{names[k], {}});
      }
      sums[names[k]] += 1000.0 * ms;
    }
    for (auto& o : ops) o.us.push_back(sums[o.name]);
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

// One pass's CUPTI kernel times `us` (in op order) appended to each op's samples; a pass that saw
// more ops than `what` has, or no kernel time at all, is an error rather than a wrong table.
void append_op_samples(std::vector<OpSamples>& ops, std::vector<double> us, const char* what) {
  if (us.size() > ops.size())
    throw std::runtime_error(fmt::format("CUPTI saw more ops than the {} has", what));
  us.resize(ops.size(), 0.0);
  double total = 0;
  for (size_t k = 0; k < ops.size(); ++k) {
    ops[k].us.push_back(us[k]);
    total += us[k];
  }
  if (total <= 0) throw std::runtime_error("CUPTI delivered no kernel records");
}

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
    append_op_samples(ops, us, "step");
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

namespace ridgeline::cuda {

DecodeTiming CudaBackendImpl::benchmark_prefill(std::span<const int> seqs, int tokens_per_seq, int warmup,
                                                int iters) {
  if (iters < 1 || warmup < 0 || tokens_per_seq < 1)
    throw std::invalid_argument("benchmark_prefill: needs tokens_per_seq >= 1, iters >= 1 and warmup >= 0");
  const std::vector<std::vector<int>> tokens = benchmark_prefill_tokens(c_, seqs.size(), tokens_per_seq);
  for (int id : seqs)
    if (find(id).length != 0) throw std::logic_error("benchmark_prefill() needs empty sequences");
  validate(seqs, tokens);
  park_logits(seqs);  // the prefills overwrite these sequences' logits: they end with none
  // Every prefill writes the same blocks (the sequences' lengths stay 0); they go back to the free
  // list however this returns, so the sequences end as empty as they began.
  struct ReleaseBlocks {
    CudaBackendImpl& b;
    std::span<const int> seqs;
    ~ReleaseBlocks() {
      for (int id : seqs) b.kv_->release(b.find(id).slot);
    }
  } release{*this, seqs};
  reserve_blocks(seqs, tokens);
  const int n = static_cast<int>(seqs.size());
  cudaStream_t st = stream_.get();
  auto prefill = [&] {
    run_prefill(seqs, tokens, nullptr);
    run_argmax(n, nullptr);
  };
  // At least one untimed prefill: it loads the kernels and lets cuBLASLt choose its algorithms.
  for (int i = 0; i < std::max(warmup, 1); ++i) prefill();

  DecodeTiming t;
  t.step_us = time_back_to_back("benchmark_prefill", st, iters, prefill);
  const bool overlapped = overlapped_launches();
  std::string ops_method;
  {
    const SerialLaunches serial;  // per-op times: a kernel that started early would be charged for its wait
    t.ops = profile_prefill_ops(seqs, tokens, iters, ops_method);
  }
  t.method = fmt::format(
      "cuda: step = one whole prefill ({} tokens in chunks of up to {}, launched eagerly as forward() does: "
      "prefill is not graph-captured, input uploads included) plus the greedy argmax of the first token, "
      "prefills back to back, CUDA events between them, no host sync inside, kernels launched {}; ops = {}",
      int64_t{n} * tokens_per_seq, copt_.max_prefill_tokens,
      overlapped ? "overlapped (programmatic dependent launch)" : "serially (RIDGELINE_OVERLAP_LAUNCHES=0)",
      ops_method);
  return t;
}

std::vector<OpSamples> CudaBackendImpl::profile_prefill_ops(std::span<const int> seqs,
                                                            std::span<const std::vector<int>> tokens,
                                                            int iters, std::string& method) {
  cudaStream_t st = stream_.get();
  const int n = static_cast<int>(seqs.size());
  std::string cupti_error;
  try {
    CuptiOpTimer timer;
    std::map<std::string, size_t> index;  // op name -> CUPTI external id, the same for every chunk
    std::vector<std::string> names;
    const OpHook hook = [&](const char* name, bool is_begin) {
      if (!is_begin) return timer.end_op();
      auto [it, fresh] = index.emplace(name, names.size());
      if (fresh) names.emplace_back(name);
      timer.begin_op(it->second);
    };
    std::vector<OpSamples> ops;
    for (int i = 0; i < iters; ++i) {
      run_prefill(seqs, tokens, &hook);
      run_argmax(n, &hook);
      RL_CUDA_CHECK("profile", cudaStreamSynchronize(st));
      std::vector<double> us = timer.collect();
      for (size_t k = ops.size(); k < names.size(); ++k) ops.push_back(OpSamples{names[k], {}});
      append_op_samples(ops, us, "prefill");
    }
    method =
        "CUPTI kernel activity records of an eager pass with serial launches, each op's kernels summed "
        "over the prefill's chunks: GPU time without launch gaps";
    return ops;
  } catch (const std::exception& e) {
    cupti_error = e.what();
  }
  const int64_t total_tokens = int64_t{n} * (tokens.empty() ? 0 : int64_t(tokens[0].size()));
  const int chunks =
      static_cast<int>((total_tokens + copt_.max_prefill_tokens - 1) / copt_.max_prefill_tokens);
  OpMarks marks(op_count() * std::max(chunks, 1));
  const OpHook hook = marks.hook(st, false);
  std::vector<OpSamples> ops;
  for (int i = 0; i < iters; ++i) {
    marks.names.clear();
    run_prefill(seqs, tokens, &hook);
    run_argmax(n, &hook);
    RL_CUDA_CHECK("profile", cudaStreamSynchronize(st));
    marks.read_summed_into(ops);
  }
  method = "(CUPTI unavailable: " + cupti_error +
           ") eager pass with CUDA events around each op, summed over the "
           "prefill's chunks";
  return ops;
}

}  // namespace ridgeline::cuda
