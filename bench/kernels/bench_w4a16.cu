// W4A16 linears (kernels/w4a16.cuh) against fp16 at the InternLM2 1.8b and 7b per-layer shapes, for
// batches M = 1..256 (and two prefill sizes on the 7b shapes), all three timed in the same
// benchmark run so the ratios are like for like:
//   w4a16     w4a16_linear (the GEMV up to 8-32 rows, tensor-core GEMM above): the kernels alone; from
//             512 rows the engine runs Gemm::run_w4a16_dequant instead (BM_W4A16GemmKernels' dequant);
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
// BM_W4A16GemvVariants times every GEMV layout on the same weights in one run (counters us_<name>,
// manual time = the default layout): the GEMV's layouts "w<warps>t<tiles>s<stages>", with
// "best" naming the fastest, and us_floor_empty / us_floor_overlapped, an empty kernel launched plain
// and overlapped (the launch floors); perf/NOTES.md ("W4A16 GEMV") says what each is expected to show.
// BM_W4A16GemmSplits does the same for the GEMM's cluster splits at M = 16..64, against fp16.
// BM_W4A16GemmKernels times the GEMM's kernels (kernels/w4a16_gemm_paths.cuh: "tiled" 128x64
// blocks, "wide" 256x128 blocks, "wide_64" 256x64 blocks two per SM, on Hopper "wgmma", the tiled
// blocks on warpgroup mma), the automatic choice and
// "dequant" (Gemm::run_w4a16_dequant: W dequantized to fp16 in slabs, each through cuBLASLt)
// against fp16 from M = 64 to prefill (M = 2048), with TFLOP/s of each: the evidence behind
// w4a16_gemm_use_wide and w4a16_use_dequant_gemm.
// BM_W4A16ReadFloor times a kernel that only reads a weight's packed bytes, launched as the GEMVs are:
// the floor no one-launch W4A16 kernel beats, and the best x_vs_fp16 that floor allows;
// BM_W4A16ReadFloorStrips the same reads in the GEMVs' order (each warp one contiguous run).
// BM_W4A16Fusions times the decode step's fused W4A16 GEMVs (w4a16_gemv_fused) against the kernels
// they replace, at M = 1 and 2: the evidence behind cuda_fusions' w4a16 rule (engine/ops.cpp).
// Run: ridgeline_bench --benchmark_filter=W4A16 --benchmark_out=w4a16.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/kernels/bench_util.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "kernels/cuda_check.h"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/overlap.cuh"
#include "kernels/w4a16.cuh"
#include "kernels/w4a16_gemm_paths.cuh"

using namespace ridgeline::cuda;
using ridgeline::bench::capture_launches;
using ridgeline::bench::median;
using ridgeline::bench::replay_seconds;

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
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256}})
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
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8, 16, 20, 24, 28, 32}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The floor of the harness: a kernel that does nothing, on one block per SM, one graph node after
// another: what no GEMV layout can beat. Plain (us_floor_empty), and overlapped as the GEMVs launch
// (us_floor_overlapped: each node may start while the one before it runs, kernels/overlap.cuh).
__global__ void empty_kernel() {}
__global__ void empty_overlapped_kernel() {
  overlap_enter();
}

// One shape and batch with its rotated W4A16 copies, x and y: what the variant benchmarks share.
struct RotatedW4A16 {
  Stream stream;
  DeviceBuffer<half> w16, x, y;
  W4A16Copies w4;
  int launches;
  RotatedW4A16(const LinearShape& g, int m)
      : w16(size_t(g.in) * g.out, "bench fp16 W"),
        x(size_t(m) * g.in, "bench x"),
        y(size_t(m) * g.out, "bench y"),
        w4(fill(w16.get(), size_t(g.in) * g.out, stream.get()), g.in, g.out,
           rotation_copies(size_t(w4a16_weight_bytes(g.in, g.out))), stream.get()),
        launches(std::max(kMinLaunches, w4.copies)) {
    fill_synthetic(x.get(), int64_t(x.size()), 2, 7, 0, false, stream.get());
  }
  static const half* fill(half* w, size_t n, cudaStream_t s) {
    fill_synthetic(w, int64_t(n), 1, 7, 4, false, s);  // uniform in [-1/16, 1/16)
    return w;
  }
  // Median seconds per launch of `launch(i)` (i = the copy), over `iters` replays of a graph of
  // `count` launches (0: one per copy of the W4A16 rotation).
  template <class F>
  double time(F&& launch, int iters, int count = 0) {
    const cudaStream_t s = stream.get();
    if (count == 0) count = launches;
    for (int i = 0; i < 3; ++i) launch(i);  // warm-up outside capture: kernel attributes, plans
    const GraphExec g = capture_launches(s, count, launch);
    Event start(true), stop(true);
    replay_seconds(g, count, s, start, stop);
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) t.push_back(replay_seconds(g, count, s, start, stop));
    return median(t);
  }
  // The overlapped launch floor: an empty kernel on one block an SM, launched as the GEMVs are.
  double empty_overlapped_seconds(int iters) {
    const cudaStream_t s = stream.get();
    const int sms = current_sm_count("bench_w4a16");
    return time([&](int) { launch_overlapped(empty_overlapped_kernel, sms, 256, 0, s, "bench_w4a16 empty"); },
                iters);
  }
};

