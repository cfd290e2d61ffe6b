#include "engine/quantize.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/awq_format.h"
#include "engine/checkpoint.h"
#include "engine/cuda/awq_gpu.h"
#include "engine/data_paths.h"
#include "engine/host_weights.h"
#include "engine/quantize_rtn.h"
#include "engine/safetensors_writer.h"
#include "engine/text_file.h"
#include "engine/tokenizer.h"

namespace ridgeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}

// The float32 weights of the source, one layer at a time.
struct WeightStream {
  std::optional<Checkpoint> ck;  // checkpoint sources: keeps the mappings alive
  ModelConfig config;
  uint64_t seed = 0;
  HostWeights outside;  // embeddings, final norm, head

  LayerWeights layer(int l) const {
    return ck ? load_layer_weights(*ck, l) : synthetic_layer_weights(config, seed, l);
  }
};

WeightStream open_stream(const ModelSource& source) {
  WeightStream s;
  if (source.synthetic) {
    s.config = source.config;
    s.seed = source.seed;
    s.outside = synthetic_weights_outside_layers(s.config, s.seed);
    return s;
  }
  s.ck.emplace(open_checkpoint(source.checkpoint_dir));
  if (s.ck->awq)
    fail(fmt::format(
        "{}: is already a 4-bit AWQ checkpoint (quantization_config in config.json); quantize the "
        "unquantized model instead",
        source.checkpoint_dir));
  s.config = s.ck->config;
  s.outside = load_weights_outside_layers(*s.ck);
  return s;
}

// --- what is written, and where ---------------------------------------------------------------

struct Planned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  int shard = 0;
  int64_t bytes() const {
    int64_t n = static_cast<int64_t>(dtype_size(dtype));
    for (int64_t d : shape) n *= d;
    return n;
  }
};

void plan_linear(std::vector<Planned>& plan, const std::string& prefix, int64_t out, int64_t in, int group) {
  plan.push_back({prefix + ".qweight", DType::i32, {in, out / 8}});
  plan.push_back({prefix + ".qzeros", DType::i32, {in / group, out / 8}});
  plan.push_back({prefix + ".scales", DType::f16, {in / group, out}});
}

bool writes_head(const ModelConfig& c, const QuantizeOptions& o) {
  return o.quantize_head || !c.tie_word_embeddings;
}

// Every tensor in the order the quantizer produces it, each given a shard: consecutive tensors fill a
// shard up to max_shard_bytes (a larger tensor gets one to itself).
std::vector<Planned> plan_tensors(const ModelConfig& c, const QuantizeOptions& o) {
  const int64_t h = c.hidden, v = c.vocab;
  std::vector<Planned> plan;
  plan.push_back({"model.tok_embeddings.weight", DType::f16, {v, h}});
  for (int l = 0; l < c.n_layers; ++l) {
    const auto lin = internlm2_linears(c, l);  // wqkv, wo, w1, w3, w2
    const std::string p = fmt::format("model.layers.{}.", l);
    plan.push_back({p + "attention_norm.weight", DType::f16, {h}});
    plan_linear(plan, lin[0].prefix, lin[0].out, lin[0].in, o.group_size);
    plan_linear(plan, lin[1].prefix, lin[1].out, lin[1].in, o.group_size);
    plan.push_back({p + "ffn_norm.weight", DType::f16, {h}});
    for (int k = 2; k < 5; ++k) plan_linear(plan, lin[k].prefix, lin[k].out, lin[k].in, o.group_size);
  }
  plan.push_back({"model.norm.weight", DType::f16, {h}});
  if (o.quantize_head) {
    plan_linear(plan, "output", v, h, o.group_size);
  } else if (writes_head(c, o)) {
    plan.push_back({"output.weight", DType::f16, {v, h}});
  }
  int shard = 0;
  int64_t filled = 0;
  for (Planned& t : plan) {
    if (filled > 0 && filled + t.bytes() > o.max_shard_bytes) {
      ++shard;
      filled = 0;
    }
    t.shard = shard;
    filled += t.bytes();
  }
  return plan;
}

