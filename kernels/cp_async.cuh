// Asynchronous global -> shared copies (cp.async, sm_80+): loads that are in flight without holding
// registers, so a memory-bound kernel can keep several steps of data on the way while it computes.
#pragma once

#include <cstdint>

namespace ridgeline::cuda {

// The shared-memory address (the state space's own 32-bit one) of a pointer into shared memory.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies 16 bytes, or writes 16 zero bytes when `valid` is false (src-size 0: nothing is read).
// .cg: cached in L2 only, since streamed KV is read once.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src, bool valid) {
  const uint32_t dst = smem_addr(smem_dst);
  int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes)
               : "memory");
}

// The same, always copying (no src-size operand to compute).
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most `kPending` of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// The classic multistage pipeline of a whole block over `n` stages of work: stage i + kStages - 1 is
// requested (load(slot, i)) while stage i is computed (compute(slot, i)), slot = i % kStages. One commit
// per step, empty ones too, keeps the wait count exact; the barrier after the wait makes every
// thread's copies of stage i visible and proves the slot refilled next is no longer read. Ends with
// nothing in flight and a barrier, so the caller may reuse the stages' shared memory.
template <int kStages, typename Load, typename Compute>
__device__ __forceinline__ void block_pipeline(int n, Load&& load, Compute&& compute) {
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < n) load(s, s);
    cp_async_commit();
  }
  for (int i = 0; i < n; ++i) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    const int next = i + kStages - 1;
    if (next < n) load(next % kStages, next);
    cp_async_commit();
    compute(i % kStages, i);
  }
  cp_async_wait<0>();
  __syncthreads();
}

// Bulk copies (the TMA unit, sm_90): one thread moves a whole contiguous run of bytes into shared
// memory, and the run's arrival is counted on an mbarrier in bytes. A warp that streams through a
// ring this way issues a few instructions per stage instead of a copy (and its address arithmetic)
// per lane and 16 bytes.

// An mbarrier expecting `count` arrivals per phase, visible to the async proxy once this returns.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// Arrives on `bar` and adds `bytes` to the bytes its current phase waits for.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// Waits until the phase of parity `parity` of `bar` has completed. The suspend-time hint lets the
// hardware park the warp until then (up to 10 ms) rather than return at once; on the W4A16 GEMV it
// measured the same as without (perf/NOTES.md, "Session 2026-12-01 (fifth)").
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2, %3;\n selp.u32 %0, 1, 0, "
        "p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity), "r"(10000000u)
        : "memory");
}

// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from global to shared memory,
// completing on `bar`.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}

}  // namespace ridgeline::cuda
