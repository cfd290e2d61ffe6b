// Decode attention with rope_kv_write's work folded in (DecodeAttentionRope, Fusions::rope_in_attention)
// against the two launches it replaces: rope_kv_write (one launch per sequence: each its own RoPE
// base, as dynamic NTK gives them) then decode_attention on the rotated q. Both run on copies of one
// paged cache (shuffled blocks, the older rows random, the new token's row unwritten: 0xFF) and one
// wqkv output; afterwards the whole K and V pools must be byte-identical and the attention outputs
// bit-identical (the same fp16 q, the same codes and scales). The 1.8b (16 query / 8 KV heads of
// 128) and 7b (32 / 8) head layouts and a head_dim-64 one, every KV format, contexts 1, 2, 63, 64,
// 65, 1000 and 4097 in mixed batches (and groups 6 and 8): small batches split each context over many CTAs
// (the new row written by the split that holds it, late in its context), large ones run one split or several
// with empty ones. The parameter checks run without a GPU.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.cuh"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"

namespace ridgeline::test {
namespace {

struct RopeAttnShape {
  int n_heads, n_kv, head_dim, block_size;
  int q_dim() const { return n_heads * head_dim; }
  int qkv_dim() const { return (n_heads + 2 * n_kv) * head_dim; }
  std::string name() const {
    return "heads=" + std::to_string(n_heads) + "/" + std::to_string(n_kv) + "x" + std::to_string(head_dim) +
           " bs=" + std::to_string(block_size);
  }
};
constexpr RopeAttnShape k1_8b{16, 8, 128, 64}, k7b{32, 8, 128, 64};
constexpr int kKvBits[] = {16, 8, 4};

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  if (s.size() > 60) s.replace(57, std::string::npos, "...");
  return s;
}

// Runs both ways for sequences of the given context lengths (each with its new token at position
// context - 1; sequence i rotates with bases[i % 4]) and compares them.
void expect_fused_equals_unfused(const RopeAttnShape& s, int bits, const std::vector<int>& contexts,
                                 int max_context, uint32_t seed, float pos_scale = 1.0f) {
  const std::string what = kv_name(bits) + " " + s.name() + " B=" + std::to_string(contexts.size()) +
                           " ctx=" + join(contexts) + " max_ctx=" + std::to_string(max_context) +
                           (pos_scale != 1.0f ? " pos_scale=" + std::to_string(pos_scale) : "");
  SCOPED_TRACE(what);
  std::mt19937 rng(seed);
  const int n_seqs = int(contexts.size()), hd = s.head_dim;
  // Shuffled, non-identity slots of a cache with one slot nobody uses.
  std::vector<int> slots(n_seqs + 1);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(n_seqs);
  std::vector<int> capacity(n_seqs + 1, 16), positions(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    capacity[slots[i]] = contexts[i];
    positions[i] = contexts[i] - 1;
  }
  // Two caches with one block table; the older rows random (the same bytes in both), the new rows
  // 0xFF, to be written by rope_kv_write in cache 0 and by the fused kernel in cache 1.
  const uint32_t table_seed = rng();
  std::mt19937 table_rng0(table_seed), table_rng1(table_seed);
  PagedCache unfused(capacity, s.n_kv, hd, s.block_size, table_rng0, bits);
  PagedCache fused(capacity, s.n_kv, hd, s.block_size, table_rng1, bits);
  ASSERT_EQ(unfused.table, fused.table);
  for (int i = 0; i < n_seqs; ++i) unfused.fill_random(slots[i], contexts[i] - 1, rng);
  fused.k = unfused.k, fused.v = unfused.v;
  unfused.upload();
  fused.upload();

  // The wqkv output (fp16 values in [-2, 2): k's range reaches past v's, as real keys do) and a
  // RoPE base per sequence (dynamic NTK: bases differ inside a step).
  const std::vector<float> qkv = random_fp16_values(size_t(n_seqs) * s.qkv_dim(), rng, -2.0f, 2.0f);
  const float bases[] = {1e6f, 2.75e6f, 1e4f, 5e5f};
  std::vector<float> inv_freq(size_t(n_seqs) * hd / 2);
  for (int i = 0; i < n_seqs; ++i)
    cuda::rope_inv_freq(bases[i % 4], hd, inv_freq.data() + size_t(i) * hd / 2);

  TestBuffer<half> d_qkv(to_half(qkv)), q(size_t(n_seqs) * s.q_dim());
  TestBuffer<half> out[2] = {TestBuffer<half>(size_t(n_seqs) * s.q_dim()),
                             TestBuffer<half>(size_t(n_seqs) * s.q_dim())};
  TestBuffer<int> d_slots(slots), d_ctx(contexts), d_pos(positions);
  TestBuffer<float> d_inv(inv_freq);
  const size_t ws_bytes = cuda::decode_attention_workspace_bytes(n_seqs, s.n_heads, hd, max_context);
  TestBuffer<char> ws[2] = {TestBuffer<char>(std::max<size_t>(ws_bytes, 1)),
                            TestBuffer<char>(std::max<size_t>(ws_bytes, 1))};
  q.poison();
  for (int k = 0; k < 2; ++k) out[k].poison(), ws[k].poison();

  // Unfused: rope_kv_write per sequence (its own base), then decode_attention on the rotated q.
  for (int i = 0; i < n_seqs; ++i)
    cuda::rope_kv_write({.qkv = d_qkv.get() + size_t(i) * s.qkv_dim(),
                         .slots = d_slots.get() + i,
                         .positions = d_pos.get() + i,
                         .n_tokens = 1,
                         .n_heads = s.n_heads,
                         .cache = unfused.view(),
                         .rope_base = bases[i % 4],
                         .pos_scale = pos_scale,
                         .q_out = q.get() + size_t(i) * s.q_dim()},
                        nullptr);
  cuda::decode_attention({.q = q.get(),
                          .slots = d_slots.get(),
                          .context_lens = d_ctx.get(),
                          .n_seqs = n_seqs,
                          .n_heads = s.n_heads,
                          .max_context = max_context,
                          .cache = unfused.view(),
                          .workspace = ws[0].get(),
                          .out = out[0].get()},
                         nullptr);
  // Fused: one launch (and the split merge).
  cuda::decode_attention({.slots = d_slots.get(),
                          .context_lens = d_ctx.get(),
                          .n_seqs = n_seqs,
                          .n_heads = s.n_heads,
                          .max_context = max_context,
                          .cache = fused.view(),
                          .workspace = ws[1].get(),
                          .out = out[1].get(),
                          .rope = {.qkv = d_qkv.get(), .inv_freq = d_inv.get(), .pos_scale = pos_scale}},
                         nullptr);
  RL_CUDA_CHECK("test", cudaDeviceSynchronize());

  const std::vector<half> o_unfused = out[0].download(), o_fused = out[1].download();
  EXPECT_EQ(std::count_if(o_unfused.begin(), o_unfused.end(), is_poison), 0) << "every output written";
  EXPECT_EQ(differing_bits(o_fused, o_unfused), 0u) << "attention output";
  unfused.download();
  fused.download();
  EXPECT_TRUE(fused.k == unfused.k) << "K pool";
  EXPECT_TRUE(fused.v == unfused.v) << "V pool";
  // Not vacuous: the new rows were written (0xFF is a NaN value, or a NaN scale, where they were not),
  // and the output is finite.
  for (int i = 0; i < n_seqs; ++i)
    for (int h = 0; h < s.n_kv; ++h)
      for (int d : {0, hd / 2, hd - 1}) {
        EXPECT_TRUE(std::isfinite(fused.value(fused.k, slots[i], positions[i], h, d)))
            << "K of sequence " << i << " head " << h << " dim " << d;
        EXPECT_TRUE(std::isfinite(fused.value(fused.v, slots[i], positions[i], h, d)))
            << "V of sequence " << i << " head " << h << " dim " << d;
      }
  EXPECT_TRUE(
      std::all_of(o_fused.begin(), o_fused.end(), [](half h) { return std::isfinite(__half2float(h)); }));
}

// The contexts the brief of the fusion names, in one batch: a context of one token (the new row is
// the whole context), tile and block boundaries on either side, a long one.
const std::vector<int> kMixed{1, 2, 63, 64, 65, 1000, 4097};

TEST(KernelDecodeAttentionRope, MixedContextsInOneBatchMatchRopeKvWriteThenAttention) {
  RL_REQUIRE_GPU();
  for (int bits : kKvBits)
    for (const RopeAttnShape& s : {k1_8b, k7b}) {
      expect_fused_equals_unfused(s, bits, kMixed, 4097, uint32_t(101 + bits + s.n_heads));
      // Reversed and under a larger bound (as a graph captured for a context bucket passes it).
      std::vector<int> reversed(kMixed.rbegin(), kMixed.rend());
      expect_fused_equals_unfused(s, bits, reversed, 8192, uint32_t(202 + bits + s.n_heads));
    }
}

TEST(KernelDecodeAttentionRope, OneSequenceSplitOverManyCtasWritesItsRowFromTheSplitThatHoldsIt) {
  RL_REQUIRE_GPU();
  // Batch 1 and 2 split a context the most (up to 32 splits): the new token lies in a late split,
  // and at 4097 it is the first token of its own tile, alone in its 16-byte unit (int8/int4).
  for (int bits : kKvBits)
    for (const RopeAttnShape& s : {k1_8b, k7b}) {
      for (int ctx : {1, 2, 63, 64, 65, 1000, 4097})
        expect_fused_equals_unfused(s, bits, {ctx}, std::max(ctx, 4096),
                                    uint32_t(ctx * 7 + bits + s.n_heads));
      expect_fused_equals_unfused(s, bits, {4097, 65}, 4097, uint32_t(303 + bits + s.n_heads));
    }
}

TEST(KernelDecodeAttentionRope, LargeBatchesWithOneSplitOrWithEmptySplitsMatchToo) {
  RL_REQUIRE_GPU();
  std::mt19937 rng(9);
  // Contexts up to 64 with a bound of 64: one split, the kernel writes `out` itself.
  std::uniform_int_distribution<int> short_len(1, 64);
  std::vector<int> short_ctx(64);
  for (int& c : short_ctx) c = short_len(rng);
  short_ctx[0] = 1, short_ctx[1] = 2, short_ctx[2] = 63, short_ctx[3] = 64;
  // Up to 1000 among 48 sequences: four splits at int8/int4 (one at fp16, 3 CTAs an SM on 132 SMs),
  // the short sequences' later ones empty.
  std::uniform_int_distribution<int> long_len(1, 1000);
  std::vector<int> long_ctx(48);
  for (int& c : long_ctx) c = long_len(rng);
  long_ctx[0] = 1, long_ctx[1] = 65, long_ctx[2] = 1000;
  for (int bits : kKvBits)
    for (const RopeAttnShape& s : {k1_8b, k7b}) {
      expect_fused_equals_unfused(s, bits, short_ctx, 64, uint32_t(404 + bits + s.n_heads));
      expect_fused_equals_unfused(s, bits, long_ctx, 1000, uint32_t(505 + bits + s.n_heads));
    }
}

// B=16 with contexts up to 8192: one wide CTA a (sequence, KV head) on an H100/H200 (no split, no merge
// kernel); the CTA holds the whole context, so it always writes its sequence's new row.
TEST(KernelDecodeAttentionRope, SixteenSequencesInWideCtasMatchToo) {
  RL_REQUIRE_GPU();
  const std::vector<int> contexts = {1,    2,    65, 1000, 4097, 8192, 300,  2048,
                                     5000, 7777, 64, 63,   129,  3000, 6000, 8000};
  for (int bits : kKvBits) {
    const cuda::DecodeAttentionLaunch l = cuda::decode_attention_launch(16, 8, 128, bits, 8192);
    SCOPED_TRACE("launch: " + std::to_string(l.warps) + " warps, " + std::to_string(l.splits) + " splits");
    for (const RopeAttnShape& s : {k1_8b, k7b})
      expect_fused_equals_unfused(s, bits, contexts, 8192, uint32_t(606 + bits + s.n_heads));
  }
}

TEST(KernelDecodeAttentionRope, OtherBlockSizesHeadDim64AndLinearRopeScalingMatchToo) {
  RL_REQUIRE_GPU();
  // 16-token blocks: an int4 tile (32 tokens) runs into the next block, so the new row may sit in a
  // tile's second block; 256-token blocks: many tiles a block. head_dim 64 with groups 1 and 2.
  for (int bits : kKvBits) {
    expect_fused_equals_unfused({16, 8, 128, 16}, bits, kMixed, 4097, uint32_t(606 + bits));
    expect_fused_equals_unfused({32, 8, 128, 256}, bits, kMixed, 4097, uint32_t(707 + bits));
    expect_fused_equals_unfused({8, 8, 64, 32}, bits, kMixed, 4097, uint32_t(808 + bits));
    expect_fused_equals_unfused({4, 2, 64, 64}, bits, {1, 65, 1000}, 1000, uint32_t(909 + bits));
    expect_fused_equals_unfused(k1_8b, bits, {1, 63, 4097}, 4097, uint32_t(1010 + bits), 4.0f);
    // GQA groups 6 (the 20b preset: 48 / 8 heads) and 8, the largest decode attention takes.
    expect_fused_equals_unfused({48, 8, 128, 64}, bits, {1, 65, 1000, 4097}, 4097, uint32_t(1111 + bits));
    expect_fused_equals_unfused({64, 8, 128, 64}, bits, {2, 64, 1000}, 1000, uint32_t(1212 + bits));
  }
}

// Refused with std::invalid_argument naming decode_attention and saying `says`. The checks run
// before anything touches the device (n_seqs 0 returns right after them), so no GPU is needed.
TEST(KernelDecodeAttentionRope, RefusesInconsistentRopeParameters) {
  alignas(16) static unsigned char pool[2][64];
  alignas(16) static half qkv[64];
  static float inv_freq[64];
  static int table[1];
  cuda::KvCacheView cache;
  cache.k = pool[0], cache.v = pool[1], cache.block_table = table;
  cache.max_blocks_per_seq = 1, cache.block_size = 64, cache.n_kv_heads = 8, cache.head_dim = 128;
  const cuda::DecodeAttentionParams ok{.n_seqs = 0,
                                       .n_heads = 16,
                                       .cache = cache,
                                       .rope = {.qkv = qkv, .inv_freq = inv_freq, .pos_scale = 1.0f}};
  auto refused = [](cuda::DecodeAttentionParams p, const std::string& says) {
    try {
      cuda::decode_attention(p, nullptr);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      return what.find("decode_attention") != std::string::npos && what.find(says) != std::string::npos;
    }
    return false;
  };
  EXPECT_NO_THROW(cuda::decode_attention(ok, nullptr));
  for (int bits : {8, 4}) {
    cuda::DecodeAttentionParams quantized = ok;
    quantized.cache.bits = bits;
    EXPECT_NO_THROW(cuda::decode_attention(quantized, nullptr)) << bits << "-bit KV";
  }
  cuda::DecodeAttentionParams p = ok;
  alignas(16) static half q[64];
  p.q = q;
  EXPECT_TRUE(refused(p, "not both")) << "q and rope.qkv both given";
  p = ok;
  p.rope.qkv = nullptr;
  EXPECT_TRUE(refused(p, "needs q (rotated queries) or rope.qkv")) << "neither q nor rope.qkv";
  p = ok;
  p.rope.inv_freq = nullptr;
  EXPECT_TRUE(refused(p, "rope.inv_freq")) << "no RoPE tables";
  p = ok;
  p.rope.pos_scale = 0.0f;
  EXPECT_TRUE(refused(p, "pos_scale must be positive"));
  p = ok;
  p.rope.qkv = qkv + 1;
  EXPECT_TRUE(refused(p, "rope.qkv must be 16-byte aligned"));
  p = ok;
  p.cache.head_dim = 96;  // the RoPE pairs would straddle lanes; decode attention runs 64 and 128 only
  EXPECT_TRUE(refused(p, "head_dim must be 64 or 128"));
  p = ok;
  p.n_heads = 8 * 16;  // a group of 16
  EXPECT_TRUE(refused(p, "group of 1..8"));
}

}  // namespace
}  // namespace ridgeline::test
