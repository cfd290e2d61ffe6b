// fill_kv_synthetic: random, valid KV-cache blocks for benchmarks that need a long context without
// prefilling it (CudaBackend::fill_context, the kernel microbenchmarks). fp16 pools get values in
// [-1, 1); int8/int4 pools random code bytes and, per (token, KV head), a positive scale and a
// negative zero that read back in about [-1, 1.25], so attention over them is as busy as over real
// rows (no zero scale, no NaN, no constant rows).
// FLOPs: a hash per 4 bytes. Bytes: the blocks written once. Memory-bound; grid-stride over words.
#include "kernels/device_common.cuh"
#include "kernels/kernels.cuh"
#include "kernels/synthetic.h"

namespace ridgeline::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void fill_kv_kernel(uint32_t* __restrict__ words, int64_t n_words, int64_t block_words,
                               int64_t codes_words, int bits, uint64_t seed, uint64_t stream_id,
                               int64_t first_word) {
  const float qmax = static_cast<float>((1 << bits) - 1);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_words;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t index = static_cast<uint64_t>(first_word + i);
    const uint64_t h = splitmix64(seed ^ splitmix64(stream_id * 0x100000001B3ull + index));
    uint32_t w;
    if (bits == 16) {  // two values k * 2^-9, k in [-512, 511]: as fill_synthetic's
      const half2 v =
          __floats2half2_rn(static_cast<float>(static_cast<int>(h >> 54) - 512) / 512.0f,
                            static_cast<float>(static_cast<int>((h >> 20) & 1023) - 512) / 512.0f);
      w = *reinterpret_cast<const uint32_t*>(&v);
    } else if ((first_word + i) % block_words < codes_words) {
      w = static_cast<uint32_t>(h >> 32);  // 4 int8 or 8 int4 codes
    } else {  // (scale, zero) of one (token, head): rows span [zero, zero + qmax*scale]
      const float r1 = static_cast<float>(h & 0xFFFF) / 65536.0f,
                  r2 = static_cast<float>((h >> 16) & 0xFFFF) / 65536.0f;
      const half2 v = __floats2half2_rn((1.5f + 0.5f * r1) / qmax, -(0.75f + 0.25f * r2));
      w = *reinterpret_cast<const uint32_t*>(&v);
    }
    words[i] = w;
  }
}

}  // namespace

void fill_kv_synthetic(const KvCacheView& cache, void* pool, int64_t first_block, int64_t n_blocks,
                       uint64_t seed, uint64_t stream_id, cudaStream_t stream) {
  const char* op = "fill_kv_synthetic";
  require(cache.bits == 16 || cache.bits == 8 || cache.bits == 4, op,
          "cache bits must be 16, 8 or 4, got " + std::to_string(cache.bits));
  require(first_block >= 0 && n_blocks >= 0 && pool != nullptr && aligned16(pool), op,
          "needs a 16-byte aligned pool and a non-negative block range");
  require(cache.block_bytes() % 16 == 0, op, "block bytes must be a multiple of 16");
  if (n_blocks == 0) return;
  const int64_t block_words = cache.block_bytes() / 4, codes_words = cache.codes_bytes() / 4;
  const int64_t first_word = first_block * block_words, n_words = n_blocks * block_words;
  const int grid = static_cast<int>(std::min<int64_t>(ceil_div(n_words, int64_t{kThreads}), 65536));
  fill_kv_kernel<<<grid, kThreads, 0, stream>>>(static_cast<uint32_t*>(pool) + first_word, n_words,
                                                block_words, codes_words, cache.bits, seed, stream_id,
                                                first_word);
  RL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ridgeline::cuda
