#include "engine/quantize_rtn.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "engine/host_weights.h"
#include "engine/parallel_for.h"

namespace ridgeline {
namespace {

constexpr int kMaxCode = 15;  // 4 bits

struct GroupParams {
  uint16_t scale_bits;  // fp16, as stored
  float scale;          // the same, widened
  int zero;
};

GroupParams group_params(const float* w, int64_t n) {
  // As AutoAWQ (and the device quantizer, kernels/w4a16_quantize.cu): the range is the group's own
  // [min, max] and the zero is clamped to 0..15, so a group of one sign would saturate; every real
  // group of 128 weights spans 0.
  float lo = w[0], hi = w[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  GroupParams p;
  // The 1e-5 floor keeps a constant group's scale finite (AutoAWQ clamps the same way); rounding it to
  // fp16 gives a positive normal number, so the divisions below are safe.
  p.scale_bits = float_to_fp16(std::max(hi - lo, 1e-5f) / kMaxCode);
  p.scale = fp16_to_float(p.scale_bits);
  p.zero = std::clamp(-static_cast<int>(std::nearbyint(lo / p.scale)), 0, kMaxCode);
  return p;
}

int code_of(float w, const GroupParams& p) {
  return std::clamp(static_cast<int>(std::nearbyint(w / p.scale)) + p.zero, 0, kMaxCode);
}

void check_group(int64_t in, int group_size, const std::string& what) {
  if (group_size <= 0 || in % group_size != 0)
    throw std::invalid_argument(
        fmt::format("{}: group size {} does not divide its {} inputs (use --group-size with a divisor)", what,
                    group_size, in));
}

}  // namespace

Int4Linear rtn_quantize(const HostTensor& W, int group_size, const std::string& what) {
  if (W.shape.size() != 2) throw std::invalid_argument(fmt::format("{}: expected a [out, in] weight", what));
  const int64_t out = W.shape[0], in = W.shape[1];
  check_group(in, group_size, what);
  Int4Linear q;
  q.out = out;
  q.in = in;
  q.group_size = group_size;
  const int64_t groups = q.groups();
  q.codes.resize(static_cast<size_t>(out * in));
  q.zeros.resize(static_cast<size_t>(out * groups));
  q.scales.resize(static_cast<size_t>(out * groups));
  // The finiteness check rides along with the rows (a 7b layer's scan alone took ~0.1 s on one
  // thread); a row with a NaN or an infinity is left unquantized and the whole call throws.
  std::atomic<bool> finite{true};
  parallel_for(out, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const float* row = W.data.data() + o * in;
      if (!std::all_of(row, row + in, [](float v) { return std::isfinite(v); })) {
        finite.store(false, std::memory_order_relaxed);
        continue;
      }
      for (int64_t g = 0; g < groups; ++g) {
        const float* w = W.data.data() + o * in + g * group_size;
        const GroupParams p = group_params(w, group_size);
        q.scales[o * groups + g] = p.scale_bits;
        q.zeros[o * groups + g] = static_cast<uint8_t>(p.zero);
        uint8_t* codes = q.codes.data() + o * in + g * group_size;
        for (int i = 0; i < group_size; ++i) codes[i] = static_cast<uint8_t>(code_of(w[i], p));
      }
    }
  });
  if (!finite.load())
    throw std::runtime_error(fmt::format("{}: weight holds a NaN or an infinity; cannot quantize it", what));
  return q;
}

void rtn_fake_quantize_row(const float* row, int64_t in, int group_size, float* out) {
  check_group(in, group_size, "rtn_fake_quantize_row");
  for (int64_t g = 0; g < in; g += group_size) {
    const GroupParams p = group_params(row + g, group_size);
    // Same expression as awq_dequantize, so that the search sees exactly what a reader will.
    for (int i = 0; i < group_size; ++i)
      out[g + i] = static_cast<float>(code_of(row[g + i], p) - p.zero) * p.scale;
  }
}

}  // namespace ridgeline
