// A spin kernel for the injected delay (engine/inject_delay.h): one thread reads the GPU's global
// nanosecond timer until the requested time has passed. Computes nothing: 0 FLOPs, 0 bytes; its
// "bound" is wall time, which is the point: a fixed slowdown for testing the regression gate, the
// same inside a captured decode graph as in an eager step.
#include "engine/cuda/inject_delay.h"

#include "engine/inject_delay.h"
#include "kernels/cuda_check.h"

namespace ridgeline::cuda {
namespace {

__device__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void spin_kernel(unsigned long long ns) {
  const unsigned long long start = global_ns();
  while (global_ns() - start < ns) {
  }
}

}  // namespace

void inject_delay_after(const std::string& op, cudaStream_t stream) {
  const auto& d = injected_delay();
  if (!d || d->op != op) return;
  spin_kernel<<<1, 1, 0, stream>>>(static_cast<unsigned long long>(d->us * 1e3));
  RL_CUDA_CHECK_LAUNCH(op.c_str());
}

}  // namespace ridgeline::cuda
