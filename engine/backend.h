// The one seam between the model-level engine (generation, sessions, sweeps) and the hardware.
// Two implementations: the CPU reference (plain float32 C++, obviously correct) and CUDA.
//
// A backend owns the weights and the KV cache. Callers speak in sequences: a sequence is a slot
// with its own KV cache; forward() appends tokens to sequences and leaves, per sequence, the
// logits of its last new position on the backend, where sample() reads them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/formats.h"

namespace ridgeline {

// Where a backend runs.
enum class DeviceKind { cpu, cuda };
const char* to_string(DeviceKind d);               // "cpu" | "cuda"
DeviceKind parse_device_kind(std::string_view s);  // throws std::invalid_argument naming cpu and cuda

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest index on ties)
  int top_k = 0;             // 0: no top-k filter
  float top_p = 1.0f;        // 1: no nucleus filter
  uint64_t seed = 0;         // the draw for a token depends on (seed, position) only
  bool greedy() const { return temperature <= 0.0f; }
};

// Samples of one op's time over the timed decode steps, in microseconds.
struct OpSamples {
  std::string name;  // the report's op name: "embed", "layers.3.wqkv", ..., "sample"
  std::vector<double> us;
};

// One kernel of a step as the GPU ran it: microseconds from the step's first kernel start. The name
// is as source code writes it, namespaces dropped: "gemv_fused_kernel<1, true, (Epilogue)3>".
struct KernelSpan {
  std::string name;
  double start_us = 0.0, end_us = 0.0;
};

// The timing of a decode step (benchmark_decode) or of a whole prefill (benchmark_prefill).
struct DecodeTiming {
  std::vector<double> step_us;  // one sample per timed decode step (CUDA: one graph replay each) or prefill
  std::vector<OpSamples> ops;   // per op, in forward order, from a separate profiling pass
  std::string method;           // how the step and the ops were timed, for the report
  // Every kernel of one more step, launched as the timed steps were (overlapped, in the graph), in
  // start order: only with RIDGELINE_TIMELINE=1 in the environment and CUPTI available (CUDA).
  std::vector<KernelSpan> timeline;
};

struct BackendOptions {
  DeviceKind device = DeviceKind::cpu;
  Formats formats;
  int max_sequences = 64;        // sequences that may hold a KV cache at once
  int64_t max_kv_tokens = 0;     // total KV-cache tokens over all sequences; 0: the backend decides
  int64_t memory_cap_bytes = 0;  // cap on what the KV cache may take; 0: no cap beyond free memory
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelConfig& config() const = 0;
  virtual DeviceKind device() const = 0;
  virtual std::string device_name() const = 0;  // "NVIDIA H200", or the CPU's model name
  virtual const Formats& formats() const = 0;

  // Sequences. create_sequence() throws if no slot is free; capacity_tokens() is how many more
  // tokens the KV cache can take in total.
  virtual int create_sequence() = 0;
  virtual void release_sequence(int seq) = 0;
  virtual int sequence_length(int seq) const = 0;
  virtual int64_t capacity_tokens() const = 0;
  // The longest a sequence may grow (engine/config.h's max_sequence_length of the model).
  int64_t max_sequence_length() const { return ridgeline::max_sequence_length(config()); }

  // Appends tokens[i] to sequence seqs[i] and runs the model over them: a prefill when a list holds
  // many tokens, a decode step when every list holds one. Lists may differ in length. If `logits` is
  // not null, the last new position's logits of each sequence are copied there, row-major
  // [seqs.size(), vocab], float32. Throws (before touching any cache) if the tokens do not fit.
  virtual void forward(std::span<const int> seqs, std::span<const std::vector<int>> tokens,
                       float* logits) = 0;

  // Draws the next token of each sequence from the logits its last forward() left.
  virtual void sample(std::span<const int> seqs, std::span<const SamplingParams> params, int* out) = 0;

  // Benchmark hooks (the sweep's). fill_context() makes an empty sequence `length` tokens long with
  // random K/V (values from `seed`, never zeros): what a prefill would leave, without its cost;
  // it throws like forward() when the tokens do not fit. benchmark_decode() times the decode step
  // of `seqs` at their current lengths (one new token each, greedy sampling included) `iters` times
  // after `warmup` untimed steps, WITHOUT advancing the sequences (each timed step rewrites the same
  // cache slot), and then times each op in a separate profiling pass of `iters` steps.
  virtual void fill_context(int seq, int length, uint64_t seed) = 0;
  virtual DecodeTiming benchmark_decode(std::span<const int> seqs, int warmup, int iters) = 0;
  // benchmark_prefill() times the prefill of the EMPTY sequences `seqs`, `tokens_per_seq` new tokens
  // each (fixed pseudo-random ids), plus the greedy sample of each sequence's first token: the time
  // to first token. Like benchmark_decode: `iters` timed prefills after `warmup` untimed ones, then
  // each op timed (summed over the prefill's chunks) in a separate pass of `iters` prefills; the
  // KV growth is not kept (every prefill rewrites the same cache slots, and the sequences end empty,
  // their logits gone). The returned timing's step samples are whole prefills. Throws like forward()
  // when the tokens do not fit, and std::logic_error when a sequence is not empty.
  virtual DecodeTiming benchmark_prefill(std::span<const int> seqs, int tokens_per_seq, int warmup,
                                         int iters) = 0;
  // The rows a prefill forward() runs at once: more new tokens than this (over all its sequences, in
  // order) run as several passes, each reading every weight again. 0: one pass, whatever the size.
  virtual int prefill_chunk_tokens() const { return 0; }
};

// The token ids benchmark_prefill() feeds every backend: spread over the vocabulary (a fixed stride
// modulo vocab), never all one id, the same on each run.
inline std::vector<std::vector<int>> benchmark_prefill_tokens(const ModelConfig& c, size_t n_seqs,
                                                              int tokens_per_seq) {
  std::vector<std::vector<int>> tokens(n_seqs, std::vector<int>(std::max(tokens_per_seq, 0)));
  for (size_t s = 0; s < n_seqs; ++s)
    for (int t = 0; t < tokens_per_seq; ++t)
      tokens[s][t] = static_cast<int>((7919 * (int64_t(s) * tokens_per_seq + t) + 3) % c.vocab);
  return tokens;
}

// The checks every backend's forward() makes before touching anything: one token list per
// sequence, no sequence listed twice, no empty list, token ids inside the vocabulary, and no
// sequence growing past max_sequence_length(). `length_of` gives a sequence's current length
// (and throws for an unknown id). Throws std::invalid_argument / std::runtime_error naming the
// problem; returns the number of new tokens.
int64_t validate_forward(const ModelConfig& c, std::span<const int> seqs,
                         std::span<const std::vector<int>> tokens, const std::function<int(int)>& length_of);

}  // namespace ridgeline