// Records `us` under `name` and keeps the fastest.
// A variant's counter name from its parts, appended one by one: g++ 12 at -O3 reads the same chain
// of operator+ as overlapping copies (-Wrestrict, a false positive).
std::string variant_name(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (std::string_view p : parts) s.append(p);
  return s;
}

struct VariantTimes {
  explicit VariantTimes(benchmark::State& s) : state(s) {}
  benchmark::State& state;
  std::string best_name;
  double best_us = 1e30;
  void add(const std::string& name, double seconds) {
    const double us = seconds * 1e6;
    state.counters["us_" + name] = us;
    if (us < best_us) best_us = us, best_name = name;
  }
};

// Every GEMV layout on the same weights. A layout that does not fit (shared memory at this M, splits
// above in/128) is left out, with its reason on stderr.
void BM_W4A16GemvVariants(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  RotatedW4A16 b(g, m);
  const cudaStream_t s = b.stream.get();
  constexpr int kIters = 15;
  VariantTimes times{state};
  const int sms = current_sm_count("bench_w4a16");
  state.counters["us_floor_empty"] = 1e6 * b.time([&](int) { empty_kernel<<<sms, 256, 0, s>>>(); }, kIters);
  state.counters["us_floor_overlapped"] = 1e6 * b.empty_overlapped_seconds(kIters);
  auto try_time = [&](const std::string& name, auto&& launch) {
    try {
      times.add(name, b.time(launch, kIters));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "BM_W4A16GemvVariants %s M=%d %s: %s\n", g.name, m, name.c_str(), e.what());
    }
  };
  double default_s = 0.0;
  try {
    default_s = b.time([&](int i) { w4a16_gemv(b.x.get(), b.w4.at(i), m, b.y.get(), s); }, kIters);
    times.add("default", default_s);
  } catch (const std::exception& e) {
    return state.SkipWithError(e.what());
  }
  for (int warps : {1, 2, 4, 8, 16})
    for (int tiles : {1, 2})
      for (int stages : {2, 4, 8}) {
        const W4A16GemvConfig c{warps, tiles, stages};
        try_time(variant_name(
                     {"w", std::to_string(warps), "t", std::to_string(tiles), "s", std::to_string(stages)}),
                 [&](int i) { w4a16_gemv(b.x.get(), b.w4.at(i), m, b.y.get(), s, c); });
      }
  // The ring kernel's own choice, and the register kernel's layouts ("rW.S.B": W warps a block, S
  // slices a strip, B groups a register batch) up to its 8 rows. Blocks of 1 and 2 warps balance the
  // SMs' shares where whole 4-16-warp blocks cannot: 7b w13's 1792 one-slice strips are 13.6 warps
  // an SM, which 8-warp blocks give as 16 on most SMs and 8 on the rest (1.18x the mean), 2-warp
  // blocks as 14 or 12 (1.03x; perf/NOTES.md, "fifty-sixth").
  try_time("ring", [&](int i) {
    w4a16_gemv(b.x.get(), b.w4.at(i), m, b.y.get(), s, {.kernel = W4A16GemvKernel::ring});
  });
  if (m <= 8)
    for (int warps : {1, 2, 4, 8, 16})
      for (int slices = 1; slices <= std::min(warps, g.in / kW4A16Group); slices *= 2)
        for (int batch : {2, 4}) {
          const W4A16GemvConfig c{
              .warps = warps, .stages = batch, .kernel = W4A16GemvKernel::registers, .slices = slices};
          try_time(variant_name(
                       {"r", std::to_string(warps), ".", std::to_string(slices), ".", std::to_string(batch)}),
                   [&](int i) { w4a16_gemv(b.x.get(), b.w4.at(i), m, b.y.get(), s, c); });
        }
  for (auto _ : state) state.SetIterationTime(default_s);
  const double bytes = double(w4a16_weight_bytes(g.in, g.out)) + 2.0 * m * (double(g.in) + g.out);
  state.counters["GB/s_default"] = bytes / default_s / 1e9;
  state.counters["GB/s_best"] = bytes / (times.best_us * 1e-6) / 1e9;
  state.counters["us_best"] = times.best_us;
  state.SetLabel(std::string(g.name) + " best=" + times.best_name);
}
BENCHMARK(BM_W4A16GemvVariants)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 8, 16, 32}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

