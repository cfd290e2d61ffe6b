// Per-op GPU time from CUPTI kernel activity records: the sum of the durations of the kernels
// each op launched, as the GPU timestamps them. Unlike CUDA events between ops, this counts no
// launch gaps and adds no nodes to the step, so coverage = sum(op time) / step time reads as
// "the share of the step the GPU spent in kernels" and stays <= 1.
//
// Ops are told apart by CUPTI external correlation ids: begin_op(i) before an op's launches,
// end_op() after; cuBLASLt's kernels are attributed to the op that called it like any other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ridgeline::cuda {

class CuptiOpTimer {
 public:
  // Throws std::runtime_error with CUPTI's reason when activity tracing cannot be enabled (no
  // CUPTI in this build, or the driver refuses it); callers fall back to events.
  CuptiOpTimer();
  ~CuptiOpTimer();
  CuptiOpTimer(const CuptiOpTimer&) = delete;
  CuptiOpTimer& operator=(const CuptiOpTimer&) = delete;

  void begin_op(uint64_t op_index);
  void end_op();
  // After the launching stream was synchronized: flushes CUPTI's buffers and returns, per op index
  // seen since the last call, the summed kernel time in microseconds (index -> us, 0 for an op
  // that launched nothing), sized to the largest index + 1.
  std::vector<double> collect();

  // Kernel spans: with keep_spans(true), every kernel record (those of graph replays too, which
  // carry no op id) is also kept as (name, start, end); collect_spans() flushes and returns them
  // in start order, times in ns on the GPU's clock, and forgets them.
  struct Span {
    std::string name;  // as CUPTI gives it (mangled)
    uint64_t start_ns = 0, end_ns = 0;
  };
  void keep_spans(bool on);
  std::vector<Span> collect_spans();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ridgeline::cuda
