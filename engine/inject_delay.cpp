#include "engine/inject_delay.h"

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/ops.h"

namespace ridgeline {

InjectedDelay parse_injected_delay(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(
        fmt::format("{}='{}': {} (expected op_name:microseconds, e.g. layers.0.wqkv:300)",
                    kInjectDelayVariable, spec, why));
  };
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0) throw bad("no op name before ':'");
  InjectedDelay d;
  d.op = spec.substr(0, colon);
  const std::string number = spec.substr(colon + 1);
  size_t used = 0;
  try {
    d.us = std::stod(number, &used);
  } catch (const std::exception&) {
    throw bad("'" + number + "' is not a number of microseconds");
  }
  if (used != number.size()) throw bad("'" + number + "' is not a number of microseconds");
  if (!(d.us > 0) || d.us > 1e7) throw bad("the delay must be more than 0 and at most 10 s");
  return d;
}

const std::optional<InjectedDelay>& injected_delay() {
  // A static initialised by a throwing call is retried on the next call: a malformed variable
  // keeps failing every backend construction rather than being ignored after the first.
  static const std::optional<InjectedDelay> delay = []() -> std::optional<InjectedDelay> {
    const char* v = std::getenv(kInjectDelayVariable);
    if (!v || !*v) return std::nullopt;
    return parse_injected_delay(v);
  }();
  return delay;
}

void check_injected_delay(const ModelConfig& c) {
  const auto& d = injected_delay();
  if (!d) return;
  StepShape shape;
  for (const Op& op : step_ops(c, shape))
    if (op.name == d->op) return;
  throw std::invalid_argument(
      fmt::format("{}: '{}' is not an op of {} (names like embed, layers.0.wqkv, "
                  "layers.{}.w2, output, sample)",
                  kInjectDelayVariable, d->op, c.name, c.n_layers - 1));
}

void cpu_injected_delay(const std::string& op) {
  const auto& d = injected_delay();
  if (!d || d->op != op) return;
  // Spin rather than sleep: a sleep overshoots by the scheduler's wake-up latency.
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(d->us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace ridgeline
