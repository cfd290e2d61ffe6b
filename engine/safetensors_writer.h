// Writing safetensors files (the format engine/safetensors.h reads): an 8-byte little-endian header
// length, a JSON header, then the tensors' bytes back to back. Files are laid out as the reference
// writer lays them out, so that every tensor starts at an offset aligned to its element size with no
// gaps (the reader rejects gaps): header keys sorted, the header padded with spaces to a multiple of
// 8 bytes, data ordered by element size (largest first) and then by name.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/safetensors.h"

namespace ridgeline {

// One tensor to write; `data` points at numel(shape) * dtype_size(dtype) little-endian bytes that
// stay valid until the write returns.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// The file's bytes before the tensor data: length field, header, padding.
std::string safetensors_header(std::span<const TensorToWrite> tensors,
                               const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `tensors` to `path` atomically: into a temporary file in the same folder, flushed to disk,
// then renamed over `path`, so that a reader sees the old file or the whole new one and an error
// leaves nothing behind. Throws std::runtime_error("<path>: ...") when a name repeats, is empty or is
// "__metadata__", when a tensor has no data, or when the folder cannot be written.
void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `text` to `path` atomically (same scheme), for the JSON files beside the tensors.
void write_file_atomically(const std::string& path, std::string_view text);

}  // namespace ridgeline
