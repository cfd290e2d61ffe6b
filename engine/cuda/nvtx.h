// NVTX ranges for the engine's ops and layers, named exactly like the report's op names
// ("layers.3.wqkv"), so an Nsight Systems timeline lines up with the JSON report and the charts.
// Ranges are host-side annotations: they cost a few hundred nanoseconds of CPU per push/pop and
// nothing on the GPU, and inside a CUDA graph capture they only mark the capture itself.
#pragma once

#include <nvtx3/nvToolsExt.h>

namespace ridgeline::cuda {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace ridgeline::cuda
