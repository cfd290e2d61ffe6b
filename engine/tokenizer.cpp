#include "engine/tokenizer.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <sentencepiece_processor.h>
#include <nlohmann/json.hpp>

#include "engine/utf8_stream.h"

namespace ridgeline {
namespace fs = std::filesystem;

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string model_path;
  std::string config_path;  // empty when there was no tokenizer_config.json
  int piece_count = 0;
  int vocab = 0;
  std::map<int, std::string> special_by_id;
  std::map<std::string, int> special_by_name;
  // Special names, longest first, so that encode() prefers the longest literal at a position.
  std::vector<std::pair<std::string, int>> split_order;
  int bos = -1;
  int eos = -1;
  int max_token_bytes = 0;
  // The byte-fallback piece of each byte value; -1 where the model has none.
  std::vector<int> byte_ids = std::vector<int>(256, -1);
  // Every token spells a piece of the input as it was (see Tokenizer::min_tokens).
  bool keeps_text = false;

  void check_id(int id) const {
    if (id < 0 || id >= vocab)
      throw std::runtime_error(fmt::format(
          "token id {} is outside the vocabulary of tokenizer '{}' (ids 0..{})", id, model_path, vocab - 1));
  }

  void add_special(int id, const std::string& name) {
    if (auto old = special_by_id.find(id); old != special_by_id.end()) special_by_name.erase(old->second);
    special_by_id[id] = name;
    special_by_name[name] = id;
  }

  int find(const std::string& content) const {
    if (auto it = special_by_name.find(content); it != special_by_name.end()) return it->second;
    int id = sp.PieceToId(content);
    // PieceToId answers <unk>'s id for anything it does not know.
    if (id < 0 || id >= piece_count || sp.IdToPiece(id) != content) return -1;
    return id;
  }

  void encode_chunk(std::string_view chunk, std::vector<int>& out) const {
    if (chunk.empty()) return;
    std::vector<int> ids;
    auto status = sp.Encode(chunk, &ids);
    if (!status.ok())
      throw std::runtime_error(
          fmt::format("SentencePiece could not encode text with '{}': {}", model_path, status.ToString()));
    out.insert(out.end(), ids.begin(), ids.end());
  }

  void measure_pieces();
  void load_model(const fs::path& model);
  void load_config(const fs::path& config, std::string& bos_name, std::string& eos_name);

  std::string missing_chat_token(const std::string& name) const {
    return fmt::format(
        "tokenizer '{}' has no {} token, which the InternLM2 chat template needs: {}", model_path, name,
        config_path.empty()
            ? "there is no tokenizer_config.json beside it to map the chat tokens (added_tokens_decoder)"
            : fmt::format("neither tokenizer.model nor added_tokens_decoder in '{}' names it", config_path));
  }
};

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open tokenizer model '{}'", path.string()));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A piece's text: SentencePiece spells spaces as U+2581 ("▁").
std::string piece_text(std::string_view p) {
  static constexpr std::string_view kSpace = "\xE2\x96\x81";
  std::string text;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpace.size(), kSpace) == 0) {
      text += ' ';
      i += kSpace.size();
    } else {
      text += p[i++];
    }
  }
  return text;
}

// A token name in tokenizer_config.json is either a string or an AddedToken object {"content": ...}.
std::string token_name(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return {};
}

}  // namespace

void Tokenizer::Impl::load_model(const fs::path& model) {
  std::string bytes = read_file(model);
  auto status = sp.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    std::string why = status.ToString();
    // InternLM2's piece 354 is a single NUL character: SentencePiece 0.1.x loads it, later versions
    // (the Python package 0.2.x) refuse the whole model.
    if (why.find("null character") != std::string::npos)
      throw std::runtime_error(fmt::format(
          "tokenizer model '{}' has a piece made of a NUL character (InternLM2's piece 354), which this "
          "SentencePiece version refuses ({}); build ridgeline against libsentencepiece 0.1.x (0.1.97 loads "
          "it)",
          model.string(), why));
    throw std::runtime_error(fmt::format(
        "tokenizer model '{}' is not a SentencePiece model SentencePiece can load ({}); expected the "
        "tokenizer.model shipped with the checkpoint",
        model.string(), why));
  }
  piece_count = sp.GetPieceSize();
  if (piece_count <= 0)
    throw std::runtime_error(fmt::format(
        "tokenizer model '{}' has no pieces; expected a trained tokenizer.model", model.string()));
}

