// Reading a whole input file (config.json, a messages file, a checkpoint index, a report) with errors
// a user can act on: "<path>: is a directory, expected <what>" rather than the iostream library's
// "basic_filebuf::underflow", and a size limit checked before anything is read. gzip files are read
// decompressed, so reports can be kept compressed (reports/baselines/*.json.gz: a sweep's JSON
// shrinks about 7x, and the tree a device call carries is capped).
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
// to the limit). A file that starts with gzip's magic bytes (1f 8b; no JSON or text file does) is
// returned decompressed, `max_bytes` then bounding the decompressed size too; one that does not
// decompress throws "<path>: <what> is not a valid gzip file (...)".
std::string read_text_file(const std::string& path, std::string_view what,
                           size_t max_bytes = kMaxTextFileBytes);

// `text` as one gzip member (zlib's default level), for outputs named *.gz.
std::string gzip_compress(std::string_view text);

}  // namespace ridgeline
