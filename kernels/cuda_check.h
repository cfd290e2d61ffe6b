// One checking macro for CUDA runtime, cuBLAS and cuBLASLt calls: it names the failing statement,
// the op it belongs to, and file:line, and throws (the engine boundary turns it into one line).
#pragma once

#include <stdexcept>
#include <string>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace ridgeline::cuda {

inline const char* status_string(cudaError_t e) {
  return cudaGetErrorString(e);
}
inline const char* status_string(cublasStatus_t s) {
  return cublasGetStatusString(s);
}
inline bool status_ok(cudaError_t e) {
  return e == cudaSuccess;
}
inline bool status_ok(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS;
}
// A failed runtime call also sets the thread's last error; clearing it keeps a later, unrelated
// RL_CUDA_CHECK_LAUNCH from reporting it again. (Sticky faults stay: they fail every call.)
inline void clear_last_error(cudaError_t) {
  (void)cudaGetLastError();
}
inline void clear_last_error(cublasStatus_t) {}

[[noreturn]] void throw_cuda_error(const char* stmt, const char* op, const char* msg, const char* file,
                                   int line);

}  // namespace ridgeline::cuda

// RL_CUDA_CHECK(op, stmt): `op` is the op name for the message ("layers.3.attention", "kv_cache").
#define RL_CUDA_CHECK(op, stmt)                                                                      \
  do {                                                                                               \
    auto rl_status_ = (stmt);                                                                        \
    if (!::ridgeline::cuda::status_ok(rl_status_)) {                                                 \
      ::ridgeline::cuda::clear_last_error(rl_status_);                                               \
      ::ridgeline::cuda::throw_cuda_error(#stmt, (op), ::ridgeline::cuda::status_string(rl_status_), \
                                          __FILE__, __LINE__);                                       \
    }                                                                                                \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (asynchronous faults surface
// at the next synchronizing call, which is checked too).
#define RL_CUDA_CHECK_LAUNCH(op) RL_CUDA_CHECK(op, cudaGetLastError())
