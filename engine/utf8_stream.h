// Streaming detokenization: byte-fallback tokens can split one UTF-8 character over several tokens
// (an emoji is often four `<0xNN>` tokens), so a streamed reply holds bytes back until the character
// they start is complete. Invalid bytes become U+FFFD with the same rule as Tokenizer::decode, so the
// streamed text always equals decode() of the same ids.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ridgeline {

class Tokenizer;

class Utf8Stream {
 public:
  explicit Utf8Stream(const Tokenizer& tok) : tok_(&tok) {}

  // Text that became complete with `id`: only whole UTF-8 characters. Special tokens (stop tokens
  // included) give no text; bytes held back stay held across them, as decode() concatenates around them.
  std::string push(int id);
  // Whatever is still held back, with an unfinished character replaced by U+FFFD; the stream is then empty.
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;  // bytes of a character that is not complete yet (at most 3)
};

// Appends the valid UTF-8 of `bytes` to `out`, replacing each maximal invalid subpart (Unicode's
// "substitution of maximal subparts") with U+FFFD. A valid but unfinished character at the end is left
// unconsumed unless `at_end`, when it becomes U+FFFD too. Returns the number of bytes consumed.
size_t append_valid_utf8(std::string_view bytes, bool at_end, std::string& out);

bool is_valid_utf8(std::string_view bytes);

}  // namespace ridgeline
