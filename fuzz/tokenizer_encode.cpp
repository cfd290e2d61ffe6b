// Fuzzes the tokenizer input path with the real InternLM2 tokenizer (tests/data/tokenizers/internlm2):
// arbitrary bytes, special-token strings included, through encode(), the chat template and decode().
// Invariants: ids lie in the vocabulary and start with <s>; text without special tokens survives
// encode -> decode byte for byte when it is valid UTF-8 (and holds no U+2581, see below); streaming
// detokenization (Utf8Stream) gives exactly decode()'s text; decode() always returns valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/chat_template.h"
#include "engine/tokenizer.h"
#include "engine/utf8_stream.h"
#include "fuzz/fuzz_checks.h"

using namespace ridgeline;

namespace {

const Tokenizer& tokenizer() {
  // RIDGELINE_FUZZ_TOKENIZER (set by fuzz/CMakeLists.txt) can be overridden from the environment.
  static const Tokenizer tok = [] {
    const char* dir = std::getenv("RIDGELINE_FUZZ_TOKENIZER");
    return Tokenizer::load(dir ? dir : RIDGELINE_FUZZ_TOKENIZER);
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Tokenizer& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::vector<int> ids = tok.encode(text, true);
  fuzz::require(!ids.empty() && ids[0] == tok.bos_id(), "encode did not start with <s>");
  bool special = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    fuzz::require(ids[i] >= 0 && ids[i] < tok.vocab_size(), "id outside the vocabulary");
    if (i > 0 && tok.is_special(ids[i])) special = true;
  }
  std::string decoded = tok.decode(ids);
  fuzz::require(is_valid_utf8(decoded), "decode returned invalid UTF-8");
  // SentencePiece writes spaces as U+2581 ("▁") inside pieces, so a literal U+2581 in the input
  // decodes as a space: the official tokenizer does the same (found by this fuzzer; pinned by
  // Tokenizer.ALiteralWhitespaceMetaSymbolDecodesAsASpace). Text without it must survive whole.
  const bool meta = text.find("\xe2\x96\x81") != std::string::npos;
  if (!special && !meta && is_valid_utf8(text))
    fuzz::require(decoded == text, "encode/decode round trip changed the text");

  Utf8Stream stream(tok);
  std::string streamed;
  for (int id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  fuzz::require(streamed == decoded, "streamed text differs from decode()");

  // The same bytes as a user turn of the chat template (the path --chat and --messages take).
  std::vector<int> chat = encode_chat(tok, chat_messages(text, "You are a helpful assistant."), true);
  fuzz::require(chat.size() >= 2 && chat[0] == tok.bos_id(), "chat prompt did not start with <s>");
  for (int id : chat) fuzz::require(id >= 0 && id < tok.vocab_size(), "chat id outside the vocabulary");
  return 0;
}
