#include "engine/host_weights.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "engine/awq_format.h"
#include "engine/parallel_for.h"
#include "kernels/synthetic.h"

namespace ridgeline {

// Tensor bytes are read as little-endian words with memcpy.
static_assert(std::endian::native == std::endian::little,
              "ridgeline reads safetensors on little-endian hosts");

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", where, what));
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // views carry no alignment promise
  return v;
}

HostTensor make_tensor(std::vector<int64_t> shape) {
  HostTensor t;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  t.shape = std::move(shape);
  t.data.resize(static_cast<size_t>(n));
  return t;
}

// First number after `key` in a "key value" file such as /proc/meminfo or memory.stat; -1 if absent.
int64_t read_keyed(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string k;
    int64_t v = -1;
    if (ls >> k >> v && (k == key || k == key + ":")) return v;
  }
  return -1;
}

int64_t read_number(const char* path) {
  std::ifstream in(path);
  int64_t v = -1;
  if (in >> v) return v;
  return -1;  // absent, or "max" (no limit)
}

// Room under a cgroup memory limit: limit - usage, with the page cache counted as free because
// the kernel reclaims it before failing an allocation. -1 when no limit is set.
int64_t cgroup_room() {
  struct Layout {
    const char *limit, *usage, *stat, *cache_key;
  };
  const Layout layouts[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "file"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
       "/sys/fs/cgroup/memory/memory.stat", "total_cache"},
  };
  for (const auto& l : layouts) {
    int64_t limit = read_number(l.limit);
    if (limit <= 0 || limit >= (int64_t{1} << 60)) continue;  // unlimited cgroups report ~2^63
    int64_t usage = std::max<int64_t>(0, read_number(l.usage));
    int64_t cache = std::max<int64_t>(0, read_keyed(l.stat, l.cache_key));
    return std::max<int64_t>(0, limit - usage + std::min(cache, usage));
  }
  return -1;
}

double gb(int64_t bytes) {
  return static_cast<double>(bytes) / 1e9;
}

HostTensor linear_weight(const Checkpoint& ck, const LinearSpec& lin) {
  if (!ck.awq) return to_host_tensor(ck.get(lin.prefix + ".weight"));
  return dequantize_awq(ck.get(lin.prefix + ".qweight"), ck.get(lin.prefix + ".qzeros"),
                        ck.get(lin.prefix + ".scales"), ck.config.quant_group_size);
}

HostTensor synthetic_linear(uint64_t seed, uint64_t id, int64_t out, int64_t in, int shift) {
  HostTensor t = make_tensor({out, in});
  float* d = t.data.data();
  parallel_for(t.numel(), int64_t{1} << 20, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = synthetic_value(seed, id, static_cast<uint64_t>(i), shift);
  });
  return t;
}

HostTensor synthetic_norm(uint64_t seed, uint64_t id, int64_t n) {
  HostTensor t = make_tensor({n});
  for (int64_t i = 0; i < n; ++i) t.data[i] = synthetic_norm_value(seed, id, static_cast<uint64_t>(i));
  return t;
}

}  // namespace

float bf16_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

float fp16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));        // rebias 15 -> 127
}

uint16_t float_to_fp16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u;                     // NaN (quiet)
  if (x >= 0x477ff000u) return sign | 0x7c00u;                    // >= 65520 rounds to infinity
  if (x < 0x38800000u) {                                          // below 2^-14: fp16 subnormal (or zero)
    float scaled = std::bit_cast<float>(x) * 0x1p24f;             // exact: a power-of-two scaling
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));  // default rounding mode: to nearest even
  }
  uint32_t h = (((x >> 23) - 112u) << 10) | ((x >> 13) & 0x3ffu);
  const uint32_t rest = x & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is still right
  return sign | static_cast<uint16_t>(h);
}

uint16_t float_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // keep NaN a NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

HostTensor to_host_tensor(const TensorView& t) {
  HostTensor out = make_tensor(t.shape);
  const int64_t n = out.numel();
  float* d = out.data.data();
  switch (t.dtype) {
    case DType::f32:
      if (n) std::memcpy(d, t.data, static_cast<size_t>(n) * 4);
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_float(load<uint16_t>(t.data + 2 * i));
      break;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) d[i] = fp16_to_float(load<uint16_t>(t.data + 2 * i));
      break;
    default:
      fail(t.file, fmt::format("tensor '{}' has dtype {}; only BF16, F16 and F32 convert to float32", t.name,
                               to_string(t.dtype)));
  }
  return out;
}

int64_t host_weights_bytes(const ModelConfig& c) {
  int64_t tied_copy = c.tie_word_embeddings ? int64_t{c.vocab} * c.hidden : 0;
  return (c.params() + tied_copy) * static_cast<int64_t>(sizeof(float));
}

int64_t available_host_memory_bytes() {
  int64_t avail = read_keyed("/proc/meminfo", "MemAvailable");
  if (avail >= 0) {
    avail *= 1024;  // reported in kB
  } else {
    avail = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  }
  int64_t room = cgroup_room();
  return room >= 0 ? std::min(avail, room) : avail;
}

