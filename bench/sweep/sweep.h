// The sweep driver: decode steps (and, when asked, prefills) timed over a cross product of batch,
// context (or prompt length), weight format and KV format on one backend, joined with the cost model
// into a `ridgeline.report.v1` report.
//
// Order: the whole cross product once per repetition (`repeat`, llama-bench's -r), interleaved, in
// the order weights, kv, phase, context (prompt length), batch inside each repetition, so that drift
// over the sweep's minutes shows up as spread in every configuration rather than as a difference
// between configurations. Each configuration's samples (step and per op) from every repetition are
// pooled into ONE run (`repeats` says how many were pooled): a report has one run per configuration
// whatever `repeat` is, and `ridgeline compare` tests the pooled samples.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report.h"
#include "engine/backend.h"
#include "engine/model_source.h"

namespace ridgeline {

// decode: one new token per sequence at `context`; prefill: `prompt_len` new tokens per empty
// sequence and the first token's sample (time to first token).
enum class Phase { decode, prefill };
const char* to_string(Phase p);            // "decode" | "prefill"
Phase parse_phase(std::string_view text);  // throws std::invalid_argument naming decode and prefill

struct SweepSpec {
  DeviceKind device = DeviceKind::cpu;
  std::vector<int> batches{1, 4, 16, 64, 256};
  std::vector<int> contexts{1024, 4096};  // decode
  std::vector<WeightFormat> weights{WeightFormat::fp16};
  std::vector<KvFormat> kvs{KvFormat::fp16};
  std::vector<Phase> phases{Phase::decode};
  std::vector<int> prompt_lens{512};  // prefill: new tokens per sequence
  int repeat = 1;                     // repetitions of the whole cross product
  int warmup = 5;
  int iters = 50;
  uint64_t seed = 1234;  // the random KV contents
};

// A configuration that was not run, or failed, and why. Skips are decided before anything is
// allocated for the configuration (it cannot fit); failures are errors while building the backend
// or measuring (the sweep exits non-zero on any).
struct SweepSkip {
  int batch = 0;
  int context = 0;  // decode: the context; prefill: the prompt length
  std::string weights, kv, reason;
  Phase phase = Phase::decode;
  bool failed = false;
};

struct SweepResult {
  Report report;
  std::vector<SweepSkip> skipped;  // skipped and failed, in the order met
  bool interrupted = false;        // stopped early (SweepHooks::stop_requested)
  int failures() const;
};

// Builds the backend for options (device, formats, sequences); may throw (recorded as a failure of
// every configuration of that weights/KV pair). The CLI passes make_backend
// (engine/backend_factory.h); tests pass their own.
using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendOptions&)>;
// Progress lines go here (stderr in the CLI).
using ProgressFn = std::function<void(const std::string&)>;

struct SweepHooks {
  // Called after every configuration (measured, skipped or failed) with the result so far, which is
  // a complete report of what finished: the CLI rewrites its output file here.
  std::function<void(const SweepResult&)> on_update;
  // Polled before each configuration; true stops the sweep there (SweepResult::interrupted).
  std::function<bool()> stop_requested;
};

// `device` carries the name, versions and ceilings (measured by the probe, or read from a file) the
// report is drawn against. Runs every configuration that fits. On CUDA, the device's clocks are read
// again after each measured configuration (DeviceInfo::env), so the report holds the clocks the GPU
// ran at rather than its idle ones. The report's git_commit is build_git_commit().
SweepResult run_sweep(const ModelSource& source, const SweepSpec& spec, const BackendFactory& factory,
                      const DeviceInfo& device, const ProgressFn& progress, const SweepHooks& hooks = {});

// The report JSON with the skipped and failed configurations added under "skipped" (and
// "interrupted": true when the sweep was stopped early).
nlohmann::json sweep_to_json(const SweepResult& r);

}  // namespace ridgeline
