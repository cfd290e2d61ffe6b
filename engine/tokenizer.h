// The InternLM2 tokenizer: a SentencePiece BPE model (byte fallback, no dummy prefix) plus the special
// tokens that tokenizer_config.json's `added_tokens_decoder` names. In the real InternLM2 model the chat
// tokens are stored as `[UNUSED_TOKEN_141..146]`, so only the config knows that id 92543 is `<|im_start|>`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ridgeline {

class Tokenizer {
 public:
  // `dir_or_model_file` is a folder holding tokenizer.model (and usually tokenizer_config.json), or the
  // tokenizer.model file itself; tokenizer_config.json is read from the same folder when it is there.
  // Without it the special tokens are only the model's own `<unk>`, `<s>`, `</s>`.
  static Tokenizer load(const std::string& dir_or_model_file);

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Splits `text` on the literal special-token strings first (longest match wins), maps those to their
  // ids and encodes each chunk in between with SentencePiece on its own (the model's normalizer decides
  // about prefixes and whitespace; InternLM2's keeps text as is). `add_bos` prepends `<s>`.
  std::vector<int> encode(const std::string& text, bool add_bos = true) const;
  // `text` as plain text, for what a user typed into the chat template: special-token names in it
  // (`<|im_end|>`, `<s>`) are spelled with ordinary pieces, never mapped to their ids, so user text
  // cannot close its turn or open a system one. No `<s>` is added.
  std::vector<int> encode_text(std::string_view text) const;

  // The most bytes of text one token stands for: the longest piece (spaces counted as the one byte
  // they stand for) or special-token name.
  int max_token_bytes() const;
  // A lower bound on the tokens that `bytes` bytes of text encode to, by either encode function,
  // known before encoding: every token spells at most max_token_bytes() bytes of the text. 0 when
  // no such bound holds: the model's normalizer rewrites text (it could collapse a megabyte of
  // spaces into one) or it has no byte fallback (one <unk> can stand for any run of bytes).
  int64_t min_tokens(size_t bytes) const;

  // The text of `ids` with special tokens (`<s>`, `</s>`, chat tokens, `<unk>`) dropped: the
  // concatenation of token_text(), invalid UTF-8 replaced by U+FFFD (one per maximal invalid subpart).
  // For models without a dummy prefix (InternLM2) this is what SentencePiece's own decoder gives.
  std::string decode(const std::vector<int>& ids) const;

  // The SentencePiece piece of `id` as tokenizer.model spells it (`▁world`, `<0x0A>`, and
  // `[UNUSED_TOKEN_145]` for InternLM2's `<|im_end|>`); the name for added tokens beyond the model.
  std::string piece(int id) const;
  // The name a person should see: the special token's name (`<|im_end|>`) or else piece().
  std::string display_piece(int id) const;
  // The raw bytes `id` contributes to text: `<0xNN>` gives that one byte, `▁` gives a space, special
  // tokens give their name. A byte-fallback token may be part of a UTF-8 character (see Utf8Stream).
  std::string token_text(int id) const;
  // True for tokens that decode() drops: added special tokens, control pieces and `<unk>`.
  bool is_special(int id) const;

  // The id of a special token's name or of a piece; -1 when there is none.
  int id_of(const std::string& content) const;
  int bos_id() const;
  int eos_id() const;
  // The chat tokens; throw a one-line error naming the tokenizer when it has no such token.
  int im_start_id() const;
  int im_end_id() const;
  // Generation stops at any of these: `</s>` and, where the tokenizer has it, `<|im_end|>`.
  std::vector<int> stop_ids() const;
  // Number of ids (SentencePiece pieces, or more when added tokens lie beyond them).
  int vocab_size() const;
  // The tokenizer.model this was loaded from (for error messages).
  const std::string& model_path() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  const Impl& impl() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ridgeline
