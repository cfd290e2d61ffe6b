#include "bench/kernels/op_costs.h"

#include <stdexcept>

#include "analysis/cost_model.h"
#include "engine/model_source.h"

namespace ridgeline::bench {

KernelCost op_cost(const std::string& preset, OpType type, int batch, int context, const Formats& formats,
                   int new_tokens, const Fusions& fusions) {
  const ModelConfig c = preset_config(preset);
  StepShape s;
  s.batch = batch;
  s.context = {context};
  s.formats = formats;
  s.new_tokens_per_seq = new_tokens;
  s.fusions = fusions;
  const std::string name = op_name(type, kind_of(type) == OpKind::embed || type == OpType::norm ||
                                                 type == OpType::output || type == OpType::sample
                                             ? -1
                                             : 1);
  for (const OpCost& op : step_costs(c, s))
    if (op.name == name) return {op.bytes, op.flops};
  throw std::logic_error("op_cost: no op " + name);
}

}  // namespace ridgeline::bench