// The decode step's W4A16 fusions (w4a16_gemv_fused) against the kernels they replace, per shape at
// M = 1, 2, each in its own graph on the same rotated weights: wqkv (the RMSNorm prologue) against
// add_rmsnorm + w4a16_gemv, w13 (prologue + SwiGLU pairs) against add_rmsnorm + w4a16_gemv + swiglu,
// wo and w2 (residual += y) against w4a16_gemv alone (its add is the next add_rmsnorm's). Counters:
// us_fused (the manual time), us_unfused (the chain), us_norm, us_gemv, us_swiglu (each alone).
void BM_W4A16Fusions(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const int shape = int(state.range(0));
  const LinearShape& g = kShapes[shape];
  const int m = int(state.range(1));
  const bool norm = shape % 4 == 0 || shape % 4 == 2, act = shape % 4 == 2;
  RotatedW4A16 b(g, m);
  const cudaStream_t s = b.stream.get();
  constexpr int kIters = 15;
  constexpr float kEps = 1e-5f;
  DeviceBuffer<float> residual(size_t(m) * std::max(g.in, g.out), "bench residual");
  DeviceBuffer<half> norm_w(size_t(g.in), "bench norm w"), act_out(size_t(m) * g.out / 2, "bench act");
  fill_synthetic(norm_w.get(), g.in, 3, 7, 0, true, s);
  {  // a residual of unit scale: x of the other benchmarks widened
    DeviceBuffer<half> r16(residual.size(), "bench residual fp16");
    fill_synthetic(r16.get(), int64_t(r16.size()), 4, 7, 0, false, s);
    add_rmsnorm(residual.get(), r16.get(), norm_w.get(), m, g.in, kEps, b.x.get(), s);  // residual = 0 + r16
  }
  W4A16GemvFusedParams p;
  p.n = m;
  if (norm) {
    p.norm_residual = residual.get(), p.norm_w = norm_w.get(), p.eps = kEps;
    (act ? p.act : p.y) = act ? act_out.get() : b.y.get();
  } else {
    p.x = b.x.get(), p.residual = residual.get();
  }
  auto gemv = [&](int i) { w4a16_gemv(b.x.get(), b.w4.at(i), m, b.y.get(), s); };
  auto rmsnorm = [&] { add_rmsnorm(residual.get(), nullptr, norm_w.get(), m, g.in, kEps, b.x.get(), s); };
  auto swiglu_op = [&] { swiglu(b.y.get(), m, g.out / 2, act_out.get(), s); };
  double fused = 0.0;
  try {
    fused = b.time(
        [&](int i) {
          p.w = b.w4.at(i);
          w4a16_gemv_fused(p, s);
        },
        kIters);
  } catch (const std::exception& e) {
    return state.SkipWithError(e.what());
  }
  state.counters["us_fused"] = fused * 1e6;
  state.counters["us_gemv"] = b.time(gemv, kIters) * 1e6;
  if (norm) state.counters["us_norm"] = b.time([&](int) { rmsnorm(); }, kIters) * 1e6;
  if (act) state.counters["us_swiglu"] = b.time([&](int) { swiglu_op(); }, kIters) * 1e6;
  state.counters["us_unfused"] = b.time(
                                     [&](int i) {
                                       if (norm) rmsnorm();
                                       gemv(i);
                                       if (act) swiglu_op();
                                     },
                                     kIters) *
                                 1e6;
  for (auto _ : state) state.SetIterationTime(fused);
  state.SetLabel(std::string(g.name) + (norm ? act ? " norm+swiglu" : " norm" : " +residual"));
}
BENCHMARK(BM_W4A16Fusions)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

