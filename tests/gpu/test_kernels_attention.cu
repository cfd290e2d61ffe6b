// Decode and prefill attention over a paged KV cache against ref::attention, on shuffled block
// tables whose unused slots hold NaN, for the real model shapes (1.8b: 16 heads / 8 KV heads,
// 7b: 32 / 8, head_dim 128) and odd ones (head_dim 64, group 1, group 6, block sizes 16..256), in
// every KV format: int8/int4 caches against the reference computed on the dequantized cache (what
// the kernels read), and, printed, against the fp16 cache the codes came from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/reference.h"
#include "kernels/kernels.cuh"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"

namespace ridgeline::test {
namespace {

// The worst (sequence, head) row's NMSE a kernel may reach, per KV format: ~50x and ~20x the worst
// measured on the H200 (fp16 1.8e-7; int8 2.2e-6, int4 1.4e-6: bench/results/h200-rope-in-attention/
// tests.log.gz), and below what losing one token of 32768 costs (7.9e-5 on these inputs).
double attention_nmse_limit(int bits) {
  return bits == 16 ? 1e-5 : 5e-5;
}

struct AttnShape {
  int n_heads, n_kv, head_dim, block_size;
  std::string name() const {
    return "heads=" + std::to_string(n_heads) + " kv=" + std::to_string(n_kv) +
           " hd=" + std::to_string(head_dim) + " bs=" + std::to_string(block_size);
  }
};

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

// Runs decode attention for sequences with the given context lengths (one launch), compares every
// head of every sequence with ref::attention, returns the worst (sequence, head)'s NMSE.
// `bits`: the KV format (16 fp16, 8, 4). With `out` the kernel's output is returned there too. With
// `newest_dominates`, each sequence's newest key of every KV head is 4*sign(q) of the group's first
// query head, so that head attends almost only to the newest token (a kernel that loses it is off by
// ~1, not by one token's share).
double run_decode(const AttnShape& s, const std::vector<int>& contexts, int max_context, int workspace_seqs,
                  float q_scale, uint32_t seed, int bits = 16, std::vector<float>* out = nullptr,
                  bool newest_dominates = false) {
  std::mt19937 rng(seed);
  const int n_seqs = int(contexts.size()), hd = s.head_dim, q_dim = s.n_heads * hd;
  // Sequences live in shuffled, non-identity slots of a cache with one extra (unused) slot.
  std::vector<int> slots(n_seqs + 1);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(n_seqs);
  std::vector<int> capacity(n_seqs + 1, 16);
  for (int i = 0; i < n_seqs; ++i) capacity[slots[i]] = std::max(contexts[i], 1);
  PagedCache cache(capacity, s.n_kv, hd, s.block_size, rng, bits);
  for (int i = 0; i < n_seqs; ++i) cache.fill_random(slots[i], contexts[i], rng);
  cache.upload();
  auto q = random_fp16_values(size_t(n_seqs) * q_dim, rng, -q_scale, q_scale);
  if (newest_dominates) {
    const int group = s.n_heads / s.n_kv;
    std::vector<float> key(hd);
    for (int i = 0; i < n_seqs; ++i)
      for (int h = 0; h < s.n_kv; ++h) {
        const float* qh = q.data() + size_t(i) * q_dim + size_t(h) * group * hd;
        for (int d = 0; d < hd; ++d) key[d] = qh[d] < 0.0f ? -4.0f : 4.0f;
        cache.write_row(cache.k, slots[i], contexts[i] - 1, h, key.data());
      }
    cache.upload();
  }

  std::vector<float> expect(q.size()), K, V;
  for (int i = 0; i < n_seqs; ++i) {
    cache.gather(slots[i], contexts[i], K, V);
    ref::attention(q.data() + size_t(i) * q_dim, K.data(), V.data(), int64_t(s.n_kv) * hd, contexts[i],
                   s.n_heads, s.n_kv, hd, expect.data() + size_t(i) * q_dim);
  }

  size_t ws_bytes = cuda::decode_attention_workspace_bytes(workspace_seqs, s.n_heads, hd, max_context);
  TestBuffer<char> d_ws(std::max<size_t>(ws_bytes, 1));
  d_ws.poison();
  TestBuffer<half> d_q(to_half(q)), d_out(q.size());
  TestBuffer<int> d_seq(slots), d_ctx(contexts);
  d_out.poison();
  cuda::decode_attention({.q = d_q.get(),
                          .slots = d_seq.get(),
                          .context_lens = d_ctx.get(),
                          .n_seqs = n_seqs,
                          .n_heads = s.n_heads,
                          .max_context = max_context,
                          .cache = cache.view(),
                          .workspace = d_ws.get(),
                          .out = d_out.get()},
                         nullptr);
  std::vector<float> got = to_float(d_out.download());
  if (out) *out = got;
  return worst_row_nmse(got, expect, size_t(hd));
}

// Every KV format: fp16, and int8/int4 against the reference on the dequantized cache.
constexpr int kKvBits[] = {16, 8, 4};

TEST(KernelDecodeAttention, MatchesReferenceForMixedContextLengthsInOneBatch) {
  RL_REQUIRE_GPU();
  const std::vector<AttnShape> shapes = {
      {16, 8, 128, 64}, {16, 8, 128, 16}, {32, 8, 128, 64},  {32, 8, 128, 32},
      {4, 2, 128, 48},  {8, 8, 64, 16},   {48, 8, 128, 256}, {8, 1, 64, 64},
  };
  for (int bits : kKvBits) {
    for (const AttnShape& s : shapes) {
      const int bs = s.block_size;
      std::vector<int> contexts = {1, 7, 63, 65, 1000, 4097, bs, bs + 1, 2 * bs - 1};
      double e = run_decode(s, contexts, 4097, int(contexts.size()) + 3, 1.0f,
                            uint32_t(s.n_heads * 977 + bs + bits % 16), bits);
      std::string shape = kv_name(bits) + " " + s.name() + " ctx=" + join(contexts);
      report_nmse("decode_attention", shape, e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
    }
  }
}

TEST(KernelDecodeAttention, MatchesReferenceForOneSequenceSplitAcrossTheGpu) {
  RL_REQUIRE_GPU();
  // Batch 1 splits the context the most; max_context above the real context, as a CUDA graph
  // captured for the cache's capacity would pass it. One shape also runs 32k tokens.
  for (int bits : kKvBits) {
    for (const AttnShape& s :
         {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 16}, AttnShape{8, 8, 64, 32}}) {
      for (int ctx : {1, 7, 63, 65, 1000, 4097, 32768}) {
        if (ctx == 32768 && s.n_heads != 16) continue;  // keeps the host reference's time in check
        for (int max_context : {ctx, 8192}) {
          if (max_context < ctx) continue;
          double e =
              run_decode(s, {ctx}, max_context, 4, 1.0f, uint32_t(ctx * 31 + max_context + bits % 16), bits);
          std::string shape = kv_name(bits) + " " + s.name() + " ctx=" + std::to_string(ctx) +
                              " max_ctx=" + std::to_string(max_context);
          report_nmse("decode_attention", shape, e);
          EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
        }
      }
    }
  }
}

TEST(KernelDecodeAttention, QuantizedCacheStaysAccurateOverLongPerWarpStreams) {
  RL_REQUIRE_GPU();
  // Batch 1 splits a long context the most; a few sequences fill the GPU with fewer splits, so each
  // warp streams hundreds of tokens (B=4 at 32k: 8 splits, 1024 a warp; B=16 at 8k: 4 splits, 512, or
  // on an H100 SXM / H200 one wide CTA of 16 warps, 512 a warp too).
  // Uniform-ish attention over that many tokens makes the output a small average of large terms, the case
  // where the quantized kernels' accumulated error shows first.
  const AttnShape s{16, 8, 128, 64};
  for (int bits : {8, 4}) {
    for (auto [batch, ctx] : {std::pair{4, 32768}, std::pair{16, 8192}}) {
      const std::vector<int> contexts(batch, ctx);
      double e = run_decode(s, contexts, ctx, batch, 1.0f, uint32_t(batch * 131 + ctx + bits), bits);
      std::string shape =
          kv_name(bits) + " " + s.name() + " batch=" + std::to_string(batch) + " ctx=" + std::to_string(ctx);
      report_nmse("decode_attention", shape, e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
    }
  }
}

// B=16 on 8 KV heads is 128 (sequence, KV head) pairs: on a GPU of 128-142 SMs (an H100 SXM or H200: 132)
// they fill the SMs about once, and with contexts up to 8192 decode_attention runs one wide CTA a pair (4
// warps for each split the rule would have made) with no split and no merge kernel
// (kernels/decode_attention.cu, choose_warps); B=14 (112 pairs) and contexts up to 16384 keep the
// splits. Mixed contexts up to 8192, every format, both head dims, groups 1-8, against the CPU
// reference.
TEST(KernelDecodeAttention, OneWideCtaPerSequenceAndKvHeadMatchesReference) {
  RL_REQUIRE_GPU();
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const std::vector<int> contexts = {1,    7,   63,  65, 1000, 4097, 8192, 300,
                                     2048, 129, 500, 64, 128,  777,  33,   2};
  for (int head_dim : {64, 128})
    for (int group : {1, 2, 4, 8})
      for (int bits : kKvBits) {
        const cuda::DecodeAttentionLaunch l = cuda::decode_attention_launch(16, 8, head_dim, bits, 8192);
        const char* off = std::getenv("RIDGELINE_WIDE_ATTENTION");  // =0: splits everywhere
        if (sms >= 128 && sms <= 142 && !(off && std::string(off) == "0")) {
          EXPECT_EQ(l.splits, 1) << sms << " SMs";
          EXPECT_EQ(l.warps, bits == 16 ? 12 : 16) << sms << " SMs";
          const cuda::DecodeAttentionLaunch b14 = cuda::decode_attention_launch(14, 8, head_dim, bits, 8192);
          EXPECT_EQ(b14.warps, 4) << sms << " SMs";
          EXPECT_GT(b14.splits, 1) << sms << " SMs";
          const cuda::DecodeAttentionLaunch longer =
              cuda::decode_attention_launch(16, 8, head_dim, bits, 16384);
          EXPECT_EQ(longer.warps, 4) << sms << " SMs";
          EXPECT_GT(longer.splits, 1) << sms << " SMs";
        }
        const AttnShape s{8 * group, 8, head_dim, 64};
        const double e =
            run_decode(s, contexts, 8192, 16, 1.0f, uint32_t(71 + bits + group * head_dim), bits);
        const std::string shape = kv_name(bits) + " " + s.name() +
                                  " batch=16 ctx<=8192 warps=" + std::to_string(l.warps) +
                                  " splits=" + std::to_string(l.splits);
        report_nmse("decode_attention", shape, e);
        EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
      }
}

TEST(KernelDecodeAttention, MatchesReferenceWhenScoresArePeaked) {
  RL_REQUIRE_GPU();
  // Large q makes the softmax nearly one-hot: the running max and the split merge must rescale
  // exactly rather than overflow or lose the winner.
  for (int bits : kKvBits) {
    for (const AttnShape& s : {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 64}}) {
      std::vector<int> contexts = {5, 300, 2049, 4097};
      double e = run_decode(s, contexts, 4097, 4, 8.0f, 99 + bits % 16, bits);
      std::string shape = kv_name(bits) + " " + s.name() + " q*8 ctx=" + join(contexts);
      report_nmse("decode_attention", shape, e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
    }
  }
}

TEST(KernelDecodeAttention, TheNewestTokenIsNeverLost) {
  RL_REQUIRE_GPU();
  // The newest token holds nearly all of a head's attention (run_decode's newest_dominates): a split
  // or tile bound that drops the last position, or a tile that reads it before it is written, is off
  // by ~1. One sequence at every split count the rule takes, then a mixed batch.
  for (int bits : kKvBits) {
    for (const AttnShape& s : {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 16}}) {
      for (int ctx : {1, 16, 17, 64, 65, 1000, 4097, 32768}) {
        if (ctx == 32768 && s.n_heads != 16) continue;  // keeps the host reference's time in check
        const double e = run_decode(s, {ctx}, ctx, 4, 1.0f, uint32_t(ctx * 7 + bits), bits, nullptr, true);
        const std::string shape = kv_name(bits) + " " + s.name() + " newest ctx=" + std::to_string(ctx);
        report_nmse("decode_attention", shape, e);
        EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
      }
      const std::vector<int> contexts = {1, 33, 4097, 300, 2048};
      const double e = run_decode(s, contexts, 4097, 8, 1.0f, 41u + bits, bits, nullptr, true);
      report_nmse("decode_attention", kv_name(bits) + " " + s.name() + " newest ctx=" + join(contexts), e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << kv_name(bits) << " " << s.name();
    }
  }
}

// B=64 of short mixed contexts: one split at int8/int4 on an H100/H200, three at fp16 (3 CTAs an
// SM), whatever decode_attention_launch says on this GPU.
TEST(KernelDecodeAttention, LargeBatchOfShortMixedContextsMatches) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> len(1, 700);
  std::vector<int> contexts(64);
  for (int& c : contexts) c = len(rng);
  const AttnShape s{32, 8, 128, 64};
  for (int bits : kKvBits) {
    double e = run_decode(s, contexts, 700, 64, 1.0f, 17 + bits % 16, bits);
    const int splits = cuda::decode_attention_launch(64, 8, 128, bits, 700).splits;
    report_nmse("decode_attention",
                kv_name(bits) + " " + s.name() + " batch=64 ctx<=700 splits=" + std::to_string(splits), e);
    EXPECT_LE(e, attention_nmse_limit(bits)) << kv_name(bits);
  }
}

// The launch's shared-memory request is what spreads a small batch's grid: where each split streams
// at least 256 tokens and the batch's (sequence, KV head) CTAs cover more than an eighth and at most a
// quarter of the SMs (B=3-4 on 8 KV heads of an H200), no third CTA may fit an SM
// (kernels/decode_attention.cu, launch_smem); elsewhere the kernel's own staging, room for 3 (fp16)
// or 4 (int8/int4) at head_dim 128. The tests above run those launches.
TEST(KernelDecodeAttention, SmallBatchesOfLongSplitsLeaveRoomForTwoCtasAnSm) {
  RL_REQUIRE_GPU();
  int dev = 0, sms = 0, per_sm = 0, reserved = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, dev), cudaSuccess);
  const auto fit = [&](size_t smem) { return per_sm / static_cast<int>(smem + reserved); };
  for (int bits : kKvBits) {
    const std::string what = kv_name(bits);
    for (int head_dim : {64, 128}) {
      const cuda::DecodeAttentionLaunch own = cuda::decode_attention_launch(64, 8, head_dim, bits, 1024);
      EXPECT_GE(fit(own.smem_bytes), 3) << what << " head_dim " << head_dim << ": B=64 fills the SMs";
      for (auto [batch, ctx] : {std::pair{4, 8192}, std::pair{3, 4096}, std::pair{4, 512}, std::pair{1, 8192},
                                std::pair{2, 32768}}) {
        const cuda::DecodeAttentionLaunch l = cuda::decode_attention_launch(batch, 8, head_dim, bits, ctx);
        const int chunk = (ctx + l.splits - 1) / l.splits;
        const bool spread = 4 * batch * 8 <= sms && 8 * batch * 8 > sms && chunk >= 256;
        EXPECT_EQ(fit(l.smem_bytes), spread ? 2 : fit(own.smem_bytes))
            << what << " head_dim " << head_dim << " B=" << batch << " ctx " << ctx << ": " << l.splits
            << " splits";
      }
    }
    if (sms >= 128 && sms < 256) {  // an H100/H200: the measured case takes the spread, 8 splits of 1024
      const cuda::DecodeAttentionLaunch b4 = cuda::decode_attention_launch(4, 8, 128, bits, 8192);
      EXPECT_EQ(fit(b4.smem_bytes), 2) << what << " B=4 ctx 8192, " << b4.splits << " splits";
    }
  }
}

