// decode_attention: one new query token per sequence attends to its whole paged KV cache.
// FLOPs: 4*ctx*head_dim per query head (QK^T and PV). Bytes: 2*ctx*n_kv*(head_dim*bits/8 [+4 for the
// int8/int4 scale and zero]) (K and V) per sequence + q/out, so intensity is ~2*group FLOP/byte at
// fp16 (4x that at int4): memory-bound at any batch (each sequence reads its own cache). Aim: the
// DRAM copy rate.
// One CTA per (KV head, sequence, context split) computes all `group` query heads of that KV head,
// so every K/V byte is read once. A token's row is spread over head_dim/8 lanes, 8 dims each; a
// lane reads 16-byte units: 8 fp16 values of one token, or (int8 / int4, kernels.cuh's layout) the
// same 8 dims of 2 / 4 consecutive tokens. The CTA's warps run 4*32/(head_dim/8) independent token
// streams, each with its own online softmax (fp32, log2 domain). K/V reach registers through a
// per-thread cp.async ring in shared memory, a fixed number of units ahead of the step being
// computed, so a thread keeps ~256 bytes in flight without spending registers on them. The streams
// are merged through shared memory at the end. With several splits each CTA writes an unnormalized
// partial (o, max, sum) and a second small kernel merges them with log-sum-exp weights. The split
// count fills one wave of CTAs (kCtasPerSm per SM), capped by the context (at least
// kMinTokensPerSplit tokens per split).
// Quantized K/V are dequantized in registers without a multiply per element: with x = c*s + z,
// q.k = s*(q.c) + z*sum(q) and sum_t p_t*v_t = sum_t (p_t*s_t)*c_t + sum_t p_t*z_t, so the inner loops
// only turn codes into floats (exactly: the code is placed in the mantissa of 2^23 and 2^23 is
// subtracted) and run the same FMAs as fp16. int4 codes are masked in place (nibble e of a word
// reads as code*16^(e%4)); q is pre-scaled and the output post-scaled by the inverse powers of two,
// which is exact. The (scale, zero) pairs of a unit's tokens are fetched by two lanes of the stream
// (K, V) into their own ring slots and passed to the other lanes by shuffles.
#include <cmath>

#include "kernels/cp_async.cuh"
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/kv_quant.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxSplits = 64;
constexpr int kMinTokensPerSplit = 64;
constexpr int kCtasPerSm = 4;  // what fits beside each other: 48 KB of staging and ~128 registers
constexpr int kMaxGroup = 8;

// 16-byte units each stream stages per step: fewer when q and acc take more registers and the
// merge more shared memory. A unit is 1 (fp16), 2 (int8) or 4 (int4) tokens: about 4 tokens a step.
template <int kGroup, int kBits>
constexpr int unroll_for() {
  if constexpr (kBits == 16) return kGroup <= 4 ? 4 : 2;
  if constexpr (kBits == 8) return kGroup <= 4 ? 2 : 1;
  return 1;
}

// Steps in the ring: the one computed on and kStages-1 ahead. fp16 keeps 2 steps (8 units at group
// <= 4) in flight; the quantized formats keep 8 units in flight, the same bytes per thread.
template <int kGroup, int kBits>
constexpr int stages_for() {
  if constexpr (kBits == 16) return 3;
  return 8 / unroll_for<kGroup, kBits>() + 1;
}

template <int kHeadDim>
constexpr int streams_for() {
  return kWarps * (32 / (kHeadDim / 8));
}

// The K/V staging ring: [stage][unit][k|v][thread] 16-byte slots.
template <int kGroup, int kBits>
constexpr size_t staging_bytes() {
  return size_t(stages_for<kGroup, kBits>()) * unroll_for<kGroup, kBits>() * 2 * kThreads * 16;
}

// int8/int4: the (scale, zero) ring, [stage][unit][stream][k|v] 16-byte slots.
template <int kHeadDim, int kGroup, int kBits>
constexpr size_t scale_ring_bytes() {
  return kBits == 16 ? 0
                     : size_t(stages_for<kGroup, kBits>()) * unroll_for<kGroup, kBits>() *
                           streams_for<kHeadDim>() * 2 * 16;
}

