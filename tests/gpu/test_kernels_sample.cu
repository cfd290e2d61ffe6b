// Sampling on the GPU against ref::sample: the same token for the same (logits, parameters, seed,
// position), over many seeds, for greedy, temperature, top-k, top-p and combined rows, ties
// included; and the device uniform draw against ref::sampling_uniform bit for bit.
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/reference.h"
#include "kernels/kernels.cuh"
#include "kernels/sampling_uniform.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/kernel_test_util.h"

namespace ridgeline::test {
namespace {

__global__ void uniform_draws_kernel(const uint64_t* seeds, const uint64_t* positions, int n, double* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = ridgeline::sampling_uniform(seeds[i], positions[i]);
}

TEST(KernelSample, DeviceUniformDrawEqualsTheReferenceBitForBit) {
  RL_REQUIRE_GPU();
  std::mt19937_64 rng(1);
  const int n = 4096;
  std::vector<uint64_t> seeds(n), positions(n);
  for (int i = 0; i < n; ++i) {
    seeds[i] = i < 64 ? uint64_t(i) : rng();
    positions[i] = i < 64 ? uint64_t(i * 3) : rng() % 100000;
  }
  TestBuffer<uint64_t> d_seeds(seeds), d_pos(positions);
  TestBuffer<double> d_out(n);
  d_out.poison();
  uniform_draws_kernel<<<(n + 255) / 256, 256>>>(d_seeds.get(), d_pos.get(), n, d_out.get());
  RL_CUDA_CHECK("test", cudaGetLastError());
  auto got = d_out.download();
  for (int i = 0; i < n; ++i) {
    double expect = ref::sampling_uniform(seeds[i], positions[i]);
    ASSERT_EQ(got[i], expect) << "seed " << seeds[i] << " position " << positions[i];
    ASSERT_TRUE(got[i] >= 0.0 && got[i] < 1.0);
  }
}

struct RowParams {
  float temperature;
  int top_k;
  float top_p;
};

// Rows covering each rule alone and combined; top_k beyond the vocabulary means "all".
const std::vector<RowParams> kRows = {
    {0.0f, 0, 1.0f},  {0.7f, 0, 1.0f}, {1.0f, 40, 1.0f},      {0.8f, 0, 0.8f},
    {1.3f, 50, 0.9f}, {0.5f, 1, 1.0f}, {1.0f, 1 << 30, 0.5f}, {2.0f, 0, 0.95f},
};

struct Sampler {
  int rows, vocab;
  TestBuffer<float> logits, temperatures, top_ps;
  TestBuffer<int> top_ks, positions, out;
  TestBuffer<uint64_t> seeds;
  TestBuffer<char> workspace;

  Sampler(int rows_, int vocab_)
      : rows(rows_),
        vocab(vocab_),
        logits(size_t(rows_) * vocab_),
        temperatures(rows_),
        top_ps(rows_),
        top_ks(rows_),
        positions(rows_),
        out(rows_),
        seeds(rows_),
        workspace(cuda::sample_workspace_bytes(rows_, vocab_)) {}

  std::vector<int> run(const std::vector<RowParams>& params, const std::vector<uint64_t>& seed,
                       const std::vector<int>& pos) {
    std::vector<float> t, p;
    std::vector<int> k;
    for (auto& r : params) t.push_back(r.temperature), k.push_back(r.top_k), p.push_back(r.top_p);
    temperatures.upload(t);
    top_ks.upload(k);
    top_ps.upload(p);
    seeds.upload(seed);
    positions.upload(pos);
    out.poison();
    workspace.poison();
    cuda::sample(logits.get(), rows, vocab, temperatures.get(), top_ks.get(), top_ps.get(), seeds.get(),
                 positions.get(), workspace.get(), out.get(), nullptr);
    return out.download();
  }
};

// Distinct logits (a shuffled ramp spanning `spread`), so that the candidate order is unambiguous.
std::vector<float> distinct_logits(int rows, int vocab, float spread, std::mt19937& rng) {
  std::vector<float> logits(size_t(rows) * vocab);
  std::vector<int> perm(vocab);
  for (int r = 0; r < rows; ++r) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int i = 0; i < vocab; ++i) logits[size_t(r) * vocab + i] = (perm[i] - vocab / 2) * (spread / vocab);
  }
  return logits;
}