// What the quantization itself costs: the same rows (fp16 values, and their int8/int4 codes), the
// same queries, both kernels' outputs compared. A printed figure; the gates are the kernels'.
TEST(KernelDecodeAttention, PrintsTheInt8AndInt4ErrorAgainstTheFp16CacheAt1k8k32k) {
  RL_REQUIRE_GPU();
  const AttnShape s{16, 8, 128, 64};
  for (int ctx : {1024, 8192, 32768}) {
    std::vector<float> out16, out_q;
    const uint32_t seed = uint32_t(ctx + 3);
    EXPECT_LE(run_decode(s, {ctx}, ctx, 2, 1.0f, seed, 16, &out16), attention_nmse_limit(16));
    for (int bits : {8, 4}) {
      EXPECT_LE(run_decode(s, {ctx}, ctx, 2, 1.0f, seed, bits, &out_q), attention_nmse_limit(bits));
      std::printf("[kv-vs-fp16] %s %s ctx=%d: NMSE of the output against fp16 KV %.3e\n",
                  kv_name(bits).c_str(), s.name().c_str(), ctx, nmse(out_q, out16));
    }
  }
}

// One sequence's part of a prefill: positions [0, start) are already cached (earlier turns), the
// tokens at [start, start + n_new) are new.
struct PrefillSeq {
  int slot, start, n_new;
};

