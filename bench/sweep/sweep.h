// The sweep driver: decode steps timed over a cross product of batch, context, weight format and
// KV format on one backend, joined with the cost model into a `ridgeline.report.v1` report.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report.h"
#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline {

struct SweepSpec {
  DeviceKind device = DeviceKind::cpu;
  std::vector<int> batches{1, 4, 16, 64, 256};
  std::vector<int> contexts{1024, 4096};
  std::vector<WeightFormat> weights{WeightFormat::fp16};
  std::vector<KvFormat> kvs{KvFormat::fp16};
  int warmup = 5;
  int iters = 50;
  uint64_t seed = 1234;  // the random KV contents
};

// A configuration that was not run, and why (decided before anything was allocated for it).
struct SweepSkip {
  int batch = 0, context = 0;
  std::string weights, kv, reason;
};

struct SweepResult {
  Report report;
  std::vector<SweepSkip> skipped;
};

// Builds the backend for options (device, formats, sequences); may throw to refuse a format (the
// message is recorded as the skip reason of every configuration of that pair). The CLI passes
// make_backend (engine/backend_factory.h); tests pass their own.
using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendOptions&)>;
// Progress lines go here (stderr in the CLI).
using ProgressFn = std::function<void(const std::string&)>;

// `device` carries the name, versions and ceilings (measured by the probe) the report is drawn
// against. Runs every configuration that fits, in the order weights, kv, context, batch.
SweepResult run_sweep(const ModelSource& source, const SweepSpec& spec, const BackendFactory& factory,
                      const DeviceInfo& device, const ProgressFn& progress);

// The report JSON with the skipped configurations added under "skipped".
nlohmann::json sweep_to_json(const SweepResult& r);

}  // namespace ridgeline