template <int kHeadDim, int kGroup, int kBits>
constexpr size_t shared_bytes() {
  constexpr size_t ring = staging_bytes<kGroup, kBits>() + scale_ring_bytes<kHeadDim, kGroup, kBits>();
  constexpr size_t merge = size_t(streams_for<kHeadDim>()) * kGroup * (kHeadDim + 2) * sizeof(float);
  return ring > merge ? ring : merge;
}

// 8 bytes global -> shared (int8 scales: two tokens' (scale, zero)); zeros when !valid.
__device__ __forceinline__ void cp_async_8(void* smem_dst, const void* gmem_src, bool valid) {
  uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  int src_bytes = valid ? 8 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes)
               : "memory");
}

// At most 128 registers where kCtasPerSm CTAs should fit (group <= 4); larger groups get fewer.
template <int kHeadDim, int kGroup, int kBits>
__global__ void __launch_bounds__(kThreads, kGroup <= 4 ? kCtasPerSm : 2)
    decode_attention_kernel(const half* __restrict__ q, const int* __restrict__ slots,
                            const int* __restrict__ context_lens, int n_heads, KvCacheView cache,
                            int n_splits, float scale_log2, float* __restrict__ part_o,
                            float2* __restrict__ part_ml, half* __restrict__ out) {
  constexpr int kLanes = kHeadDim / 8;  // lanes holding one token's row, 8 dims (one 16-byte unit) each
  constexpr int kTokPerWarp = 32 / kLanes;
  constexpr int kStreams = kWarps * kTokPerWarp;
  constexpr int kUnroll = unroll_for<kGroup, kBits>();
  constexpr int kStages = stages_for<kGroup, kBits>();
  constexpr int kT = 16 / kBits;  // tokens per unit
  constexpr int kStep = kStreams * kUnroll * kT;
  constexpr bool kQuant = kBits < 16;

  // Staging ring while streaming ([stage][u][k|v][thread] 16-byte slots: a thread reads back only
  // what it copied itself, so no barrier is needed), then the merge buffers of the streams.
  __shared__ __align__(16) unsigned char smem[shared_bytes<kHeadDim, kGroup, kBits>()];
  uint4* stage_buf = reinterpret_cast<uint4*>(smem);
  uint4* scale_buf = reinterpret_cast<uint4*>(smem + staging_bytes<kGroup, kBits>());  // quantized only
  float* sm_acc = reinterpret_cast<float*>(smem);       // [kStreams][kGroup][kHeadDim]
  float* sm_m = sm_acc + kStreams * kGroup * kHeadDim;  // [kStreams][kGroup]
  float* sm_l = sm_m + kStreams * kGroup;               // [kStreams][kGroup]

  const int kvh = blockIdx.x, i = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int dl = lane % kLanes, stream = warp * kTokPerWarp + lane / kLanes;
  const int n_kv = cache.n_kv_heads, bs = cache.block_size;

  const int ctx = context_lens[i];
  const int* table = cache.block_table + static_cast<int64_t>(slots[i]) * cache.max_blocks_per_seq;
  // Per-sequence chunk, so that a short sequence batched with long ones splits its own context evenly.
  // Multiples of 16 tokens, so that no unit straddles two splits.
  const int chunk = (((ctx + n_splits - 1) / n_splits) + 15) & ~15;
  const int t0 = split * chunk, t1 = min(ctx, t0 + chunk);
  const int n_steps = t1 > t0 ? (t1 - t0 + kStep - 1) / kStep : 0;
  const int64_t block_bytes = cache.block_bytes();

  // Queues the copies of step `step` (zeros past t1) and commits them as one group; past the last
  // step it commits an empty group so that the wait count below stays uniform.
  auto issue = [&](int step) {
    if (step < n_steps) {
      uint4* slot = stage_buf + (step % kStages) * kUnroll * 2 * kThreads + threadIdx.x;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if constexpr (!kQuant) {
          int t = t0 + step * kStep + u * kStreams + stream;
          bool valid = t < t1;
          int64_t off = 0;
          if (valid)
            off = ((static_cast<int64_t>(table[t / bs]) * n_kv + kvh) * bs + t % bs) * kHeadDim + dl * 8;
          cp_async_16(slot + (2 * u) * kThreads, static_cast<const half*>(cache.k) + off, valid);
          cp_async_16(slot + (2 * u + 1) * kThreads, static_cast<const half*>(cache.v) + off, valid);
        } else {
          // The unit's first token; a unit lies inside one block (block_size % 16 == 0).
          int t = t0 + step * kStep + (u * kStreams + stream) * kT;
          bool valid = t < t1;
          int64_t off = 0, scale_off = 0;
          if (valid) {
            const int64_t block = static_cast<int64_t>(table[t / bs]) * block_bytes;
            off = block + cache.unit_offset(kvh, t % bs, dl);
            scale_off = block + cache.scale_offset(kvh, t % bs);
          }
          const char* k_pool = static_cast<const char*>(cache.k);
          const char* v_pool = static_cast<const char*>(cache.v);
          cp_async_16(slot + (2 * u) * kThreads, k_pool + off, valid);
          cp_async_16(slot + (2 * u + 1) * kThreads, v_pool + off, valid);
          if (dl < 2) {  // lane 0 of the stream fetches the unit's K (scale, zero) pairs, lane 1 V's
            uint4* sdst = scale_buf + (((step % kStages) * kUnroll + u) * kStreams + stream) * 2 + dl;
            const char* ssrc = (dl == 0 ? k_pool : v_pool) + scale_off;
            if constexpr (kBits == 8)
              cp_async_8(sdst, ssrc, valid);
            else
              cp_async_16(sdst, ssrc, valid);
          }
        }
      }
    }
    cp_async_commit();
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);

  float qf[kGroup][8];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    const half* qh = q + (static_cast<int64_t>(i) * n_heads + kvh * kGroup + g) * kHeadDim + dl * 8;
    half8_to_float(*reinterpret_cast<const uint4*>(qh), qf[g]);
