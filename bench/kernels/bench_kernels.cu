// Google Benchmark microbenchmarks of the decode-path kernels at real InternLM2 shapes.
// Timing follows docs/DESIGN.md "Measuring honestly": random data (never zeros), warm-up, launches
// back to back in one CUDA graph replayed between two CUDA events (bench_util.h time_kernel), and
// inputs rotated over enough copies that every launch reads its bytes from DRAM, not from the
// 50-60 MB L2.
// Each benchmark reports manual time per launch and, as counters, the bytes and FLOPs it must move
// and do (the cost model's, bytes from the op table: op_costs.h) and the achieved GB/s and TFLOP/s.
// Run: ridgeline_bench --benchmark_out=kernels.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench/kernels/bench_util.h"
#include "bench/kernels/op_costs.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.cuh"

using namespace ridgeline::cuda;
using ridgeline::OpType;
using ridgeline::bench::KernelCost;
using ridgeline::bench::op_cost;
using namespace ridgeline::bench;

namespace {

// A host vector (sequence slots, positions, lengths, block tables, RoPE tables) copied to the device.
template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& v, const char* what) {
  DeviceBuffer<T> d(v.size(), what);
  RL_CUDA_CHECK(what, cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// The engine's GEMM (gemv_choice: gemv for 1-2 rows, gemv_tc up to 16, cuBLASLt above) and, for
// comparison, cuBLASLt alone at every size.
void gemm_fp16(benchmark::State& state, bool small_batch_gemv) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const GemmShape& g = kGemms[state.range(0)];
  const int m = int(state.range(1));
  state.SetLabel(g.name);
  Stream stream;
  Gemm gemm;
  gemm.set_small_batch_gemv(small_batch_gemv);
  const size_t wbytes = size_t(g.in) * g.out * 2;
  const int copies = copies_for(wbytes);
  DeviceBuffer<half> w(size_t(g.in) * g.out * copies, "bench W"), x(size_t(m) * g.in, "bench x"),
      y(size_t(m) * g.out, "bench y");
  fill(w.get(), int64_t(w.size()), 1, stream.get());
  fill(x.get(), int64_t(x.size()), 2, stream.get());
  const KernelCost cost = op_cost(g.preset, g.op, m);
  time_kernel(state, stream.get(), cost.bytes, cost.flops, copies, [&](int i) {
    gemm.run(x.get(), w.get() + size_t(i % copies) * g.in * g.out, m, g.in, g.out, y.get(), stream.get(),
             "bench");
  });
}

void BM_GemmFp16(benchmark::State& state) {
  gemm_fp16(state, true);
}
void BM_CublasLtFp16(benchmark::State& state) {
  gemm_fp16(state, false);
}

void gemm_args(benchmark::internal::Benchmark* b) {
  for (int s = 0; s < int(std::size(kGemms)); ++s)
    for (int m : {1, 2, 4, 8, 16, 32, 64, 128, 256}) b->Args({s, m});
}
BENCHMARK(BM_GemmFp16)->Apply(gemm_args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CublasLtFp16)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8, 16}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The tensor-core GEMV (gemv_tc) at every shape and 1..16 rows with each 16-row tile's K range over
// 4, 8 or 16 warps, or gemv_tc_split's choice (0; the label names it): the evidence behind
// gemv_tc_split and, against BM_GemvSplits and BM_CublasLtFp16, behind gemv_choice.
void BM_GemvTc(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const GemmShape& g = kGemms[state.range(0)];
  const int m = int(state.range(1)), split = int(state.range(2));
  state.SetLabel(std::string(g.name) + " auto=" + std::to_string(gemv_tc_split((g.out + 15) / 16)));
  Stream stream;
  const size_t welems = size_t(g.in) * g.out;
  const int copies = copies_for(welems * 2);
  DeviceBuffer<half> w(welems * copies, "bench W"), x(size_t(m) * g.in, "bench x"),
      y(size_t(m) * g.out, "bench y");
  fill(w.get(), int64_t(w.size()), 1, stream.get());
  fill(x.get(), int64_t(x.size()), 2, stream.get());
  const KernelCost cost = op_cost(g.preset, g.op, m);
  time_kernel(state, stream.get(), cost.bytes, cost.flops, copies, [&](int i) {
    gemv_tc(x.get(), w.get() + size_t(i % copies) * welems, m, g.in, g.out, y.get(), stream.get(), split);
  });
}
BENCHMARK(BM_GemvTc)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4, 8, 16}, {0, 4, 8, 16}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The fp16 GEMV with each row's K range split over 1, 2 or 4 warps (gemv's `split`), plain (args:
// shape, M, split, 0) and with the decode step's residual epilogue (gemv_fused, ..., 1: how wo and
// w2 run at B <= 2): the evidence behind gemv_split. The label names the automatic choice.
void BM_GemvSplits(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const GemmShape& g = kGemms[state.range(0)];
  const int m = int(state.range(1)), split = int(state.range(2));
  const bool residual = state.range(3) != 0;
  if (residual && m > kGemvFusedMaxRows) return state.SkipWithError("the fused GEMV takes M <= 2");
  state.SetLabel(std::string(g.name) + (residual ? " residual" : " plain") +
                 " auto=" + std::to_string(gemv_split(g.out)));
  Stream stream;
  const size_t welems = size_t(g.in) * g.out;
  const int copies = copies_for(welems * 2);
  DeviceBuffer<half> w(welems * copies, "bench W"), x(size_t(m) * g.in, "bench x"),
      y(size_t(m) * g.out, "bench y");
  DeviceBuffer<float> r(size_t(m) * g.out, "bench residual");
  fill(w.get(), int64_t(w.size()), 1, stream.get());
  fill(x.get(), int64_t(x.size()), 2, stream.get());
  RL_CUDA_CHECK("bench", cudaMemsetAsync(r.get(), 0, r.size() * sizeof(float), stream.get()));
  const KernelCost cost = op_cost(g.preset, g.op, m);
  time_kernel(state, stream.get(), cost.bytes, cost.flops, copies, [&](int i) {
    const half* wi = w.get() + size_t(i % copies) * welems;
    if (residual)
      gemv_fused(
          {.w = wi, .n = m, .in = g.in, .out = g.out, .x = x.get(), .residual = r.get(), .split = split},
          stream.get());
    else
      gemv(x.get(), wi, m, g.in, g.out, y.get(), stream.get(), split);
  });
}
BENCHMARK(BM_GemvSplits)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2}, {1, 2, 4}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The w13 GEMV with SwiGLU in its epilogue (gemv_swiglu, the CUDA decode step at B <= 16: gemv_fused
// at 1-2 rows, gemv_tc_swiglu above) against the two launches it replaces (the GEMV into gate_up,
// then swiglu), 1.8b and 7b FFN shapes, 1, 2, 4 and 16 rows.
// Bytes and FLOPs are the op table's: unfused = w13 + swiglu; fused = the fused w13 op, which moves
// 8*m*inter fewer bytes (no gate_up round trip) and does the same FLOPs (tests/test_ops_fusions.cpp
// checks that arithmetic on the table). Expect about one small launch (~2 us) saved per call and the
// fused kernel streaming W13 at the plain gemv's GB/s.
// The fused-GEMV benchmarks' shapes: a GEMV of `out` rows (w13: `out` gate and `out` up rows) over
// the hidden size.
struct FusedShape {
  const char* name;
  const char* preset;
  int hidden, out;
};
const FusedShape kFfnShapes[] = {{"1_8b.w13", "internlm2-chat-1_8b", 2048, 8192},
                                 {"7b.w13", "internlm2-chat-7b", 4096, 14336}};
const FusedShape kQkvShapes[] = {{"1_8b.wqkv", "internlm2-chat-1_8b", 2048, 4096},
                                 {"7b.wqkv", "internlm2-chat-7b", 4096, 6144}};

// One fused-vs-unfused case: its shape, rows, label, and a W rotated over enough copies to miss L2.
struct FusedCase {
  const FusedShape& shape;
  int m;
  size_t w_elems;
  int copies;
  FusedCase(benchmark::State& state, const FusedShape* shapes, size_t w_rows, const char* label)
      : shape(shapes[state.range(0)]),
        m(int(state.range(1))),
        w_elems(w_rows * shape.hidden),
        copies(copies_for(w_elems * 2)) {
    state.SetLabel(std::string(shape.name) + " " + label);
  }
};

void w13_swiglu(benchmark::State& state, bool fused) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const FusedCase c(state, kFfnShapes, size_t(2) * kFfnShapes[state.range(0)].out,
                    fused ? "gemv_swiglu" : "gemv+swiglu");
  const FusedShape& sh = c.shape;
  const int m = c.m, H = sh.hidden, I = sh.out, copies = c.copies;
  const size_t w_elems = c.w_elems;
  Stream stream;
  Gemm gemm;  // the unfused w13: the GEMV gemv_choice picks for m rows, as the engine runs it
  DeviceBuffer<half> w(w_elems * copies, "bench W13"), x(size_t(m) * H, "bench x"),
      gate_up(size_t(m) * 2 * I, "bench gate_up"), act(size_t(m) * I, "bench act");
  fill(w.get(), int64_t(w.size()), 1, stream.get());
  fill(x.get(), int64_t(x.size()), 2, stream.get());
  const KernelCost w13 = op_cost(sh.preset, OpType::w13, m), sw = op_cost(sh.preset, OpType::swiglu, m);
  const double bytes = fused ? w13.bytes - 2.0 * m * 2 * I + 2.0 * m * I : w13.bytes + sw.bytes;
  time_kernel(state, stream.get(), bytes, w13.flops + sw.flops, copies, [&](int i) {
    const half* wi = w.get() + size_t(i % copies) * w_elems;
    if (fused) {
      gemv_swiglu(x.get(), wi, m, H, I, act.get(), stream.get());
    } else {
      gemm.run(x.get(), wi, m, H, 2 * I, gate_up.get(), stream.get(), "bench");
      swiglu(gate_up.get(), m, I, act.get(), stream.get());
    }
  });
}