void check_host_memory(int64_t bytes, const std::string& what) {
  int64_t avail = available_host_memory_bytes();
  if (bytes > avail)
    throw std::runtime_error(
        fmt::format("{} needs {:.1f} GB of host memory for the CPU backend; {:.1f} GB available", what,
                    gb(bytes), gb(avail)));
}

HostWeights load_weights_outside_layers(const Checkpoint& ck) {
  HostWeights w;
  w.config = ck.config;
  w.tok_embeddings = to_host_tensor(ck.get("model.tok_embeddings.weight"));
  w.norm = to_host_tensor(ck.get("model.norm.weight"));
  if (ck.awq && ck.has("output.qweight")) {  // a 4-bit head (`ridgeline quantize --quantize-head`)
    w.output = dequantize_awq(ck.get("output.qweight"), ck.get("output.qzeros"), ck.get("output.scales"),
                              ck.config.quant_group_size);
  } else {
    w.output = ck.has("output.weight") ? to_host_tensor(ck.get("output.weight")) : w.tok_embeddings;
  }
  return w;
}

LayerWeights load_layer_weights(const Checkpoint& ck, int layer) {
  const std::string p = fmt::format("model.layers.{}.", layer);
  const auto lin = internlm2_linears(ck.config, layer);  // wqkv, wo, w1, w3, w2
  LayerWeights L;
  L.attention_norm = to_host_tensor(ck.get(p + "attention_norm.weight"));
  L.wqkv = linear_weight(ck, lin[0]);
  L.wo = linear_weight(ck, lin[1]);
  L.ffn_norm = to_host_tensor(ck.get(p + "ffn_norm.weight"));
  L.w1 = linear_weight(ck, lin[2]);
  L.w3 = linear_weight(ck, lin[3]);
  L.w2 = linear_weight(ck, lin[4]);
  return L;
}

HostWeights load_host_weights(const Checkpoint& ck) {
  check_host_memory(host_weights_bytes(ck.config), "checkpoint " + ck.dir);
  HostWeights w = load_weights_outside_layers(ck);
  for (int l = 0; l < ck.config.n_layers; ++l) w.layers.push_back(load_layer_weights(ck, l));
  return w;
}

int synthetic_shift(int64_t n) {
  // 0.5*log2(n) is exact for powers of two, so the halves (n = 2^odd) round up on every host.
  return static_cast<int>(std::lround(0.5 * std::log2(static_cast<double>(n))));
}

int synthetic_linear_shift(const ModelConfig& c, int slot) {
  const int residual = synthetic_shift(2 * int64_t{c.n_layers});
  switch (slot) {
    case 1:
      return synthetic_shift(c.hidden);  // wqkv
    case 2:
      return synthetic_shift(c.q_dim()) + residual;  // wo
    case 4:
    case 5:
      return synthetic_shift(c.hidden);  // w1, w3
    case 6:
      return synthetic_shift(c.intermediate) + residual;  // w2
    default:
      throw std::invalid_argument(fmt::format("synthetic_linear_shift: slot {} is not a linear", slot));
  }
}

HostWeights synthetic_weights_outside_layers(const ModelConfig& c, uint64_t seed) {
  const int64_t h = c.hidden, v = c.vocab;
  HostWeights w;
  w.config = c;
  w.tok_embeddings = synthetic_linear(seed, 0, v, h, 0);
  w.norm = synthetic_norm(seed, 1, h);
  w.output = c.tie_word_embeddings ? w.tok_embeddings : synthetic_linear(seed, 2, v, h, synthetic_shift(h));
  return w;
}

LayerWeights synthetic_layer_weights(const ModelConfig& c, uint64_t seed, int layer) {
  const int64_t h = c.hidden;
  auto id = [&](int slot) { return synthetic_tensor_id(layer, slot); };
  auto shift = [&](int slot) { return synthetic_linear_shift(c, slot); };
  LayerWeights L;
  L.attention_norm = synthetic_norm(seed, id(0), h);
  L.wqkv = synthetic_linear(seed, id(1), c.qkv_dim(), h, shift(1));
  L.wo = synthetic_linear(seed, id(2), h, c.q_dim(), shift(2));
  L.ffn_norm = synthetic_norm(seed, id(3), h);
  L.w1 = synthetic_linear(seed, id(4), c.intermediate, h, shift(4));
  L.w3 = synthetic_linear(seed, id(5), c.intermediate, h, shift(5));
  L.w2 = synthetic_linear(seed, id(6), h, c.intermediate, shift(6));
  return L;
}

HostWeights synthetic_host_weights(const ModelConfig& c, uint64_t seed) {
  const std::string what = "preset " + (c.name.empty() ? std::string("(unnamed)") : c.name);
  validate_config(c, what);
  check_host_memory(host_weights_bytes(c), what);
  HostWeights w = synthetic_weights_outside_layers(c, seed);
  for (int l = 0; l < c.n_layers; ++l) w.layers.push_back(synthetic_layer_weights(c, seed, l));
  return w;
}

}  // namespace ridgeline
