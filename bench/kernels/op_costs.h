// The bytes and FLOPs a kernel benchmark reports, taken from the cost model (analysis/cost_model.h,
// bytes from the op table engine/ops.h) so that a microbenchmark's GB/s and the sweep's agree on
// what each kernel moves. Compiled by the host compiler (op_costs.cpp): the benchmarks are .cu files.
#pragma once

#include <string>

#include "engine/ops.h"

namespace ridgeline::bench {

struct KernelCost {
  double bytes = 0;
  double flops = 0;
};

// Op `type` of layer 1 (or the global op) of preset `preset` in a step of `batch` sequences of
// `context` tokens each, the last `new_tokens` of each new in this step (1: decode; the context: a
// whole-prompt prefill), weights and KV in `formats` (fp16 and fp16 unless given), with `fusions`
// folded in (none unless given).
KernelCost op_cost(const std::string& preset, OpType type, int batch, int context = 1024,
                   const Formats& formats = Formats{}, int new_tokens = 1,
                   const Fusions& fusions = Fusions{});

}  // namespace ridgeline::bench
