#include "engine/cuda/kv_cache.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/cuda_check.h"

namespace ridgeline::cuda {

BlockAllocator::BlockAllocator(int num_blocks, int first) : is_free_(num_blocks, false) {
  // Pushed in reverse so that allocate() hands out low indices first.
  for (int b = num_blocks - 1; b >= first; --b) {
    free_.push_back(b);
    is_free_[b] = true;
  }
}

int BlockAllocator::allocate() {
  if (free_.empty())
    throw std::runtime_error("KV cache: no free block (the caller should have checked capacity)");
  int b = free_.back();
  free_.pop_back();
  is_free_[b] = false;
  return b;
}

void BlockAllocator::release(int block) {
  if (block < 0 || block >= static_cast<int>(is_free_.size()) || is_free_[block])
    throw std::logic_error(fmt::format("KV cache: block {} released twice or never allocated", block));
  is_free_[block] = true;
  free_.push_back(block);
}

KvCacheView kv_layout(const ModelConfig& c, int block_size, KvFormat format) {
  KvCacheView v;
  v.block_size = block_size;
  v.n_kv_heads = c.n_kv_heads;
  v.head_dim = c.head_dim;
  v.bits = kv_bits(format);
  return v;
}

int64_t kv_block_bytes(const ModelConfig& c, int block_size, KvFormat format) {
  return int64_t{2} * c.n_layers * kv_layout(c, block_size, format).block_bytes();
}

PagedKvCache::PagedKvCache(const ModelConfig& c, KvFormat format, int block_size, int num_blocks,
                           int max_slots, int max_blocks_per_seq, cudaStream_t stream)
    : layout_(kv_layout(c, block_size, format)),
      n_layers_(c.n_layers),
      block_size_(block_size),
      num_blocks_(num_blocks),
      max_slots_(max_slots),
      max_blocks_per_seq_(max_blocks_per_seq),
      layer_bytes_(int64_t{num_blocks} * layout_.block_bytes()),
      k_(static_cast<size_t>(layer_bytes_ * c.n_layers), "kv_cache K pool"),
      v_(static_cast<size_t>(layer_bytes_ * c.n_layers), "kv_cache V pool"),
      table_host_(static_cast<size_t>(max_slots + 1) * max_blocks_per_seq, "kv_cache block table (host)"),
      table_dev_(static_cast<size_t>(max_slots + 1) * max_blocks_per_seq, "kv_cache block table"),
      blocks_(max_slots),
      changed_(max_slots, {0, 0}),
      allocator_(num_blocks, 1) {
  if (num_blocks < 2)
    throw std::runtime_error("KV cache: needs at least 2 blocks (one is the padding block)");
  // Zeroed pools: a kernel that reads a whole block whose tail no token has written yet sees finite
  // numbers (fp16 zeros, or codes with a zero scale and zero), never NaN garbage that a zero softmax
  // weight would still turn into NaN.
  RL_CUDA_CHECK("kv_cache", cudaMemsetAsync(k_.get(), 0, k_.bytes(), stream));
  RL_CUDA_CHECK("kv_cache", cudaMemsetAsync(v_.get(), 0, v_.bytes(), stream));
  // Every entry starts at block 0 (the dummy's), so even an entry no sequence owns points inside the pool.
  std::fill(table_host_.get(), table_host_.get() + table_host_.size(), 0);
  RL_CUDA_CHECK("kv_cache", cudaMemcpyAsync(table_dev_.get(), table_host_.get(), table_host_.bytes(),
                                            cudaMemcpyHostToDevice, stream));
  RL_CUDA_CHECK("kv_cache", cudaEventRecord(uploaded_.get(), stream));
  upload_pending_ = true;
}

KvCacheView PagedKvCache::view(int layer) const {
  KvCacheView v = layout_;
  v.k = k_.get() + layer * layer_bytes_;
  v.v = v_.get() + layer * layer_bytes_;
  v.block_table = table_dev_.get();
  v.max_blocks_per_seq = max_blocks_per_seq_;
  return v;
}

int PagedKvCache::blocks_needed(int slot, int64_t new_length) const {
  const int64_t want = (new_length + block_size_ - 1) / block_size_;
  return static_cast<int>(std::max<int64_t>(0, want - blocks_held(slot)));
}

void PagedKvCache::grow(int slot, int64_t new_length) {
  const int64_t want = (new_length + block_size_ - 1) / block_size_;
  if (want > max_blocks_per_seq_)
    throw std::logic_error(fmt::format("KV cache: {} tokens need {} blocks, more than a row of {}",
                                       new_length, want, max_blocks_per_seq_));
  if (want <= blocks_held(slot)) return;
  // The previous upload may still be reading the pinned table: wait before writing into it.
  if (upload_pending_) {
    RL_CUDA_CHECK("kv_cache", cudaEventSynchronize(uploaded_.get()));
    upload_pending_ = false;
  }
  auto& held = blocks_[slot];
  auto& [first, last] = changed_[slot];
  if (first == last) first = static_cast<int>(held.size());
  int* row = host_row(slot);
  while (static_cast<int64_t>(held.size()) < want) {
    int b = allocator_.allocate();
    row[held.size()] = b;
    held.push_back(b);
  }
  last = static_cast<int>(held.size());
}

void PagedKvCache::release(int slot) {
  for (int b : blocks_[slot]) allocator_.release(b);
  blocks_[slot].clear();
  changed_[slot] = {0, 0};
}

void PagedKvCache::upload_changes(cudaStream_t stream) {
  bool any = false;
  for (int s = 0; s < max_slots_; ++s) {
    auto& [first, last] = changed_[s];
    if (first == last) continue;
    const int64_t offset = int64_t{s} * max_blocks_per_seq_ + first;
    RL_CUDA_CHECK("kv_cache", cudaMemcpyAsync(table_dev_.get() + offset, table_host_.get() + offset,
                                              sizeof(int) * (last - first), cudaMemcpyHostToDevice, stream));
    first = last = 0;
    any = true;
  }
  if (any) {
    RL_CUDA_CHECK("kv_cache", cudaEventRecord(uploaded_.get(), stream));
    upload_pending_ = true;
  }
}

}  // namespace ridgeline::cuda
