#include "bench/step_bandwidth.h"

#include <algorithm>

#include "analysis/ceilings.h"
#include "analysis/cost_model.h"
#include "bench/probe/probe.h"

namespace ridgeline {

StepBandwidth::StepBandwidth(const Backend& backend)
    : config_(backend.config()),
      formats_(backend.formats()),
      device_(backend.device()),
      device_name_(backend.device_name()) {}

double StepBandwidth::step_bytes(int64_t context) const {
  StepShape s;
  s.context = {int(std::max<int64_t>(context, 1))};
  s.formats = formats_;
  if (device_ == DeviceKind::cuda) s.fusions = cuda_fusions(config_, s);
  return total(step_costs(config_, s)).bytes;
}

const std::optional<Ceilings>& StepBandwidth::peak() {
  if (!peak_looked_up_) {
    peak_looked_up_ = true;
    if (device_ == DeviceKind::cuda) {
      if (auto d = datasheet_for(device_name_))
        peak_ = datasheet_ceilings(*d), peak_name_ = d->name + " datasheet";
    } else {
      peak_ = measure_cpu_ceilings(), peak_name_ = "one CPU thread, measured copy";
    }
  }
  return peak_;
}

}  // namespace ridgeline
