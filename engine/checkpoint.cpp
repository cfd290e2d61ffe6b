#include "engine/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/error_text.h"
#include "engine/strict_json.h"
#include "engine/text_file.h"

namespace ridgeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr size_t kMaxIndexBytes = 100ull * 1000 * 1000;  // a 20B model's index is ~40 kB

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", where, what));
}

void add_file(Checkpoint& ck, SafetensorsFile file) {
  for (const auto& t : file.tensors()) {
    auto [it, inserted] = ck.tensors.emplace(t.name, t);
    if (!inserted)
      fail(file.path(), fmt::format("tensor '{}' is also in {} (a tensor must be in exactly one shard)",
                                    excerpt(t.name), it->second.file));
  }
  ck.files.push_back(std::move(file));
}

std::string expected_dense() {
  return "BF16, F16 or F32";
}

class Validator {
 public:
  explicit Validator(const Checkpoint& ck) : ck_(ck) {}

  void dense(const std::string& name, std::vector<int64_t> shape, const std::string& hint = {}) {
    auto it = ck_.tensors.find(name);
    if (it == ck_.tensors.end())
      fail(ck_.dir, fmt::format("missing tensor '{}' (expected shape {}, dtype {}){}", name,
                                shape_string(shape), expected_dense(), hint));
    const TensorView& t = it->second;
    if (t.dtype != DType::bf16 && t.dtype != DType::f16 && t.dtype != DType::f32)
      fail(t.file,
           fmt::format("tensor '{}' has dtype {}, expected {}", name, to_string(t.dtype), expected_dense()));
    check_shape(t, shape);
  }

  void exact(const std::string& name, DType dtype, std::vector<int64_t> shape, const std::string& what) {
    auto it = ck_.tensors.find(name);
    if (it == ck_.tensors.end())
      fail(ck_.dir, fmt::format("missing tensor '{}' (expected {} {} {})", name, what, to_string(dtype),
                                shape_string(shape)));
    const TensorView& t = it->second;
    if (t.dtype != dtype)
      fail(t.file, fmt::format("tensor '{}' has dtype {}, expected {} ({})", name, to_string(t.dtype),
                               to_string(dtype), what));
    check_shape(t, shape);
  }

 private:
  void check_shape(const TensorView& t, const std::vector<int64_t>& shape) {
    if (t.shape != shape)
      fail(t.file, fmt::format("tensor '{}' has shape {}, expected {}", t.name, shape_string(t.shape),
                               shape_string(shape)));
  }
  const Checkpoint& ck_;
};

void validate_tensors(const Checkpoint& ck) {
  const ModelConfig& c = ck.config;
  const int64_t h = c.hidden, v = c.vocab;
  Validator check(ck);
  check.dense("model.tok_embeddings.weight", {v, h});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    check.dense(p + "attention_norm.weight", {h});
    check.dense(p + "ffn_norm.weight", {h});
    for (const LinearSpec& lin : internlm2_linears(c, l)) {
      if (!ck.awq) {
        std::string hint = ck.has(lin.prefix + ".qweight")
                               ? " (the checkpoint holds AWQ tensors; config.json lacks quantization_config?)"
                               : "";
        check.dense(lin.prefix + ".weight", {lin.out, lin.in}, hint);
        continue;
      }
      // AWQ "gemm" packing: eight 4-bit output columns per int32, groups along the input dimension.
      if (lin.out % 8 != 0)
        fail(ck.dir, fmt::format("'{}' has {} outputs, not a multiple of 8 as AWQ packing needs", lin.prefix,
                                 lin.out));
      const int64_t groups = lin.in / c.quant_group_size;
      check.exact(lin.prefix + ".qweight", DType::i32, {lin.in, lin.out / 8},
                  "AWQ gemm-packed 4-bit weights");
      check.exact(lin.prefix + ".qzeros", DType::i32, {groups, lin.out / 8}, "AWQ packed zero points");
      check.exact(lin.prefix + ".scales", DType::f16, {groups, lin.out}, "AWQ group scales");
    }
  }
  check.dense("model.norm.weight", {h});
  if (ck.awq && ck.has("output.qweight")) {  // a 4-bit head (`ridgeline quantize --quantize-head`)
    if (v % 8 != 0)
      fail(ck.dir, fmt::format("'output' has {} outputs, not a multiple of 8 as AWQ packing needs", v));
    const int64_t groups = h / c.quant_group_size;
    check.exact("output.qweight", DType::i32, {h, v / 8}, "AWQ gemm-packed 4-bit weights");
    check.exact("output.qzeros", DType::i32, {groups, v / 8}, "AWQ packed zero points");
    check.exact("output.scales", DType::f16, {groups, v}, "AWQ group scales");
  } else if (ck.has("output.weight") || !c.tie_word_embeddings) {
    check.dense("output.weight", {v, h}, c.tie_word_embeddings ? "" : " (tie_word_embeddings is false)");
  }
}

}  // namespace