// Median seconds of the engine's fp16 GEMM on b's x and y, over its own rotation of fp16 weights
// (4x the bytes per copy): the like-for-like fp16 time of the GEMM benchmarks.
double fp16_seconds(RotatedW4A16& b, const LinearShape& g, int m, int iters) {
  const cudaStream_t s = b.stream.get();
  const size_t elems = size_t(g.in) * g.out;
  const int fp16_copies = rotation_copies(elems * 2);
  DeviceBuffer<half> w16(elems * fp16_copies, "bench fp16 W");
  fill_synthetic(w16.get(), int64_t(w16.size()), 1, 7, 4, false, s);
  Gemm gemm;
  return b.time(
      [&](int i) {
        gemm.run(b.x.get(), w16.get() + elems * size_t(i % fp16_copies), m, g.in, g.out, b.y.get(), s,
                 "bench");
      },
      iters, std::max(kMinLaunches, fp16_copies));
}

// The GEMM's cluster splits forced to each of 1..8 against its own choice and the engine's fp16
// GEMM, at the batches where it lost to fp16 on the H200 (7b wqkv at M = 16, 1.8b wqkv at M = 32):
// do clusters of 8 blocks cost a wave, as they did in the first GEMV (a cluster split-K kernel,
// removed)? They do where 8 x the tiles do not all fit at once (30 clusters of 8 on the H200):
// 7b w2 at M = 64 took 49 us in 8, 37 in 7 (perf/NOTES.md, "twenty-fifth").
// Above 32 rows also in n-tiles of 32 ("t32.*": W4A16GemmKernel::tiled_32, the alternative
// two_tiles_of_32 chooses between), so that one run maps n-tile width x splits per shape. "s*" is
// the tiled kernel forced, "auto" the automatic choice (on Hopper the wgmma kernel at 17..127 rows,
// w4a16_gemm_use_wgmma, in n-tiles of 32 and clusters of 2 where w4a16_gemm_wgmma_pairs_of_32 says),
// "wg.*" / "wg32.*" the wgmma kernel at its own n-tile / in n-tiles of 32. M = 24 beside 16 and 32
// for the GEMV's four-tile rows (w4a16_use_gemv), which BM_W4A16Path times.
void BM_W4A16GemmSplits(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  RotatedW4A16 b(g, m);
  const cudaStream_t s = b.stream.get();
  constexpr int kIters = 15;
  VariantTimes times{state};
  const double auto_s = b.time([&](int i) { w4a16_gemm(b.x.get(), b.w4.at(i), m, b.y.get(), s); }, kIters);
  times.add("auto", auto_s);
  // One kernel forced at every split it can take, "<prefix>s<k>", and from `first` = 0 at its own
  // rule too, "<prefix>auto".
  auto every_split = [&](const std::string& prefix, W4A16GemmKernel kernel, int first) {
    for (int splits = first; splits <= std::min(8, g.in / kW4A16Group); ++splits)
      times.add(
          splits ? variant_name({prefix + "s", std::to_string(splits)}) : prefix + "auto",
          b.time([&](int i) { w4a16_gemm_with(b.x.get(), b.w4.at(i), m, b.y.get(), s, kernel, splits); },
                 kIters));
  };
  every_split("", W4A16GemmKernel::tiled, 1);
  if (m > 32) every_split("t32.", W4A16GemmKernel::tiled_32, 0);
  // The same blocks on wgmma (Hopper).
  if (w4a16_gemm_has_wgmma()) every_split("wg.", W4A16GemmKernel::wgmma, 0);
  if (w4a16_gemm_has_wgmma() && m > 32) every_split("wg32.", W4A16GemmKernel::wgmma_32, 0);
  const double fp16_s = fp16_seconds(b, g, m, kIters);
  state.counters["us_fp16"] = fp16_s * 1e6;
  for (auto _ : state) state.SetIterationTime(auto_s);
  state.counters["x_best_vs_fp16"] = fp16_s * 1e6 / times.best_us;
  state.SetLabel(std::string(g.name) + " best=" + times.best_name);
}
BENCHMARK(BM_W4A16GemmSplits)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {16, 24, 32, 48, 64}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

