// The message of the std::runtime_error that `f` throws, or "" when it returns: error lines are
// part of the specification (DESIGN.md "Errors"), so tests compare them whole or by substring.
#pragma once

#include <stdexcept>
#include <string>

namespace ridgeline::testing {

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace ridgeline::testing
