// A fixed slowdown after one op, for testing the regression gate (scripts/gpu-ci.sh and the tests):
// RIDGELINE_INJECT_DELAY_US=op_name:microseconds, e.g. "layers.0.wqkv:300". Each backend adds the
// delay inside that op, after its work, every time the op runs (so the op's own time and the step
// both grow by it): the CUDA backend launches a spin kernel of that duration on its stream (captured
// into decode graphs like any launch), the CPU backend spins on the clock. Unset or empty: nothing.
#pragma once

#include <optional>
#include <string>

#include "engine/config.h"

namespace ridgeline {

inline constexpr const char* kInjectDelayVariable = "RIDGELINE_INJECT_DELAY_US";

struct InjectedDelay {
  std::string op;  // the op's report name: "layers.0.wqkv", "output", ...
  double us = 0;   // > 0
};

// Parses `spec` ("op_name:microseconds"); throws std::invalid_argument naming the variable and the
// expected form when malformed.
InjectedDelay parse_injected_delay(const std::string& spec);

// The delay the environment asks for, read once; nullopt when the variable is unset or empty. Throws
// (every call, until the variable is fixed) when it is malformed.
const std::optional<InjectedDelay>& injected_delay();

// Throws std::invalid_argument when the environment names an op `c` does not have (a typo would
// otherwise inject nothing and let a gate test pass). Backends call it when they are built.
void check_injected_delay(const ModelConfig& c);

// Spins the calling thread for `us` microseconds when `op` is the injected op (the CPU backend).
void cpu_injected_delay(const std::string& op);

}  // namespace ridgeline