// Collects tensors as they are produced and writes each shard as soon as its last tensor arrives,
// so that memory holds one shard at most.
class ShardWriter {
 public:
  ShardWriter(std::vector<Planned> plan, std::string dir) : plan_(std::move(plan)), dir_(std::move(dir)) {
    shards_ = plan_.empty() ? 0 : plan_.back().shard + 1;
  }

  void add(const std::string& name, std::vector<uint8_t> bytes) {
    if (next_ >= plan_.size() || plan_[next_].name != name)
      throw std::logic_error(fmt::format("quantizer produced '{}' out of plan order", name));
    const Planned& t = plan_[next_];
    if (static_cast<int64_t>(bytes.size()) != t.bytes())
      throw std::logic_error(
          fmt::format("'{}' has {} bytes, the plan says {}", name, bytes.size(), t.bytes()));
    pending_.push_back(std::move(bytes));
    ++next_;
    if (next_ == plan_.size() || plan_[next_].shard != t.shard) flush(t.shard);
  }

  // Writes the index when there are several shards; returns the files written, in order.
  std::vector<std::string> finish() {
    if (next_ != plan_.size()) throw std::logic_error("quantizer stopped before the last tensor");
    if (shards_ > 1) {
      json map = json::object();
      for (const Planned& t : plan_) map[t.name] = shard_name(t.shard);
      json index = {{"metadata", {{"total_size", bytes_}}}, {"weight_map", map}};
      write_file_atomically((fs::path(dir_) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
      files_.push_back("model.safetensors.index.json");
    }
    return files_;
  }

  int64_t bytes() const { return bytes_; }

 private:
  std::string shard_name(int shard) const {
    return shards_ == 1 ? "model.safetensors"
                        : fmt::format("model-{:05}-of-{:05}.safetensors", shard + 1, shards_);
  }

  void flush(int shard) {
    std::vector<TensorToWrite> tensors;
    const size_t first = next_ - pending_.size();
    for (size_t k = 0; k < pending_.size(); ++k) {
      const Planned& t = plan_[first + k];
      tensors.push_back({t.name, t.dtype, t.shape, pending_[k].data()});
      bytes_ += t.bytes();
    }
    write_safetensors((fs::path(dir_) / shard_name(shard)).string(), tensors);
    files_.push_back(shard_name(shard));
    pending_.clear();
  }

  std::vector<Planned> plan_;
  std::string dir_;
  int shards_ = 0;
  size_t next_ = 0;
  std::vector<std::vector<uint8_t>> pending_;
  std::vector<std::string> files_;
  int64_t bytes_ = 0;
};

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> fp16_bytes(const HostTensor& t, const std::string& name) {
  std::vector<uint16_t> h(t.data.size());
  for (size_t i = 0; i < h.size(); ++i) {
    h[i] = float_to_fp16(t.data[i]);
    if (std::isfinite(t.data[i]) && !std::isfinite(fp16_to_float(h[i])))
      fail(fmt::format(
          "tensor '{}' holds {} at index {}, beyond fp16's range (65504); it cannot be stored as fp16", name,
          t.data[i], i));
  }
  return bytes_of(h);
}

void add_linear(ShardWriter& w, const std::string& prefix, const HostTensor& W, int group) {
  AwqLinear p = awq_pack(rtn_quantize(W, group, prefix));
  w.add(prefix + ".qweight", bytes_of(p.qweight));
  w.add(prefix + ".qzeros", bytes_of(p.qzeros));
  w.add(prefix + ".scales", bytes_of(p.scales));
}

// --- checks, config, tokenizer ---------------------------------------------------------------------

void check_options(const ModelConfig& c, const QuantizeOptions& o) {
  if (o.group_size <= 0 || o.group_size % 8 != 0)
    fail(fmt::format("--group-size {} must be a positive multiple of 8 (AWQ uses 128)", o.group_size));
  const std::pair<int, const char*> inputs[] = {
      {c.hidden, "hidden_size"}, {c.q_dim(), "the attention width"}, {c.intermediate, "intermediate_size"}};
  for (auto [in, what] : inputs)
    if (in % o.group_size != 0)
      fail(fmt::format("--group-size {} does not divide {} ({}); choose a divisor such as 128 or 64",
                       o.group_size, what, in));
  if (c.qkv_dim() % 8 != 0 || c.hidden % 8 != 0 || c.intermediate % 8 != 0 ||
      (o.quantize_head && c.vocab % 8 != 0))
    fail("AWQ packing needs every quantized linear's outputs to be a multiple of 8");
  if (o.method == QuantMethod::awq && (o.calib_seq_len < 2 || o.max_calib_tokens < 2 || o.grid < 1))
    fail("calibration needs sequences of at least 2 tokens and a grid of at least 1 point");
  if (o.device == DeviceKind::cuda && o.method != QuantMethod::awq)
    fail(
        "--device cuda runs AWQ's search (--method awq); RTN is one pass over the weights and runs on the "
        "CPU");
}

// Peak host memory: the float32 weights outside the layers, one layer twice (loaded, plus the search's
// temporaries), a shard, and the calibration activations.
int64_t peak_bytes(const ModelConfig& c, const QuantizeOptions& o, int64_t out_bytes) {
  const int64_t h = c.hidden, v = c.vocab;
  const int64_t layer = (h * c.qkv_dim() + int64_t(c.q_dim()) * h + 3 * h * c.intermediate) * 4;
  const int64_t outside = (c.tie_word_embeddings ? 1 : 2) * v * h * 4;
  int64_t calib = 0;
  if (o.method == QuantMethod::awq)
    calib =
        int64_t(o.max_calib_tokens) * (4 * h + c.qkv_dim() + 2 * c.q_dim() + 4 * int64_t(c.intermediate)) * 4;
  const int64_t head_search = o.method == QuantMethod::awq && o.quantize_head ? v * h * 4 : 0;
  return outside + std::max(2 * layer, head_search) + std::min(out_bytes, o.max_shard_bytes) + calib;
}

json output_config(const ModelSource& source, const ModelConfig& c, const QuantizeOptions& o) {
  json j;
  if (!source.synthetic) {
    const std::string path = (fs::path(source.checkpoint_dir) / "config.json").string();
    j = json::parse(read_text_file(path, "config.json"));  // open_checkpoint has validated it
  } else {
    j = config_to_json(c);
    j["architectures"] = {"InternLM2ForCausalLM"};
    j["model_type"] = "internlm2";
    j["hidden_act"] = "silu";
    j["bias"] = false;
    j["bos_token_id"] = c.bos_id;
    j["eos_token_id"] = c.eos_id;
  }
  j["torch_dtype"] = "float16";
  if (c.tie_word_embeddings && o.quantize_head)
    j["tie_word_embeddings"] = false;  // the head is its own tensor now
  j["quantization_config"] = {{"quant_method", "awq"},
                              {"bits", 4},
                              {"group_size", o.group_size},
                              {"zero_point", true},
                              {"version", "gemm"}};
  return j;
}

// Tokenizer files (and remote-code .py files, which Hugging Face loaders want beside config.json).
std::vector<std::string> copy_tokenizer(const std::string& tokenizer_path, const std::string& out_dir) {
  std::vector<std::string> copied;
  if (tokenizer_path.empty()) return copied;
  const fs::path src =
      fs::is_directory(tokenizer_path) ? fs::path(tokenizer_path) : fs::path(tokenizer_path).parent_path();
  static const char* kFiles[] = {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                                 "tokenizer.json",  "added_tokens.json",     "generation_config.json"};
  std::vector<fs::path> files;
  for (const char* f : kFiles)
    if (fs::is_regular_file(src / f)) files.push_back(src / f);
  for (const auto& e : fs::directory_iterator(src))
    if (e.is_regular_file() && e.path().extension() == ".py") files.push_back(e.path());
  for (const fs::path& f : files) {
    std::error_code ec;
    fs::copy_file(f, fs::path(out_dir) / f.filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) fail(fmt::format("{}: cannot copy into {} ({})", f.string(), out_dir, ec.message()));
    copied.push_back(f.filename().string());
  }
  return copied;
}

void prepare_out_dir(const std::string& out_dir) {
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    if (!fs::is_directory(out_dir, ec)) fail(fmt::format("--out {}: exists and is not a folder", out_dir));
    if (!fs::is_empty(out_dir, ec))
      fail(fmt::format("--out {}: folder exists and is not empty; give a new folder", out_dir));
    return;
  }
  // The folder itself is made, its parent must exist: as every other output flag, a typo in the
  // path is refused rather than made into a tree of folders.
  fs::path target(out_dir);
  if (!target.has_filename()) target = target.parent_path();  // "q/": the folder is q
  const fs::path parent = fs::absolute(target, ec).parent_path();
  if (!fs::is_directory(parent, ec))
    fail(fmt::format("--out {}: no folder '{}' to make it in", out_dir, parent.string()));
  fs::create_directory(out_dir, ec);
  if (ec) fail(fmt::format("--out {}: cannot create the folder ({})", out_dir, ec.message()));
}

std::string gpu_note(const AwqGpuTime& t) {
  return fmt::format(" (GPU {:.2f} s: upload {:.2f}, forward {:.2f}, search {:.2f})", t.total(), t.upload,
                     t.forward, t.search);
}

std::string fmt_choice(const AwqChoice& a) {
  return fmt::format("{} a={:.2f} ({:.3g}->{:.3g})", a.group, a.alpha, a.error_rtn, a.error_awq);
}

}  // namespace

