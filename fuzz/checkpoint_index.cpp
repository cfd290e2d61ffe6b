// Fuzzes parse_checkpoint_index() (model.safetensors.index.json). An accepted index may only name
// plain files inside the checkpoint folder: no path separators, no "." or "..", no control bytes
// (a NUL would make the checked name and the opened file differ), and every shard lists its tensors.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "engine/checkpoint.h"
#include "fuzz/fuzz_checks.h"

using namespace ridgeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& [shard, names] : parse_checkpoint_index(text, "fuzz.index.json")) {
      fuzz::require(!shard.empty() && shard != "." && shard != "..", "index accepted a non-file shard name",
                    shard);
      for (char c : shard)
        fuzz::require(c != '/' && c != '\\' && static_cast<unsigned char>(c) >= 0x20,
                      "index accepted a shard name that is not a plain file name", shard);
      fuzz::require(!names.empty(), "shard without tensors", shard);
    }
  } catch (const std::runtime_error& e) {
    fuzz::check_error_line(e);
  }
  return 0;
}
