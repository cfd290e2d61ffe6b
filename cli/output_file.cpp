#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/text_file.h"

namespace ridgeline::cli {
namespace fs = std::filesystem;

namespace {

std::runtime_error cannot_write(const std::string& path, const std::string& why) {
  return std::runtime_error(fmt::format("{}: cannot write there: {}", path, why));
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw cannot_write(path_, "empty file name");
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw cannot_write(path_, "it is a folder");
    if (!S_ISREG(st.st_mode)) {
      // A device or a pipe: written in place, never replaced.
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd_ < 0) throw cannot_write(path_, std::strerror(errno));
      return;
    }
  }
  fs::path target(path_);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  static std::atomic<int> counter{0};
  for (int attempt = 0; fd_ < 0; ++attempt) {
    temp_ = (dir / fmt::format(".{}.tmp-{}-{}", target.filename().string(), ::getpid(), counter++)).string();
    // 0666 under the umask, as the file would get from a plain open.
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && (errno != EEXIST || attempt > 100)) {
      int err = errno;
      temp_.clear();
      if (err == ENOENT) throw cannot_write(path_, fmt::format("no folder '{}'", dir.string()));
      throw cannot_write(path_, std::strerror(err));
    }
  }
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)), fd_(o.fd_), written_(o.written_) {
  o.fd_ = -1;
  o.temp_.clear();
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void OutputFile::write(std::string_view content) {
  if (fd_ < 0 || written_) throw std::logic_error("OutputFile::write: called twice");
  // A name ending in .gz gets gzip's bytes (sweep --out r.json.gz): every reader of ridgeline's
  // files (engine/text_file.h) reads them back as the text.
  std::string packed;
  if (path_.ends_with(".gz")) content = packed = gzip_compress(content);
  auto fail = [&](int err) {
    return std::runtime_error(fmt::format("{}: write failed: {}", path_, std::strerror(err)));
  };
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd_, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(errno);
    }
    done += size_t(n);
  }
  // A rename is only atomic for content that reached the disk; errors the kernel reports late (NFS,
  // quota) surface at fsync or close.
  if (!temp_.empty() && ::fsync(fd_) != 0) throw fail(errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw fail(errno);
  written_ = true;
}

void OutputFile::publish() {
  if (!written_) throw std::logic_error("OutputFile::publish: nothing written");
  if (temp_.empty()) return;
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    throw std::runtime_error(fmt::format("{}: cannot replace it: {}", path_, std::strerror(errno)));
  temp_.clear();
}

void write_files(const std::vector<std::pair<std::string, std::string>>& path_and_content) {
  std::vector<OutputFile> files;
  files.reserve(path_and_content.size());
  for (const auto& [path, content] : path_and_content) {
    files.emplace_back(path);
    files.back().write(content);
  }
  for (auto& f : files) f.publish();
}

void write_file(const std::string& path, std::string_view content) {
  OutputFile f(path);
  f.write(content);
  f.publish();
}

}  // namespace ridgeline::cli
