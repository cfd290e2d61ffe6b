#include "engine/cuda/gemm.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/cuda/device_weights.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

namespace ridgeline::cuda {
namespace {

// Largest power of two (up to 256) dividing every address: the alignment cuBLASLt may assume.
int common_alignment(const void* a, const void* b, const void* c) {
  uintptr_t bits =
      reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) | reinterpret_cast<uintptr_t>(c);
  int align = 256;
  while (align > 1 && (bits & uintptr_t(align - 1)) != 0) align /= 2;
  return align;
}

}  // namespace

MatmulLayouts describe_matmul(int n, int in, int out, int ldc, cudaDataType_t y_type, const char* op) {
  MatmulLayouts m;
  try {
    RL_CUDA_CHECK(op, cublasLtMatmulDescCreate(&m.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    RL_CUDA_CHECK(op, cublasLtMatmulDescSetAttribute(m.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    RL_CUDA_CHECK(op, cublasLtMatmulDescSetAttribute(m.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    // Column-major views of the row-major tensors: W [out, in] is W^T [in, out] with ld = in,
    // x [n, in] is X^T [in, n], y [n, out] is Y^T [out, n] with ld = ldc (a slab of a wider y: its
    // rows of Y^T, ld = the whole y's row length).
    RL_CUDA_CHECK(op, cublasLtMatrixLayoutCreate(&m.a, CUDA_R_16F, in, out, in));
    RL_CUDA_CHECK(op, cublasLtMatrixLayoutCreate(&m.b, CUDA_R_16F, in, n, in));
    RL_CUDA_CHECK(op, cublasLtMatrixLayoutCreate(&m.c, y_type, out, n, ldc));
  } catch (...) {
    destroy(m);
    throw;
  }
  return m;
}

void destroy(MatmulLayouts& m) noexcept {
  if (m.a) cublasLtMatrixLayoutDestroy(m.a);
  if (m.b) cublasLtMatrixLayoutDestroy(m.b);
  if (m.c) cublasLtMatrixLayoutDestroy(m.c);
  if (m.desc) cublasLtMatmulDescDestroy(m.desc);
  m = MatmulLayouts{};
}

cublasLtMatmulPreference_t matmul_preference(uint64_t workspace_bytes, int alignment, const char* op) {
  cublasLtMatmulPreference_t pref = nullptr;
  RL_CUDA_CHECK(op, cublasLtMatmulPreferenceCreate(&pref));
  try {
    RL_CUDA_CHECK(op, cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &workspace_bytes, sizeof(workspace_bytes)));
    const uint32_t a32 = static_cast<uint32_t>(alignment);
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      RL_CUDA_CHECK(op, cublasLtMatmulPreferenceSetAttribute(pref, attr, &a32, sizeof(a32)));
  } catch (...) {
    cublasLtMatmulPreferenceDestroy(pref);
    throw;
  }
  return pref;
}

Gemm::Gemm(size_t workspace_bytes, size_t w4a16_scratch_bytes)
    : workspace_(workspace_bytes, "gemm workspace"),
      w4a16_scratch_(w4a16_scratch_bytes / sizeof(half), "w4a16 dequant slab scratch") {
  RL_CUDA_CHECK("gemm", cublasLtCreate(&handle_));
}

Gemm::~Gemm() {
  for (auto& [key, plan] : plans_) destroy(plan);
  if (handle_) cublasLtDestroy(handle_);
}

void Gemm::destroy(Plan& p) noexcept {
  ridgeline::cuda::destroy(p.m);
}

const Gemm::Plan& Gemm::plan_for(const Key& key, const char* op) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  const auto [n, in, out, ldc, y_type_int, align] = key;
  Plan p;
  cublasLtMatmulPreference_t pref = nullptr;
  try {
    p.m = describe_matmul(n, in, out, ldc, static_cast<cudaDataType_t>(y_type_int), op);
    pref = matmul_preference(workspace_.bytes(), align, op);
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    RL_CUDA_CHECK(op, cublasLtMatmulAlgoGetHeuristic(handle_, p.m.desc, p.m.a, p.m.b, p.m.c, p.m.c, pref, 1,
                                                     &result, &returned));
    if (returned == 0)
      throw std::runtime_error(std::string(op) +
                               ": cuBLASLt has no fp16 GEMM kernel for n=" + std::to_string(n) +
                               " in=" + std::to_string(in) + " out=" + std::to_string(out));
    p.algo = result.algo;
    cublasLtMatmulPreferenceDestroy(pref);
  } catch (...) {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    destroy(p);
    throw;
  }
  return plans_.emplace(key, p).first->second;
}

void Gemm::run_impl(const void* x, const half* w, int n, int in, int out, int ldc, void* y,
                    cudaDataType_t y_type, cudaStream_t stream, const char* op) {
  if (n <= 0 || in <= 0 || out <= 0 || ldc < out)
    throw std::invalid_argument(std::string(op) + ": GEMM needs positive n, in, out and ldc >= out (got " +
                                std::to_string(n) + ", " + std::to_string(in) + ", " + std::to_string(out) +
                                ", " + std::to_string(ldc) + ")");
  const Key key{n, in, out, ldc, static_cast<int>(y_type), common_alignment(x, w, y)};
  const Plan& p = plan_for(key, op);
  const float alpha = 1.0f, beta = 0.0f;
  RL_CUDA_CHECK(op, cublasLtMatmul(handle_, p.m.desc, &alpha, w, p.m.a, x, p.m.b, &beta, y, p.m.c, y, p.m.c,
                                   &p.algo, workspace_.get(), workspace_.bytes(), stream));
}

template <typename OutT>
void Gemm::run_fp16(const half* x, const half* w, int n, int in, int out, OutT* y, cudaStream_t stream,
                    const char* op) {
  switch (small_batch_gemv_ ? gemv_choice(n, in, x, w) : GemvKernel::none) {
    case GemvKernel::fma:
      return gemv(x, w, n, in, out, y, stream);
    case GemvKernel::tensor_core:
      return gemv_tc(x, w, n, in, out, y, stream);
    case GemvKernel::none:
      break;
  }
  run_impl(x, w, n, in, out, out, y, std::is_same_v<OutT, float> ? CUDA_R_32F : CUDA_R_16F, stream, op);
}

void Gemm::run(const half* x, const half* w, int n, int in, int out, half* y, cudaStream_t stream,
               const char* op) {
  run_fp16(x, w, n, in, out, y, stream, op);
}

void Gemm::run(const half* x, const half* w, int n, int in, int out, float* y, cudaStream_t stream,
               const char* op) {
  run_fp16(x, w, n, in, out, y, stream, op);
}

template <typename OutT>
void Gemm::run_dequant(const half* x, const W4A16Weights& w, int n, OutT* y, cudaStream_t stream,
                       const char* op) {
  if (n < 0) throw std::invalid_argument(std::string(op) + ": negative batch " + std::to_string(n));
  if (n == 0) return;
  if (!w4a16_shape_ok(w.in, w.out))  // before the scratch check divides by in
    throw std::invalid_argument(std::string(op) + ": W4A16 weight of in=" + std::to_string(w.in) +
                                " out=" + std::to_string(w.out) +
                                " (in must be a positive multiple of 128, out of 16)");
  const int64_t need = w4a16_dequant_scratch_bytes(w.in, w.out);
  if (need > static_cast<int64_t>(w4a16_scratch_.bytes()))
    throw std::invalid_argument(
        std::string(op) + ": the W4A16 dequant scratch holds " + std::to_string(w4a16_scratch_.bytes()) +
        " bytes, a slab of in=" + std::to_string(w.in) + " out=" + std::to_string(w.out) + " needs " +
        std::to_string(need) + " (size Gemm's w4a16_scratch_bytes by w4a16_dequant_scratch_bytes)");
  constexpr cudaDataType_t y_type = std::is_same_v<OutT, half> ? CUDA_R_16F : CUDA_R_32F;
  const int slab = w4a16_dequant_slab_rows(w.in, w.out);
  for (int row0 = 0; row0 < w.out; row0 += slab) {
    const int rows = std::min(slab, w.out - row0);
    try {
      w4a16_dequantize_fp16(w, row0, rows, w4a16_scratch_.get(), stream);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(op) + ": " + e.what());  // name the layer, not just the kernel
    }
    run_impl(x, w4a16_scratch_.get(), n, w.in, rows, w.out, y + row0, y_type, stream, op);
  }
}

void Gemm::run_w4a16_dequant(const half* x, const W4A16Weights& w, int n, half* y, cudaStream_t stream,
                             const char* op) {
  run_dequant(x, w, n, y, stream, op);
}

void Gemm::run_w4a16_dequant(const half* x, const W4A16Weights& w, int n, float* y, cudaStream_t stream,
                             const char* op) {
  run_dequant(x, w, n, y, stream, op);
}

template <typename OutT>
void Gemm::run_linear(const half* x, const DeviceLinear& w, int n, OutT* y, cudaStream_t stream,
                      const char* op) {
  if (!w.quantized()) return run(x, w.fp16.get(), n, w.in, w.out, y, stream, op);
  if (w4a16_scratch_.bytes() > 0 && w4a16_use_dequant_gemm(n))
    return run_dequant(x, w.w4a16(), n, y, stream, op);
  try {
    w4a16_linear(x, w.w4a16(), n, y, stream);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(op) + ": " + e.what());  // name the layer, not just the kernel
  }
}

void Gemm::run(const half* x, const DeviceLinear& w, int n, half* y, cudaStream_t stream, const char* op) {
  run_linear(x, w, n, y, stream, op);
}

void Gemm::run(const half* x, const DeviceLinear& w, int n, float* y, cudaStream_t stream, const char* op) {
  run_linear(x, w, n, y, stream, op);
}

}  // namespace ridgeline::cuda
