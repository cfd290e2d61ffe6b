#include "engine/backend.h"

#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace ridgeline {

const char* to_string(DeviceKind d) {
  return d == DeviceKind::cuda ? "cuda" : "cpu";
}

DeviceKind parse_device_kind(std::string_view s) {
  if (s == "cpu") return DeviceKind::cpu;
  if (s == "cuda") return DeviceKind::cuda;
  throw std::invalid_argument(fmt::format("unknown device '{}' (expected cuda or cpu)", s));
}

int64_t validate_forward(const ModelConfig& c, std::span<const int> seqs,
                         std::span<const std::vector<int>> tokens, const std::function<int(int)>& length_of) {
  if (seqs.size() != tokens.size()) throw std::invalid_argument("forward: one token list per sequence");
  if (seqs.empty()) throw std::invalid_argument("forward: no sequences");
  std::set<int> seen;
  int64_t new_tokens = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int64_t length = length_of(seqs[i]);
    if (!seen.insert(seqs[i]).second)
      throw std::invalid_argument(fmt::format("forward: sequence {} is listed twice", seqs[i]));
    if (tokens[i].empty()) throw std::invalid_argument("forward: empty token list");
    for (int t : tokens[i])
      if (t < 0 || t >= c.vocab)
        throw std::invalid_argument(fmt::format("token id {} is outside the vocabulary of {}", t, c.vocab));
    const int64_t new_length = length + int64_t(tokens[i].size());
    if (new_length > max_sequence_length(c))
      throw std::runtime_error(fmt::format("sequence would hold {} tokens, more than the context limit of {}",
                                           new_length, max_sequence_length(c)));
    new_tokens += int64_t(tokens[i].size());
  }
  return new_tokens;
}

}  // namespace ridgeline
