#include "engine/data_paths.h"

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ridgeline {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> candidates() {
  std::vector<fs::path> c;
  if (const char* env = std::getenv("RIDGELINE_DATA_DIR"); env && *env) c.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    c.push_back(exe.parent_path().parent_path() / "share" / "ridgeline");
    c.push_back(exe.parent_path() / "share" / "ridgeline");
  }
  return c;
}

std::string find(const std::string& kind, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") return {};
  for (const fs::path& dir : candidates()) {
    std::error_code ec;
    if (fs::is_directory(dir / kind / name, ec)) return (dir / kind / name).string();
  }
  return {};
}

}  // namespace

std::string data_dir() {
  std::vector<std::string> tried;
  for (const fs::path& dir : candidates()) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return dir.string();
    tried.push_back(dir.string());
  }
  throw std::runtime_error(fmt::format(
      "ridgeline's data folder was not found (looked in: {}); set RIDGELINE_DATA_DIR or reinstall",
      fmt::join(tried, ", ")));
}

std::string bundled_tokenizer(const std::string& name) {
  return find("tokenizers", name);
}

std::vector<std::string> bundled_tokenizer_names() {
  std::vector<std::string> names;  // every folder bundled_tokenizer() looks in
  for (const fs::path& dir : candidates()) {
    std::error_code ec;
    if (!fs::is_directory(dir / "tokenizers", ec)) continue;
    for (const auto& e : fs::directory_iterator(dir / "tokenizers", ec))
      if (e.is_directory(ec)) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string bundled_model(const std::string& name) {
  return find("models", name);
}

}  // namespace ridgeline
