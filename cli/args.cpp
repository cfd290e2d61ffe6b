#include "cli/args.h"

#include <charconv>

#include <fmt/format.h>

namespace ridgeline::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
           const std::set<std::string>& switches) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (valued.count(name)) {
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < argv.size()) {
        values_[name] = argv[++i];
      } else {
        throw UsageError(fmt::format("--{} needs a value", name));
      }
    } else if (switches.count(name)) {
      if (inline_value) throw UsageError(fmt::format("--{} takes no value", name));
      switches_set_.insert(name);
    } else {
      throw UsageError(fmt::format("unknown flag --{}", name));
    }
  }
}

bool Args::has(const std::string& flag) const {
  return values_.count(flag) || switches_set_.count(flag);
}

std::optional<std::string> Args::get(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& flag, const std::string& fallback) const {
  return get(flag).value_or(fallback);
}

std::string Args::require(const std::string& flag) const {
  auto v = get(flag);
  if (!v) throw UsageError(fmt::format("--{} is required", flag));
  return *v;
}

long long Args::get_int64(const std::string& flag, long long fallback) const {
  auto v = get(flag);
  if (!v) return fallback;
  long long out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size())
    throw UsageError(fmt::format("--{} expects an integer, got '{}'", flag, *v));
  return out;
}

int Args::get_int(const std::string& flag, int fallback) const {
  long long v = get_int64(flag, fallback);
  if (v < -(1ll << 31) || v >= (1ll << 31)) throw UsageError(fmt::format("--{} is out of range", flag));
  return static_cast<int>(v);
}

double Args::get_double(const std::string& flag, double fallback) const {
  auto v = get(flag);
  if (!v) return fallback;
  try {
    size_t used = 0;
    double out = std::stod(*v, &used);
    if (used != v->size()) throw std::invalid_argument("trailing");
    return out;
  } catch (const std::exception&) {
    throw UsageError(fmt::format("--{} expects a number, got '{}'", flag, *v));
  }
}

std::vector<std::string> Args::get_list(const std::string& flag) const {
  std::vector<std::string> out;
  auto v = get(flag);
  if (!v) return out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t comma = v->find(',', start);
    if (comma == std::string::npos) comma = v->size();
    std::string item = v->substr(start, comma - start);
    if (item.empty()) throw UsageError(fmt::format("--{} has an empty item in '{}'", flag, *v));
    out.push_back(item);
    start = comma + 1;
  }
  return out;
}

std::vector<int> Args::get_int_list(const std::string& flag, const std::vector<int>& fallback) const {
  auto items = get_list(flag);
  if (items.empty()) return fallback;
  std::vector<int> out;
  for (const auto& s : items) {
    int x = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc() || p != s.data() + s.size() || x <= 0)
      throw UsageError(fmt::format("--{} expects positive integers, got '{}'", flag, s));
    out.push_back(x);
  }
  return out;
}

}  // namespace ridgeline::cli