void Tokenizer::Impl::measure_pieces() {
  for (int id = 0; id < piece_count; ++id) {
    const std::string& p = sp.IdToPiece(id);
    if (sp.IsByte(id)) {
      unsigned value = 0;
      auto [end, ec] = p.size() == 6 ? std::from_chars(p.data() + 3, p.data() + 5, value, 16)
                                     : std::from_chars_result{p.data(), std::errc::invalid_argument};
      if (ec == std::errc() && end == p.data() + 5 && value < 256) byte_ids[value] = id;
      max_token_bytes = std::max(max_token_bytes, 1);
    } else {
      max_token_bytes = std::max(max_token_bytes, int(piece_text(p).size()));
    }
  }
  for (const auto& [name, id] : special_by_name)
    max_token_bytes = std::max(max_token_bytes, int(name.size()));
  // A byte bound needs every byte to have its token (else one <unk> covers any run of unknown
  // characters) and a normalizer that leaves text as it is: these probes come back byte for byte
  // only then (runs of whitespace, a compatibility ligature, a combining accent, a full-width letter).
  keeps_text = std::find(byte_ids.begin(), byte_ids.end(), -1) == byte_ids.end();
  for (std::string_view probe :
       {"  a  b\t\n\n  ", "\xef\xac\x81", "e\xcc\x81", "\xef\xbc\xa1", "\xe3\x8e\x8f"}) {
    if (!keeps_text) break;
    std::vector<int> ids;
    if (!sp.Encode(probe, &ids).ok()) {
      keeps_text = false;
      break;
    }
    std::string back;
    for (int id : ids) {
      if (sp.IsByte(id))
        back += char(std::find(byte_ids.begin(), byte_ids.end(), id) - byte_ids.begin());
      else
        back += piece_text(sp.IdToPiece(id));
    }
    keeps_text = back == probe;
  }
}

void Tokenizer::Impl::load_config(const fs::path& config, std::string& bos_name, std::string& eos_name) {
  nlohmann::json j;
  try {
    std::ifstream in(config);
    if (!in) throw std::runtime_error("cannot open it");
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        fmt::format("tokenizer config '{}' could not be read as JSON: {}", config.string(), e.what()));
  }
  if (!j.is_object())
    throw std::runtime_error(fmt::format("tokenizer config '{}' must be a JSON object", config.string()));
  if (j.contains("bos_token") && !token_name(j["bos_token"]).empty()) bos_name = token_name(j["bos_token"]);
  if (j.contains("eos_token") && !token_name(j["eos_token"]).empty()) eos_name = token_name(j["eos_token"]);
  if (!j.contains("added_tokens_decoder")) return;
  const auto& added = j["added_tokens_decoder"];
  if (!added.is_object())
    throw std::runtime_error(fmt::format(
        "tokenizer config '{}': added_tokens_decoder must be an object of id -> {{\"content\": ...}}",
        config.string()));
  for (const auto& [key, value] : added.items()) {
    int id = -1;
    auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < 0)
      throw std::runtime_error(fmt::format(
          "tokenizer config '{}': added_tokens_decoder key '{}' is not a token id", config.string(), key));
    std::string name = token_name(value);
    if (name.empty())
      throw std::runtime_error(fmt::format(
          "tokenizer config '{}': added_tokens_decoder[\"{}\"] needs a non-empty string \"content\"",
          config.string(), key));
    add_special(id, name);
  }
}

