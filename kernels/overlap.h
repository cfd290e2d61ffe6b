// The host side of overlapped launches (kernels/overlap.cuh): a process-wide switch, on by default
// (RIDGELINE_OVERLAP_LAUNCHES=0 in the environment: off). Off, every kernel waits for the one before
// it to finish, which per-op timing needs (a kernel that starts early would be charged for its
// wait). SerialLaunches turns it off for a scope.
#pragma once

namespace ridgeline::cuda {

bool overlapped_launches();
void set_overlapped_launches(bool on);

struct SerialLaunches {
  bool was = overlapped_launches();
  SerialLaunches() { set_overlapped_launches(false); }
  ~SerialLaunches() { set_overlapped_launches(was); }
  SerialLaunches(const SerialLaunches&) = delete;
  SerialLaunches& operator=(const SerialLaunches&) = delete;
};

}  // namespace ridgeline::cuda
