// rope_kv_write: per token, splits the fused wqkv output (InternLM2's grouped layout, one group
// [q x g, k, v] per KV head), applies rotate-half RoPE to q and k at the token's position, writes q
// to q_out and k, v into the token's slot of the paged KV cache.
// FLOPs: ~6 per rotated element. Bytes per token: qkv_dim*2 read, q (n_heads*head_dim*2) and k, v
// (2*n_kv*head_dim*2 in fp16) written, plus its slot, position and block-table entry (the op table's
// rope_kv_write, engine/ops.h). Memory-bound.
// One block per token: the head_dim/2 (cos, sin) pairs are computed once into shared memory and
// shared by every head of the token; each thread then rotates 8 pairs, reading the two halves of a
// head as 16-byte vectors. The angles follow the reference exactly (inv_freq rounded to float, the
// product in float, cos/sin of that float) so that position 4000 rotates the same on both sides.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {
namespace {

constexpr int kMaxHeadDim = 256;

__global__ void rope_kv_write_kernel(const half* __restrict__ qkv, const int* __restrict__ slots,
                                     const int* __restrict__ positions, int n_heads, KvCacheView cache,
                                     float rope_base, float pos_scale, half* __restrict__ q_out) {
  __shared__ float cos_s[kMaxHeadDim / 2], sin_s[kMaxHeadDim / 2];
  const int t = blockIdx.x;
  const int hd = cache.head_dim, half_dim = hd / 2, n_kv = cache.n_kv_heads, g = n_heads / n_kv;
  const int pos = positions[t];
  for (int j = threadIdx.x; j < half_dim; j += blockDim.x) {
    float inv_freq = static_cast<float>(1.0 / pow(static_cast<double>(rope_base), (2.0 * j) / hd));
    float angle = static_cast<float>(pos / static_cast<double>(pos_scale)) * inv_freq;
    cos_s[j] = static_cast<float>(cos(static_cast<double>(angle)));
    sin_s[j] = static_cast<float>(sin(static_cast<double>(angle)));
  }
  __syncthreads();

  const int logical = pos / cache.block_size;
  const int seq = slots[t];
  const int64_t block = cache.block_table[static_cast<int64_t>(seq) * cache.max_blocks_per_seq + logical];
  const int64_t kv_offset = ((block * n_kv) * cache.block_size + pos % cache.block_size) * hd;
  const int vecs_per_half = half_dim / 8;
  const int n_items = n_kv * (g + 2) * vecs_per_half;
  const half* src_row = qkv + static_cast<int64_t>(t) * n_kv * (g + 2) * hd;

  for (int item = threadIdx.x; item < n_items; item += blockDim.x) {
    int head_in_row = item / vecs_per_half, c = item % vecs_per_half;
    int h = head_in_row / (g + 2), r = head_in_row % (g + 2);
    const half* src = src_row + static_cast<int64_t>(head_in_row) * hd;
    half* dst;
    if (r < g) {
      dst = q_out + (static_cast<int64_t>(t) * n_heads + h * g + r) * hd;
    } else {
      half* pool = r == g ? cache.k : cache.v;
      dst = pool + kv_offset + static_cast<int64_t>(h) * cache.block_size * hd;
    }
    uint4 lo = reinterpret_cast<const uint4*>(src)[c];
    uint4 hi = reinterpret_cast<const uint4*>(src + half_dim)[c];
    if (r <= g) {  // q heads and k: rotate; v is copied as is
      float a[8], b[8], ra[8], rb[8];
      half8_to_float(lo, a);
      half8_to_float(hi, b);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float cs = cos_s[c * 8 + i], sn = sin_s[c * 8 + i];
        ra[i] = a[i] * cs - b[i] * sn;
        rb[i] = b[i] * cs + a[i] * sn;
      }
      lo = float_to_half8(ra);
      hi = float_to_half8(rb);
    }
    reinterpret_cast<uint4*>(dst)[c] = lo;
    reinterpret_cast<uint4*>(dst + half_dim)[c] = hi;
  }
}

}  // namespace

void rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  const char* op = "rope_kv_write";
  const KvCacheView& cache = p.cache;
  require(p.n_tokens >= 0, op, "n_tokens must be >= 0");
  require(cache.n_kv_heads > 0 && p.n_heads > 0 && p.n_heads % cache.n_kv_heads == 0, op,
          "n_heads (" + std::to_string(p.n_heads) +
              ") must be a positive multiple of the cache's n_kv_heads (" + std::to_string(cache.n_kv_heads) +
              ")");
  require(cache.head_dim > 0 && cache.head_dim % 16 == 0 && cache.head_dim <= kMaxHeadDim, op,
          "head_dim must be a multiple of 16 up to 256, got " + std::to_string(cache.head_dim));
  require(cache.block_size > 0 && cache.max_blocks_per_seq > 0 && cache.block_table != nullptr, op,
          "the KV cache view needs block_size, max_blocks_per_seq and a block table");
  require(p.rope_base > 0.0f && p.pos_scale > 0.0f, op, "rope_base and pos_scale must be positive");
  require(aligned16(p.qkv) && aligned16(p.q_out) && aligned16(cache.k) && aligned16(cache.v), op,
          "qkv, q_out and the K/V pools must be 16-byte aligned");
  if (p.n_tokens == 0) return;
  rope_kv_write_kernel<<<p.n_tokens, 128, 0, stream>>>(p.qkv, p.slots, p.positions, p.n_heads, cache,
                                                       p.rope_base, p.pos_scale, p.q_out);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