void BM_W13SwigluFused(benchmark::State& state) {
  w13_swiglu(state, true);
}
void BM_W13SwigluUnfused(benchmark::State& state) {
  w13_swiglu(state, false);
}
BENCHMARK(BM_W13SwigluFused)
    ->ArgsProduct({{0, 1}, {1, 2, 4, 16}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_W13SwigluUnfused)
    ->ArgsProduct({{0, 1}, {1, 2, 4, 16}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The wqkv GEMV with the RMSNorm in its prologue (gemv_fused, the CUDA decode step at B <= 2) against
// add_rmsnorm (with the add of the previous sublayer's proj, as the op table's layer-1 attention_norm)
// then gemv; fused, that add is in the previous wo / w2 epilogue (one read-modify-write of 4mH bytes,
// not timed here): 1.8b and 7b, 1 and 2 rows. Bytes: unfused = the op
// table's attention_norm + wqkv; fused = wqkv reading the residual rows (4mH) and the norm weight
// (2H) instead of x (2mH). Expect the norm's launch (~2 us) saved less the prologue's exposed
// latency (a block reduction over an L2-resident row).

void wqkv_norm(benchmark::State& state, bool fused) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const FusedCase c(state, kQkvShapes, size_t(kQkvShapes[state.range(0)].out),
                    fused ? "gemv_fused(norm)" : "add_rmsnorm+gemv");
  const FusedShape& sh = c.shape;
  const int m = c.m, H = sh.hidden, O = sh.out, copies = c.copies;
  const size_t w_elems = c.w_elems;
  Stream stream;
  DeviceBuffer<half> w(w_elems * copies, "bench W"), norm_w(H, "bench norm_w"),
      proj(size_t(m) * H, "bench proj"), x(size_t(m) * H, "bench x"), y(size_t(m) * O, "bench y");
  DeviceBuffer<float> residual(size_t(m) * H, "bench residual");
  fill(w.get(), int64_t(w.size()), 1, stream.get());
  fill(norm_w.get(), H, 3, stream.get());
  fill(proj.get(), int64_t(proj.size()), 4, stream.get());
  RL_CUDA_CHECK("bench", cudaMemsetAsync(residual.get(), 0, residual.bytes(), stream.get()));
  const KernelCost norm = op_cost(sh.preset, OpType::attention_norm, m),
                   qkv = op_cost(sh.preset, OpType::wqkv, m);
  const double bytes = fused ? qkv.bytes - 2.0 * m * H + 4.0 * m * H + 2.0 * H : norm.bytes + qkv.bytes;
  time_kernel(state, stream.get(), bytes, norm.flops + qkv.flops, copies, [&](int i) {
    const half* wi = w.get() + size_t(i % copies) * w_elems;
    if (fused) {
      gemv_fused({.w = wi,
                  .n = m,
                  .in = H,
                  .out = O,
                  .norm_residual = residual.get(),
                  .norm_w = norm_w.get(),
                  .eps = 1e-5f,
                  .y16 = y.get()},
                 stream.get());
    } else {
      add_rmsnorm(residual.get(), proj.get(), norm_w.get(), m, H, 1e-5f, x.get(), stream.get());
      gemv(x.get(), wi, m, H, O, y.get(), stream.get());
    }
  });
}

void BM_WqkvNormFused(benchmark::State& state) {
  wqkv_norm(state, true);
}
void BM_WqkvNormUnfused(benchmark::State& state) {
  wqkv_norm(state, false);
}
BENCHMARK(BM_WqkvNormFused)->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_WqkvNormUnfused)->ArgsProduct({{0, 1}, {1, 2}})->UseManualTime()->Unit(benchmark::kMicrosecond);

// The KV formats the attention and RoPE/KV-write benchmarks take as an argument: 0 fp16, 1 int8, 2 int4.
const ridgeline::KvFormat kKvFormats[] = {ridgeline::KvFormat::fp16, ridgeline::KvFormat::int8,
                                          ridgeline::KvFormat::int4};

ridgeline::Formats kv_formats(int64_t index) {
  ridgeline::Formats f;
  f.kv = kKvFormats[index];
  return f;
}

// A layer's paged K/V pools in `kv` for `seqs` sequences of `ctx` tokens, filled with random valid
// rows (fill_kv_synthetic), blocks handed out shuffled as a long-running allocator leaves them.
struct BenchKvCache {
  KvCacheView view;
  DeviceBuffer<uint8_t> k, v;
  DeviceBuffer<int> table;

  BenchKvCache(ridgeline::KvFormat kv, int n_kv, int hd, int block, int seqs, int ctx, cudaStream_t s) {
    view.block_size = block;
    view.n_kv_heads = n_kv;
    view.head_dim = hd;
    view.bits = ridgeline::kv_bits(kv);
    view.max_blocks_per_seq = (ctx + block - 1) / block;
    const int num_blocks = view.max_blocks_per_seq * seqs;
    k = DeviceBuffer<uint8_t>(size_t(num_blocks) * view.block_bytes(), "bench K");
    v = DeviceBuffer<uint8_t>(k.size(), "bench V");
    fill_kv_synthetic(view, k.get(), 0, num_blocks, 3, 0, s);
    fill_kv_synthetic(view, v.get(), 0, num_blocks, 3, 1, s);
    std::vector<int> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(1));
    table = upload(ids, "bench table");
    view.k = k.get();
    view.v = v.get();
    view.block_table = table.get();
  }
};

