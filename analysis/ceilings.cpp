#include "analysis/ceilings.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace ridgeline {
namespace {

struct Entry {
  std::vector<std::string> requires_all;  // upper-case fragments that must all occur
  std::vector<std::string> excludes;      // upper-case fragments that must not occur
  Datasheet sheet;
};

// Most specific first: the first entry that matches wins. Bandwidth in GB/s, dense fp16 TFLOP/s.
const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {{"H100", "NVL"}, {}, {"H100 NVL", 3900, 835}},
      {{"H100", "PCIE"}, {}, {"H100 PCIe", 2000, 756}},
      {{"H100"}, {}, {"H100 SXM", 3350, 989}},  // "NVIDIA H100 80GB HBM3"
      {{"H200", "NVL"}, {"GH200"}, {"H200 NVL", 4800, 835}},
      {{"H200"}, {"GH200"}, {"H200 SXM", 4800, 989}},  // GH200 variants differ: no entry
      {{"A100", "80GB", "PCIE"}, {}, {"A100 80GB PCIe", 1935, 312}},
      {{"A100", "80GB"}, {}, {"A100 80GB SXM", 2039, 312}},
      {{"A100"}, {}, {"A100 40GB", 1555, 312}},
      {{"L40S"}, {}, {"L40S", 864, 362}},
      {{"RTX 4090"}, {}, {"RTX 4090", 1008, 165}},
  };
  return t;
}

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

std::optional<Datasheet> datasheet_for(const std::string& device_name) {
  std::string name = upper(device_name);
  for (const auto& e : table()) {
    bool ok = std::all_of(e.requires_all.begin(), e.requires_all.end(),
                          [&](const std::string& f) { return name.find(f) != std::string::npos; }) &&
              std::none_of(e.excludes.begin(), e.excludes.end(),
                           [&](const std::string& f) { return name.find(f) != std::string::npos; });
    if (ok) return e.sheet;
  }
  return std::nullopt;
}

Ceilings datasheet_ceilings(const Datasheet& d) {
  Ceilings c;
  c.peak_GBps = d.GBps;
  c.peak_tflops = d.tflops;
  c.source = "datasheet";
  return c;
}

}  // namespace ridgeline