const char* to_string(QuantMethod m) {
  return m == QuantMethod::awq ? "awq" : "rtn";
}

QuantMethod parse_quant_method(const std::string& s) {
  if (s == "rtn") return QuantMethod::rtn;
  if (s == "awq") return QuantMethod::awq;
  throw std::invalid_argument(fmt::format("unknown quantization method '{}' (rtn or awq)", s));
}

std::string default_calibration_file() {
  std::string where = "ridgeline's data folder was not found";
  try {
    const fs::path p = fs::path(data_dir()) / "calibration.txt";
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
    where = p.string() + " does not exist";
  } catch (const std::runtime_error&) {
    // no data folder at all: say so below
  }
  fail(fmt::format(
      "no bundled calibration text ({}; it ships from engine/data/calibration.txt); give one with "
      "--calib FILE",
      where));
}

std::vector<std::vector<int>> calibration_sequences(const std::string& text,
                                                    const std::string& tokenizer_path, int seq_len,
                                                    int max_tokens) {
  if (tokenizer_path.empty())
    fail("AWQ calibration needs the model's tokenizer, and this model has no tokenizer.model");
  const Tokenizer tok = Tokenizer::load(tokenizer_path);
  const std::vector<int> ids = tok.encode(text, false);
  std::vector<std::vector<int>> seqs;
  int64_t total = 0;
  for (size_t at = 0; at < ids.size() && total + 2 <= max_tokens;) {
    const size_t take =
        std::min<size_t>({ids.size() - at, size_t(seq_len - 1), size_t(max_tokens - total - 1)});
    std::vector<int> s{tok.bos_id()};
    s.insert(s.end(), ids.begin() + at, ids.begin() + at + take);
    total += static_cast<int64_t>(s.size());
    seqs.push_back(std::move(s));
    at += take;
  }
  return seqs;
}

