// What the kernel benchmarks share: the GPU check, the L2 rotation, the timing loop (docs/DESIGN.md
// "Measuring honestly": warm-up, at least kLaunches launches, one for each copy of the rotated input,
// captured into one CUDA graph and replayed between two CUDA events, per-launch time), random fills
// and the per-layer GEMM shapes of both presets.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "engine/ops.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"

namespace ridgeline::bench {

inline constexpr int kLaunches = 20;
inline constexpr size_t kRotateBytes = size_t(256) << 20;  // > 4x the H100's / H200's L2

inline bool gpu_ok() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// How many copies of a `bytes`-sized input to cycle through so the set overflows the L2.
inline int copies_for(size_t bytes) {
  return int(std::clamp<size_t>(kRotateBytes / std::max<size_t>(bytes, 1) + 1, 1, 64));
}

// A graph of `launches` calls of launch(i) back to back.
template <class F>
cuda::GraphExec capture_launches(cudaStream_t s, int launches, F&& launch) {
  return cuda::GraphExec::capture(s, "bench capture", [&] {
    for (int i = 0; i < launches; ++i) launch(i);
  });
}

// Seconds per launch of what `enqueue` puts on `s` (`launches` launches), between two events, with
// the host waiting only at the end.
template <class F>
double seconds_per_launch(cudaStream_t s, const cuda::Event& start, const cuda::Event& stop, int launches,
                          F&& enqueue) {
  RL_CUDA_CHECK("bench", cudaEventRecord(start.get(), s));
  enqueue();
  RL_CUDA_CHECK("bench", cudaEventRecord(stop.get(), s));
  RL_CUDA_CHECK("bench", cudaEventSynchronize(stop.get()));
  float ms = 0;
  RL_CUDA_CHECK("bench", cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms * 1e-3 / launches;
}

// Seconds per launch of one replay of `graph` holding `launches` launches.
inline double replay_seconds(const cuda::GraphExec& graph, int launches, cudaStream_t s,
                             const cuda::Event& start, const cuda::Event& stop) {
  return seconds_per_launch(s, start, stop, launches, [&] { graph.launch(s, "bench"); });
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Times `launch(i)` (i = the launch index; the caller's input is copy i % copies) and reports
// per-launch time and rates. max(kLaunches, copies) launches, so that a replay reads every copy
// (together more than the L2 holds: copies_for), are captured once into a CUDA graph, and each
// iteration replays it. Launched from the host one by one, a kernel shorter than the host's launch
// cost runs at the host's pace, not its own: on one H200 machine 1.8b `wo` at one row measured 5.1 us
// that way against 3.1 us in a graph, and no decode-attention case read less than ~10 us (perf/NOTES.md
// "thirty-sixth"). Launches that a stream cannot capture are timed from the host instead; the counter
// "graph" says which (1/0).
template <class F>
void time_kernel(benchmark::State& state, cudaStream_t s, double bytes, double flops, int copies,
                 F&& launch) {
  const int n_launch = std::max(kLaunches, copies);
  cuda::Event start(true), stop(true);
  // Warm-up outside the capture: lazily made plans, workspaces and kernel attributes happen here.
  for (int i = 0; i < 3; ++i) launch(i);
  RL_CUDA_CHECK("bench", cudaStreamSynchronize(s));
  cuda::GraphExec graph;
  try {
    graph = capture_launches(s, n_launch, launch);
  } catch (const std::exception&) {
    // Not capturable: host launches below (where a real launch error throws again).
  }
  auto enqueue = [&] {
    if (graph)
      graph.launch(s, "bench");
    else
      for (int i = 0; i < n_launch; ++i) launch(i);
  };
  enqueue();  // the first replay uploads the graph
  double total_s = 0;
  int64_t n = 0;
  for (auto _ : state) {
    const double per = seconds_per_launch(s, start, stop, n_launch, enqueue);
    state.SetIterationTime(per);
    total_s += per;
    ++n;
  }
  double t = total_s / std::max<int64_t>(n, 1);
  state.counters["bytes"] = bytes;
  state.counters["flops"] = flops;
  state.counters["graph"] = graph ? 1 : 0;
  state.counters["GB/s"] = bytes / t / 1e9;
  state.counters["TFLOP/s"] = flops / t / 1e12;
}
// The same for a launch whose inputs are not rotated.
template <class F>
void time_kernel(benchmark::State& state, cudaStream_t s, double bytes, double flops, F&& launch) {
  time_kernel(state, s, bytes, flops, 1, std::forward<F>(launch));
}

inline void fill(half* p, int64_t n, uint64_t seed, cudaStream_t s) {
  cuda::fill_synthetic(p, n, seed, 7, 0, false, s);
}

struct GemmShape {
  const char* name;
  const char* preset;
  OpType op;
  int in, out;
};
// Per-layer GEMMs of internlm2-chat-1_8b (hidden 2048, 16+2*8 heads of 128, inter 8192) and
// internlm2-chat-7b (hidden 4096, 32+2*8 heads, inter 14336); w13 is w1 and w3 stacked.
inline constexpr GemmShape kGemms[] = {
    {"1_8b.wqkv", "internlm2-chat-1_8b", OpType::wqkv, 2048, 4096},
    {"1_8b.wo", "internlm2-chat-1_8b", OpType::wo, 2048, 2048},
    {"1_8b.w13", "internlm2-chat-1_8b", OpType::w13, 2048, 16384},
    {"1_8b.w2", "internlm2-chat-1_8b", OpType::w2, 8192, 2048},
    {"7b.wqkv", "internlm2-chat-7b", OpType::wqkv, 4096, 6144},
    {"7b.wo", "internlm2-chat-7b", OpType::wo, 4096, 4096},
    {"7b.w13", "internlm2-chat-7b", OpType::w13, 4096, 28672},
    {"7b.w2", "internlm2-chat-7b", OpType::w2, 14336, 4096},
};

}  // namespace ridgeline::bench
