// The engine's GEMMs through cuBLASLt: y[n, out] = x[n, in] W^T with W [out, in] row-major (a
// Linear's weight as checkpoints store it), fp16 inputs, fp32 accumulation, fp16 or fp32 output.
// In cuBLAS's column-major terms that is Y^T[out, n] = op_T(W^T[in, out]) * X^T[in, n]: no copy, no
// transpose in memory. At decode batch sizes these are GEMVs bound by reading W once; the library's
// heuristic picks the kernel (split-K included), so the choice is cached per shape and alignment
// rather than asked for on every call, and runs inside a fixed workspace so it can be graph-captured.
// The model's linears go through run(x, DeviceLinear, ...): the one dispatch between this fp16 path
// and the W4A16 kernels (w4a16_linear, kernels/w4a16.cuh) by the weight's format, and, for W4A16
// weights at large batches (w4a16_use_dequant_gemm, kernels/w4a16_gemm_paths.cuh), between those
// kernels and run_w4a16_dequant: W dequantized to fp16 slab by slab into a scratch this Gemm owns,
// each slab multiplied by cuBLASLt into its columns of y (the compute-bound regime, where cuBLAS's
// wgmma kernels run ~2x faster than the mma.sync W4A16 GEMMs and the weight's bytes matter little).
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
struct W4A16Weights;  // kernels/w4a16.cuh

// The cuBLASLt description of y[n, out] = x[n, in] W^T as Gemm runs it (the column-major views above,
// fp32 compute, y of `y_type` with row stride ldc), and the preference Gemm asks the heuristic with
// (a workspace and the alignment every pointer has). Shared with BM_CublasLtSearch, which times every
// configuration of the same GEMM: what it compares against is what the engine runs.
struct MatmulLayouts {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
};
// Throws naming `op` (nothing leaks); destroy() what it returns.
MatmulLayouts describe_matmul(int n, int in, int out, int ldc, cudaDataType_t y_type, const char* op);
void destroy(MatmulLayouts& m) noexcept;
// Throws naming `op`; cublasLtMatmulPreferenceDestroy() what it returns.
cublasLtMatmulPreference_t matmul_preference(uint64_t workspace_bytes, int alignment, const char* op);

class Gemm {
 public:
  // w4a16_scratch_bytes: the fp16 slab scratch of run_w4a16_dequant, allocated here once (never in
  // run()); at least w4a16_dequant_scratch_bytes(in, out) of every W4A16 weight it will run. 0 (an
  // fp16 model): run(x, DeviceLinear, ...) keeps W4A16 weights on the W4A16 kernels at every batch.
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;
  explicit Gemm(size_t workspace_bytes = kDefaultWorkspaceBytes, size_t w4a16_scratch_bytes = 0);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[n, out] = x[n, in] W^T. `op` names the op in error messages ("layers.3.wqkv").
  void run(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream,
           const char* op);
  void run(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream,
           const char* op);
  // y[n, w.out] = x[n, w.in] W^T for one of the model's linears, in the format it is stored in:
  // 4-bit weights through run_w4a16_dequant where w4a16_use_dequant_gemm(n) says and this Gemm has a
  // scratch, w4a16_linear otherwise; the fp16 run() above for fp16 weights. The float32 form is
  // the output head's (logits).
  void run(const half* x, const DeviceLinear& w, int n, half* y, cudaStream_t stream, const char* op);
  void run(const half* x, const DeviceLinear& w, int n, float* y, cudaStream_t stream, const char* op);
  // y[n, w.out] = x[n, w.in] W^T for a W4A16 weight at any n: for each slab of
  // w4a16_dequant_slab_rows(in, out) output rows, w4a16_dequantize_fp16 into the scratch, then
  // cuBLASLt writes y[:, slab] (ldc = out). Throws std::invalid_argument naming `op` when the scratch
  // is smaller than w4a16_dequant_scratch_bytes(w.in, w.out) or a shape contract is broken; n = 0
  // does nothing. Deterministic for a given Gemm (its cached plans fix the kernels). Every call
  // shares the one scratch: a Gemm serves one stream at a time, as the engine's does.
  void run_w4a16_dequant(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                         const char* op);
  void run_w4a16_dequant(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                         const char* op);

  size_t workspace_bytes() const { return workspace_.bytes(); }
  size_t w4a16_scratch_bytes() const { return w4a16_scratch_.bytes(); }
  // Decode batches of up to 16 rows go to the ridgeline GEMVs (gemv_choice: gemv at 1-2 rows,
  // gemv_tc above), which stream W faster than cuBLASLt's small-N kernels there; off sends everything
  // to cuBLASLt (for comparison).
  void set_small_batch_gemv(bool on) { small_batch_gemv_ = on; }

 private:
  struct Plan {
    MatmulLayouts m;
    cublasLtMatmulAlgo_t algo{};
  };
  // n, in, out, ldc (y's row stride: out, or the whole weight's out for a slab), output type, and
  // the alignment (bytes, up to 256) the chosen kernel may assume.
  using Key = std::tuple<int, int, int, int, int, int>;

  void run_impl(const void* x, const half* w, int n, int in, int out, int ldc, void* y, cudaDataType_t y_type,
                cudaStream_t stream, const char* op);
  const Plan& plan_for(const Key& key, const char* op);
  static void destroy(Plan& p) noexcept;

  template <typename OutT>
  void run_fp16(const half* x, const half* w, int n, int in, int out, OutT* y, cudaStream_t stream,
                const char* op);
  template <typename OutT>
  void run_linear(const half* x, const DeviceLinear& w, int n, OutT* y, cudaStream_t stream, const char* op);
  template <typename OutT>
  void run_dequant(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream, const char* op);

  bool small_batch_gemv_ = true;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
  DeviceBuffer<half> w4a16_scratch_;  // one dequantized slab of W, [rows, in] row-major
  std::map<Key, Plan> plans_;
};

}  // namespace ridgeline::cuda
