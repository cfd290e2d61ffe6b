// Overlapped launches (programmatic dependent launch, sm_90): a decode step is ~200 dependent
// kernels of a few microseconds each at B=1, and each boundary otherwise costs the next kernel's
// launch and ramp (an empty kernel alone is ~0.6 us in a graph; a GEMV's first weight bytes arrive
// ~1 us after it starts). A kernel launched with launch_overlapped may start while the kernel before
// it is finishing: it runs what does not depend on that kernel (a GEMV issues its first weight loads:
// weights are never written during a step), then waits in overlap_enter() until the previous kernel
// has completed and its writes are visible, and only then lets the kernel after it launch, so at most
// one kernel runs ahead.
// The contract for a kernel launched with launch_overlapped: every thread calls overlap_enter() before
// it reads or writes any buffer another kernel of the step writes or reads (activations, the KV cache,
// the residual), and before it exits. Then every kernel's completion implies its predecessors', so a
// chain of such kernels orders like plain launches. A kernel with overlap_enter() launched the plain
// way waits for nothing (the wait returns at once).
// set_overlapped_launches(false) (kernels/overlap.h) makes launch_overlapped launch the plain way:
// per-op timing needs kernels that do not start early.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#include "kernels/overlap.h"

namespace ridgeline::cuda {

__device__ __forceinline__ void overlap_enter() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// `overlap` false launches the plain way (a kernel measured slower overlapped keeps its
// overlap_enter(), which then returns at once).
template <typename... KernelArgs, typename... Args>
void launch_kernel(bool overlap, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, const char* op, Args... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = overlap && overlapped_launches() ? 1 : 0;
  RL_CUDA_CHECK(op, cudaLaunchKernelEx(&cfg, kernel, static_cast<KernelArgs>(args)...));
}

template <typename... KernelArgs, typename... Args>
void launch_overlapped(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       const char* op, Args... args) {
  launch_kernel(true, kernel, grid, block, smem, stream, op, args...);
}

}  // namespace ridgeline::cuda