#pragma unroll
    for (int j = 0; j < 8; ++j) qf[g][j] *= scale_log2;
  }
  // Quantized K: score = scale * q.codes + zero * sum(q); then q takes the codes' powers of two.
  float qsum[kGroup];
  if constexpr (kQuant) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j) sum += qf[g][j];
#pragma unroll
      for (int o = kLanes / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      qsum[g] = sum;
#pragma unroll
      for (int j = 0; j < 8; ++j) qf[g][j] *= kv_code_unscale<kBits>(j);
    }
  }

  float m[kGroup], l[kGroup], acc[kGroup][8], zacc[kGroup];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
    zacc[g] = 0.0f;  // quantized V: sum of p * zero
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.0f;
  }

  for (int step = 0; step < n_steps; ++step) {
    issue(step + kStages - 1);  // refills the slot this thread finished reading last step
    cp_async_wait<kStages - 1>();
    const uint4* slot = stage_buf + (step % kStages) * kUnroll * 2 * kThreads + threadIdx.x;
    if constexpr (!kQuant) {
      const int base = t0 + step * kStep + stream;
      float s[kUnroll][kGroup];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float kf[8];
        half8_to_float(slot[(2 * u) * kThreads], kf);
        const bool valid = base + u * kStreams < t1;
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          float d = 0.0f;
#pragma unroll
          for (int j = 0; j < 8; ++j) d += qf[g][j] * kf[j];
#pragma unroll
          for (int o = kLanes / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
          s[u][g] = valid ? d : -INFINITY;
        }
      }
      float vf[kUnroll][8];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) half8_to_float(slot[(2 * u + 1) * kThreads], vf[u]);
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float mx = s[0][g];
#pragma unroll
        for (int u = 1; u < kUnroll; ++u) mx = fmaxf(mx, s[u][g]);
        float m_new = fmaxf(m[g], mx);
        if (m_new == -INFINITY) continue;  // this stream has seen no token yet
        float corr = exp2f(m[g] - m_new);
        m[g] = m_new;
        l[g] *= corr;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] *= corr;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          float p = exp2f(s[u][g] - m_new);
          l[g] += p;
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[g][j] += p * vf[u][j];
        }
      }
    } else {
      constexpr int kTok = kUnroll * kT;
      const uint4* sslot = scale_buf + ((step % kStages) * kUnroll * kStreams + stream) * 2 + (dl & 1);
      const int base = t0 + step * kStep + stream * kT;
      const int lane0 = lane - dl;  // the stream's first lane
      float s[kTok][kGroup], v_scale[kTok], v_zero[kTok];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const uint4 sc = dl < 2 ? sslot[u * kStreams * 2] : make_uint4(0u, 0u, 0u, 0u);
        const uint32_t words[4] = {sc.x, sc.y, sc.z, sc.w};
        const uint4 kc = slot[(2 * u) * kThreads];
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          const int tok = u * kT + j;
          const bool valid = base + u * kStreams * kT + j < t1;
          const uint32_t kw = __shfl_sync(0xffffffffu, words[j], lane0);
          const uint32_t vw = __shfl_sync(0xffffffffu, words[j], lane0 + 1);
          const float2 ksz = __half22float2(*reinterpret_cast<const half2*>(&kw));
          const float2 vsz = __half22float2(*reinterpret_cast<const half2*>(&vw));
          float kf[8];
          kv_unit_codes<kBits>(kc, j, kf);
#pragma unroll
          for (int g = 0; g < kGroup; ++g) {
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) d += qf[g][e] * kf[e];
#pragma unroll
            for (int o = kLanes / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
            // Past t1 (and past the context inside the last unit) the scales are not ours to trust.
            s[tok][g] = valid ? fmaf(ksz.x, d, ksz.y * qsum[g]) : -INFINITY;
          }
          v_scale[tok] = valid ? vsz.x : 0.0f;
          v_zero[tok] = valid ? vsz.y : 0.0f;
        }
      }
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float mx = s[0][g];
#pragma unroll
        for (int tok = 1; tok < kTok; ++tok) mx = fmaxf(mx, s[tok][g]);
        const float m_new = fmaxf(m[g], mx);
        // A stream that has seen no token yet subtracts 0, so that exp2(-inf) stays 0, not NaN.
        const float use = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m[g] - use);
        m[g] = m_new;
        l[g] *= corr;
        zacc[g] *= corr;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] *= corr;
