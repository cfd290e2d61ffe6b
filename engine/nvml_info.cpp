#include "engine/nvml_info.h"

#include <dlfcn.h>

#include <string>

#include <fmt/format.h>

namespace ridgeline {
namespace {

// The few NVML entry points used, as the NVML API reference declares them (C ABI: enums are ints,
// a device handle is an opaque pointer).
using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
using NvmlDevice = void*;
constexpr int kClockSm = 1;           // NVML_CLOCK_SM
constexpr int kClockMem = 2;          // NVML_CLOCK_MEM
constexpr int kFeatureEnabled = 1;    // NVML_FEATURE_ENABLED
constexpr unsigned kTextBuffer = 96;  // >= NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE (80)

struct Nvml {
  NvmlReturn (*init)() = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  NvmlReturn (*driver_version)(char*, unsigned) = nullptr;
  NvmlReturn (*handle_by_uuid)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*clock)(NvmlDevice, int, unsigned*) = nullptr;
  NvmlReturn (*max_clock)(NvmlDevice, int, unsigned*) = nullptr;
  NvmlReturn (*power_limit)(NvmlDevice, unsigned*) = nullptr;  // milliwatts
  NvmlReturn (*ecc_mode)(NvmlDevice, int*, int*) = nullptr;
  std::string error;  // why NVML is unusable; "" when it initialised

  std::string describe(NvmlReturn r) const {
    return error_string ? fmt::format("{} ({})", error_string(r), r) : fmt::format("error {}", r);
  }
};

template <typename F>
bool load(void* lib, const char* name, F& f, std::string& error) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f && error.empty()) error = fmt::format("libnvidia-ml.so.1 lacks {}", name);
  return f != nullptr;
}

// Loaded and initialised once per process; the library stays loaded.
const Nvml& nvml() {
  static const Nvml n = [] {
    Nvml n;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      n.error = fmt::format("NVML not loaded: {}", why ? why : "libnvidia-ml.so.1 not found");
      return n;
    }
    load(lib, "nvmlErrorString", n.error_string, n.error);
    bool ok = load(lib, "nvmlInit_v2", n.init, n.error);
    ok = load(lib, "nvmlSystemGetDriverVersion", n.driver_version, n.error) && ok;
    ok = load(lib, "nvmlDeviceGetHandleByUUID", n.handle_by_uuid, n.error) && ok;
    ok = load(lib, "nvmlDeviceGetClockInfo", n.clock, n.error) && ok;
    ok = load(lib, "nvmlDeviceGetMaxClockInfo", n.max_clock, n.error) && ok;
    ok = load(lib, "nvmlDeviceGetEnforcedPowerLimit", n.power_limit, n.error) && ok;
    ok = load(lib, "nvmlDeviceGetEccMode", n.ecc_mode, n.error) && ok;
    if (!ok) return n;
    if (NvmlReturn r = n.init(); r != 0) n.error = "nvmlInit failed: " + n.describe(r);
    return n;
  }();
  return n;
}

// The device handle for f.uuid, or nullptr with f.nvml_error set.
NvmlDevice device_of(DeviceFacts& f) {
  const Nvml& n = nvml();
  if (!n.error.empty()) {
    f.nvml_error = n.error;
    return nullptr;
  }
  if (f.uuid.empty()) {
    f.nvml_error = "no GPU UUID to find the device by";
    return nullptr;
  }
  NvmlDevice d = nullptr;
  if (NvmlReturn r = n.handle_by_uuid(f.uuid.c_str(), &d); r != 0) {
    f.nvml_error = fmt::format("NVML does not know {}: {}", f.uuid, n.describe(r));
    return nullptr;
  }
  return d;
}

void read_clocks(const Nvml& n, NvmlDevice d, DeviceFacts& f) {
  unsigned v = 0;
  if (n.clock(d, kClockSm, &v) == 0) f.sm_clock_mhz = int(v);
  if (n.clock(d, kClockMem, &v) == 0) f.memory_clock_mhz = int(v);
  if (n.max_clock(d, kClockSm, &v) == 0) f.sm_clock_max_mhz = int(v);
  if (n.max_clock(d, kClockMem, &v) == 0) f.memory_clock_max_mhz = int(v);
}

}  // namespace

void add_nvml_facts(DeviceFacts& f) {
  NvmlDevice d = device_of(f);
  if (!d) return;
  const Nvml& n = nvml();
  char text[kTextBuffer] = {};
  if (n.driver_version(text, kTextBuffer) == 0) f.nvidia_driver = text;
  read_clocks(n, d, f);
  unsigned mw = 0;
  if (n.power_limit(d, &mw) == 0) f.power_limit_w = mw / 1000.0;
  int current = 0, pending = 0;
  // GPUs without ECC answer NVML_ERROR_NOT_SUPPORTED: the field stays "".
  if (n.ecc_mode(d, &current, &pending) == 0) f.ecc = current == kFeatureEnabled ? "on" : "off";
}

void add_nvml_clocks(DeviceFacts& f) {
  if (NvmlDevice d = device_of(f)) read_clocks(nvml(), d, f);
}

}  // namespace ridgeline
