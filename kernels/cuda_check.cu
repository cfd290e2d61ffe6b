// The one place a failed CUDA / cuBLAS status becomes an exception: RL_CUDA_CHECK (cuda_check.h)
// calls this with the statement text, so the message names what failed, for which op, and where.
// A .cu rather than a .cpp because the CUDA library target globs kernels/*.cu.
#include <string>

#include "kernels/cuda_check.h"

namespace ridgeline::cuda {

void throw_cuda_error(const char* stmt, const char* op, const char* msg, const char* file, int line) {
  throw std::runtime_error(std::string(op) + ": " + stmt + " failed: " + msg + " (" + file + ":" +
                           std::to_string(line) + ")");
}

}  // namespace ridgeline::cuda
