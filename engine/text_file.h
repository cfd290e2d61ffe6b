// Reading a whole input file (config.json, a messages file, a checkpoint index) with errors a user
// can act on: "<path>: is a directory, expected <what>" rather than the iostream library's
// "basic_filebuf::underflow", and a size limit checked before anything is read.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ridgeline {

// Larger than any configuration or prompt file ridgeline reads; keeps a mistaken path (a disk
// image, /dev/zero) from being read into memory whole.
inline constexpr size_t kMaxTextFileBytes = 256ull * 1000 * 1000;

// The bytes of `path`. `what` names the expected file for messages ("config.json", "messages JSON
// file"). Throws std::runtime_error("<path>: ...") when it does not exist, is a directory, cannot
// be read, or is larger than `max_bytes`. Pipes and character devices are read to their end (or
// to the limit).
std::string read_text_file(const std::string& path, std::string_view what,
                           size_t max_bytes = kMaxTextFileBytes);

}  // namespace ridgeline