// decode_attention's parameters for `batch` sequences of `ctx` tokens (q given: the unfused form).
DecodeAttentionParams attention_params(const half* q, const int* slots, const int* lens, int batch,
                                       int n_heads, int ctx, const KvCacheView& cache, void* ws, half* out) {
  return {.q = q,
          .slots = slots,
          .context_lens = lens,
          .n_seqs = batch,
          .n_heads = n_heads,
          .max_context = ctx,
          .cache = cache,
          .workspace = ws,
          .out = out};
}

// Decode attention for a batch of sequences of one context length, at the head shapes of
// internlm2-chat-1_8b (16 query heads on 8 KV heads of 128) and -7b (32 on 8), with the KV cache in
// fp16, int8 or int4. Args: {model (0 1.8b, 1 7b), KV format (0 fp16, 1 int8, 2 int4), context,
// batch}. Bytes (op table, op_costs.h): the K and V of every sequence's context in the KV format
// (codes, scales and zeros), q in, out out. Each launch reads another copy of the batch's
// sequences, so that at small sizes the bytes come from DRAM, not L2.
void BM_DecodeAttention(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const bool is_7b = state.range(0) == 1;
  const ridgeline::KvFormat kv = kKvFormats[state.range(1)];
  const int ctx = int(state.range(2)), batch = int(state.range(3));
  const char* preset = is_7b ? "internlm2-chat-7b" : "internlm2-chat-1_8b";
  const int n_heads = is_7b ? 32 : 16, n_kv = 8, hd = 128, block = 64;
  state.SetLabel(std::string(is_7b ? "7b" : "1_8b") + " kv " + ridgeline::to_string(kv));
  Stream stream;
  const KernelCost cost = op_cost(preset, OpType::attention, batch, ctx, kv_formats(state.range(1)));
  const int copies = copies_for(size_t(cost.bytes));
  BenchKvCache cache(kv, n_kv, hd, block, batch * copies, ctx, stream.get());
  DeviceBuffer<half> q(size_t(batch) * n_heads * hd, "bench q"),
      out(size_t(batch) * n_heads * hd, "bench out");
  fill(q.get(), int64_t(q.size()), 5, stream.get());
  std::vector<int> seq_ids(size_t(batch) * copies), lens(batch, ctx);
  std::iota(seq_ids.begin(), seq_ids.end(), 0);
  const DeviceBuffer<int> d_seq = upload(seq_ids, "bench seqs"), d_len = upload(lens, "bench lens");
  DeviceBuffer<uint8_t> ws(decode_attention_workspace_bytes(batch, n_heads, hd, ctx), "bench workspace");
  time_kernel(state, stream.get(), cost.bytes, cost.flops, copies, [&](int i) {
    decode_attention(attention_params(q.get(), d_seq.get() + size_t(i % copies) * batch, d_len.get(), batch,
                                      n_heads, ctx, cache.view, ws.get(), out.get()),
                     stream.get());
  });
}
BENCHMARK(BM_DecodeAttention)
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {1024, 2048, 4096, 8192, 16384, 32768}, {1, 4, 16, 64}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// rope_kv_write folded into decode attention (Fusions::rope_in_attention) against the two launches
// it replaces, rope_kv_write then decode_attention, at the head shapes of internlm2-chat-1_8b and
// -7b. Args: {model (0 1.8b, 1 7b), KV format (0 fp16, 1 int8, 2 int4), context, batch, fused (0 the
// two launches, 1 the fused kernel)}. Both report the bytes of the ops they run (op table): the pair
// rope_kv_write's plus attention's, the fused one attention's with RoPE; compare the times. Inputs
// (the cache's sequences) rotate as BM_DecodeAttention's; every launch writes the new rows again.
void BM_DecodeAttentionRope(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const bool is_7b = state.range(0) == 1;
  const ridgeline::KvFormat kv = kKvFormats[state.range(1)];
  const int ctx = int(state.range(2)), batch = int(state.range(3));
  const bool fused = state.range(4) == 1;
  const char* preset = is_7b ? "internlm2-chat-7b" : "internlm2-chat-1_8b";
  const int n_heads = is_7b ? 32 : 16, n_kv = 8, hd = 128, block = 64;
  const int q_dim = n_heads * hd, qkv_dim = (n_heads + 2 * n_kv) * hd;
  const float base = 1e6f;
  state.SetLabel(std::string(is_7b ? "7b" : "1_8b") + " kv " + ridgeline::to_string(kv) +
                 (fused ? " fused" : " rope_kv_write + attention"));
  Stream stream;
  const ridgeline::Formats formats = kv_formats(state.range(1));
  KernelCost cost;
  if (fused) {
    cost = op_cost(preset, OpType::attention, batch, ctx, formats, 1, {.rope_in_attention = true});
  } else {
    const KernelCost rope = op_cost(preset, OpType::rope_kv_write, batch, ctx, formats),
                     attn = op_cost(preset, OpType::attention, batch, ctx, formats);
    cost = {rope.bytes + attn.bytes, rope.flops + attn.flops};
  }
  const int copies = copies_for(size_t(cost.bytes));
  BenchKvCache cache(kv, n_kv, hd, block, batch * copies, ctx, stream.get());
  DeviceBuffer<half> qkv(size_t(batch) * qkv_dim, "bench qkv"), q(size_t(batch) * q_dim, "bench q"),
      out(size_t(batch) * q_dim, "bench out");
  fill(qkv.get(), int64_t(qkv.size()), 9, stream.get());
  std::vector<int> seq_ids(size_t(batch) * copies), lens(batch, ctx), pos(batch, ctx - 1);
  std::iota(seq_ids.begin(), seq_ids.end(), 0);
  std::vector<float> inv_freq(size_t(batch) * hd / 2);
  for (int i = 0; i < batch; ++i) rope_inv_freq(base, hd, inv_freq.data() + size_t(i) * hd / 2);
  const DeviceBuffer<int> d_seq = upload(seq_ids, "bench seqs"), d_len = upload(lens, "bench lens"),
                          d_pos = upload(pos, "bench positions");
  const DeviceBuffer<float> d_inv = upload(inv_freq, "bench RoPE tables");
  DeviceBuffer<uint8_t> ws(decode_attention_workspace_bytes(batch, n_heads, hd, ctx), "bench workspace");
  time_kernel(state, stream.get(), cost.bytes, cost.flops, copies, [&](int i) {
    const int* slots = d_seq.get() + size_t(i % copies) * batch;
    DecodeAttentionParams p =
        attention_params(q.get(), slots, d_len.get(), batch, n_heads, ctx, cache.view, ws.get(), out.get());
    if (fused) {
      p.q = nullptr;
      p.rope = {.qkv = qkv.get(), .inv_freq = d_inv.get(), .pos_scale = 1.0f};
    } else {
      rope_kv_write({.qkv = qkv.get(),
                     .slots = slots,
                     .positions = d_pos.get(),
                     .n_tokens = batch,
                     .n_heads = n_heads,
                     .cache = cache.view,
                     .rope_base = base,
                     .pos_scale = 1.0f,
                     .q_out = q.get()},
                    stream.get());
    }
    decode_attention(p, stream.get());
  });
}
BENCHMARK(BM_DecodeAttentionRope)
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {1024, 8192}, {1, 16, 64}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Prefill attention of one prompt of `prompt` tokens over its own K/V (already in the cache, as
// rope_kv_write leaves them), causal, at the head shapes of internlm2-chat-1_8b (16 query heads on 8
// KV heads of 128) and -7b (32 on 8), KV in fp16, int8 or int4. Args: {model (0 1.8b, 1 7b), KV
// format (0 fp16, 1 int8, 2 int4), prompt}. Compute-bound for long prompts: TFLOP/s (the causal
// triangle's FLOPs, the cost model's) is the figure; the K/V (8 MB at 2048 tokens) stay in L2 as
// they do in a prefill, so nothing is rotated.
void BM_PrefillAttention(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const bool is_7b = state.range(0) == 1;
  const ridgeline::KvFormat kv = kKvFormats[state.range(1)];
  const int prompt = int(state.range(2));
  const char* preset = is_7b ? "internlm2-chat-7b" : "internlm2-chat-1_8b";
  const int n_heads = is_7b ? 32 : 16, n_kv = 8, hd = 128, block = 64;
  state.SetLabel(std::string(is_7b ? "7b" : "1_8b") + " kv " + ridgeline::to_string(kv));
  Stream stream;
  const KernelCost cost = op_cost(preset, OpType::attention, 1, prompt, kv_formats(state.range(1)), prompt);
  BenchKvCache cache(kv, n_kv, hd, block, 1, prompt, stream.get());
  DeviceBuffer<half> q(size_t(prompt) * n_heads * hd, "bench q"),
      out(size_t(prompt) * n_heads * hd, "bench out");
  fill(q.get(), int64_t(q.size()), 9, stream.get());
  std::vector<int> seq_ids(prompt, 0), positions(prompt);
  std::iota(positions.begin(), positions.end(), 0);
  const DeviceBuffer<int> d_seq = upload(seq_ids, "bench seqs"), d_pos = upload(positions, "bench positions");
  time_kernel(state, stream.get(), cost.bytes, cost.flops, [&](int) {
    prefill_attention({.q = q.get(),
                       .slots = d_seq.get(),
                       .positions = d_pos.get(),
                       .n_tokens = prompt,
                       .n_heads = n_heads,
                       .cache = cache.view,
                       .out = out.get()},
                      stream.get());
  });
}
BENCHMARK(BM_PrefillAttention)
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {512, 2048, 8192}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Fused residual add + RMSNorm over `tokens` rows of `dim` (fp32 residual read and written, fp16 x
// read, fp16 out written).
void BM_AddRmsnorm(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const int dim = int(state.range(0)), tokens = int(state.range(1));
  Stream stream;
  DeviceBuffer<float> res(size_t(tokens) * dim, "bench residual");
  DeviceBuffer<half> x(size_t(tokens) * dim, "bench x"), w(dim, "bench w"),
      out(size_t(tokens) * dim, "bench out");
  fill(x.get(), int64_t(x.size()), 6, stream.get());
  fill(w.get(), dim, 7, stream.get());
  RL_CUDA_CHECK("bench", cudaMemsetAsync(res.get(), 0, res.bytes(), stream.get()));
  const KernelCost cost =
      op_cost(dim == 2048 ? "internlm2-chat-1_8b" : "internlm2-chat-7b", OpType::ffn_norm, tokens);
  time_kernel(state, stream.get(), cost.bytes, cost.flops, [&](int) {
    add_rmsnorm(res.get(), x.get(), w.get(), tokens, dim, 1e-5f, out.get(), stream.get());
  });
}
BENCHMARK(BM_AddRmsnorm)
    ->ArgsProduct({{2048, 4096}, {1, 16, 256}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// RoPE of q and k plus the paged KV write (quantized on write for int8/int4), 1.8b head shape.
// Args: {tokens, KV format (0 fp16, 1 int8, 2 int4)}.
void BM_RopeKvWrite(benchmark::State& state) {
  if (!gpu_ok()) return state.SkipWithError("GPU not available");
  const int tokens = int(state.range(0));
  const ridgeline::KvFormat kv = kKvFormats[state.range(1)];
  const int n_heads = 16, n_kv = 8, hd = 128, block = 64, pos0 = 1000;
  const int qkv_dim = (n_heads + 2 * n_kv) * hd;
  state.SetLabel(std::string("kv ") + ridgeline::to_string(kv));
  Stream stream;
  DeviceBuffer<half> qkv(size_t(tokens) * qkv_dim, "bench qkv"), q(size_t(tokens) * n_heads * hd, "bench q");
  fill(qkv.get(), int64_t(qkv.size()), 8, stream.get());
  BenchKvCache cache(kv, n_kv, hd, block, tokens, pos0 + 1, stream.get());
  std::vector<int> seqs(tokens), pos(tokens, pos0);
  std::iota(seqs.begin(), seqs.end(), 0);
  const DeviceBuffer<int> d_seq = upload(seqs, "bench seqs"), d_pos = upload(pos, "bench pos");
  const KernelCost cost =
      op_cost("internlm2-chat-1_8b", OpType::rope_kv_write, tokens, 1024, kv_formats(state.range(1)));
  time_kernel(state, stream.get(), cost.bytes, cost.flops, [&](int) {
    rope_kv_write({.qkv = qkv.get(),
                   .slots = d_seq.get(),
                   .positions = d_pos.get(),
                   .n_tokens = tokens,
                   .n_heads = n_heads,
                   .cache = cache.view,
                   .rope_base = 1e6f,
                   .pos_scale = 1.0f,
                   .q_out = q.get()},
                  stream.get());
  });
}
BENCHMARK(BM_RopeKvWrite)
    ->ArgsProduct({{1, 16, 256}, {0, 1, 2}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

// Google Benchmark sizes its iterations by the reported (manual) time, a few microseconds a launch
// here, while each iteration costs the host a batch of launches and a sync (~0.5 ms): at its
// default 0.5 s of manual time one case took a minute (H200, "twenty-fifth": 160k iterations of
// BM_W4A16VsFp16/0/16). So 30 iterations unless --benchmark_min_time says otherwise, as
// scripts/gpu-baselines.sh has always passed (the <N>x form exists from Google Benchmark 1.8:
// bench/CMakeLists.txt; with 1.7 pass a short --benchmark_min_time in seconds by hand). Each
// iteration already times many launches back to back (graph replays: time_kernel's, the W4A16
// benchmarks' own).
int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
#ifdef RIDGELINE_BENCH_ITERATIONS_FLAG
  // Not over a flag or Google Benchmark's own environment default (BENCHMARK_MIN_TIME).
  static char default_min_time[] = "--benchmark_min_time=30x";
  if (!args.empty() && std::getenv("BENCHMARK_MIN_TIME") == nullptr &&
      std::none_of(args.begin() + 1, args.end(),
                   [](const char* a) { return std::string_view(a).starts_with("--benchmark_min_time"); }))
    args.insert(args.begin() + 1, default_min_time);
#endif
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