#pragma unroll
        for (int tok = 0; tok < kTok; ++tok) {
          const float p = exp2f(s[tok][g] - use);
          l[g] += p;
          zacc[g] = fmaf(p, v_zero[tok], zacc[g]);
          s[tok][g] = p * v_scale[tok];  // from here on: the weight of the token's codes
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const uint4 vc = slot[(2 * u + 1) * kThreads];
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          float vf[8];
          kv_unit_codes<kBits>(vc, j, vf);
#pragma unroll
          for (int g = 0; g < kGroup; ++g)
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(s[u * kT + j][g], vf[e], acc[g][e]);
        }
      }
    }
  }
  cp_async_wait<0>();  // only empty groups remain, but the ring is about to be reused
  __syncthreads();

  if constexpr (kQuant) {  // back to values: undo the codes' powers of two, add the zeros' share
#pragma unroll
    for (int g = 0; g < kGroup; ++g)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(acc[g][e], kv_code_unscale<kBits>(e), zacc[g]);
  }

  // Merge the streams of this CTA.
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    if (dl == 0) {
      sm_m[stream * kGroup + g] = m[g];
      sm_l[stream * kGroup + g] = l[g];
    }
    float4* dst = reinterpret_cast<float4*>(sm_acc + (stream * kGroup + g) * kHeadDim + dl * 8);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kGroup * kHeadDim; e += kThreads) {
    int g = e / kHeadDim, d = e % kHeadDim;
    float mx = -INFINITY;
#pragma unroll
    for (int st = 0; st < kStreams; ++st) mx = fmaxf(mx, sm_m[st * kGroup + g]);
    float lsum = 0.0f, o = 0.0f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int st = 0; st < kStreams; ++st) {
        float w = exp2f(sm_m[st * kGroup + g] - mx);
        lsum += sm_l[st * kGroup + g] * w;
        o += sm_acc[(st * kGroup + g) * kHeadDim + d] * w;
      }
    }
    int head = kvh * kGroup + g;
    if (n_splits == 1) {
      out[(static_cast<int64_t>(i) * n_heads + head) * kHeadDim + d] =
          __float2half_rn(lsum > 0.0f ? o / lsum : 0.0f);
    } else {
      int64_t row = (static_cast<int64_t>(i) * n_heads + head) * n_splits + split;
      part_o[row * kHeadDim + d] = o;
      if (d == 0) part_ml[row] = make_float2(mx, lsum);
    }
  }
}

