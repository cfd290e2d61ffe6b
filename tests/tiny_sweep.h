// The bundled tiny model swept on the CPU backend in-process: a real report for the tests of what
// reports record and render.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/sweep/sweep.h"
#include "engine/cpu_backend.h"
#include "test_util.h"

namespace ridgeline::test {

// run_sweep over `spec` against `device` (its ceilings judge the runs), as sweep_to_json writes it.
inline nlohmann::json tiny_cpu_sweep(const SweepSpec& spec, const DeviceInfo& device) {
  ModelSource src = resolve_model(data_path("tiny-internlm2-chat"));
  SweepResult r = run_sweep(
      src, spec, [&](const BackendOptions& o) { return make_cpu_backend(src, o); }, device,
      [](const std::string&) {});
  return sweep_to_json(r);
}

}  // namespace ridgeline::test