// The GEMM's kernels forced, the automatic choice and the dequant + cuBLASLt path, against the
// engine's fp16 GEMM (cuBLASLt at these M), from the largest decode batches to a 2048-token
// prefill. Label: the kernel w4a16_gemm_use_wide picks, the path the engine takes
// (w4a16_use_dequant_gemm: "dequant", else the automatic kernel) and the fastest of
// tiled/wide/wide_64/wgmma (Hopper)/dequant; x_auto_vs_fp16 and x_dequant_vs_fp16 are the target ratios
// (issue 9:
// >= 1 up to M = 64, prefill as near 1 as possible, 0.8 the aim), x_dequant_vs_auto the evidence
// for the dequant threshold (> 1: the dequant path should run at this M).
void BM_W4A16GemmKernels(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  RotatedW4A16 b(g, m);
  const cudaStream_t s = b.stream.get();
  constexpr int kIters = 9;
  const double flops = 2.0 * m * double(g.in) * g.out;
  VariantTimes times{state};
  double seconds[3] = {};
  const std::pair<W4A16GemmKernel, const char*> kernels[] = {{W4A16GemmKernel::tiled, "tiled"},
                                                             {W4A16GemmKernel::wide, "wide"},
                                                             {W4A16GemmKernel::wide_64, "wide_64"}};
  for (int k = 0; k < 3; ++k) {
    const W4A16GemmKernel kernel = kernels[k].first;
    seconds[k] =
        b.time([&](int i) { w4a16_gemm_with(b.x.get(), b.w4.at(i), m, b.y.get(), s, kernel); }, kIters);
    times.add(kernels[k].second, seconds[k]);
    state.counters[std::string("TFLOP/s_") + kernels[k].second] = flops / seconds[k] / 1e12;
  }
  if (w4a16_gemm_has_wgmma()) {  // Hopper: the tiled kernel's blocks on wgmma at any M
    const double wgmma_s = b.time(
        [&](int i) { w4a16_gemm_with(b.x.get(), b.w4.at(i), m, b.y.get(), s, W4A16GemmKernel::wgmma); },
        kIters);
    times.add("wgmma", wgmma_s);
    state.counters["TFLOP/s_wgmma"] = flops / wgmma_s / 1e12;
  }
  const double auto_s = b.time([&](int i) { w4a16_gemm(b.x.get(), b.w4.at(i), m, b.y.get(), s); }, kIters);
  Gemm dequant_gemm(Gemm::kDefaultWorkspaceBytes, size_t(w4a16_dequant_scratch_bytes(g.in, g.out)));
  const double dequant_s =
      b.time([&](int i) { dequant_gemm.run_w4a16_dequant(b.x.get(), b.w4.at(i), m, b.y.get(), s, "bench"); },
             kIters);
  times.add("dequant", dequant_s);
  // The slab passes alone (every slab of W into the scratch, no GEMM): the dequantization's share of
  // us_dequant, and its bandwidth (codes + records read, fp16 written).
  const int slab = w4a16_dequant_slab_rows(g.in, g.out);
  DeviceBuffer<half> scratch(size_t(w4a16_dequant_scratch_bytes(g.in, g.out)) / 2, "bench dequant scratch");
  const double pass_s = b.time(
      [&](int i) {
        for (int row0 = 0; row0 < g.out; row0 += slab)
          w4a16_dequantize_fp16(b.w4.at(i), row0, std::min(slab, g.out - row0), scratch.get(), s);
      },
      kIters);
  state.counters["us_dequant_pass"] = pass_s * 1e6;
  state.counters["GB/s_dequant_pass"] =
      (double(w4a16_weight_bytes(g.in, g.out)) + 2.0 * g.in * double(g.out)) / pass_s / 1e9;
  const double fp16_s = fp16_seconds(b, g, m, kIters);
  for (auto _ : state) state.SetIterationTime(auto_s);
  state.counters["us_auto"] = auto_s * 1e6;
  state.counters["us_fp16"] = fp16_s * 1e6;
  state.counters["TFLOP/s_fp16"] = flops / fp16_s / 1e12;
  state.counters["TFLOP/s_dequant"] = flops / dequant_s / 1e12;
  state.counters["x_auto_vs_fp16"] = fp16_s / auto_s;
  state.counters["x_dequant_vs_fp16"] = fp16_s / dequant_s;
  state.counters["x_dequant_vs_auto"] = auto_s / dequant_s;
  state.counters["x_wide_vs_tiled"] = seconds[0] / seconds[1];
  const bool wide = w4a16_gemm_use_wide(m, g.out, current_sm_count("bench_w4a16"));
  // At 33-64 rows two_tiles_of_32 may keep the tiled kernel where this says wgmma.
  const char* auto_kernel = wide ? "wide" : w4a16_gemm_use_wgmma(m) ? "wgmma" : "tiled";
  state.SetLabel(std::string(g.name) + " auto=" + auto_kernel + " engine=" +
                 (w4a16_use_dequant_gemm(m) ? "dequant" : auto_kernel) + " best=" + times.best_name);
}
BENCHMARK(BM_W4A16GemmKernels)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {64, 128, 256, 512, 1024, 2048}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