QuantizeSummary quantize_model(const ModelSource& source, const std::string& out_dir,
                               const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  const ModelConfig& sc = source.config;
  check_options(sc, o);
  std::vector<Planned> plan = plan_tensors(sc, o);
  int64_t out_bytes = 0;
  for (const Planned& t : plan) out_bytes += t.bytes();
  check_host_memory(peak_bytes(sc, o, out_bytes), "quantizing " + sc.name);

  // Everything that can fail on the inputs, before the output folder is touched.
  std::vector<std::vector<int>> calib_seqs;
  QuantizeSummary sum;
  if (o.method == QuantMethod::awq) {
    const std::string file = o.calibration_file.empty() ? default_calibration_file() : o.calibration_file;
    calib_seqs = calibration_sequences(read_text_file(file, "calibration text"), source.tokenizer_path,
                                       o.calib_seq_len, o.max_calib_tokens);
    if (calib_seqs.empty()) fail(fmt::format("{}: the calibration text gives no tokens", file));
    for (const auto& s : calib_seqs) sum.calib_tokens += static_cast<int64_t>(s.size());
    say(fmt::format("calibration: {} tokens in {} sequences from {}", sum.calib_tokens, calib_seqs.size(),
                    file));
  }
  WeightStream w = open_stream(source);
  const ModelConfig& c = w.config;
  std::optional<Calibration> calib;
  if (o.method == QuantMethod::awq) calib = start_calibration(w.outside.tok_embeddings, calib_seqs);
  const AwqOptions awq{o.group_size, o.grid, o.max_search_tokens};
  std::unique_ptr<AwqGpuSearch> gpu;  // the stream lives on the device from here
  if (calib && o.device == DeviceKind::cuda) {
    gpu = std::make_unique<AwqGpuSearch>(c, *calib, awq);
    calib->residual = {};
    say(fmt::format("calibration forward and scale search on the GPU, {} rows", calib->rows()));
  }
  prepare_out_dir(out_dir);

  ShardWriter out(std::move(plan), out_dir);
  out.add("model.tok_embeddings.weight", fp16_bytes(w.outside.tok_embeddings, "model.tok_embeddings.weight"));
  if (!writes_head(c, o)) w.outside.output = HostTensor{};  // tied and kept fp16: the embeddings serve
  w.outside.tok_embeddings = HostTensor{};                  // no longer needed: calibration has started

  for (int l = 0; l < c.n_layers; ++l) {
    const auto tl = std::chrono::steady_clock::now();
    LayerWeights L = w.layer(l);
    std::string note;
    if (gpu) {
      sum.layers.push_back(awq_fold_layer(c, L, gpu->search_layer(L)));
      note = gpu_note(gpu->last_time());
    } else if (calib) {
      const LayerInputs x = run_calibration_layer(c, L, *calib);
      sum.layers.push_back(awq_scale_layer(c, L, x, awq));
    }
    if (calib)
      for (const AwqChoice& a : sum.layers.back()) note += "  " + fmt_choice(a);
    const auto lin = internlm2_linears(c, l);
    const std::string p = fmt::format("model.layers.{}.", l);
    out.add(p + "attention_norm.weight", fp16_bytes(L.attention_norm, p + "attention_norm.weight"));
    add_linear(out, lin[0].prefix, L.wqkv, o.group_size);
    add_linear(out, lin[1].prefix, L.wo, o.group_size);
    out.add(p + "ffn_norm.weight", fp16_bytes(L.ffn_norm, p + "ffn_norm.weight"));
    add_linear(out, lin[2].prefix, L.w1, o.group_size);
    add_linear(out, lin[3].prefix, L.w3, o.group_size);
    add_linear(out, lin[4].prefix, L.w2, o.group_size);
    say(fmt::format("layer {}/{} {:.1f} s{}", l + 1, c.n_layers,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - tl).count(), note));
  }

  if (calib && o.quantize_head) {
    if (gpu) {
      int64_t rows = 0;
      const AwqSearch s = gpu->search_head(w.outside.norm, w.outside.output, &rows);
      sum.head.push_back(awq_fold_head(w.outside.norm, w.outside.output, s, rows));
    } else {
      const std::vector<float> x = final_norm_rows(c, w.outside.norm, *calib);
      sum.head.push_back(awq_scale_head(c, w.outside.norm, w.outside.output, x, calib->rows(), awq));
    }
    say("output " + fmt_choice(sum.head.back()) + (gpu ? gpu_note(gpu->last_time()) : ""));
  }
  if (gpu) {
    sum.device_seconds = gpu->device_seconds();
    gpu.reset();  // the device memory goes before the last shard is written
  }
  out.add("model.norm.weight", fp16_bytes(w.outside.norm, "model.norm.weight"));
  if (o.quantize_head) {
    add_linear(out, "output", w.outside.output, o.group_size);
  } else if (writes_head(c, o)) {
    out.add("output.weight", fp16_bytes(w.outside.output, "output.weight"));
  }
  sum.files = out.finish();
  sum.bytes = out.bytes();
  for (const std::string& f : copy_tokenizer(source.tokenizer_path, out_dir)) sum.files.push_back(f);
  const json config = output_config(source, c, o);
  write_file_atomically((fs::path(out_dir) / "config.json").string(), config.dump(2) + "\n");
  sum.files.push_back("config.json");
  sum.out_dir = out_dir;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace ridgeline