std::map<std::string, std::vector<std::string>> parse_checkpoint_index(std::string_view text,
                                                                       const std::string& where) {
  // A weight_map that names a tensor twice would send it to whichever shard the parser kept last.
  const json j = parse_strict_json(text, where, "index");
  if (!j.is_object()) fail(where, fmt::format("index must be a JSON object, found {}", describe_json(j)));
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object())
    fail(where, fmt::format("missing object 'weight_map' (tensor name -> shard file){}",
                            wm == j.end() ? "" : ", found " + describe_json(*wm)));
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      fail(where, fmt::format("weight_map['{}'] must be a shard file name, found {}", excerpt(name),
                              describe_json(shard)));
    const std::string& s = shard.get_ref<const std::string&>();
    // Shards live beside the index; a path that leaves the folder is never a real checkpoint, and a
    // control character (a NUL above all) would name a different file than the one checked.
    const bool control =
        std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos ||
        s.find('\\') != std::string::npos || control)
      fail(where, fmt::format("weight_map['{}'] = '{}' is not a file name in the checkpoint folder",
                              excerpt(name), excerpt(s)));
    shards[s].push_back(name);
  }
  if (shards.empty()) fail(where, "weight_map is empty");
  return shards;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(dir, fmt::format("checkpoint has no tensor '{}'", name));
  return it->second;
}

std::vector<LinearSpec> internlm2_linears(const ModelConfig& c, int layer) {
  const std::string p = fmt::format("model.layers.{}.", layer);
  return {{p + "attention.wqkv", c.qkv_dim(), c.hidden},
          {p + "attention.wo", c.hidden, c.q_dim()},
          {p + "feed_forward.w1", c.intermediate, c.hidden},
          {p + "feed_forward.w3", c.intermediate, c.hidden},
          {p + "feed_forward.w2", c.hidden, c.intermediate}};
}

bool checkpoint_lists_tensor(const std::string& dir, const std::string& name) {
  const fs::path root(dir);
  std::error_code ec;
  try {
    if (fs::exists(root / kSingleFile, ec))
      return SafetensorsFile((root / kSingleFile).string()).find(name) != nullptr;
    const fs::path index = root / kIndexFile;
    if (!fs::exists(index, ec)) return false;
    for (const auto& [shard, names] : parse_checkpoint_index(
             read_text_file(index.string(), "a checkpoint index", kMaxIndexBytes), index.string()))
      if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  } catch (const std::exception&) {
    // A broken file or index: open_checkpoint() refuses it with the reason when the weights load.
  }
  return false;
}

Checkpoint open_checkpoint(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    fail(dir, fmt::format("not a checkpoint folder (expected a folder with config.json and {} or {})",
                          kSingleFile, kIndexFile));
  const fs::path config_path = root / "config.json";
  if (!fs::exists(config_path, ec)) fail(dir, "checkpoint folder has no config.json");

  Checkpoint ck;
  ck.dir = dir;
  ck.config = load_config(config_path.string());
  if (ck.config.name.empty()) {
    fs::path abs = fs::absolute(root).lexically_normal();
    ck.config.name = (abs.has_filename() ? abs : abs.parent_path()).filename().string();  // "dir/" too
  }
  ck.awq = ck.config.quant_bits == 4;

  const fs::path single = root / kSingleFile;
  const fs::path index = root / kIndexFile;
  if (fs::exists(single, ec)) {
    add_file(ck, SafetensorsFile(single.string()));
  } else if (fs::exists(index, ec)) {
    auto shards = parse_checkpoint_index(read_text_file(index.string(), "a checkpoint index", kMaxIndexBytes),
                                         index.string());
    ck.files.reserve(shards.size());
    for (const auto& [shard, names] : shards) {
      const fs::path shard_path = root / shard;
      if (!fs::exists(shard_path, ec))
        fail(index.string(), fmt::format("shard '{}' (listed for tensor '{}') does not exist in {}",
                                         excerpt(shard), excerpt(names.front()), dir));
      add_file(ck, SafetensorsFile(shard_path.string()));
      const SafetensorsFile& file = ck.files.back();
      for (const auto& name : names)
        if (!file.find(name))
          fail(file.path(),
               fmt::format("tensor '{}' is listed for this shard in {} but the shard does not hold it",
                           excerpt(name), kIndexFile));
    }
  } else {
    fail(dir, fmt::format("checkpoint folder has neither {} nor {}", kSingleFile, kIndexFile));
  }
  validate_tensors(ck);
  return ck;
}

}  // namespace ridgeline
