// The paged KV cache of the CUDA backend: per layer, K and V pools of fixed-size blocks laid out as
// kernels/kernels.cuh says for the KV format (fp16 rows, or int8/int4 codes followed by an fp16
// (scale, zero) per token and KV head), a free list of blocks shared by all sequences, and the block table
// ([rows, max_blocks_per_seq] int32) that maps a sequence slot's logical block to a physical one. Paging lets
// sequences of very different lengths share one pool without reserving the longest possible context for each.
//
// One extra table row, the dummy slot, owns block 0: the padded rows of a graph-captured decode step
// write and read there, so padding never touches a real sequence's cache.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "engine/config.h"
#include "engine/cuda/device_buffer.h"
#include "engine/formats.h"
#include "kernels/kernels.cuh"

namespace ridgeline::cuda {

// A LIFO free list of block indices: a freed block is the next one handed out, so a workload that
// releases and re-creates sequences keeps touching the same (cache-warm, already-mapped) memory.
class BlockAllocator {
 public:
  BlockAllocator() = default;
  // Blocks [first, num_blocks) start free.
  BlockAllocator(int num_blocks, int first);
  int free_blocks() const { return static_cast<int>(free_.size()); }
  int allocate();  // throws std::runtime_error when none is free
  void release(int block);

 private:
  std::vector<int> free_;
  std::vector<bool> is_free_;
};

// The layout of one layer's pools for a model and KV format (pointers and block table unset).
KvCacheView kv_layout(const ModelConfig& c, int block_size, KvFormat format);
// Bytes one block takes over all layers, K and V, scales and zeros included: block_size times the
// op table's kv_bytes_per_token().
int64_t kv_block_bytes(const ModelConfig& c, int block_size, KvFormat format);

class PagedKvCache {
 public:
  // `max_slots` sequence slots plus the dummy slot; `num_blocks` includes the dummy's block 0.
  PagedKvCache(const ModelConfig& c, KvFormat format, int block_size, int num_blocks, int max_slots,
               int max_blocks_per_seq, cudaStream_t stream);

  KvCacheView view(int layer) const;
  int block_size() const { return block_size_; }
  int num_blocks() const { return num_blocks_; }
  int max_blocks_per_seq() const { return max_blocks_per_seq_; }
  int dummy_slot() const { return max_slots_; }
  int free_blocks() const { return allocator_.free_blocks(); }
  int64_t pool_bytes() const { return static_cast<int64_t>(k_.bytes() + v_.bytes()); }
  // Blocks `slot` holds, and how many more it needs to hold `new_length` tokens.
  int blocks_held(int slot) const { return static_cast<int>(blocks_[slot].size()); }
  const std::vector<int>& blocks(int slot) const { return blocks_[slot]; }  // physical ids, logical order
  int blocks_needed(int slot, int64_t new_length) const;

  // Gives `slot` enough blocks for `new_length` tokens and records them in the host copy of the
  // block table; the caller has checked blocks_needed() against free_blocks().
  void grow(int slot, int64_t new_length);
  // Returns the slot's blocks to the free list.
  void release(int slot);
  // Copies the table rows grow() changed to the device, on `stream` (one copy per changed row).
  void upload_changes(cudaStream_t stream);

 private:
  int* host_row(int slot) const {
    return table_host_.get() + static_cast<int64_t>(slot) * max_blocks_per_seq_;
  }

  KvCacheView layout_;  // one layer's view without pointers
  int n_layers_, block_size_, num_blocks_, max_slots_, max_blocks_per_seq_;
  int64_t layer_bytes_;  // bytes of one layer's K (or V) pool
  DeviceBuffer<uint8_t> k_, v_;
  PinnedBuffer<int> table_host_;
  DeviceBuffer<int> table_dev_;
  std::vector<std::vector<int>> blocks_;      // per slot, in logical order
  std::vector<std::pair<int, int>> changed_;  // per slot: [first, last) table entries to upload
  Event uploaded_;                            // the last upload_changes() has read the host table
  bool upload_pending_ = false;
  BlockAllocator allocator_;
};

}  // namespace ridgeline::cuda