double run_prefill(const AttnShape& s, const std::vector<PrefillSeq>& seqs, bool shuffle_tokens,
                   uint32_t seed, int bits = 16) {
  std::mt19937 rng(seed);
  const int hd = s.head_dim, q_dim = s.n_heads * hd;
  int n_slots = 0;
  for (auto& p : seqs) n_slots = std::max(n_slots, p.slot + 1);
  std::vector<int> capacity(n_slots + 1, 16);
  for (auto& p : seqs) capacity[p.slot] = p.start + p.n_new;
  PagedCache cache(capacity, s.n_kv, hd, s.block_size, rng, bits);
  // rope_kv_write has already put every new token's K/V into the cache when prefill runs.
  for (auto& p : seqs) cache.fill_random(p.slot, p.start + p.n_new, rng);
  cache.upload();

  std::vector<int> seq_ids, positions;
  for (auto& p : seqs)
    for (int i = 0; i < p.n_new; ++i) seq_ids.push_back(p.slot), positions.push_back(p.start + i);
  if (shuffle_tokens) {
    std::vector<int> order(seq_ids.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<int> s2, p2;
    for (int o : order) s2.push_back(seq_ids[o]), p2.push_back(positions[o]);
    seq_ids.swap(s2);
    positions.swap(p2);
  }
  const int n_tokens = int(seq_ids.size());
  auto q = random_fp16_values(size_t(n_tokens) * q_dim, rng);

  std::vector<float> expect(q.size()), K, V;
  for (auto& p : seqs) {
    cache.gather(p.slot, p.start + p.n_new, K, V);
    for (int t = 0; t < n_tokens; ++t)
      if (seq_ids[t] == p.slot)
        ref::attention(q.data() + size_t(t) * q_dim, K.data(), V.data(), int64_t(s.n_kv) * hd,
                       positions[t] + 1, s.n_heads, s.n_kv, hd, expect.data() + size_t(t) * q_dim);
  }

  TestBuffer<half> d_q(to_half(q)), d_out(q.size());
  TestBuffer<int> d_seq(seq_ids), d_pos(positions);
  d_out.poison();
  cuda::prefill_attention({.q = d_q.get(),
                           .slots = d_seq.get(),
                           .positions = d_pos.get(),
                           .n_tokens = n_tokens,
                           .n_heads = s.n_heads,
                           .cache = cache.view(),
                           .out = d_out.get()},
                          nullptr);
  return worst_row_nmse(to_float(d_out.download()), expect, size_t(hd));  // the worst (token, head)
}

TEST(KernelPrefillAttention, MatchesReferenceForSinglePromptsOfOddLengths) {
  RL_REQUIRE_GPU();
  for (int bits : kKvBits) {
    for (const AttnShape& s : {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 16}, AttnShape{8, 8, 64, 32},
                               AttnShape{4, 2, 128, 48}}) {
      for (int n : {1, 7, 63, 64, 65, 200, 1000}) {
        if (n == 1000 && s.n_heads != 16) continue;  // keeps the CPU reference time in check
        double e = run_prefill(s, {{1, 0, n}}, false, uint32_t(n * 13 + s.n_heads + bits % 16), bits);
        std::string shape = kv_name(bits) + " " + s.name() + " prompt=" + std::to_string(n);
        report_nmse("prefill_attention", shape, e);
        EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
      }
    }
  }
}

