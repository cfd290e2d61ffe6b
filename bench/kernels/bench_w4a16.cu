// W4A16 linears (kernels/w4a16.cuh) against fp16 at the InternLM2 1.8b and 7b per-layer shapes, for
// batches M = 1..256 (and two prefill sizes on the 7b shapes), all three timed in the same
// benchmark run so the ratios are like for like:
//   w4a16     w4a16_linear (GEMV up to kW4A16GemvMaxRows rows, tensor-core GEMM above);
//   fp16      the engine's Gemm (engine/cuda/gemm.h: ridgeline gemv for 1-2 rows, cuBLASLt above);
//   cublas    cuBLASLt fp16 at every M (Gemm with the small-batch gemv off).
// Method (docs/DESIGN.md "Measuring honestly"): weights are random (RTN-quantized on the device from
// random fp16), each format's weights rotate over copies totalling >= 256 MB (> 4x the H200's L2),
// so every launch reads its weights from DRAM; one CUDA graph per format holds at least
// kMinLaunches launches back to back (each on the next copy); an iteration times one replay of each
// graph between events and divides by the launch count. Reported: manual time = the w4a16 time;
// counters: us_w4a16, us_fp16, us_cublas (medians over iterations), GB/s of w4a16 (packed codes +
// scale/zero records + x + y, the bytes of the tensors it actually reads and writes) and of fp16,
// x_vs_fp16 = us_fp16 / us_w4a16, x_vs_cublas = us_cublas / us_w4a16.
// BM_W4A16Path times the GEMV and the GEMM on the same decode batches: the evidence behind
// w4a16_use_gemv.
// Run: ridgeline_bench --benchmark_filter=W4A16 --benchmark_out=w4a16.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"
#include "kernels/w4a16.cuh"

using namespace ridgeline::cuda;

namespace {

constexpr size_t kRotationBytes = size_t(256) << 20;
constexpr int kMinLaunches = 10;

struct LinearShape {
  const char* name;
  int in, out;
};
// Per-layer linears of internlm2-chat-1_8b (hidden 2048, 16+2*8 heads of 128, inter 8192) and
// internlm2-chat-7b (hidden 4096, 32+2*8 heads, inter 14336); w13 is w1 and w3 stacked.
const LinearShape kShapes[] = {
    {"1_8b.wqkv", 2048, 4096}, {"1_8b.wo", 2048, 2048}, {"1_8b.w13", 2048, 16384}, {"1_8b.w2", 8192, 2048},
    {"7b.wqkv", 4096, 6144},   {"7b.wo", 4096, 4096},   {"7b.w13", 4096, 28672},   {"7b.w2", 14336, 4096},
};

bool gpu_answers() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
    cudaGetLastError();
    return false;
  }
  return true;
}

// Copies of a `bytes`-sized weight that together reach kRotationBytes (at least 2).
int rotation_copies(size_t bytes) {
  return int(std::max<size_t>(2, (kRotationBytes + bytes - 1) / bytes));
}

// A graph of `launches` calls of launch(i) back to back.
template <class F>
GraphExec capture_launches(cudaStream_t s, int launches, F&& launch) {
  return GraphExec::capture(s, "bench_w4a16", [&] {
    for (int i = 0; i < launches; ++i) launch(i);
  });
}