// The read floor of one W4A16 launch: a kernel that reads the packed codes and the scale/zero records
// of one weight (16-byte loads, each thread a grid-strided run of kUnroll chunks at a time), does
// nothing with them but fold them into one word, and launches overlapped as the GEMVs do (the first
// batch requested before overlap_enter). No GEMV or GEMM that reads those bytes once, in one launch,
// can beat its best layout in this harness: us_fp16 / us_floor_read (x_floor_vs_fp16) is the most any
// such kernel can be faster than fp16 here, whatever its arithmetic, against x_vs_fp16 of the engine's
// w4a16_linear timed in the same run. At M = 16 the floor leaves out x (16 rows of `in` halves, at
// most 1.5% of the bytes).
// kStrips: each warp reads one contiguous run of the chunks instead, 32 consecutive chunks (512 B) a
// step, as a GEMV warp streams its slice of a strip (BM_W4A16ReadFloorStrips).
template <int kUnroll, bool kStrips = false>
__global__ void read_floor_kernel(const uint4* __restrict__ codes, int64_t n_codes,
                                  const uint4* __restrict__ records, int64_t n_records, uint32_t never,
                                  uint32_t* sink) {
  const int64_t n = n_codes + n_records;
  auto chunk = [&](int64_t i) { return i < n_codes ? __ldg(codes + i) : __ldg(records + (i - n_codes)); };
  int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x, end = n,
          stride = int64_t{gridDim.x} * blockDim.x;
  if constexpr (kStrips) {
    const int64_t warps = int64_t{gridDim.x} * (blockDim.x >> 5), warp = i >> 5;
    i = warp * n / warps + (threadIdx.x & 31), end = (warp + 1) * n / warps, stride = 32;
  }
  uint32_t acc = 0;
  bool first = true;
  for (; i < end || first; i += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      v[u] = i + u * stride < end ? chunk(i + u * stride) : make_uint4(0, 0, 0, 0);
    if (first) overlap_enter(), first = false;  // weights are never written: requested before the wait
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == never) sink[int64_t{blockIdx.x} * blockDim.x + threadIdx.x] = acc;  // keeps the loads
}

// Times read_floor_kernel<u, kStrips> on copy i of b's rotation at every (blocks, threads) that
// grids(chunks, u) lists, for u = 2, 4, 8 chunks a thread in flight, into `times` ("read_" or "strips_" + the
// layout); grids too large for the sink (and, in strips, blocks of part warps) are skipped.
template <bool kStrips, class Grids>
void time_read_floors(RotatedW4A16& b, const LinearShape& g, int iters, VariantTimes& times, Grids&& grids) {
  const cudaStream_t s = b.stream.get();
  const int64_t n_codes = 4 * w4a16_qweight_words(g.in, g.out) / 16,
                n_records = 2 * w4a16_scale_zero_halves(g.in, g.out) / 16;
  DeviceBuffer<uint32_t> sink(size_t(current_sm_count("bench_w4a16")) * 16 * 1024, "bench read-floor sink");
  auto layouts = [&](auto kernel, int unroll) {
    for (const std::pair<int, int>& grid : grids(n_codes + n_records, unroll)) {
      const int blocks = grid.first, threads = grid.second;
      if (int64_t{blocks} * threads > int64_t(sink.size())) continue;
      if (kStrips && threads % 32 != 0) continue;  // the strips kernel counts whole warps
      auto read = [&](int i) {
        const W4A16Weights w = b.w4.at(i);
        launch_overlapped(kernel, blocks, threads, 0, s, "bench_w4a16 read floor",
                          reinterpret_cast<const uint4*>(w.qweight), n_codes,
                          reinterpret_cast<const uint4*>(w.scale_zero), n_records, 0xfffffffeu, sink.get());
      };
      times.add(variant_name({kStrips ? "strips_b" : "read_b", std::to_string(blocks), "t",
                              std::to_string(threads), "u", std::to_string(unroll)}),
                b.time(read, iters));
    }
  };
  layouts(read_floor_kernel<2, kStrips>, 2);
  layouts(read_floor_kernel<4, kStrips>, 4);
  layouts(read_floor_kernel<8, kStrips>, 8);
}