TEST(KernelPrefillAttention, AttendsToEarlierTurnsAlreadyInTheCache) {
  RL_REQUIRE_GPU();
  for (int bits : kKvBits) {
    for (const AttnShape& s : {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 16}}) {
      const std::string name = kv_name(bits) + " " + s.name();
      double e = run_prefill(s, {{0, 100, 37}}, false, 3 + bits % 16, bits);
      report_nmse("prefill_attention", name + " cached=100 new=37", e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << name;
      e = run_prefill(s, {{2, 4000, 41}}, false, 4 + bits % 16, bits);
      report_nmse("prefill_attention", name + " cached=4000 new=41", e);
      EXPECT_LE(e, attention_nmse_limit(bits)) << name;
    }
  }
}

TEST(KernelPrefillAttention, MatchesReferenceForSeveralSequencesPackedInOneLaunch) {
  RL_REQUIRE_GPU();
  // Query tiles straddle sequence boundaries; in the shuffled variant every tile mixes sequences
  // and positions arrive out of order.
  const std::vector<PrefillSeq> seqs = {{2, 0, 70}, {0, 20, 5}, {3, 0, 130}, {1, 500, 3}, {4, 63, 66}};
  for (int bits : kKvBits) {
    for (const AttnShape& s : {AttnShape{16, 8, 128, 64}, AttnShape{32, 8, 128, 32}, AttnShape{8, 8, 64, 16},
                               AttnShape{48, 8, 128, 256}}) {
      for (bool shuffled : {false, true}) {
        double e = run_prefill(s, seqs, shuffled, (shuffled ? 11u : 12u) + bits % 16, bits);
        std::string shape = kv_name(bits) + " " + s.name() + (shuffled ? " packed5 shuffled" : " packed5");
        report_nmse("prefill_attention", shape, e);
        EXPECT_LE(e, attention_nmse_limit(bits)) << shape;
      }
    }
  }
}

}  // namespace
}  // namespace ridgeline::test
