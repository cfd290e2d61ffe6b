#include "engine/rtn_weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/parallel_for.h"
#include "engine/quantize_rtn.h"

namespace ridgeline {

void rtn_quantize_linears(HostWeights& w, int group_size) {
  auto linears = [](LayerWeights& L) { return std::array{&L.wqkv, &L.wo, &L.w1, &L.w3, &L.w2}; };
  // Everything is checked before anything changes, and here rather than in the threads below,
  // where nothing may throw.
  for (size_t l = 0; l < w.layers.size(); ++l)
    for (const HostTensor* t : linears(w.layers[l])) {
      const int64_t out = t->shape.at(0), in = t->shape.at(1);
      if (group_size <= 0 || in % group_size != 0)
        throw std::invalid_argument(
            fmt::format("layers.{}: group size {} does not divide a linear's {} inputs", l, group_size, in));
      if (!std::all_of(t->data.begin(), t->data.end(), [](float v) { return std::isfinite(v); }))
        throw std::runtime_error(fmt::format(
            "layers.{}: a [{}, {}] linear holds a NaN or an infinity; cannot quantize it", l, out, in));
    }
  for (LayerWeights& L : w.layers)
    for (HostTensor* t : linears(L)) {
      const int64_t out = t->shape[0], in = t->shape[1];
      parallel_for(out, 64, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          float* row = t->data.data() + o * in;
          rtn_fake_quantize_row(row, in, group_size, row);  // reads each group before writing it
        }
      });
    }
}

}  // namespace ridgeline