// Log-sum-exp merge of the split partials: one block per (sequence, head), one thread per dim.
__global__ void decode_attention_merge_kernel(const float* __restrict__ part_o,
                                              const float2* __restrict__ part_ml, int n_splits, int head_dim,
                                              half* __restrict__ out) {
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * n_splits;
  const int d = threadIdx.x;
  float mx = -INFINITY;
  for (int s = 0; s < n_splits; ++s) mx = fmaxf(mx, part_ml[row0 + s].x);
  float lsum = 0.0f, o = 0.0f;
  if (mx != -INFINITY) {
    for (int s = 0; s < n_splits; ++s) {
      float2 ml = part_ml[row0 + s];
      float w = exp2f(ml.x - mx);
      lsum += ml.y * w;
      o += part_o[(row0 + s) * head_dim + d] * w;
    }
  }
  out[static_cast<int64_t>(blockIdx.x) * head_dim + d] = __float2half_rn(lsum > 0.0f ? o / lsum : 0.0f);
}

int max_splits_for_context(int max_context) {
  return std::clamp(ceil_div(std::max(max_context, 1), kMinTokensPerSplit), 1, kMaxSplits);
}

// One wave of CTAs (kCtasPerSm per SM) over (sequence, KV head, split), no more splits than the
// context supports: at batch 1 a long context spreads over the whole GPU; at large batch one split.
int choose_splits(int n_seqs, int n_kv, int max_context, int sms) {
  int want = (kCtasPerSm * sms) / std::max(1, n_seqs * n_kv);
  return std::clamp(want, 1, max_splits_for_context(max_context));
}

template <int kHeadDim, int kGroup, int kBits>
void launch(const DecodeAttentionParams& p, int n_splits, float* part_o, float2* part_ml,
            cudaStream_t stream) {
  // Ask for the largest shared-memory carveout once, so kCtasPerSm CTAs of up to 48 KB fit on an SM.
  static const bool carveout_set = [] {
    RL_CUDA_CHECK("decode_attention", cudaFuncSetAttribute(decode_attention_kernel<kHeadDim, kGroup, kBits>,
                                                           cudaFuncAttributePreferredSharedMemoryCarveout,
                                                           int(cudaSharedmemCarveoutMaxShared)));
    return true;
  }();
  (void)carveout_set;
  dim3 grid(p.cache.n_kv_heads, p.n_seqs, n_splits);
  float scale_log2 = static_cast<float>(M_LOG2E / std::sqrt(static_cast<double>(kHeadDim)));
  decode_attention_kernel<kHeadDim, kGroup, kBits><<<grid, kThreads, 0, stream>>>(
      p.q, p.slots, p.context_lens, p.n_heads, p.cache, n_splits, scale_log2, part_o, part_ml, p.out);
}

template <int kHeadDim, int kBits>
void launch_group(int group, const DecodeAttentionParams& p, int n_splits, float* part_o, float2* part_ml,
                  cudaStream_t stream) {
  switch (group) {
#define RL_DECODE_GROUP(G)                                            \
  case G:                                                             \
    launch<kHeadDim, G, kBits>(p, n_splits, part_o, part_ml, stream); \
    break;
    RL_DECODE_GROUP(1)
    RL_DECODE_GROUP(2)
    RL_DECODE_GROUP(3)
    RL_DECODE_GROUP(4)
    RL_DECODE_GROUP(5)
    RL_DECODE_GROUP(6)
    RL_DECODE_GROUP(7)
    RL_DECODE_GROUP(8)
#undef RL_DECODE_GROUP
  }
}