Tokenizer Tokenizer::load(const std::string& dir_or_model_file) {
  fs::path given(dir_or_model_file);
  std::error_code ec;
  if (!fs::exists(given, ec))
    throw std::runtime_error(fmt::format(
        "tokenizer '{}' does not exist: give a folder holding tokenizer.model or the tokenizer.model file",
        dir_or_model_file));
  fs::path model = fs::is_directory(given, ec) ? given / "tokenizer.model" : given;
  if (!fs::is_regular_file(model, ec))
    throw std::runtime_error(fmt::format(
        "tokenizer model '{}' not found: the folder must hold the checkpoint's SentencePiece tokenizer.model",
        model.string()));
  fs::path config = model.parent_path() / "tokenizer_config.json";

  auto t = std::make_unique<Impl>();
  t->model_path = model.string();
  t->load_model(model);

  // The model's own control pieces (<s>, </s>) and <unk> are special; the config may add or rename.
  for (int id = 0; id < t->piece_count; ++id)
    if (t->sp.IsControl(id) || t->sp.IsUnknown(id)) t->add_special(id, t->sp.IdToPiece(id));
  std::string bos_name = "<s>", eos_name = "</s>";
  if (fs::is_regular_file(config, ec)) {
    t->config_path = config.string();
    t->load_config(config, bos_name, eos_name);
  }
  t->vocab = t->piece_count;
  if (!t->special_by_id.empty()) t->vocab = std::max(t->vocab, t->special_by_id.rbegin()->first + 1);

  t->bos = t->find(bos_name);
  if (t->bos < 0) t->bos = t->sp.bos_id();
  t->eos = t->find(eos_name);
  if (t->eos < 0) t->eos = t->sp.eos_id();

  t->measure_pieces();
  for (const auto& [name, id] : t->special_by_name) t->split_order.emplace_back(name, id);
  std::stable_sort(t->split_order.begin(), t->split_order.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return Tokenizer(std::move(t));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const Tokenizer::Impl& Tokenizer::impl() const {
  if (!impl_) throw std::logic_error("use of a moved-from Tokenizer");
  return *impl_;
}

std::vector<int> Tokenizer::encode(const std::string& text, bool add_bos) const {
  const Impl& t = impl();
  std::vector<int> out;
  if (add_bos) {
    if (t.bos < 0)
      throw std::runtime_error(fmt::format("tokenizer '{}' has no <s> (bos) token", t.model_path));
    out.push_back(t.bos);
  }
  std::string_view rest(text);
  size_t chunk_start = 0;
  for (size_t pos = 0; pos < rest.size();) {
    const std::pair<std::string, int>* match = nullptr;
    for (const auto& special : t.split_order) {
      if (rest.compare(pos, special.first.size(), special.first) == 0) {
        match = &special;  // split_order is longest first, so the first hit is the longest match
        break;
      }
    }
    if (!match) {
      ++pos;
      continue;
    }
    t.encode_chunk(rest.substr(chunk_start, pos - chunk_start), out);
    out.push_back(match->second);
    pos += match->first.size();
    chunk_start = pos;
  }
  t.encode_chunk(rest.substr(chunk_start), out);
  return out;
}

std::vector<int> Tokenizer::encode_text(std::string_view text) const {
  const Impl& t = impl();
  std::vector<int> ids;
  t.encode_chunk(text, ids);
  // SentencePiece itself matches user-defined pieces in text: InternLM2's chat tokens are the pieces
  // [UNUSED_TOKEN_145] and so on. Typed text spells them byte by byte instead.
  std::vector<int> out;
  out.reserve(ids.size());
  for (int id : ids) {
    if (!t.special_by_id.count(id)) {
      out.push_back(id);
      continue;
    }
    for (unsigned char b : piece_text(t.sp.IdToPiece(id))) {
      if (t.byte_ids[b] < 0)
        throw std::runtime_error(
            fmt::format("tokenizer '{}' cannot spell the special token '{}' as text: it has no byte pieces",
                        t.model_path, t.sp.IdToPiece(id)));
      out.push_back(t.byte_ids[b]);
    }
  }
  return out;
}

int Tokenizer::max_token_bytes() const {
  return impl().max_token_bytes;
}

int64_t Tokenizer::min_tokens(size_t bytes) const {
  const Impl& t = impl();
  if (!t.keeps_text || t.max_token_bytes <= 0) return 0;
  return int64_t((bytes + size_t(t.max_token_bytes) - 1) / size_t(t.max_token_bytes));
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string bytes;
  for (int id : ids)
    if (!is_special(id)) bytes += token_text(id);
  std::string out;
  append_valid_utf8(bytes, true, out);
  return out;
}

std::string Tokenizer::piece(int id) const {
  const Impl& t = impl();
  t.check_id(id);
  if (id >= t.piece_count) return t.special_by_id.at(id);  // added tokens past the model are all named
  return t.sp.IdToPiece(id);
}

std::string Tokenizer::display_piece(int id) const {
  const Impl& t = impl();
  t.check_id(id);
  if (auto it = t.special_by_id.find(id); it != t.special_by_id.end()) return it->second;
  return t.sp.IdToPiece(id);
}

std::string Tokenizer::token_text(int id) const {
  const Impl& t = impl();
  t.check_id(id);
  if (auto it = t.special_by_id.find(id); it != t.special_by_id.end()) return it->second;
  const std::string& p = t.sp.IdToPiece(id);
  if (t.sp.IsByte(id)) {
    // Byte-fallback pieces are spelled "<0xNN>".
    unsigned value = 0;
    auto [end, ec] = p.size() == 6 ? std::from_chars(p.data() + 3, p.data() + 5, value, 16)
                                   : std::from_chars_result{p.data(), std::errc::invalid_argument};
    if (ec != std::errc() || end != p.data() + 5)
      throw std::runtime_error(
          fmt::format("tokenizer '{}': byte piece {} is '{}', expected <0xNN>", t.model_path, id, p));
    return std::string(1, static_cast<char>(value));
  }
  return piece_text(p);
}

bool Tokenizer::is_special(int id) const {
  const Impl& t = impl();
  t.check_id(id);
  return t.special_by_id.count(id) != 0;
}

int Tokenizer::id_of(const std::string& content) const {
  return impl().find(content);
}
int Tokenizer::bos_id() const {
  return impl().bos;
}
int Tokenizer::eos_id() const {
  return impl().eos;
}

int Tokenizer::im_start_id() const {
  int id = impl().find("<|im_start|>");
  if (id < 0) throw std::runtime_error(impl().missing_chat_token("<|im_start|>"));
  return id;
}

int Tokenizer::im_end_id() const {
  int id = impl().find("<|im_end|>");
  if (id < 0) throw std::runtime_error(impl().missing_chat_token("<|im_end|>"));
  return id;
}

std::vector<int> Tokenizer::stop_ids() const {
  std::vector<int> ids;
  if (impl().eos >= 0) ids.push_back(impl().eos);
  if (int end = impl().find("<|im_end|>"); end >= 0 && end != impl().eos) ids.push_back(end);
  return ids;
}

int Tokenizer::vocab_size() const {
  return impl().vocab;
}
const std::string& Tokenizer::model_path() const {
  return impl().model_path;
}

}  // namespace ridgeline
