#include "engine/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <zlib.h>

namespace ridgeline {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

// Closes the descriptor on every path out, exceptions included.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string too_large(std::string_view what, size_t max_bytes) {
  return fmt::format("{} is larger than the {} MB limit (is this the right file?)", what,
                     max_bytes / 1000000.0);
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// zlib's stream, ended on every path out.
struct Inflate {
  z_stream z{};
  bool live = false;
  ~Inflate() {
    if (live) inflateEnd(&z);
  }
};

std::string gunzip(const std::string& path, std::string_view what, const std::string& packed,
                   size_t max_bytes) {
  auto bad = [&](const char* why) { fail(path, fmt::format("{} is not a valid gzip file ({})", what, why)); };
  Inflate s;
  if (inflateInit2(&s.z, 15 + 16) != Z_OK) bad("zlib could not start");  // 15 + 16: gzip wrapper
  s.live = true;
  s.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  s.z.avail_in = static_cast<uInt>(packed.size());  // read_text_file's limit keeps it under 4 GB
  std::string text;
  char buf[1 << 16];
  for (;;) {
    s.z.next_out = reinterpret_cast<Bytef*>(buf);
    s.z.avail_out = sizeof buf;
    const int rc = inflate(&s.z, Z_NO_FLUSH);
    const size_t n = sizeof buf - s.z.avail_out;
    if (text.size() + n > max_bytes) fail(path, too_large(fmt::format("{} decompressed", what), max_bytes));
    text.append(buf, n);
    if (rc == Z_STREAM_END) {
      // Concatenated members (gzip a; gzip b; cat) are one file to gzip -d: read on.
      if (s.z.avail_in == 0) return text;
      if (inflateReset(&s.z) != Z_OK) bad("zlib could not restart");
      continue;
    }
    if (rc == Z_BUF_ERROR && s.z.avail_in == 0) bad("it ends early");
    if (rc != Z_OK) bad(s.z.msg ? s.z.msg : "corrupt data");
  }
}

}  // namespace

std::string gzip_compress(std::string_view text) {
  // One deflate call takes at most 4 GB of input (zlib counts in uInt); ridgeline's outputs are MBs.
  if (text.size() > std::numeric_limits<uInt>::max())
    throw std::runtime_error("gzip: an output over 4 GB cannot be compressed in one call");
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: zlib could not start");
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);  // the bound makes one call enough
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: zlib could not compress the output");
  return out;
}

std::string read_text_file(const std::string& path, std::string_view what, size_t max_bytes) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail(path, fmt::format("cannot open {} ({})", what, std::strerror(errno)));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(path, fmt::format("cannot stat {} ({})", what, std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) fail(path, fmt::format("is a directory, expected {}", what));
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes)
    fail(path, too_large(what, max_bytes));

  std::string text;
  if (S_ISREG(st.st_mode)) text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, fmt::format("cannot read {} ({})", what, std::strerror(errno)));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) fail(path, too_large(what, max_bytes));
    text.append(buf, static_cast<size_t>(n));
  }
  return is_gzip(text) ? gunzip(path, what, text, max_bytes) : text;
}

}  // namespace ridgeline
