// The bandwidth a running decode achieves, for live statistics (chat's /stats): the bytes of one
// decode step from the op table (engine/ops.h), at the context it ran at, and the roof to read
// them against.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "analysis/roofline.h"
#include "engine/backend.h"

namespace ridgeline {

class StepBandwidth {
 public:
  explicit StepBandwidth(const Backend& backend);

  // Bytes of one decode step of one sequence whose context holds `context` tokens.
  double step_bytes(int64_t context) const;

  // The roof: the GPU's datasheet value (by the backend's device name), or the CPU's one-thread
  // copy bandwidth, measured on first use (about a second). nullopt when there is none.
  const std::optional<Ceilings>& peak();
  const std::string& peak_name() const { return peak_name_; }

 private:
  ModelConfig config_;
  Formats formats_;
  DeviceKind device_;
  std::string device_name_;
  bool peak_looked_up_ = false;
  std::optional<Ceilings> peak_;
  std::string peak_name_;
};

}  // namespace ridgeline
