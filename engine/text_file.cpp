#include "engine/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

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

}  // namespace

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
  return text;
}

}  // namespace ridgeline