void BM_W4A16ReadFloor(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  const int m = int(state.range(1));
  RotatedW4A16 b(g, m);
  const cudaStream_t s = b.stream.get();
  constexpr int kIters = 15;
  const int sms = current_sm_count("bench_w4a16");
  VariantTimes times{state};
  // Blocks a multiple of the SMs, or just enough that each thread loads one batch (no stride).
  time_read_floors<false>(b, g, kIters, times, [sms](int64_t chunks, int unroll) {
    std::vector<std::pair<int, int>> grids;
    for (int threads : {256, 512, 1024}) {
      const int one_batch = int((chunks + int64_t{threads} * unroll - 1) / (int64_t{threads} * unroll));
      for (int blocks : {sms, 2 * sms, 4 * sms, one_batch}) grids.emplace_back(blocks, threads);
    }
    return grids;
  });
  const double floor_us = times.best_us;
  const std::string floor_name = times.best_name;
  state.counters["us_floor_overlapped"] = 1e6 * b.empty_overlapped_seconds(kIters);
  const double w4a16_s = b.time([&](int i) { w4a16_linear(b.x.get(), b.w4.at(i), m, b.y.get(), s); }, kIters);
  const double fp16_s = fp16_seconds(b, g, m, kIters);
  state.counters["us_floor_read"] = floor_us;
  state.counters["us_w4a16"] = w4a16_s * 1e6;
  state.counters["us_fp16"] = fp16_s * 1e6;
  state.counters["GB/s_floor_read"] = double(w4a16_weight_bytes(g.in, g.out)) / (floor_us * 1e-6) / 1e9;
  state.counters["x_vs_fp16"] = fp16_s / w4a16_s;
  state.counters["x_floor_vs_fp16"] = fp16_s * 1e6 / floor_us;
  for (auto _ : state) state.SetIterationTime(floor_us * 1e-6);
  state.SetLabel(std::string(g.name) + " floor=" + floor_name);
}
BENCHMARK(BM_W4A16ReadFloor)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 16}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

// The read floor in the GEMVs' order: each warp one contiguous run of the weight, as a GEMV warp
// streams its slice of a strip, at 8, 16 and 32 warps an SM in blocks of 2, 8 and 16 warps, none
// larger than an SM's share (the GEMVs' range: 7b w13's one-row default is 2-warp blocks). Against
// BM_W4A16ReadFloor's grid-strided best in the same run it says what that order costs by itself
// (perf/wip/w4a16-stream-only-call.sh). M does not change the bytes read: M = 1 only.
void BM_W4A16ReadFloorStrips(benchmark::State& state) {
  if (!gpu_answers()) return state.SkipWithError("GPU not available");
  const LinearShape& g = kShapes[state.range(0)];
  RotatedW4A16 b(g, 1);
  const int sms = current_sm_count("bench_w4a16");
  VariantTimes times{state};
  time_read_floors<true>(b, g, 15, times, [sms](int64_t, int) {
    std::vector<std::pair<int, int>> grids;
    for (int threads : {64, 256, 512})
      for (int warps_per_sm : {8, 16, 32})  // no block larger than an SM's share: every SM gets one
        if (warps_per_sm * 32 >= threads) grids.emplace_back(sms * warps_per_sm * 32 / threads, threads);
    return grids;
  });
  state.counters["us_floor_strips"] = times.best_us;
  state.counters["GB/s_floor_strips"] =
      double(w4a16_weight_bytes(g.in, g.out)) / (times.best_us * 1e-6) / 1e9;
  for (auto _ : state) state.SetIterationTime(times.best_us * 1e-6);
  state.SetLabel(std::string(g.name) + " floor=" + times.best_name);
}
BENCHMARK(BM_W4A16ReadFloorStrips)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
