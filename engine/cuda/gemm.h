// The engine's GEMMs through cuBLASLt: y[n, out] = x[n, in] W^T with W [out, in] row-major (a
// Linear's weight as checkpoints store it), fp16 inputs, fp32 accumulation, fp16 or fp32 output.
// In cuBLAS's column-major terms that is Y^T[out, n] = op_T(W^T[in, out]) * X^T[in, n]: no copy, no
// transpose in memory. At decode batch sizes these are GEMVs bound by reading W once; the library's
// heuristic picks the kernel (split-K included), so the choice is cached per shape and alignment
// rather than asked for on every call, and runs inside a fixed workspace so it can be graph-captured.
// The model's linears go through run(x, DeviceLinear, ...): the one dispatch between this fp16 path
// and the W4A16 kernels (w4a16_linear, kernels/w4a16.cuh) by the weight's format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "engine/cuda/device_buffer.h"

namespace ridgeline::cuda {

struct DeviceLinear;  // engine/cuda/device_weights.h

class Gemm {
 public:
  explicit Gemm(size_t workspace_bytes = 32u << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[n, out] = x[n, in] W^T. `op` names the op in error messages ("layers.3.wqkv").
  void run(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream,
           const char* op);
  void run(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream,
           const char* op);
  // y[n, w.out] = x[n, w.in] W^T for one of the model's linears, in the format it is stored in:
  // w4a16_linear for 4-bit weights, the fp16 run() above otherwise. The float32 form is the output
  // head's (logits).
  void run(const half* x, const DeviceLinear& w, int n, half* y, cudaStream_t stream, const char* op);
  void run(const half* x, const DeviceLinear& w, int n, float* y, cudaStream_t stream, const char* op);

  size_t workspace_bytes() const { return workspace_.bytes(); }
  // Decode batches of 1-2 rows go to the ridgeline gemv kernel, which streams W faster than
  // cuBLASLt's small-N kernels there; off sends everything to cuBLASLt (for comparison).
  void set_small_batch_gemv(bool on) { small_batch_gemv_ = on; }

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // n, in, out, output type, and the alignment (bytes, up to 256) the chosen kernel may assume.
  using Key = std::tuple<int, int, int, int, int>;

  void run_impl(const void* x, const half* w, int n, int in, int out, void* y, cudaDataType_t y_type,
                cudaStream_t stream, const char* op);
  const Plan& plan_for(const Key& key, const char* op);
  static void destroy(Plan& p) noexcept;

  bool use_gemv(const half* x, const half* w, int n, int in) const;
  template <typename OutT>
  void run_linear(const half* x, const DeviceLinear& w, int n, OutT* y, cudaStream_t stream, const char* op);

  bool small_batch_gemv_ = true;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace ridgeline::cuda