// Samples `n_seeds` times (fresh logits every 10 seeds) and counts rows that differ from the reference.
void expect_matches_reference(int vocab, float spread, int n_seeds, bool ties) {
  const int rows = int(kRows.size());
  Sampler sampler(rows, vocab);
  std::mt19937 rng(vocab);
  std::vector<float> logits;
  int mismatches = 0;
  std::vector<std::set<int>> distinct(rows);
  for (int s = 0; s < n_seeds; ++s) {
    if (s % 10 == 0) {
      logits = distinct_logits(rows, vocab, spread, rng);
      if (ties)  // quantize to a few levels: long runs of equal logits, broken by index
        for (float& x : logits) x = std::round(x * 2.0f) / 2.0f;
      sampler.logits.upload(logits);
    }
    std::vector<uint64_t> seeds(rows, uint64_t(s) * 0x9E3779B9ull + 5);
    std::vector<int> positions(rows);
    for (int r = 0; r < rows; ++r) positions[r] = s * 7 + r;
    auto got = sampler.run(kRows, seeds, positions);
    for (int r = 0; r < rows; ++r) {
      int expect = ref::sample(logits.data() + size_t(r) * vocab, vocab, kRows[r].temperature, kRows[r].top_k,
                               kRows[r].top_p, ref::sampling_uniform(seeds[r], uint64_t(positions[r])));
      if (got[r] != expect) {
        ++mismatches;
        ADD_FAILURE() << "vocab " << vocab << " seed " << s << " row " << r << ": gpu " << got[r] << " ref "
                      << expect;
      }
      distinct[r].insert(got[r]);
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The test means something only if the stochastic rows really vary with the seed.
  EXPECT_GT(distinct[1].size(), 3u);
  EXPECT_GT(distinct[2].size(), 3u);
}

TEST(KernelSample, MatchesReferenceForManySeedsOnASmallVocabulary) {
  RL_REQUIRE_GPU();
  expect_matches_reference(640, 16.0f, 300, false);
}

TEST(KernelSample, MatchesReferenceForManySeedsOnTheInternLM2Vocabulary) {
  RL_REQUIRE_GPU();
  expect_matches_reference(92544, 24.0f, 40, false);
}

TEST(KernelSample, BreaksTiesByLowestIndexLikeTheReference) {
  RL_REQUIRE_GPU();
  expect_matches_reference(640, 16.0f, 200, true);
}

TEST(KernelSample, MatchesReferenceForOneRowAndForManyRows) {
  RL_REQUIRE_GPU();
  // The sort key holds the row index above the logit: none for one row, six bits for 33 rows. 12
  // rows of the InternLM2 vocabulary are 1.11M logits, more than the key and weight passes' capped
  // grids take in one sweep (4096 blocks of 256), so their grid-stride loops run a second pass.
  for (int rows : {1, 33, 12}) {
    const int vocab = rows == 33 ? 3000 : 92544;
    Sampler sampler(rows, vocab);
    std::mt19937 rng(rows);
    int mismatches = 0;
    for (int s = 0; s < 20; ++s) {
      auto logits = distinct_logits(rows, vocab, 20.0f, rng);
      sampler.logits.upload(logits);
      std::vector<RowParams> params;
      std::vector<uint64_t> seeds;
      std::vector<int> positions;
      for (int r = 0; r < rows; ++r) {
        params.push_back(kRows[(r + s) % kRows.size()]);
        seeds.push_back(uint64_t(s * 1000 + r));
        positions.push_back(r * 3 + s);
      }
      auto got = sampler.run(params, seeds, positions);
      for (int r = 0; r < rows; ++r) {
        int expect =
            ref::sample(logits.data() + size_t(r) * vocab, vocab, params[r].temperature, params[r].top_k,
                        params[r].top_p, ref::sampling_uniform(seeds[r], uint64_t(positions[r])));
        mismatches += got[r] != expect;
      }
    }
    EXPECT_EQ(mismatches, 0) << rows << " rows";
  }
}

TEST(KernelSample, SameSeedAndPositionGiveTheSameToken) {
  RL_REQUIRE_GPU();
  const int rows = int(kRows.size()), vocab = 5000;
  Sampler sampler(rows, vocab);
  std::mt19937 rng(3);
  sampler.logits.upload(distinct_logits(rows, vocab, 20.0f, rng));
  std::vector<uint64_t> seeds(rows, 1234);
  std::vector<int> positions(rows, 42);
  auto first = sampler.run(kRows, seeds, positions);
  auto second = sampler.run(kRows, seeds, positions);
  EXPECT_EQ(first, second);
  for (int id : first) EXPECT_TRUE(id >= 0 && id < vocab);
  // A different position is a different draw: over a few positions the full-softmax row moves.
  std::set<int> seen;
  for (int p = 0; p < 16; ++p) seen.insert(sampler.run(kRows, seeds, std::vector<int>(rows, p))[1]);
  EXPECT_GT(seen.size(), 1u);
}

TEST(KernelSample, GreedyRowsTakeTheArgmaxIgnoringNaN) {
  RL_REQUIRE_GPU();
  const int rows = 3, vocab = 1001;
  std::mt19937 rng(9);
  auto logits = random_floats(size_t(rows) * vocab, rng, -5.0f, 5.0f);
  logits[10] = 100.0f, logits[20] = 100.0f;                             // row 0: tie, lowest index wins
  logits[vocab + 3] = NAN;                                              // row 1: NaN never wins
  for (int i = 0; i < vocab; ++i) logits[2 * size_t(vocab) + i] = NAN;  // row 2: all NaN -> 0
  Sampler sampler(rows, vocab);
  sampler.logits.upload(logits);
  std::vector<RowParams> greedy(rows, RowParams{0.0f, 0, 1.0f});
  auto got = sampler.run(greedy, std::vector<uint64_t>(rows, 1), std::vector<int>(rows, 0));
  for (int r = 0; r < rows; ++r)
    EXPECT_EQ(got[r], ref::argmax(logits.data() + size_t(r) * vocab, vocab)) << r;
}

}  // namespace
}  // namespace ridgeline::test
