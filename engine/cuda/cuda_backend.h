// The CUDA backend: fp16 weights on the GPU, a paged fp16 KV cache, cuBLASLt GEMMs and the kernels
// of kernels/kernels.cuh, with every decode step replayed from a CUDA graph captured once per batch
// bucket. It implements the Backend seam (engine/backend.h), the benchmark hooks included, and adds
// through CudaBackend what a profiler and the tests need: a per-op host hook and graph control.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "engine/backend.h"
#include "engine/cuda/cuda_entry.h"
#include "engine/model_source.h"
#include "engine/ops.h"

namespace ridgeline {

// Settings of the CUDA backend that the Backend seam does not name.
struct CudaOptions {
  int block_size = kDefaultKvBlockSize;  // KV-cache block in tokens (a power of two, 16..256)
  int max_prefill_tokens = 4096;         // tokens per prefill chunk: longer prompts run in several chunks
  bool use_graphs = true;  // decode steps replay a CUDA graph per (batch bucket, context bucket)
};

class CudaBackend : public Backend {
 public:
  // Called on the host around each op, in stream order, with the op's report name ("embed",
  // "layers.3.wqkv", ..., "output", "sample"): a profiler records a CUDA event on stream() at each
  // call to time every op without changing the forward.
  using OpHook = std::function<void(const char* op_name, bool begin)>;

  // forward(), always run eagerly (never from a graph, so the hook sees every op), calling `hook`.
  virtual void forward_with_hook(std::span<const int> seqs, std::span<const std::vector<int>> tokens,
                                 float* logits, const OpHook& hook) = 0;
  // sample(), calling `hook` around the sampling kernel.
  virtual void sample_with_hook(std::span<const int> seqs, std::span<const SamplingParams> params, int* out,
                                const OpHook& hook) = 0;

  virtual void set_use_graphs(bool on) = 0;
  virtual int64_t graph_replays() const = 0;  // decode steps run from a captured graph so far
  virtual int graphs_captured() const = 0;
  virtual cudaStream_t stream() const = 0;  // every op of the backend runs on this stream
  virtual int block_size() const = 0;
  virtual int64_t weight_bytes() const = 0;    // bytes of the weight buffers allocated on the device
  virtual int64_t kv_cache_bytes() const = 0;  // the K and V pools
};

// The CUDA side of `b`, or nullptr when `b` is another backend.
CudaBackend* as_cuda_backend(Backend& b);

// Loads the model onto GPU 0. Throws with one line when no GPU answers, when the model does not fit
// (checked before allocating), and with cuda_supports()'s reason for what this backend does not run.
std::unique_ptr<Backend> make_cuda_backend(const ModelSource& source, const BackendOptions& options,
                                           const CudaOptions& cuda_options);

}  // namespace ridgeline