template <int kBits>
void launch_format(int group, const DecodeAttentionParams& p, int n_splits, float* part_o, float2* part_ml,
                   cudaStream_t stream) {
  if (p.cache.head_dim == 64)
    launch_group<64, kBits>(group, p, n_splits, part_o, part_ml, stream);
  else
    launch_group<128, kBits>(group, p, n_splits, part_o, part_ml, stream);
}

struct Partials {
  float* o;
  float2* ml;
};

Partials partials_in(void* workspace, int64_t rows, int head_dim) {
  if (workspace == nullptr) return {nullptr, nullptr};  // one split: the kernel writes `out` directly
  float* o = static_cast<float*>(workspace);
  return {o, reinterpret_cast<float2*>(o + rows * head_dim)};
}

}  // namespace

size_t decode_attention_workspace_bytes(int max_seqs, int n_heads, int head_dim, int max_context) {
  const char* op = "decode_attention";
  require(max_seqs > 0 && n_heads > 0 && head_dim > 0, op, "workspace sizes must be positive");
  int sms = current_sm_count(op);
  // The most (sequence, head, split) partials any batch up to max_seqs writes; one KV head is the
  // worst case (the fewer KV heads, the more splits).
  int64_t rows = 0;
  for (int n = 1; n <= max_seqs; ++n)
    rows = std::max<int64_t>(rows, int64_t{n} * n_heads * choose_splits(n, 1, max_context, sms));
  return static_cast<size_t>(rows) * (head_dim * sizeof(float) + sizeof(float2));
}

void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream) {
  const char* op = "decode_attention";
  const KvCacheView& cache = p.cache;
  const int n_heads = p.n_heads;
  require(p.n_seqs >= 0 && p.max_context >= 0, op, "n_seqs and max_context must be >= 0");
  require(cache.head_dim == 64 || cache.head_dim == 128, op,
          "head_dim must be 64 or 128, got " + std::to_string(cache.head_dim));
  require(cache.n_kv_heads > 0 && n_heads % cache.n_kv_heads == 0 && n_heads / cache.n_kv_heads >= 1 &&
              n_heads / cache.n_kv_heads <= kMaxGroup,
          op,
          "n_heads / n_kv_heads must be an integer group of 1..8, got " + std::to_string(n_heads) + "/" +
              std::to_string(cache.n_kv_heads));
  require(cache.block_size > 0 && cache.block_size % 16 == 0 && cache.block_size <= 256, op,
          "block_size must be a multiple of 16 up to 256, got " + std::to_string(cache.block_size));
  require(cache.block_table != nullptr && cache.max_blocks_per_seq > 0, op,
          "the KV cache view needs a block table");
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16 (fp16), 8 or 4, got " + std::to_string(cache.bits));
  require(aligned16(p.q) && aligned16(cache.k) && aligned16(cache.v), op,
          "q and the K/V pools must be 16-byte aligned");
  if (p.n_seqs == 0) return;
  int n_splits = choose_splits(p.n_seqs, cache.n_kv_heads, p.max_context, current_sm_count(op));
  require(n_splits == 1 || p.workspace != nullptr, op, "a workspace is needed when the context is split");
  int64_t rows = int64_t{p.n_seqs} * n_heads * n_splits;
  Partials part = partials_in(p.workspace, rows, cache.head_dim);
  int group = n_heads / cache.n_kv_heads;
  if (cache.bits == 16)
    launch_format<16>(group, p, n_splits, part.o, part.ml, stream);
  else if (cache.bits == 8)
    launch_format<8>(group, p, n_splits, part.o, part.ml, stream);
  else
    launch_format<4>(group, p, n_splits, part.o, part.ml, stream);
  RL_CUDA_CHECK_LAUNCH(op);
  if (n_splits > 1) {
    decode_attention_merge_kernel<<<p.n_seqs * n_heads, cache.head_dim, 0, stream>>>(
        part.o, part.ml, n_splits, cache.head_dim, p.out);
    RL_CUDA_CHECK_LAUNCH(op);
  }
}

}  // namespace ridgeline::cuda
