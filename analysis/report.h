// The report of a sweep, schema `ridgeline.report.v1` (described field by field, with units, in
// reports/schema/ridgeline.report.v1.md): plain structs, their JSON form, a validator, and the join
// of measured times with the cost model that produces one run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/ceilings.h"
#include "analysis/cost_model.h"
#include "analysis/roofline.h"
#include "analysis/timeline.h"
#include "engine/config.h"

namespace ridgeline {

inline constexpr const char* kReportSchema = "ridgeline.report.v1";

// Step samples a run keeps: all of them up to this many, evenly thinned beyond (thin_evenly).
inline constexpr size_t kMaxKeptSamples = 256;

// The environment of a run (optional in the schema: "" and 0 mean unknown, and are not written).
struct EnvironmentInfo {
  std::string host_cpu;          // the host's CPU model
  std::string compiler;          // the C++ compiler that built ridgeline ("GNU 12.2.0")
  std::string cuda_compiler;     // nvcc's version, in a CUDA build ("NVIDIA 13.0.88")
  std::string uuid;              // GPU UUID ("GPU-5f3c...")
  std::string cublas;            // cuBLASLt version
  std::string nvidia_driver;     // kernel driver version from NVML ("580.95.05")
  int sm_clock_mhz = 0;          // SM clock read right after the last measured configuration
  int sm_clock_max_mhz = 0;      // its maximum
  int memory_clock_mhz = 0;      // memory clock, read with the SM clock
  int memory_clock_max_mhz = 0;  // its maximum
  double power_limit_w = 0;      // enforced power limit
  std::string ecc;               // "on" | "off"; "" unknown or unsupported
  std::string nvml_error;        // why the NVML fields are missing
};

struct DeviceInfo {
  std::string name;                    // "NVIDIA H100 80GB HBM3", or the CPU model
  std::string backend;                 // "cuda" | "cpu"
  int sm_count = 0;                    // streaming multiprocessors; 0 on the CPU
  int64_t memory_bytes = 0;            // device (or host) memory
  std::string driver;                  // driver version; "" on the CPU
  std::string cuda;                    // CUDA runtime version; "" on the CPU
  Ceilings peak;                       // the roofs every point is placed against
  std::optional<Datasheet> datasheet;  // none for CPUs and unknown GPUs
  // Where `peak` came from when it was read back from a `ridgeline probe --out` file (sweep
  // --ceilings) rather than measured by this run: the file as given, and when the probe wrote it.
  std::string ceilings_file;
  std::string ceilings_created;
  EnvironmentInfo env;
};

struct ModelInfo {
  std::string name;
  bool synthetic = false;  // preset shapes with generated weights
  int64_t params = 0;
  ModelConfig config;
};

// One op, or (in by_kind) the sum of the ops of one kind: then name == kind, layer == -1.
struct OpRecord {
  std::string name;
  int layer = -1;
  std::string kind;
  int count = 1;        // ops summed (1 for a single op)
  RooflinePoint point;  // point.time_us is the measured median
  // The spread of the op's samples (spread->median == point.time_us). None for by_kind sums (the
  // spread of a sum is not the sum of spreads) and in reports written before it was recorded.
  std::optional<TimeStats> spread;
};

struct StepRecord {
  TimeStats time_us;  // whole decode (or prefill) step, measured
  // The step samples in the order they were taken: all time_us.n of them up to kMaxKeptSamples,
  // evenly thinned beyond. Empty in reports written before samples were kept.
  std::vector<double> samples_us;
  double tokens_per_s = 0;  // batch * new_tokens_per_seq / median step time
  RooflinePoint point;      // cost-model totals of every op; point.time_us == time_us.median
};

// What the cost model and the ceilings predict for the step.
struct Prediction {
  double time_us = 0;          // sum over every op of its own roofline time (ops run one after another)
  double tokens_per_s = 0;     // tokens of the step / time_us
  double memory_time_us = 0;   // all the step's bytes at peak bandwidth
  double compute_time_us = 0;  // all the step's FLOPs at peak compute
};

struct RunRecord {
  int batch = 0;
  int context = 0;                     // tokens per sequence after the step (the longest when they differ)
  std::vector<int> contexts;           // per sequence; only kept when they differ
  int new_tokens_per_seq = 1;          // 1: decode
  std::string weights;                 // "fp16" | "w4a16"
  std::string kv;                      // "fp16" | "int8" | "int4"
  int group_size = kDefaultGroupSize;  // w4a16 group along the input dimension (a 4-bit head's too)
  std::string head = "fp16";           // the output head: "fp16" | "w4a16" (a checkpoint's 4-bit head)
  std::string method;                  // how the per-op times were measured
  int repeats = 1;                     // repetitions of the sweep whose samples are pooled in this run
  StepRecord step;
  std::vector<OpRecord> ops;                // measured ops, forward order
  std::vector<OpRecord> by_kind;            // ops summed per kind, in order of first appearance
  double coverage = 0;                      // sum(ops time) / step median time
  std::vector<std::string> unmeasured_ops;  // cost-model ops without a measured time (fused away)
  Prediction predicted;
  // One step's kernels as the GPU ran them, overlapped (`sweep --timeline`, CUDA with CUPTI): what
  // each kernel costs in the real step, which the serial per-op times cannot show.
  std::optional<TimelineSummary> timeline;
};

// Per (weights, kv, context, group size, head): where decode turns compute-bound, measured and predicted.
struct HeadlineEntry {
  std::string weights, kv;
  int context = 0;
  int group_size = kDefaultGroupSize;
  std::string head = "fp16";                        // as RunRecord::head
  std::vector<int> batches;                         // the measured decode batches it was found from
  std::optional<double> measured_ridge_batch;       // measured_ridge_batch() over the step
  std::optional<double> predicted_ridge_batch;      // predicted_ridge_batch() for the whole step
  std::optional<double> measured_gemm_ridge_batch;  // same, summed gemm ops only
  std::optional<double> predicted_gemm_ridge_batch;
};

struct Report {
  std::string schema = kReportSchema;
  std::string created;     // ISO-8601 UTC
  std::string git_commit;  // "" when unknown
  std::string command;     // the command line that produced it
  std::string method;      // how step times were measured (warm-up, repetitions, rotation, graphs)
  DeviceInfo device;
  ModelInfo model;
  std::vector<RunRecord> runs;
  std::vector<HeadlineEntry> headline;
};

// Joins the cost model of `shape` with measured times: the step from the samples `step_us` (µs, in
// the order taken; summarized, and kept up to kMaxKeptSamples), each op from its samples in
// `op_us` (by op name; summarized: the median places it, the spread is kept). Cost-model ops
// without samples are listed in unmeasured_ops (their cost still counts in the step); samples for
// a name the cost model lacks, an op with an empty sample list, or no step samples throw, naming it.
RunRecord build_run(const ModelConfig& c, const StepShape& shape, const Ceilings& ceilings,
                    const std::vector<double>& step_us,
                    const std::map<std::string, std::vector<double>>& op_us, const std::string& method);

// Groups the decode runs (new_tokens_per_seq 1, one context for all sequences) by weights, kv,
// context, group size and head format, and finds the ridge batch of each group, measured and predicted.
// `cuda`: the runs are the CUDA backend's, whose decode op table is cuda_fusions' (the predicted ridges
// use it too).
std::vector<HeadlineEntry> build_headline(const ModelConfig& c, const std::vector<RunRecord>& runs,
                                          const Ceilings& ceilings, bool cuda = false);

nlohmann::json to_json(const Report& r);
// The `device` object alone (as in a report, and in `ridgeline probe --out`'s ceilings file), and
// back; reading throws std::runtime_error naming `path` and the field.
nlohmann::json device_to_json(const DeviceInfo& d);
DeviceInfo device_from_json(const nlohmann::json& j, const std::string& path);
// Throws std::runtime_error naming the JSON path of the first missing or mistyped field.
Report report_from_json(const nlohmann::json& j);
// Every problem found, one human-readable line each (with its JSON path); empty when valid.
// Checks presence and types of every field, and that the derived numbers agree with their inputs:
// intensity, achieved rates, utilizations, roofline times, `bound` against the ridge, tokens/s,
// by_kind against the sum of ops, and coverage (1e-6 relative). The optional fields (step mean,
// stddev and samples, op spreads) are checked where present: samples against n, the mean and
// standard deviation against the samples when all of them were kept, p10 <= median <= p90.
std::vector<std::string> validate_report(const nlohmann::json& j);

// Now, as ISO-8601 UTC ("2025-01-31T12:34:56Z").
std::string utc_timestamp();

}  // namespace ridgeline
