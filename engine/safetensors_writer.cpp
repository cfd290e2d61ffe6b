#include "engine/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ridgeline {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

uint64_t byte_size(const TensorToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) throw std::invalid_argument(fmt::format("tensor '{}': negative dimension {}", t.name, d));
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

// The order of the data: element size descending, then name, so that with the header padded to 8
// bytes every tensor starts aligned to its element size (sizes are 8, 4, 2, 1, each a multiple of
// the next) without gaps.
std::vector<const TensorToWrite*> data_order(std::span<const TensorToWrite> tensors) {
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  return order;
}

using Sink = std::function<void(const void*, size_t)>;

// Writes through a temporary file beside `path` and renames it over `path` at the end; `produce`
// hands its bytes, in order, to the sink it is given.
void write_atomically(const std::string& path, const std::function<void(const Sink&)>& produce) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / fmt::format(".{}.tmp-XXXXXX", target.filename().string())).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    fail(path, fmt::format("cannot create a temporary file in {} ({})", dir.string(), std::strerror(errno)));
  auto give_up = [&](const std::string& what) {  // after the bytes are written
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, what);
  };
  try {
    produce([&](const void* data, size_t n) {
      const char* p = static_cast<const char*>(data);
      while (n > 0) {
        // write() moves at most ~2 GB per call on Linux; loop until everything is written.
        const ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail(path, fmt::format("cannot write ({})", std::strerror(errno)));
        p += w;
        n -= static_cast<size_t>(w);
      }
    });
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // mkstemp creates the file 0600; a checkpoint is read by others like any file the user writes.
  if (::fchmod(fd, 0644) != 0) give_up(fmt::format("cannot set permissions ({})", std::strerror(errno)));
  if (::fsync(fd) != 0) give_up(fmt::format("cannot flush to disk ({})", std::strerror(errno)));
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, fmt::format("cannot close ({})", std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, fmt::format("cannot rename the temporary file into place ({})", std::strerror(err)));
  }
}

}  // namespace

std::string safetensors_header(std::span<const TensorToWrite> tensors,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();  // std::map underneath: keys come out sorted
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : data_order(tensors)) {
    const uint64_t n = byte_size(*t);
    header[t->name] = {
        {"dtype", to_string(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
  return out + text;
}

void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      fail(path, fmt::format("'{}' cannot name a tensor", t.name));
    if (!names.insert(t.name).second) fail(path, fmt::format("tensor '{}' is given twice", t.name));
    if (!t.data && byte_size(t) > 0) fail(path, fmt::format("tensor '{}' has no data", t.name));
  }
  const std::string header = safetensors_header(tensors, metadata);
  write_atomically(path, [&](const Sink& write) {
    write(header.data(), header.size());
    for (const TensorToWrite* t : data_order(tensors)) write(t->data, byte_size(*t));
  });
}

void write_file_atomically(const std::string& path, std::string_view text) {
  write_atomically(path, [&](const Sink& write) { write(text.data(), text.size()); });
}

}  // namespace ridgeline