// Seconds per launch of one replay of `graph` holding `launches` launches.
double replay_seconds(const GraphExec& graph, int launches, cudaStream_t s, const Event& start,
                      const Event& stop) {
  RL_CUDA_CHECK("bench_w4a16", cudaEventRecord(start.get(), s));
  graph.launch(s, "bench_w4a16");
  RL_CUDA_CHECK("bench_w4a16", cudaEventRecord(stop.get(), s));
  RL_CUDA_CHECK("bench_w4a16", cudaEventSynchronize(stop.get()));
  float ms = 0;
  RL_CUDA_CHECK("bench_w4a16", cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms * 1e-3 / launches;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// `copies` W4A16 weights of one shape, all quantized from one random fp16 weight.
struct W4A16Copies {
  DeviceBuffer<uint32_t> q;
  DeviceBuffer<half> sz;
  int in, out, copies;
  W4A16Copies(const half* w_fp16, int in_, int out_, int copies_, cudaStream_t s)
      : q(size_t(w4a16_qweight_words(in_, out_)) * copies_, "bench w4a16 codes"),
        sz(size_t(w4a16_scale_zero_halves(in_, out_)) * copies_, "bench w4a16 scales"),
        in(in_),
        out(out_),
        copies(copies_) {
    for (int c = 0; c < copies; ++c) w4a16_quantize_rtn(w_fp16, in, out, codes(c), scales(c), s);
  }
  uint32_t* codes(int c) const { return q.get() + size_t(w4a16_qweight_words(in, out)) * (c % copies); }
  half* scales(int c) const { return sz.get() + size_t(w4a16_scale_zero_halves(in, out)) * (c % copies); }
  W4A16Weights at(int c) const {
    W4A16Weights w;
    w.qweight = codes(c);
    w.scale_zero = scales(c);
    w.in = in;
    w.out = out;
    return w;
  }
};

void BM_W4A16VsFp16(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  state.SetLabel(g.name);
  Stream stream;
  const cudaStream_t s = stream.get();
  const size_t elems = size_t(g.in) * g.out;
  const int fp16_copies = rotation_copies(elems * 2);
  const int w4_copies = rotation_copies(size_t(w4a16_weight_bytes(g.in, g.out)));
  DeviceBuffer<half> w16(elems * fp16_copies, "bench fp16 W"), x(size_t(m) * g.in, "bench x"),
      y(size_t(m) * g.out, "bench y");
  fill_synthetic(w16.get(), int64_t(w16.size()), 1, 7, 4, false, s);  // uniform in [-1/16, 1/16)
  fill_synthetic(x.get(), int64_t(x.size()), 2, 7, 0, false, s);
  W4A16Copies w4(w16.get(), g.in, g.out, w4_copies, s);
  Gemm gemm, cublas;
  cublas.set_small_batch_gemv(false);

  auto w4a16_launch = [&](int i) { w4a16_linear(x.get(), w4.at(i), m, y.get(), s); };
  auto fp16_launch = [&](Gemm& gm, int i) {
    gm.run(x.get(), w16.get() + elems * size_t(i % fp16_copies), m, g.in, g.out, y.get(), s, "bench");
  };
  // Warm-up outside capture: kernel attributes, cuBLASLt plans, clocks.
  for (int i = 0; i < 3; ++i) w4a16_launch(i), fp16_launch(gemm, i), fp16_launch(cublas, i);
  const int l4 = std::max(kMinLaunches, w4_copies), l16 = std::max(kMinLaunches, fp16_copies);
  const GraphExec g4 = capture_launches(s, l4, w4a16_launch);
  const GraphExec g16 = capture_launches(s, l16, [&](int i) { fp16_launch(gemm, i); });
  const GraphExec gcb = capture_launches(s, l16, [&](int i) { fp16_launch(cublas, i); });
  Event start(true), stop(true);
  replay_seconds(g4, l4, s, start, stop);
  std::vector<double> t4, t16, tcb;
  for (auto _ : state) {
    t4.push_back(replay_seconds(g4, l4, s, start, stop));
    t16.push_back(replay_seconds(g16, l16, s, start, stop));
    tcb.push_back(replay_seconds(gcb, l16, s, start, stop));
    state.SetIterationTime(t4.back());
  }
  const double m4 = median(t4), m16 = median(t16), mcb = median(tcb);
  const double act = 2.0 * m * (double(g.in) + g.out);
  state.counters["us_w4a16"] = m4 * 1e6;
  state.counters["us_fp16"] = m16 * 1e6;
  state.counters["us_cublas"] = mcb * 1e6;
  state.counters["GB/s"] = (double(w4a16_weight_bytes(g.in, g.out)) + act) / m4 / 1e9;
  state.counters["GB/s_fp16"] = (2.0 * elems + act) / m16 / 1e9;
  state.counters["TFLOP/s"] = 2.0 * m * double(elems) / m4 / 1e12;
  state.counters["x_vs_fp16"] = m16 / m4;
  state.counters["x_vs_cublas"] = mcb / m4;
}
BENCHMARK(BM_W4A16VsFp16)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8, 16, 32, 64, 128, 256}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_W4A16VsFp16)
    ->ArgsProduct({{4, 5, 6, 7}, {1024, 4096}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The GEMV (path 0) and the GEMM (path 1) on the same decode batches, both from DRAM.
void BM_W4A16Path(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  const bool gemv = state.range(2) == 0;
  state.SetLabel(std::string(g.name) + (gemv ? " gemv" : " gemm"));
  Stream stream;
  const cudaStream_t s = stream.get();
  const int copies = rotation_copies(size_t(w4a16_weight_bytes(g.in, g.out)));
  DeviceBuffer<half> w16(size_t(g.in) * g.out, "bench fp16 W"), x(size_t(m) * g.in, "bench x"),
      y(size_t(m) * g.out, "bench y");
  fill_synthetic(w16.get(), int64_t(w16.size()), 1, 7, 4, false, s);
  fill_synthetic(x.get(), int64_t(x.size()), 2, 7, 0, false, s);
  W4A16Copies w4(w16.get(), g.in, g.out, copies, s);
  auto launch = [&](int i) {
    if (gemv)
      w4a16_gemv(x.get(), w4.at(i), m, y.get(), s);
    else
      w4a16_gemm(x.get(), w4.at(i), m, y.get(), s);
  };
  for (int i = 0; i < 3; ++i) launch(i);
  const int launches = std::max(kMinLaunches, copies);
  const GraphExec graph = capture_launches(s, launches, launch);
  Event start(true), stop(true);
  std::vector<double> t;
  for (auto _ : state) {
    t.push_back(replay_seconds(graph, launches, s, start, stop));
    state.SetIterationTime(t.back());
  }
  const double med = median(t);
  state.counters["us"] = med * 1e6;
  state.counters["GB/s"] =
      (double(w4a16_weight_bytes(g.in, g.out)) + 2.0 * m * (double(g.in) + g.out)) / med / 1e9;
}
BENCHMARK(BM_W4A16Path)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
