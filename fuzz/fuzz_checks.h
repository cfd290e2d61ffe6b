// What every fuzz target demands of a refusal: a std::runtime_error (anything else, a bare nlohmann
// exception included, escapes and libFuzzer reports it as a crash) whose message is one short line
// without control bytes, however hostile the input (docs/DESIGN.md, "Errors").
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string_view>

namespace ridgeline::fuzz {

// Room for a path, a few quoted excerpts (200 bytes each at most) and the explanation.
inline constexpr size_t kMaxErrorLine = 1200;

// Stops the run (a "crash" libFuzzer saves with its input) when `ok` is false, saying why.
inline void require(bool ok, const char* what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n%.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  __builtin_trap();
}

inline void check_error_line(const std::runtime_error& e) {
  std::string_view m(e.what());
  require(!m.empty(), "empty error message");
  require(m.size() <= kMaxErrorLine, "error message longer than one short line", m.substr(0, 400));
  for (char c : m)
    require(static_cast<unsigned char>(c) >= 0x20, "control byte in error message", m.substr(0, 400));
}

}  // namespace ridgeline::fuzz
